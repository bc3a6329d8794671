"""EBB! ("Everything is Better with Bokeh!"): real wide / shallow depth-of-field pairs.

Canon 7D, 50 mm; the input is shot at f/16, the target at f/1.8. Two releases are opened as distributed
(folder names in any case):

The AIM 2020 challenge release (4,694 training pairs, ids 0..4693; the numbering Val294 is defined on)::

    ROOT/
      Training/original/0.jpg ... 4693.jpg     wide depth of field (input)
      Training/bokeh/0.jpg ... 4693.jpg        shallow depth of field (target), same names
      Validation/original/*.jpg                (also val/); Validation/bokeh/ when you have it
      Test/original/*.jpg                      Test/bokeh/ when you have it

The EBB! paper's own release (PyNET-Bokeh; 4,894 training pairs), with a coarse depth map per input::

    ROOT/
      train/original/N.jpg  train/original_depth/N.png  train/bokeh/N.jpg
      test/original/N.jpg   test/original_depth/N.png   test/bokeh/N.jpg

Which release a folder holds is read from it: a training id above 4693, or an ``original_depth/`` folder,
is the paper's release; otherwise the ids are AIM's. The shipped depth maps are attached as disparity when
they are there (read as larger = nearer and rescaled to [0, 1] per image; ``disparity_dir`` overrides them).

Splits (``split=``):

``train``
    the training pairs minus the held-out 100 (4,594 of AIM's 4,694: the "4,600" of Singh & Gothe). It holds
    Val294's pairs: a model trained on it must not be scored on Val294 (use ``train294``); opening it says so.
``heldout`` (alias ``test``)
    the 100 training pairs held out as a test set, a stand-in for Singh & Gothe's unpublished 100 (the AIM
    test targets are not public). The list is :data:`HELDOUT_IDS`: ``sorted(numpy.random.default_rng(20200)
    .choice(4400, 100, replace=False))``, drawn from ids 0..4399 so that it never overlaps Val294, and
    recorded here so that it never changes.
``val``
    the validation folder (AIM: 200 images); targets only if its ``bokeh/`` exists.
``aim-test``
    the test folder (``test/`` of either release); targets only if its ``bokeh/`` exists.
``val294``
    EBB! Val294: the last 294 AIM training pairs (ids 4400..4693), the validation set of BokehMe, MPIB,
    Dr.Bokeh and BokehDiff. Only on the AIM release: the paper's release numbers its pairs differently, and
    its ids 4400..4893 would be 494 other images.
``train294``
    the training pairs before them (0..4399), the training side of the Val294 protocol.

``disparity_dir`` (one map per image, same stem, any format :func:`lensblur.io.read_disparity` reads)
attaches a disparity map, e.g. from a depth model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import InputError
from ..io import list_images, read_disparity, read_image
from ._common import JPEG_PNG, align_exposure, check_alignment, check_root, find_file, layout_error, make_item

__all__ = ["EBB", "HELDOUT_IDS", "HELDOUT_SEED", "RELEASES", "SPLITS", "VAL294_FIRST", "EBBVal294", "holds_val294"]

logger = logging.getLogger(__name__)

HELDOUT_SEED = 20200
HELDOUT_IDS: tuple[int, ...] = (
    3, 15, 29, 43, 78, 134, 173, 224, 241, 284, 309, 372, 555, 595, 622, 636, 824, 839, 855, 858, 1018, 1040,
    1051, 1056, 1118, 1121, 1153, 1180, 1228, 1276, 1309, 1398, 1491, 1518, 1593, 1612, 1677, 1751, 1795,
    1806, 1932, 1987, 1994, 2060, 2072, 2080, 2111, 2137, 2141, 2174, 2286, 2304, 2383, 2426, 2471, 2527,
    2544, 2564, 2569, 2587, 2592, 2628, 2642, 2679, 2732, 2736, 2765, 2813, 2966, 3036, 3164, 3189, 3321,
    3370, 3402, 3428, 3429, 3468, 3486, 3546, 3609, 3645, 3657, 3677, 3712, 3752, 3807, 3984, 3998, 4038,
    4094, 4140, 4197, 4234, 4282, 4301, 4363, 4386, 4391, 4393,
)
AIM_TRAIN_COUNT = 4694
VAL294_FIRST = AIM_TRAIN_COUNT - 294  # 4400
AIM_LAST_ID = AIM_TRAIN_COUNT - 1     # 4693

SPLITS = ("train", "heldout", "test", "val", "aim-test", "val294", "train294")
RELEASES = ("aim2020", "ebb-paper")

LAYOUT = """  ROOT/Training/original/0.jpg ...   (wide depth of field, f/16; train/ in the EBB! paper's release)
  ROOT/Training/bokeh/0.jpg ...      (shallow depth of field, f/1.8, same names)
  ROOT/Training/original_depth/      (the EBB! paper's release only: a depth map per input)
  ROOT/Validation/original/*.jpg     (optional: Validation/bokeh/)
  ROOT/Test/original/*.jpg           (optional: Test/bokeh/)
  (folder names in any case)"""

_DISPARITY_SUFFIXES = (".png", ".npy", ".pfm", ".tif", ".tiff", ".exr", ".jpg")


def holds_val294(dataset: str | None, split: str | None) -> bool:
    """Whether a dataset and split (as a training run records them) contain Val294's pairs: ``ebb-val294``, and
    EBB!'s ``train`` and ``val294`` splits (``train294`` and ``heldout`` do not)."""
    return dataset == "ebb-val294" or (dataset == "ebb" and split in (None, "train", "val294"))


def _file_number(path: Path) -> int | None:
    return int(path.stem) if path.stem.isdigit() else None


def _child(folder: Path | None, *names: str) -> Path | None:
    """The sub-folder of ``folder`` whose name is one of ``names`` in any case (the first name wins)."""
    if folder is None or not folder.is_dir():
        return None
    by_name = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    return next((by_name[n] for n in names if n in by_name), None)


def _images(folder: Path | None) -> list[Path]:
    return list_images(folder, JPEG_PNG) if folder is not None else []


class EBB(Dataset):
    """EBB! pairs as items (see the module doc for the releases, the layout and the splits).

    Args:
        root: the EBB! folder, either release.
        split: one of :data:`SPLITS` (``test`` is an alias of ``heldout``).
        disparity_dir: a folder of per-image disparity maps (larger = nearer, same stem as the image), or
            None: then the release's own depth maps (``original_depth/``) are used where it ships them.
        normalize_disparity: rescale each map of ``disparity_dir`` to [0, 1] (for relative depth-model
            outputs); the shipped maps are always rescaled.
        align_exposure: ``False``, ``True`` (BokehDiff's protocol) or a protocol name of
            :data:`~lensblur.data.ALIGNMENTS` (see :func:`~lensblur.data.align_exposure`).

    Attributes:
        release: ``"aim2020"`` or ``"ebb-paper"``, as read from the folder.

    Items follow :mod:`lensblur.data._common` (no ``lens``: EBB! does not record one).

    Raises:
        InputError: an unknown split, a root not laid out like EBB!, ``val294`` on the paper's release, a
            missing ``disparity_dir`` (or map in it), ``align_exposure`` on a split without targets, or a
            pair of different sizes.
    """

    name = "ebb"

    def __init__(self, root, split: str = "train", *, disparity_dir=None, normalize_disparity: bool = False,
                 align_exposure: bool | str = False):
        if split not in SPLITS:
            raise InputError("split", expected=f"one of {', '.join(SPLITS)}", got=split,
                             fix="e.g. split=heldout for the 100 held-out training pairs")
        self.root = check_root(root, "EBB!", LAYOUT)
        self.split = "heldout" if split == "test" else split
        self.align_exposure = check_alignment(align_exposure)
        self.normalize_disparity = normalize_disparity
        self.disparity_dir = Path(disparity_dir) if disparity_dir is not None else None
        if self.disparity_dir is not None and not self.disparity_dir.is_dir():
            raise InputError("disparity_dir", expected="an existing folder of per-image disparity maps",
                             got=str(self.disparity_dir), fix="pass disparity_dir=DIR, an existing folder")
        self.release = "aim2020"
        self.depth_dir: Path | None = None
        self.pairs = self._pairs()
        if self.align_exposure and any(t is None for _, t in self.pairs):
            raise InputError("align_exposure", expected=f"a split with targets (split {self.split} has none here)",
                             got=str(self.root), fix="pass align_exposure=False, or use a split with bokeh targets")

    # -- layout -------------------------------------------------------------------------------------------
    def _pairs(self) -> list[tuple[Path, Path | None]]:
        if self.split in ("val", "aim-test"):
            return self._folder_pairs()
        train = _child(self.root, "training", "train")
        originals = _images(_child(train, "original"))
        if not originals:
            raise layout_error("EBB!", self.root, LAYOUT, "no images in Training/original/ (or train/original/)")
        bokeh = _child(train, "bokeh")
        if bokeh is None:
            raise layout_error("EBB!", self.root, LAYOUT, f"{train.name}/bokeh/ is missing")
        numbered = [(p, _file_number(p)) for p in originals]
        if any(n is None for _, n in numbered):
            bad = next(p.name for p, n in numbered if n is None)
            raise layout_error("EBB!", self.root, LAYOUT, f"{train.name}/original/{bad} is not named by a number")
        self.depth_dir = _child(train, "original_depth")
        last = max(n for _, n in numbered)
        if last > AIM_LAST_ID or self.depth_dir is not None:
            self.release = "ebb-paper"
        chosen = self._choose(numbered, last)
        pairs = []
        for p in chosen:
            target = self._partner(bokeh, p)
            if target is None:
                raise layout_error("EBB!", self.root, LAYOUT, f"{train.name}/bokeh/ has no partner for {p.name}")
            pairs.append((p, target))
        return pairs

    def _choose(self, numbered: list[tuple[Path, int]], last: int) -> list[Path]:
        """The training pairs of this split."""
        heldout = set(HELDOUT_IDS)
        if self.split == "val294" and self.release != "aim2020":
            why = f"ids up to {last}" if last > AIM_LAST_ID else "an original_depth/ folder"
            raise InputError("split", expected="val294 on the AIM 2020 release (training ids 0..4693, the numbering "
                             "Val294 is defined on: ids 4400..4693)",
                             got=f"the EBB! paper's release at {self.root} ({why}), whose ids 4400.. are other images",
                             fix="open the AIM 2020 release for split=val294, or use split=heldout on this one")
        if self.split == "train":
            logger.warning("EBB! split train holds Val294's 294 pairs (ids %d..%d): a model trained on it must not "
                           "be scored on ebb-val294 (train on split train294 for that)", VAL294_FIRST, AIM_LAST_ID)
            chosen = [p for p, n in numbered if n not in heldout]
        elif self.split == "heldout":
            chosen = [p for p, n in numbered if n in heldout]
            if len(chosen) != len(heldout):
                logger.warning("EBB! held-out split: %d of the %d listed pairs are in %s", len(chosen),
                               len(heldout), self.root)
        elif self.split == "val294":
            chosen = [p for p, n in numbered if n >= VAL294_FIRST]
            if len(chosen) != AIM_TRAIN_COUNT - VAL294_FIRST:
                logger.warning("EBB! Val294: %d of its 294 pairs are in %s", len(chosen), self.root)
        else:  # train294
            chosen = [p for p, n in numbered if n < VAL294_FIRST]
        if not chosen:
            raise layout_error("EBB!", self.root, LAYOUT, f"no training pairs fall in split {self.split}")
        return chosen

    def _folder_pairs(self) -> list[tuple[Path, Path | None]]:
        """The pairs of the validation or test folder (targets where its bokeh/ has them)."""
        folder = _child(self.root, "validation", "val") if self.split == "val" else _child(self.root, "test")
        originals = _images(_child(folder, "original"))
        if not originals:
            which = "Validation/original/" if self.split == "val" else "Test/original/"
            raise layout_error("EBB!", self.root, LAYOUT, f"no images in {which}")
        self.depth_dir = _child(folder, "original_depth")
        if self.depth_dir is not None:
            self.release = "ebb-paper"
        bokeh = _child(folder, "bokeh")
        return [(p, self._partner(bokeh, p) if bokeh is not None else None) for p in originals]

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
        if self.disparity_dir is None and self.depth_dir is not None:
            path = find_file(self.depth_dir, source.stem, _DISPARITY_SUFFIXES)
            if path is not None:
                disparity = read_disparity(path, normalize=True, shape=image.shape[:2], resize=True)
                meta["disparity_path"] = str(path)
        if self.disparity_dir is not None:
            path = find_file(self.disparity_dir, source.stem, _DISPARITY_SUFFIXES)
            if path is None:
                raise InputError("disparity_dir", expected=f"a map named {source.stem}.png (or .npy/.pfm/.tif/.exr)",
                                 got=f"none in {self.disparity_dir}",
                                 fix="write one disparity map per image, named like the image")
            disparity = read_disparity(path, normalize=self.normalize_disparity, shape=image.shape[:2],
                                       resize=True)
            meta["disparity_path"] = str(path)
        meta["release"] = self.release
        item = make_item(image, target=target, disparity=disparity, meta=meta)
        return align_exposure(item, self.align_exposure) if self.align_exposure else item


class EBBVal294(EBB):
    """EBB! Val294 (the last 294 training pairs), optionally with BokehDiff's exposure alignment.

    Args:
        root, disparity_dir, normalize_disparity, align_exposure: as :class:`EBB`.

    Raises:
        InputError: as :class:`EBB`.
    """

    name = "ebb-val294"

    def __init__(self, root, *, disparity_dir=None, normalize_disparity: bool = False,
                 align_exposure: bool | str = False):
        super().__init__(root, "val294", disparity_dir=disparity_dir, normalize_disparity=normalize_disparity,
                         align_exposure=align_exposure)
