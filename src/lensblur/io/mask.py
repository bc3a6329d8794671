"""Masks: a file that marks pixels (white = selected) -> ``H x W`` float32 in [0, 1].

One reader for every option that takes a mask (the subject of portrait mode, a focus mask, a region to
measure), so the same file selects the same pixels everywhere: its alpha channel when it has a non-trivial
one (a cut-out), else its luminance (a grey or colour painting of the region).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError, ShapeError
from .image import read_raw

__all__ = ["LUMINANCE", "read_mask"]

# Rec. 709 luma weights, applied to the stored (encoded) values as a grey conversion does.
LUMINANCE = (0.2126, 0.7152, 0.0722)


def read_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None, *, argument: str = "mask") -> np.ndarray:
    """Read a mask file.

    The alpha channel is used when there is one that is not constant; otherwise the luminance of the
    stored values (``0.2126 R + 0.7152 G + 0.0722 B``; a grey image, or colour channels that are all
    equal, as it is). Integer files are divided by their full scale (255 or 65535); float files (PFM,
    EXR, float TIFF, NPY) are taken as they are.

    Args:
        path: an image file (PNG, JPEG, TIFF, WebP, PFM, EXR, NPY).
        shape: ``(H, W)`` the mask must have (the photo's), or ``None`` for any size.
        argument: the name error messages give the mask.

    Returns:
        ``H x W`` float32 in [0, 1], 1 = selected.

    Raises:
        InputError: the file cannot be read, or holds values outside [0, 1] or NaN.
        ShapeError: the mask's size is not ``shape``.
    """
    arr, full_scale = read_raw(path, argument=argument)
    if arr.ndim == 3:
        has_alpha = arr.shape[2] in (2, 4)
        if has_alpha and float(arr[..., -1].min()) < float(arr[..., -1].max()):
            arr = arr[..., -1]
        else:
            colour = arr[..., : arr.shape[2] - has_alpha]
            if colour.shape[2] == 1 or bool((colour == colour[..., :1]).all()):
                arr = colour[..., 0]
            else:
                weights = np.asarray(LUMINANCE, dtype=np.float32)
                arr = colour.astype(np.float32) @ weights
    arr = arr.astype(np.float32)
    if full_scale is not None:
        arr = arr / np.float32(full_scale)
    if arr.ndim != 2:
        raise ShapeError(argument, expected="a grey, RGB or RGBA image", got=f"shape {arr.shape} in {path}",
                         fix="save the mask as an 8-bit grey PNG (white = selected)")
    if shape is not None and arr.shape != tuple(shape):
        h, w = shape
        raise ShapeError(argument, expected=f"a mask of the photo's size {w}x{h} (width x height)",
                         got=f"{arr.shape[1]}x{arr.shape[0]} in {path}",
                         fix="export the mask at the photo's size (same crop and orientation)")
    if not np.isfinite(arr).all() or float(arr.min()) < 0 or float(arr.max()) > 1:
        raise InputError(argument, expected="values in [0, 1] (white = selected)",
                         got=f"range [{np.nanmin(arr):g}, {np.nanmax(arr):g}] in {path}",
                         fix="save the mask as an 8-bit grey PNG")
    return arr
