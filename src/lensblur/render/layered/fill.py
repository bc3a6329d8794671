"""The hidden-part fill: each layer extended under the pixels that hide it.

Colours are pulled in from the layer's own visible pixels by a push-pull pyramid (:func:`push_pull`),
weighted by how much of the layer is present nearby (what continues behind a surface is most likely what
is around it), spread about as far as the layer's blur by box means (:func:`box_mean`) and accumulated on
a canvas of light and weight at quarter resolution (:func:`add_fill`). Where the view is not fully covered
by visible light, the finished render takes the remainder from there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .canvas import Canvas
from .constants import FILL_SPREAD, OWN_COLOUR_GAIN, weight_floor
from .grid import pool, resample

__all__ = ["add_fill", "box_mean", "push_pull"]


def add_fill(fill: Canvas, stack: torch.Tensor, nearer: torch.Tensor, radius: float, fs: int, origin: tuple[int, int],
             frame_origin: tuple[int, int], pad: int) -> None:
    """Extend a layer under the pixels that hide it, into the ``fill`` canvas.

    Colours are pulled in from its visible pixels, weighted by how much of the layer is around, and spread
    about as far as the layer's blur. The fill is a smooth guess: a box mean (with the variance of the
    layer's disk) spreads it, not the aperture's shape.

    Args:
        fill: the canvas of hidden-part estimates (light and weight; no occlusion), added to in place.
        stack: ``(1, 3 + 1, h, w)`` at scale ``fs``: the layer's premultiplied light clipped to its weight,
            and its weight, in [0, 1].
        nearer: ``(1, 1, h, w)`` the layer's cover by nearer layers, >= 0.
        radius: the layer's signed CoC radius, pixels.
        fs: the scale of ``stack``, a power of two, at least the canvas's.
        origin: the top-left of ``stack`` in the block, pixels.
        frame_origin: the top-left of ``stack`` in the frame, pixels: where the pyramid's cells lie.
        pad: how far around it a layer counts as present, pixels (:attr:`Plan.pad`).
    """
    # The pull reaches twice ``pad`` (beyond ``pad`` nothing counts as present) on cells of the frame's grid.
    levels = max(1, math.ceil(math.log2(2 * pad / fs)))
    cells = 2 ** levels
    top, left = (frame_origin[0] // fs) % cells, (frame_origin[1] // fs) % cells
    h, w = stack.shape[-2:]
    grow = (left, -(left + w) % cells, top, -(top + h) % cells)
    colour = push_pull(F.pad(stack, grow), levels)[..., top: top + h, left: left + w]
    # A layer is a likely thing to see behind a nearer one only where it is actually around.
    hidden = nearer * box_mean(stack[:, 3:], max(1, math.ceil(pad / fs)))
    spread = round(FILL_SPREAD * abs(radius) / fs)
    blurred = box_mean(torch.cat([hidden * colour, hidden], dim=1), spread)
    values, window = fill.window(blurred, fs, origin)
    fill.light[window] += values[:, :3]
    fill.weight[window] += values[:, 3:4].clamp_min(0.0)


def push_pull(stack: torch.Tensor, levels: int) -> torch.Tensor:
    """Colour everywhere within reach of the pixels where alpha > 0, from ``stack``: premultiplied colour and
    alpha, ``(1, 3 + 1, h, w)``. Each hole takes the colour of the nearest content, blended smoothly (pull
    ``levels`` halvings down, then composite each level over the coarser one). The grid's sides must be
    multiples of ``2 ** levels``; placed on the frame's grid, every level's cells are then the frame's, and
    blocks of a frame agree.
    """
    pyramid = [stack]
    for _ in range(levels):
        pyramid.append(pool(pyramid[-1], 2))
    top = resample(pyramid.pop(), 2)
    # The coarsest level is interpolated normalised: an empty cell borrows from its neighbours.
    colour = top[:, :3] / top[:, 3:].clamp_min(weight_floor(top.dtype))
    for level in reversed(pyramid):
        alpha = level[:, 3:]
        # Normalised colour where the level has content, the coarser estimate elsewhere.
        own = level[:, :3] / alpha.clamp_min(weight_floor(alpha.dtype))
        colour = torch.lerp(colour, own, (alpha * OWN_COLOUR_GAIN).clamp_(max=1.0))
        if level is not stack:
            colour = resample(colour, 2)
    return colour


def box_mean(x: torch.Tensor, reach: int) -> torch.Tensor:
    """Mean over the ``2 reach + 1`` square around each cell, of the cells inside the grid: separable, from
    running sums, so its cost does not grow with ``reach``. The sums are at least float32: in half precision
    a running sum over a wide grid keeps too few bits of each cell (bfloat16: errors up to 0.5 at 1000 cells)."""
    if reach <= 0:
        return x
    dtype = x.dtype
    for dim in (-2, -1):
        n = x.shape[dim]
        # A window's sum is the difference of two running sums: the sum up to its last cell (the grid's last
        # beyond the grid) less the sum before its first (none before the grid).
        sums = torch.cumsum(x, dim=dim, dtype=torch.promote_types(x.dtype, torch.float32))
        # Each part written once: the first windows (nothing before the grid), the middle ones (a difference),
        # the last ones (the grid's last sum, less the sum before them).
        total = torch.empty_like(sums)
        keep = max(0, n - reach)
        head = min(reach + 1, keep)
        if head:
            total.narrow(dim, 0, head).copy_(sums.narrow(dim, reach, head))
        if keep > head:
            torch.sub(sums.narrow(dim, 2 * reach + 1, keep - head), sums.narrow(dim, 0, keep - head),
                      out=total.narrow(dim, head, keep - head))
        tail = total.narrow(dim, keep, n - keep)
        tail.copy_(sums.narrow(dim, n - 1, 1).expand_as(tail))
        start = max(keep, reach + 1)
        if start < n:
            total.narrow(dim, start, n - start).sub_(sums.narrow(dim, start - reach - 1, n - start))
        index = torch.arange(n, device=x.device)
        count = ((index + reach + 1).clamp(max=n) - (index - reach).clamp(min=0)).to(sums.dtype)
        x = total.div_(count[:, None] if dim == -2 else count)
    return x.to(dtype)
