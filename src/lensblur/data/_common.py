"""The item layout every dataset returns, and the helpers the readers share.

An item is a dict:

``image``
    ``(3, H, W)`` float32 tensor, linear RGB (the all-in-focus / wide depth-of-field input).
``target``
    ``(3, H, W)`` float32 tensor, linear RGB ground-truth bokeh. Absent when the split has none.
``disparity``
    ``(1, H, W)`` float32 tensor in [0, 1], 1 = nearest. Absent when the dataset has none.
``meta``
    dict: ``id`` (a string unique in the dataset), ``dataset``, the files read, and, where the dataset knows
    them, ``lens`` = ``{"blur", "focus_disparity", "aperture": {"blades", "rotation"}}`` in lensblur's
    convention (signed CoC radius in pixels = ``blur * (disparity - focus_disparity)``).

Readers never guess a layout: a root that does not look like the dataset raises
:class:`~lensblur.errors.InputError` naming the expected tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._convert import array_to_tensor
from ..errors import InputError

__all__ = [
    "JPEG_PNG",
    "align_exposure",
    "check_root",
    "find_file",
    "layout_error",
    "make_item",
]

JPEG_PNG = (".jpg", ".jpeg", ".png")


def make_item(image: np.ndarray, *, target: np.ndarray | None = None, disparity: np.ndarray | None = None,
              meta: dict[str, Any]) -> dict[str, Any]:
    """Build an item from numpy arrays at the public boundary (``H x W x 3`` linear RGB, ``H x W`` disparity)."""
    item: dict[str, Any] = {"image": array_to_tensor(image)[0]}
    if target is not None:
        item["target"] = array_to_tensor(target)[0]
    if disparity is not None:
        item["disparity"] = array_to_tensor(disparity)[0]
    item["meta"] = meta
    return item


def layout_error(dataset: str, root: Path, layout: str, problem: str) -> InputError:
    """The error for a root that is not laid out like ``dataset``; ``layout`` is the expected tree."""
    return InputError("root", expected=f"a {dataset} folder laid out as\n{layout}\n", got=f"{root} ({problem})",
                      fix=f"point --root at the folder that holds the {dataset} files as shown")


def check_root(root, dataset: str, layout: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise layout_error(dataset, root, layout, "not an existing folder")
    return root


def find_file(folder: Path, stem: str, suffixes) -> Path | None:
    """The first ``folder/stem<suffix>`` that exists, trying ``suffixes`` in order."""
    for suffix in suffixes:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def align_exposure(item: dict[str, Any]) -> dict[str, Any]:
    """BokehDiff's exposure alignment: scale the input so its global mean equals the ground truth's.

    The scale is applied in linear light (an exposure change multiplies linear values), over all channels
    and pixels; it is recorded in ``meta["exposure_scale"]``. Items without a target are an error.
    """
    if "target" not in item:
        raise InputError("align_exposure", expected="items with a ground-truth target",
                         got=f"item {item['meta'].get('id')} without one",
                         fix="use exposure alignment only on splits that have bokeh targets")
    mean_in = float(item["image"].double().mean())
    mean_gt = float(item["target"].double().mean())
    scale = mean_gt / mean_in if mean_in > 0 else 1.0
    out = dict(item)
    out["image"] = item["image"] * scale
    out["meta"] = {**item["meta"], "exposure_scale": scale}
    return out
