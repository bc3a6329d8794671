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
import torch

from .._convert import array_to_tensor
from ..choices import ALIGNMENTS, DEFAULT_ALIGNMENT
from ..color import linear_to_srgb, srgb_to_linear
from ..errors import InputError

__all__ = [
    "ALIGNMENTS",
    "DEFAULT_ALIGNMENT",
    "JPEG_PNG",
    "align_exposure",
    "check_alignment",
    "check_root",
    "find_file",
    "layout_error",
    "make_item",
]

JPEG_PNG = (".jpg", ".jpeg", ".png")


def make_item(image: np.ndarray, *, target: np.ndarray | None = None, disparity: np.ndarray | None = None,
              meta: dict[str, Any]) -> dict[str, Any]:
    """Build an item from numpy arrays at the public boundary.

    Args:
        image: ``H x W x 3`` float32 linear RGB.
        target: ``H x W x 3`` float32 linear RGB ground truth, or None.
        disparity: ``H x W`` float32 in [0, 1], or None.
        meta: the item's ``meta`` dict.

    Returns:
        The item: ``image`` ``(3, H, W)``, ``target`` ``(3, H, W)`` and ``disparity`` ``(1, H, W)`` tensors
        (the last two when given), and ``meta``.
    """
    item: dict[str, Any] = {"image": array_to_tensor(image)[0]}
    if target is not None:
        item["target"] = array_to_tensor(target)[0]
    if disparity is not None:
        item["disparity"] = array_to_tensor(disparity)[0]
    item["meta"] = meta
    return item


def layout_error(dataset: str, root: Path, layout: str, problem: str) -> InputError:
    """The error for a root that is not laid out like a dataset.

    Args:
        dataset: the dataset's display name.
        root: the folder given.
        layout: the expected tree, one path per line.
        problem: what is wrong with ``root``.

    Returns:
        The :class:`InputError` (argument ``root``) to raise.
    """
    return InputError("root", expected=f"a {dataset} folder laid out as\n{layout}\n", got=f"{root} ({problem})",
                      fix=f"pass root=FOLDER, the folder that holds the {dataset} files as shown")


def check_root(root, dataset: str, layout: str) -> Path:
    """``root`` as a :class:`~pathlib.Path`, checked to be a folder.

    Raises:
        InputError: not an existing folder (see :func:`layout_error`).
    """
    root = Path(root)
    if not root.is_dir():
        raise layout_error(dataset, root, layout, "not an existing folder")
    return root


def find_file(folder: Path, stem: str, suffixes) -> Path | None:
    """The first ``folder/stem<suffix>`` that exists, trying ``suffixes`` in order.

    Args:
        folder: the folder.
        stem: the file name without suffix.
        suffixes: suffixes with the dot, in order of preference.

    Returns:
        The path, or None when none exists.
    """
    for suffix in suffixes:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None




def check_alignment(protocol, *, argument: str = "align_exposure") -> str | None:
    """The alignment protocol a value asks for: ``None``/``False`` = none, ``True`` = the default
    (:data:`DEFAULT_ALIGNMENT`), or one of :data:`ALIGNMENTS` by name.

    Raises:
        InputError: any other value.
    """
    if protocol is None or protocol is False:
        return None
    if protocol is True:
        return DEFAULT_ALIGNMENT
    if protocol not in ALIGNMENTS:
        raise InputError(argument, expected=f"False, True or one of {', '.join(ALIGNMENTS)}", got=protocol,
                         fix=f"{argument}={DEFAULT_ALIGNMENT} (BokehDiff's released protocol)")
    return protocol


def align_exposure(item: dict[str, Any], protocol: str | bool = DEFAULT_ALIGNMENT) -> dict[str, Any]:
    """Scale the input's exposure to its ground truth's before scoring, as a protocol names it.

    ``"bokehdiff"`` (the default) is what BokehDiff's released evaluation code does on EBB! Val294: on the
    display values (the sRGB file's, in [0, 1]), each channel of the input is multiplied by
    ``mean(target channel) / mean(input channel)`` over the image, then clipped to [0, 1]. ``"linear-mean"``
    is lensblur's physical variant: one factor for all channels, ``mean(target) / mean(input)`` in linear
    light (an exposure change multiplies linear values), no clipping (HDR is kept). The factors are recorded
    in ``meta["exposure_scale"]`` (a list per channel for ``"bokehdiff"``, a number for ``"linear-mean"``)
    and the protocol in ``meta["exposure_alignment"]``.

    Args:
        item: an item with a ``target`` (``image`` and ``target`` ``(3, H, W)`` linear RGB).
        protocol: ``"bokehdiff"``, ``"linear-mean"``, or ``True`` for the default.

    Returns:
        A new item with the aligned ``image`` (the input item is not changed).

    Raises:
        InputError: the item has no target, or an unknown protocol.
    """
    protocol = check_alignment(protocol, argument="protocol")
    if "target" not in item:
        raise InputError("align_exposure", expected="items with a ground-truth target",
                         got=f"item {item['meta'].get('id')} without one",
                         fix="use exposure alignment only on splits that have bokeh targets")
    image, target = item["image"], item["target"]
    if protocol == "linear-mean":
        mean_in = float(image.double().mean())
        scale = float(target.double().mean()) / mean_in if mean_in > 0 else 1.0
        aligned = image * scale
    else:
        shown_in, shown_gt = linear_to_srgb(image), linear_to_srgb(target)
        mean_in = shown_in.double().mean(dim=(-2, -1))
        ratio = torch.where(mean_in > 0, shown_gt.double().mean(dim=(-2, -1)) / mean_in.clamp_min(1e-12), 1.0)
        scale = [float(v) for v in ratio]
        aligned = srgb_to_linear((shown_in * ratio.to(shown_in.dtype)[:, None, None]).clamp(0.0, 1.0))
    out = dict(item)
    out["image"] = aligned
    out["meta"] = {**item["meta"], "exposure_scale": scale, "exposure_alignment": protocol}
    return out
