"""Grid helpers of the layered renderer: pooling and resampling between the scales of its grids, and work
on whole images by bands of rows.

Every grid lies on the frame's: cell ``i`` of a grid of scale ``s`` covers pixels ``[s i, s (i + 1))``, so
pooling and resampling between scales never shift an image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..._threads import parallel_bands, parallel_map
from .constants import PHASES_FROM

__all__ = ["Window", "align", "by_bands", "pool", "resample", "run_together", "upsampled_rows"]


def pool(x: torch.Tensor, s: int) -> torch.Tensor:
    """Mean over the ``s x s`` cells of ``(N, C, H, W)`` (the last cells partial), or ``x`` for ``s = 1``.

    ``s`` a power of two. The whole cells are halved ``log2 s`` times by sums of strided views (on the CPU
    several times faster than ``avg_pool2d``); the partial last row and column of cells, if any, by ``avg_pool2d``.
    """
    if s == 1:
        return x
    h, w = x.shape[-2:]
    rows, cols = h // s, w // s
    if rows * s == h and cols * s == w:
        return _halved(x, s)
    out = x.new_empty(x.shape[:-2] + (-(-h // s), -(-w // s)))
    if rows and cols:
        out[..., :rows, :cols] = _halved(x[..., : rows * s, : cols * s], s)
    if cols < out.shape[-1]:
        out[..., :, cols:] = F.avg_pool2d(x[..., :, cols * s:], s, stride=s, ceil_mode=True)
    if rows < out.shape[-2] and cols:
        out[..., rows:, :cols] = F.avg_pool2d(x[..., rows * s:, : cols * s], s, stride=s, ceil_mode=True)
    return out


def _halved(x: torch.Tensor, s: int) -> torch.Tensor:
    """Means of the ``s x s`` cells of ``x``, whose sides are multiples of ``s`` (a power of two)."""
    while s > 1:
        x = x[..., 0::2, :] + x[..., 1::2, :]
        x = (x[..., 0::2] + x[..., 1::2]).mul_(0.25)
        s //= 2
    return x


def resample(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Resample ``(N, C, H, W)`` between grids that share their origin.

    Args:
        x: the grid's values.
        factor: ``s_from / s_to``, the ratio of the grids' scales, a power of two: above 1 an enlargement
            (bilinear on cell centres: by torch's kernel to fewer than ``PHASES_FROM`` values, else by
            phases, :func:`_enlarged`), below 1 a reduction (the mean of the cells).

    Returns:
        The values on the other grid, ``(N, C, H factor, W factor)`` rounded up.
    """
    if factor == 1:
        return x
    if factor < 1:
        return pool(x, round(1 / factor))
    f = round(factor)
    if x.numel() * f * f < PHASES_FROM:
        return F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False, recompute_scale_factor=False)
    return _enlarged(_enlarged(x, f, -1), f, -2)


def _enlarged(x: torch.Tensor, f: int, dim: int) -> torch.Tensor:
    """``x`` enlarged ``f`` times along ``dim`` (-1 or -2), bilinear on cell centres (``F.interpolate``'s
    ``align_corners=False``, to a unit in the last place).

    Output cell ``f i + k`` lies at ``i + w`` in the input's cells, ``w = (k + 1/2) / f - 1/2``: between
    ``x[i]`` and ``x[i - 1]`` (``w < 0``) or ``x[i + 1]``, the edge cells repeated beyond the grid. Each phase
    ``k`` is one lerp of shifted views, written into a strided view of the result: on the CPU the two passes
    of a large grid take a third to a half of ``F.interpolate``'s time, which finds every output's neighbours
    and weights anew.
    """
    n = x.shape[dim]
    out = x.new_empty(x.shape[:dim] + (n * f,) + x.shape[dim:][1:])
    phases = out.unflatten(dim, (n, f))          # phase k of cell i is [..., i, k(, :)]
    for k in range(f):
        w = (k + 0.5) / f - 0.5
        phase = phases.select(dim, k)
        # Towards the neighbour before (w < 0) or after: the lerp of shifted views of x, and the edge cell,
        # whose neighbour beyond the grid is itself (a lerp between equal values is the value), copied.
        edge = 0 if w < 0 else n - 1
        if n > 1:
            near, far = (1, 0) if w < 0 else (0, 1)
            torch.lerp(x.narrow(dim, near, n - 1), x.narrow(dim, far, n - 1), abs(w),
                       out=phase.narrow(dim, near, n - 1))
        phase.narrow(dim, edge, 1).copy_(x.narrow(dim, edge, 1))
    return out


def upsampled_rows(x: torch.Tensor, factor: int, y0: int, y1: int, w: int) -> torch.Tensor:
    """Rows ``y0:y1`` and columns ``:w`` of ``resample(x, factor)`` (an enlargement), made from only the
    rows of ``x`` they interpolate between."""
    first, last = max(0, y0 // factor - 1), min(x.shape[-2], -(-y1 // factor) + 1)
    up = resample(x[..., first:last, :], factor)
    return up[..., y0 - first * factor: y1 - first * factor, :w]


def by_bands(fn: Callable[..., torch.Tensor], rows: int, *maps: torch.Tensor) -> torch.Tensor:
    """``fn`` of full-size ``maps``, computed on bands of ``rows`` rows and stacked back.

    The same as ``fn(*maps)`` for a ``fn`` that works row by row (or on whole cells of ``rows``), but each
    band's intermediate results stay in the processor's cache; a chain of simple operations on whole images
    is bound by memory traffic, and runs two to three times faster this way. Bands run on the render's
    workers (:func:`~lensblur._threads.parallel_bands`).

    Args:
        fn: maps ``(N, C, rows, W)`` bands of each of ``maps`` to one ``(N, C', rows / s, W')`` result.
        rows: the band height, a multiple of any cell size ``fn`` pools by.
        maps: ``(N, C, H, W)`` maps of one height.

    Returns:
        The bands' results concatenated along the rows.
    """
    h = maps[0].shape[-2]
    if h <= rows:
        return fn(*maps)
    return torch.cat(parallel_bands(lambda band: fn(*(x[..., band, :] for x in maps)), h, rows), dim=-2)


def run_together(jobs: list[Callable[[], object]]) -> list:
    """The results of independent ``jobs``, run on the render's workers (:func:`~lensblur._threads.parallel_map`,
    which runs each in the caller's inference mode)."""
    return parallel_map(lambda job: job(), jobs)


@dataclass(frozen=True, slots=True)
class Window:
    """A rectangle of rows ``top:bottom`` and columns ``left:right`` (pixels or cells)."""

    top: int
    bottom: int
    left: int
    right: int


def align(lo: int, unit: int) -> int:
    """``lo`` rounded down to a multiple of ``unit``: a start on the grids of every scale dividing ``unit``."""
    return lo - lo % unit
