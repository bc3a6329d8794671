"""BLB: BokehMe's synthetic Blender benchmark (Peng et al., CVPR 2022).

10 scenes rendered with Blender 2.93; each has an all-in-focus image, a depth map, a stack of bokeh images
for 5 blur amounts x 10 focus distances, and ``info.json`` with the parameters. Layout (the scene folders
may also sit under ``ROOT/data/``)::

    ROOT/277/info.json           {"blur_parameters": [K_1..K_5], "focus_distances": [z_1..z_10], ...}
    ROOT/277/image.exr           all-in-focus, linear RGB
    ROOT/277/depth.exr           depth; disparity = 1 / depth (65504 marks the sky)
    ROOT/277/bokeh_00_00.exr     bokeh for blur level 0..4 (first number) and focus 0..9 (second)
    ...

BokehMe's signed defocus (CoC radius, pixels) is ``K_i * (1/depth - 1/z_j)``. lensblur's disparity must lie in
[0, 1], so each scene's ``1/depth`` is divided by ``s = max(max(1/depth), max_j 1/z_j)`` and the lens gets
``blur = K_i * s``, ``focus_disparity = (1/z_j) / s``: the CoC of every pixel is exactly BokehMe's.
Images may also be PFM (linear) or 8/16-bit PNG / JPEG (``image.png``, ``bokeh_00_00.jpg``), and the depth
``depth.pfm`` or ``depth.npy`` (converted copies); EXR values are linear light. EXR files are decoded by
:func:`lensblur.io.read_raw`, with the ``OpenEXR`` package. The JPG web copy of BLB in BokehMe's repository
(8-bit images, no depth) is refused with a message saying where the EXR release is.
BokehDiff's "BLB Level 5" is ``level=5`` (the largest blur, file index 4).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..errors import InputError
from ..io import natural_key, read_image, read_raw
from ._common import check_root, find_file, layout_error, make_item

__all__ = ["BLB", "FOCUS_SETTINGS", "LEVELS"]

LEVELS = 5
FOCUS_SETTINGS = 10
_IMAGE_SUFFIXES = (".exr", ".pfm", ".png", ".jpg", ".jpeg")
_DEPTH_SUFFIXES = (".exr", ".pfm", ".npy")

LAYOUT = """  ROOT/<scene>/info.json        {"blur_parameters": [5 values], "focus_distances": [10 values]}
  ROOT/<scene>/image.exr        all-in-focus (also .png/.jpg)
  ROOT/<scene>/depth.exr        depth (disparity = 1/depth; also depth.pfm/.npy)
  ROOT/<scene>/bokeh_LL_FF.exr  LL = blur level 00..04, FF = focus 00..09 (also .png/.jpg)
  (the scene folders may sit under ROOT/data/)"""


class BLB(Dataset):
    """BLB items: one per (scene, blur level, focus setting) with a ground-truth bokeh file.

    Args:
        root: the BLB folder.
        level: blur level 1..5 (BokehDiff's "Level 5" = 5), or None for all.
        focus: focus setting 1..10, or None for all.

    Items follow :mod:`lensblur.data._common`, with ``meta["lens"]`` from the scene's ``info.json``.

    Raises:
        InputError: ``level`` or ``focus`` out of range, a root not laid out like BLB, invalid depths, or
            files of different sizes in a scene.
    """

    name = "blb"

    def __init__(self, root, *, level: int | None = None, focus: int | None = None):
        self.root = check_root(root, "BLB", LAYOUT)
        for name, value, top in (("level", level, LEVELS), ("focus", focus, FOCUS_SETTINGS)):
            if value is not None and not (isinstance(value, int) and 1 <= value <= top):
                raise InputError(name, expected=f"an integer 1..{top} or None (all)", got=value,
                                 fix=f"e.g. {name}={top}")
        base = self.root / "data" if (self.root / "data").is_dir() and not self._scenes(self.root) else self.root
        scenes = self._scenes(base)
        if not scenes:
            raise layout_error("BLB", self.root, LAYOUT, "no scene folder with info.json")
        self.entries: list[tuple[Path, int, int, Path]] = []
        self._info: dict[Path, dict] = {}
        for scene in scenes:
            info = self._read_info(scene)
            self._info[scene] = info
            image = find_file(scene, "image", _IMAGE_SUFFIXES)
            if image is None:
                raise layout_error("BLB", self.root, LAYOUT, f"{scene.name}/image.exr is missing")
            if find_file(scene, "depth", _DEPTH_SUFFIXES) is None:
                if image.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    raise InputError("root", expected="BLB's EXR release (linear image.exr, depth.exr and "
                                     "bokeh_LL_FF.exr per scene)",
                                     got=f"{self.root}, the JPG web copy ({scene.name}/{image.name} and no depth)",
                                     fix="the web copy in BokehMe's repository has no depth maps and no linear "
                                     "values, so it cannot be scored; download the EXR release from the link in "
                                     "BokehMe's README and point root at it")
                raise layout_error("BLB", self.root, LAYOUT, f"{scene.name}/depth.exr is missing")
            levels = range(len(info["blur_parameters"])) if level is None else [level - 1]
            focuses = range(len(info["focus_distances"])) if focus is None else [focus - 1]
            for i in levels:
                for j in focuses:
                    path = find_file(scene, f"bokeh_{i:02d}_{j:02d}", _IMAGE_SUFFIXES)
                    if path is not None:
                        self.entries.append((scene, i, j, path))
        if not self.entries:
            raise layout_error("BLB", self.root, LAYOUT, "no bokeh_LL_FF image for the level/focus asked for")

    @staticmethod
    def _scenes(base: Path) -> list[Path]:
        return sorted((p for p in base.iterdir() if p.is_dir() and (p / "info.json").is_file()),
                      key=natural_key)

    def _read_info(self, scene: Path) -> dict:
        try:
            info = json.loads((scene / "info.json").read_text())
            ks = [float(k) for k in info["blur_parameters"]]
            zs = [float(z) for z in info["focus_distances"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise layout_error("BLB", self.root, LAYOUT, f"{scene.name}/info.json is unreadable ({exc})") from exc
        if not ks or not zs or min(zs) <= 0 or min(ks) < 0:
            raise layout_error("BLB", self.root, LAYOUT, f"{scene.name}/info.json has invalid values")
        return {**info, "blur_parameters": ks, "focus_distances": zs}

    def __len__(self) -> int:
        return len(self.entries)

    def _disparity(self, scene: Path) -> np.ndarray:
        path = find_file(scene, "depth", _DEPTH_SUFFIXES)
        arr, _ = read_raw(path, argument="depth")
        depth = arr[..., -1] if arr.ndim == 3 else arr  # OpenCV's channel 0, as BokehMe reads it
        depth = depth.astype(np.float32)
        if not np.isfinite(depth).all() or float(depth.min()) <= 0:
            raise InputError("root", expected="finite depths > 0", got=f"invalid values in {path}",
                             fix="use the BLB release's depth.exr")
        return (1.0 / depth).astype(np.float32)

    def item_id(self, index: int) -> str:
        scene, i, j, _ = self.entries[index]
        return f"{scene.name}_L{i + 1}_F{j + 1}"

    def __getitem__(self, index: int) -> dict[str, Any]:
        scene, i, j, target_path = self.entries[index]
        info = self._info[scene]
        image_path = find_file(scene, "image", _IMAGE_SUFFIXES)
        image = read_image(image_path)
        target = read_image(target_path)
        inv_depth = self._disparity(scene)
        if inv_depth.shape != image.shape[:2] or target.shape != image.shape:
            raise InputError("root", expected="image, depth and bokeh files of one size per scene",
                             got=f"sizes differ in {scene}", fix="use the BLB release files unchanged")
        inv_focus = [1.0 / z for z in info["focus_distances"]]
        scale = max(float(inv_depth.max()), max(inv_focus))
        k = info["blur_parameters"][i]
        lens = {"blur": k * scale, "focus_disparity": min(inv_focus[j] / scale, 1.0),
                "aperture": {"blades": 0, "rotation": 0.0}}
        meta = {"id": f"{scene.name}_L{i + 1}_F{j + 1}", "dataset": self.name, "scene": scene.name,
                "level": i + 1, "focus": j + 1, "K": k, "focus_distance": info["focus_distances"][j],
                "disparity_scale": scale, "lens": lens, "image_path": str(image_path),
                "target_path": str(target_path)}
        return make_item(image, target=target, disparity=np.clip(inv_depth / scale, 0.0, 1.0), meta=meta)
