"""Regions of an image that a metric is computed on: the whole image, a box, or a mask."""

from __future__ import annotations

import numpy as np
import torch

from .._convert import array_to_tensor
from ..errors import InputError, ShapeError
from ..geometry import parse_box

__all__ = ["grey_255", "region_mask", "to_display_tensor"]


def to_display_tensor(image, *, argument: str = "image") -> torch.Tensor:
    """A metric's input as a float64 ``(B, C, H, W)`` tensor.

    Args:
        image: an ``H x W x 3`` or ``H x W`` array, or a ``(B, C, H, W)`` tensor.
        argument: the name error messages give it.

    Returns:
        ``(B, C, H, W)`` float64 on the CPU (``B = 1`` for an array).

    Raises:
        ShapeError: another shape.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().to("cpu", torch.float64)
        if t.ndim != 4:
            raise ShapeError(argument, expected="a (B, C, H, W) tensor", got=f"shape {tuple(t.shape)}",
                             fix="add the batch dimension with tensor[None]")
        return t
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ShapeError(argument, expected="an H x W x 3 or H x W array", got=f"shape {arr.shape}",
                         fix="pass an RGB or grey image")
    return array_to_tensor(arr, dtype=torch.float64)


def grey_255(image: torch.Tensor, *, data_range: float) -> torch.Tensor:
    """Grey on 0..255, ``0.299 R + 0.587 G + 0.114 B``, of display values.

    Args:
        image: ``(B, 1 or 3, H, W)`` display values.
        data_range: the value of white in ``image``.

    Returns:
        ``(B, 1, H, W)``.
    """
    scaled = image * (255.0 / data_range)
    if scaled.shape[1] == 1:
        return scaled
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=scaled.dtype).view(1, 3, 1, 1)
    return (scaled * weights).sum(dim=1, keepdim=True)


def region_mask(shape: tuple[int, int], *, box=None, mask=None) -> torch.Tensor | None:
    """The pixels a metric is computed on.

    Args:
        shape: ``(H, W)`` of the image.
        box: ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive), or None.
        mask: ``H x W`` in [0, 1], pixels above 0.5 selected, or None.

    Returns:
        An ``H x W`` bool tensor, or None (both None: the whole image).

    Raises:
        InputError: both ``box`` and ``mask``, a box outside the image, or an empty mask.
        ShapeError: a mask of another size.
    """
    if box is not None and mask is not None:
        raise InputError("mask", expected="at most one of box and mask", got="both",
                         fix="pass mask=None to measure the box, or box=None to measure the mask")
    if box is not None:
        x0, y0, x1, y1 = parse_box(box, shape)
        out = torch.zeros(shape, dtype=torch.bool)
        out[y0:y1, x0:x1] = True
        return out
    if mask is not None:
        m = torch.as_tensor(np.asarray(mask)) > 0.5
        if tuple(m.shape) != tuple(shape):
            raise ShapeError("mask", expected=f"the image's size {shape}", got=f"shape {tuple(m.shape)}",
                             fix="resize the mask to the image")
        if not bool(m.any()):
            raise InputError("mask", expected="at least one pixel set", got="an empty mask",
                             fix="pass a mask where the region is white")
        return m
    return None
