"""EBB! ("Everything is Better with Bokeh!", AIM 2020): real wide / shallow depth-of-field pairs.

Canon 7D, 50 mm; the input is shot at f/16, the target at f/1.8. Layout of the AIM 2020 release::

    ROOT/
      train/original/0.jpg ... 4693.jpg     wide depth of field (input)
      train/bokeh/0.jpg ... 4693.jpg        shallow depth of field (target), same names
      validation/original/*.jpg             (also accepted: val/); validation/bokeh/ when you have it
      test/original/*.jpg                   test/bokeh/ when you have it

Splits (``split=``):

``train``
    the training pairs minus the held-out 100: 4,594 of AIM's 4,694 pairs (the "4,600" of Singh & Gothe).
``heldout`` (alias ``test``)
    the 100 training pairs held out as a test set, as Singh & Gothe do (the AIM test targets are not
    public). The list is :data:`HELDOUT_IDS`: ``sorted(numpy.random.default_rng(20200).choice(4694, 100,
    replace=False))`` over the AIM file numbers 0..4693, recorded here so that it never changes.
``val``
    the AIM validation folder (200 images); targets only if ``validation/bokeh/`` exists.
``aim-test``
    the AIM test folder; targets only if ``test/bokeh/`` exists.
``val294``
    EBB! Val294: the last 294 training pairs (file numbers 4400..4693), the validation set of BokehMe,
    MPIB, Dr.Bokeh and BokehDiff.
``train294``
    the training pairs before them (0..4399), the training side of the Val294 protocol.

There is no disparity in EBB!; pass ``disparity_dir`` (one map per image, same stem, any format
:func:`lensblur.io.read_disparity` reads) to attach one, e.g. from a depth model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import InputError
from ..io import list_images, read_disparity, read_image
from ._common import JPEG_PNG, align_exposure, check_root, find_file, layout_error, make_item

__all__ = ["EBB", "HELDOUT_IDS", "HELDOUT_SEED", "SPLITS", "VAL294_FIRST", "EBBVal294"]

logger = logging.getLogger(__name__)

HELDOUT_SEED = 20200
HELDOUT_IDS: tuple[int, ...] = (
    3, 16, 31, 46, 83, 143, 185, 239, 257, 303, 330, 398, 593, 636, 664, 679, 881, 896, 913, 915, 1087, 1110,
    1122, 1126, 1127, 1194, 1197, 1231, 1261, 1312, 1363, 1396, 1492, 1592, 1620, 1701, 1721, 1790, 1869, 1915,
    1928, 2064, 2120, 2122, 2129, 2201, 2212, 2222, 2254, 2281, 2284, 2320, 2439, 2460, 2542, 2590, 2637, 2698,
    2715, 2739, 2742, 2762, 2768, 2804, 2822, 2859, 2916, 2921, 2951, 3001, 3165, 3243, 3380, 3406, 3545, 3600,
    3631, 3658, 3660, 3700, 3724, 3787, 3855, 3892, 3904, 3926, 3965, 4006, 4067, 4251, 4269, 4309, 4368, 4419,
    4478, 4523, 4573, 4592, 4656, 4685,
)
AIM_TRAIN_COUNT = 4694
VAL294_FIRST = AIM_TRAIN_COUNT - 294  # 4400

SPLITS = ("train", "heldout", "test", "val", "aim-test", "val294", "train294")

LAYOUT = """  ROOT/train/original/0.jpg ...   (wide depth of field, f/16)
  ROOT/train/bokeh/0.jpg ...      (shallow depth of field, f/1.8, same names)
  ROOT/validation/original/*.jpg  (optional: validation/bokeh/)
  ROOT/test/original/*.jpg        (optional: test/bokeh/)"""

_DISPARITY_SUFFIXES = (".png", ".npy", ".pfm", ".tif", ".tiff", ".exr", ".jpg")


def _file_number(path: Path) -> int | None:
    return int(path.stem) if path.stem.isdigit() else None


class EBB(Dataset):
    """EBB! pairs as items (see the module doc for the layout and the splits).

    Args:
        root: the EBB! folder.
        split: one of :data:`SPLITS` (``test`` is an alias of ``heldout``).
        disparity_dir: a folder of per-image disparity maps (larger = nearer, same stem as the image), or
            None for items without disparity.
        normalize_disparity: rescale each map to [0, 1] (for relative depth-model outputs).
        align_exposure: scale each input to the global mean of its target (BokehDiff's protocol).

    Items follow :mod:`lensblur.data._common` (no ``lens``: EBB! does not record one).

    Raises:
        InputError: an unknown split, a root not laid out like EBB!, a missing ``disparity_dir`` (or map
            in it), ``align_exposure`` on a split without targets, or a pair of different sizes.
    """

    name = "ebb"

    def __init__(self, root, split: str = "train", *, disparity_dir=None, normalize_disparity: bool = False,
                 align_exposure: bool = False):
        if split not in SPLITS:
            raise InputError("split", expected=f"one of {', '.join(SPLITS)}", got=split,
                             fix="e.g. split=heldout for the 100 held-out training pairs")
        self.root = check_root(root, "EBB!", LAYOUT)
        self.split = "heldout" if split == "test" else split
        self.align_exposure = align_exposure
        self.normalize_disparity = normalize_disparity
        self.disparity_dir = Path(disparity_dir) if disparity_dir is not None else None
        if self.disparity_dir is not None and not self.disparity_dir.is_dir():
            raise InputError("disparity_dir", expected="an existing folder of per-image disparity maps",
                             got=str(self.disparity_dir), fix="pass disparity_dir=DIR, an existing folder")
        self.pairs = self._pairs()
        if align_exposure and any(t is None for _, t in self.pairs):
            raise InputError("align_exposure", expected=f"a split with targets (split {self.split} has none here)",
                             got=str(self.root), fix="pass align_exposure=False, or use a split with bokeh targets")

    # -- layout -------------------------------------------------------------------------------------------
    def _folder(self, *names: str) -> Path | None:
        for name in names:
            if (self.root / name).is_dir():
                return self.root / name
        return None

    def _pairs(self) -> list[tuple[Path, Path | None]]:
        if self.split in ("val", "aim-test"):
            folder = self._folder("validation", "val") if self.split == "val" else self._folder("test")
            if folder is None or not list_images(folder / "original", JPEG_PNG):
                which = "validation/original/" if self.split == "val" else "test/original/"
                raise layout_error("EBB!", self.root, LAYOUT, f"no images in {which}")
            return [(p, self._partner(folder / "bokeh", p)) for p in list_images(folder / "original", JPEG_PNG)]

        originals = list_images(self.root / "train" / "original", JPEG_PNG)
        if not originals:
            raise layout_error("EBB!", self.root, LAYOUT, "no images in train/original/")
        if not (self.root / "train" / "bokeh").is_dir():
            raise layout_error("EBB!", self.root, LAYOUT, "train/bokeh/ is missing")
        numbered = [(p, _file_number(p)) for p in originals]
        if any(n is None for _, n in numbered):
            bad = next(p.name for p, n in numbered if n is None)
            raise layout_error("EBB!", self.root, LAYOUT, f"train/original/{bad} is not named by a number")
        heldout = set(HELDOUT_IDS)
        if self.split == "train":
            chosen = [p for p, n in numbered if n not in heldout]
        elif self.split == "heldout":
            chosen = [p for p, n in numbered if n in heldout]
            if len(chosen) != len(heldout):
                logger.warning("EBB! held-out split: %d of the %d listed pairs are in %s", len(chosen),
                               len(heldout), self.root / "train" / "original")
        elif self.split == "val294":
            chosen = [p for p, n in numbered if n >= VAL294_FIRST]
        else:  # train294
            chosen = [p for p, n in numbered if n < VAL294_FIRST]
        if not chosen:
            raise layout_error("EBB!", self.root, LAYOUT, f"no training pairs fall in split {self.split}")
        pairs = []
        for p in chosen:
            target = self._partner(self.root / "train" / "bokeh", p)
            if target is None:
                raise layout_error("EBB!", self.root, LAYOUT, f"train/bokeh/ has no partner for {p.name}")
            pairs.append((p, target))
        return pairs

    @staticmethod
    def _partner(folder: Path, original: Path) -> Path | None:
        return find_file(folder, original.stem, (original.suffix, ".jpg", ".png", ".jpeg"))

    # -- items --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.pairs)

    def item_id(self, index: int) -> str:
        return self.pairs[index][0].stem

    def __getitem__(self, index: int) -> dict[str, Any]:
        source, target_path = self.pairs[index]
        image = read_image(source)
        meta: dict[str, Any] = {"id": source.stem, "dataset": self.name, "split": self.split,
                                "image_path": str(source)}
        target = None
        if target_path is not None:
            target = read_image(target_path)
            meta["target_path"] = str(target_path)
            if target.shape != image.shape:
                raise InputError("root", expected=f"a target of the input's size {image.shape[1]}x{image.shape[0]}",
                                 got=f"{target.shape[1]}x{target.shape[0]} in {target_path}",
                                 fix="use the original AIM release, whose pairs have equal sizes")
        disparity = None
        if self.disparity_dir is not None:
            path = find_file(self.disparity_dir, source.stem, _DISPARITY_SUFFIXES)
            if path is None:
                raise InputError("disparity_dir", expected=f"a map named {source.stem}.png (or .npy/.pfm/.tif/.exr)",
                                 got=f"none in {self.disparity_dir}",
                                 fix="write one disparity map per image, named like the image")
            disparity = read_disparity(path, normalize=self.normalize_disparity, shape=image.shape[:2],
                                       resize=True)
            meta["disparity_path"] = str(path)
        item = make_item(image, target=target, disparity=disparity, meta=meta)
        return align_exposure(item) if self.align_exposure else item


class EBBVal294(EBB):
    """EBB! Val294 (the last 294 training pairs), optionally with BokehDiff's exposure alignment.

    Args:
        root, disparity_dir, normalize_disparity, align_exposure: as :class:`EBB`.

    Raises:
        InputError: as :class:`EBB`.
    """

    name = "ebb-val294"

    def __init__(self, root, *, disparity_dir=None, normalize_disparity: bool = False,
                 align_exposure: bool = False):
        super().__init__(root, "val294", disparity_dir=disparity_dir, normalize_disparity=normalize_disparity,
                         align_exposure=align_exposure)
