"""NYU Depth v2 (Silberman et al., ECCV 2012): indoor RGB-D, 640 x 480, depth in metres.

Two forms are read:

* the labeled set, ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5, read with h5py): ``images``
  (1449 x 3 x 640 x 480 uint8 as h5py sees it) and ``depths`` (1449 x 640 x 480 float32 metres, holes
  already filled). ``root`` is the .mat file or a folder holding it. The official 795 / 654 train / test
  split is read from ``splits.mat`` (``trainNdxs``, ``testNdxs``, 1-based) next to it when ``split`` is
  ``"train"`` or ``"test"``.
* DenseDepth's export (``nyu_data.zip``, "NYU Depth V2 (50K)", what DenseDepth and Singh & Gothe trained
  on): ``data/nyu2_train/<scene>/<n>.jpg`` + ``<n>.png`` (50,688 pairs; **8-bit** depth, 255 = 10 m), the
  lists ``data/nyu2_train.csv`` and ``data/nyu2_test.csv``, and ``data/nyu2_test/NNNNN_colors.png`` +
  ``NNNNN_depth.png`` (654 pairs; **16-bit** depth in millimetres). ``root`` is the folder holding
  ``data/`` (or ``data/`` itself); ``split`` ``train`` or ``test`` picks the half (``all``: both). The CSV
  lists are followed when they are there (their order, their pairs), else the folders are walked.
* other folder-of-PNGs exports, either ``ROOT/rgb/NAME.png`` + ``ROOT/depth/NAME.png`` (also
  ``image/``/``images/`` and ``depths/``), or one folder with ``NAME_colors.png`` + ``NAME_depth.png``.

The depth scale follows the format of each file: 16-bit PNGs are millimetres, 8-bit PNGs DenseDepth's
0..10 m (10/255 m per step); an 8-bit depth PNG is never read as millimetres. ``depth_scale`` (metres per
stored unit) overrides both. A stored 0 is a hole.

Items have ``image`` and ``disparity`` (no bokeh target). Disparity is inverse depth over a fixed range,
``near = 0.5 m`` (1) to ``far = 10 m`` (0) by default, so that it means the same in every image; holes get 0.
``meta["depth_range"] = (near, far)`` converts back (:class:`lensblur.io.DepthRange`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .._convert import decode_srgb
from .._optional import require
from ..errors import InputError
from ..io import list_images, read_image, read_raw
from ._common import JPEG_PNG, find_file, layout_error, make_item

__all__ = ["NYUDepthV2", "depth_to_fixed_disparity"]

MAT_NAME = "nyu_depth_v2_labeled.mat"
LAYOUT = f"""  ROOT/{MAT_NAME}          (the labeled set; optional splits.mat beside it)
or
  ROOT/data/nyu2_train/SCENE/N.jpg + N.png, ROOT/data/nyu2_test/N_colors.png + N_depth.png,
  ROOT/data/nyu2_train.csv, nyu2_test.csv   (DenseDepth's export)
or
  ROOT/rgb/NAME.png   + ROOT/depth/NAME.png         (16-bit depth in millimetres, or 8-bit on 0..10 m)
or
  ROOT/NAME_colors.png + ROOT/NAME_depth.png"""

# Metres per stored unit by the depth file's format: 16-bit PNGs are millimetres, 8-bit ones DenseDepth's
# training export (255 = 10 m, its data.py: png / 255 * maxDepth).
DEPTH_SCALES = {np.dtype(np.uint16): 0.001, np.dtype(np.uint8): 10.0 / 255.0}
DENSEDEPTH_HALVES = {"train": "nyu2_train", "test": "nyu2_test"}


def depth_to_fixed_disparity(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metric depth to disparity over a fixed range, so that one disparity means one depth in every item.

    Args:
        depth: depth in metres, any shape; holes (<= 0) become disparity 0.
        near: depth of disparity 1 (nearer depths clip), > 0.
        far: depth of disparity 0 (farther depths clip), > ``near``.

    Returns:
        float32 disparity in [0, 1], same shape.
    """
    depth = np.asarray(depth, dtype=np.float32)
    valid = depth > 0
    inv = np.where(valid, 1.0 / np.clip(depth, near, far), 1.0 / far)
    disparity = (inv - 1.0 / far) / (1.0 / near - 1.0 / far)
    return np.clip(disparity, 0.0, 1.0).astype(np.float32)


class NYUDepthV2(Dataset):
    """NYU Depth v2 image + disparity items (see the module doc).

    Args:
        root: the folder with the labeled ``.mat`` file, or a folder of ``NAME_colors.png`` /
            ``NAME_depth.png`` pairs.
        split: ``all``, ``train`` or ``test`` (the last two need ``splits.mat`` beside the ``.mat``).
        depth_scale: metres per stored unit of the depth PNGs, or None for the file's own format (16-bit:
            millimetres; 8-bit: 10/255 m, DenseDepth's training export).
        near: depth of disparity 1, in metres.
        far: depth of disparity 0, in metres, > ``near``.

    Items follow :mod:`lensblur.data._common` (no target).

    Raises:
        InputError: an unknown split, not ``0 < near < far``, a root not laid out like the export, or depth
            files that are not single-channel or not the image's size.
        MissingDependencyError: the ``.mat`` file needs h5py or scipy.
    """

    name = "nyu"

    def __init__(self, root, *, split: str = "all", depth_scale: float | None = None, near: float = 0.5,
                 far: float = 10.0):
        if split not in ("all", "train", "test"):
            raise InputError("split", expected="all, train or test", got=split, fix="e.g. split=test")
        if not (0 < near < far):
            raise InputError("near" if not near > 0 else "far", expected="0 < near < far (metres)",
                             got=f"{near}, {far}", fix="the defaults near=0.5 and far=10 cover the Kinect range")
        self.root = Path(root)
        self.split, self.depth_scale, self.near, self.far = split, depth_scale, near, far
        self._h5 = None
        mat = self.root if self.root.is_file() else self.root / MAT_NAME
        if mat.is_file():
            self.mat_path: Path | None = mat
            self.indices = self._mat_indices(mat)
            self.pairs: list[tuple[Path, Path]] = []
        else:
            if not self.root.is_dir():
                raise layout_error("NYU Depth v2", self.root, LAYOUT, "not an existing file or folder")
            self.mat_path = None
            export = _densedepth_root(self.root)
            if export is not None:
                self.pairs = self._densedepth_pairs(export)
            elif split != "all":
                raise InputError("split", expected="split=all for a folder-of-PNGs export (the split is the folder)",
                                 got=split, fix="pass root=FOLDER, the train or test folder of the export")
            else:
                self.pairs = self._png_pairs()
            self.indices = []

    # -- labeled .mat -------------------------------------------------------------------------------------
    def _file(self):
        if self._h5 is None:  # opened lazily, once per process (DataLoader workers each open their own)
            h5py = require("h5py", extra="train", feature="reading NYU Depth v2 .mat files")
            self._h5 = h5py.File(self.mat_path, "r")
        return self._h5

    def _mat_indices(self, mat: Path) -> list[int]:
        h5py = require("h5py", extra="train", feature="reading NYU Depth v2 .mat files")
        try:
            with h5py.File(mat, "r") as f:
                n = f["images"].shape[0]
                if f["depths"].shape[0] != n:
                    raise KeyError("images and depths differ in count")
        except (OSError, KeyError) as exc:
            raise layout_error("NYU Depth v2", self.root, LAYOUT,
                               f"{mat.name} is not the labeled set with 'images' and 'depths' ({exc})") from exc
        if self.split == "all":
            return list(range(n))
        splits = mat.parent / "splits.mat"
        if not splits.is_file():
            raise InputError("split", expected=f"splits.mat beside {mat.name} for split {self.split}",
                             got=f"no {splits}", fix="download splits.mat from the NYU Depth v2 page, or use split=all")
        scipy_io = require("scipy.io", extra="train", feature="reading NYU Depth v2 splits.mat", package="scipy")
        key = "trainNdxs" if self.split == "train" else "testNdxs"
        ndx = np.asarray(scipy_io.loadmat(str(splits))[key]).ravel().astype(int)
        if ndx.min() < 1 or ndx.max() > n:
            raise InputError("split", expected=f"1-based indices in 1..{n} in splits.mat", got=f"{ndx.min()}..{ndx.max()}",
                             fix="use the splits.mat of the labeled set")
        return [int(i) - 1 for i in ndx]

    # -- DenseDepth's export -------------------------------------------------------------------------------
    def _densedepth_pairs(self, data: Path) -> list[tuple[Path, Path]]:
        halves = ("train", "test") if self.split == "all" else (self.split,)
        pairs: list[tuple[Path, Path]] = []
        for half in halves:
            listed = data / f"{DENSEDEPTH_HALVES[half]}.csv"
            found = _csv_pairs(listed, data) if listed.is_file() else self._walk(data / DENSEDEPTH_HALVES[half], half)
            if not found:
                raise layout_error("NYU Depth v2", self.root, LAYOUT, f"no {DENSEDEPTH_HALVES[half]} pairs in {data}")
            pairs += found
        return pairs

    def _walk(self, folder: Path, half: str) -> list[tuple[Path, Path]]:
        if not folder.is_dir():
            return []
        if half == "test":
            return self._colors_depth_pairs(folder)
        pairs = []
        for scene in sorted(p for p in folder.iterdir() if p.is_dir()):
            for image in list_images(scene, (".jpg",)):
                depth = find_file(scene, image.stem, (".png",))
                if depth is None:
                    raise layout_error("NYU Depth v2", self.root, LAYOUT, f"no {scene.name}/{image.stem}.png")
                pairs.append((image, depth))
        return pairs

    # -- folder of PNGs -----------------------------------------------------------------------------------
    def _png_pairs(self) -> list[tuple[Path, Path]]:
        rgb = next((self.root / n for n in ("rgb", "image", "images") if (self.root / n).is_dir()), None)
        depth = next((self.root / n for n in ("depth", "depths") if (self.root / n).is_dir()), None)
        pairs = []
        if rgb is not None and depth is not None:
            for p in list_images(rgb, JPEG_PNG):
                d = find_file(depth, p.stem, (".png",))
                if d is None:
                    raise layout_error("NYU Depth v2", self.root, LAYOUT, f"no depth/{p.stem}.png for {p.name}")
                pairs.append((p, d))
        else:
            pairs = self._colors_depth_pairs(self.root)
        if not pairs:
            raise layout_error("NYU Depth v2", self.root, LAYOUT, "no image/depth pairs found")
        return pairs

    def _colors_depth_pairs(self, folder: Path) -> list[tuple[Path, Path]]:
        """``NAME_colors.png`` + ``NAME_depth.png`` pairs in ``folder``."""
        pairs = []
        for p in list_images(folder, JPEG_PNG):
            if p.stem.endswith("_colors"):
                d = find_file(folder, p.stem[: -len("_colors")] + "_depth", (".png",))
                if d is None:
                    raise layout_error("NYU Depth v2", self.root, LAYOUT, f"no depth file for {p.name}")
                pairs.append((p, d))
        return pairs

    # -- items --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices) if self.mat_path is not None else len(self.pairs)

    def item_id(self, index: int) -> str:
        if self.mat_path is not None:
            return f"{self.indices[index] + 1:04d}"
        return _pair_id(self.pairs[index][0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.mat_path is not None:
            k = self.indices[index]
            f = self._file()
            image = decode_srgb(np.asarray(f["images"][k]).transpose(2, 1, 0), 255)  # H x W x 3
            depth = np.ascontiguousarray(np.asarray(f["depths"][k], dtype=np.float32).T)
            meta = {"id": f"{k + 1:04d}", "index": k, "source": str(self.mat_path)}
        else:
            image_path, depth_path = self.pairs[index]
            image = read_image(image_path)
            raw, _ = read_raw(depth_path, argument="depth")
            if raw.ndim != 2:
                raise InputError("root", expected="single-channel 16-bit depth PNGs", got=f"shape {raw.shape} in {depth_path}",
                                 fix="export depth as 16-bit grey PNG (millimetres)")
            scale = self.depth_scale if self.depth_scale is not None else DEPTH_SCALES.get(raw.dtype)
            if scale is None:
                raise InputError("depth_scale", expected=f"metres per stored unit for the {raw.dtype} depth in "
                                 f"{depth_path} (only 8- and 16-bit PNGs have a known scale)", got="None",
                                 fix="depth_scale=0.001 for millimetres")
            depth = raw.astype(np.float32) * np.float32(scale)
            meta = {"id": _pair_id(image_path), "image_path": str(image_path), "depth_path": str(depth_path),
                    "depth_scale": float(scale)}
        if depth.shape != image.shape[:2]:
            raise InputError("root", expected=f"depth maps of the image's size {image.shape[1]}x{image.shape[0]}",
                             got=f"{depth.shape[1]}x{depth.shape[0]}", fix="use the export's matching files")
        meta.update({"dataset": self.name, "depth_range": (self.near, self.far),
                     "holes": int((depth <= 0).sum())})
        return make_item(image, disparity=depth_to_fixed_disparity(depth, self.near, self.far), meta=meta)

    def __getstate__(self):  # h5py handles do not pickle; DataLoader workers reopen the file
        state = dict(self.__dict__)
        state["_h5"] = None
        return state


def _pair_id(image: Path) -> str:
    """An item id unique across the export: the scene folder and the number for DenseDepth's training half
    (``living_room_0038_out/37``), the name without ``_colors`` otherwise."""
    if image.parent.parent.name == DENSEDEPTH_HALVES["train"]:
        return f"{image.parent.name}/{image.stem}"
    return image.stem.removesuffix("_colors")


def _densedepth_root(root: Path) -> Path | None:
    """The ``data/`` folder of DenseDepth's export: ``root`` itself or ``root/data``, holding nyu2_train/,
    nyu2_test/ or their CSV lists."""
    for folder in (root, root / "data"):
        if folder.is_dir() and any((folder / f"{half}{ext}").exists() for half in DENSEDEPTH_HALVES.values()
                                   for ext in ("", ".csv")):
            return folder
    return None


def _csv_pairs(listed: Path, data: Path) -> list[tuple[Path, Path]]:
    """The (image, depth) pairs of one of DenseDepth's CSV lists. Its paths start at the folder holding
    ``data/`` (``data/nyu2_train/SCENE/N.jpg,data/nyu2_train/SCENE/N.png``)."""
    pairs = []
    for number, line in enumerate(listed.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        entries = [e.strip() for e in line.split(",")]
        if len(entries) != 2:
            raise InputError("root", expected=f"two paths per line in {listed.name}", got=f"line {number}: {line!r}",
                             fix="use the CSV lists that come with the export")
        resolved = []
        for entry in entries:
            candidates = [data.parent / entry, data / entry, data / Path(entry).relative_to(Path(entry).parts[0])]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise InputError("root", expected=f"the files {listed.name} lists", got=f"no {entry} under {data.parent}",
                                 fix="unpack the whole export, or pass the folder that holds data/")
            resolved.append(found)
        pairs.append((resolved[0], resolved[1]))
    return pairs
