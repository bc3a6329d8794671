"""Aperture samples for the ray tracer: a square grid of cells over the aperture, each with a weight.

The unit aperture (circumradius 1, the shape of :class:`lensblur.lens.Aperture`) is covered by an ``n x n``
grid of square cells of side ``h = 2 / n`` over ``[-1, 1]^2`` (``x`` towards columns, ``y`` towards rows,
rows down). Each cell that overlaps the aperture becomes one sample at the cell's centre, weighted by the part
of the cell inside the aperture (for a custom kernel, the kernel's mean transmission over the cell); weights
sum to 1. The cells tile the plane, which is what lets the tracer replace each sample's point shift by the
average over its whole cell (a box of side ``|coc| * h`` pixels): the boxes of one layer tile its blur
kernel exactly, so a single layer comes out as its exact convolution with the aperture (antialiased at the
scale of one cell), with no sampling pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..lens import Aperture

__all__ = ["ApertureSamples", "aperture_samples", "grid_size"]

# Sub-samples per cell side used to measure the part of a cell inside the aperture.
_SUB = 16


@dataclass(frozen=True)
class ApertureSamples:
    """The weighted aperture samples :func:`aperture_samples` returns.

    Args:
        offsets: ``(S, 2)`` float64 cell centres ``(x, y)`` in unit-aperture coordinates.
        weights: ``(S,)`` summing to 1.
        cell: the cell side ``h``.
        cells: ``(S, 2)`` integer cell indices ``(column, row)`` into ``edges``.
        edges: ``(2, m + 1)`` float64 positions of the grid lines along x and y (cell ``(i, j)`` spans
            ``edges[0, i] .. edges[0, i + 1]`` by ``edges[1, j] .. edges[1, j + 1]``).
    """

    offsets: torch.Tensor
    weights: torch.Tensor
    cell: float
    cells: torch.Tensor
    edges: torch.Tensor

    def __len__(self) -> int:
        return int(self.offsets.shape[0])


def grid_size(samples: int) -> int:
    """Grid side ``n`` whose cells inside a unit circle number about ``samples`` (``n^2 * pi / 4``).

    Args:
        samples: the wanted number of samples, a positive integer.

    Returns:
        ``n >= 1``.

    Raises:
        InputError: ``samples`` is not a positive integer.
    """
    if not isinstance(samples, int) or samples < 1:
        raise InputError("samples", expected="a positive integer", got=samples,
                         fix="pass samples=256 (more samples, smoother ground truth)")
    return max(1, math.ceil(math.sqrt(4.0 * samples / math.pi)))


def _inside(aperture: Aperture, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Transmission of the aperture at unit coordinates ``(x, y)``: 0/1 for blades, kernel values otherwise."""
    if aperture.kernel is not None:
        kernel = torch.from_numpy(aperture.kernel).to(torch.float64)[None, None]
        grid = torch.stack([x, y], dim=-1).reshape(1, -1, 1, 2)
        vals = F.grid_sample(kernel, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return vals.reshape(x.shape)
    r = torch.hypot(x, y)
    theta = torch.atan2(y, x)
    limit = aperture.radial_limit(theta)
    return (r <= limit).to(torch.float64)


def aperture_samples(aperture: Aperture, n: int, *, jitter: torch.Tensor | None = None) -> ApertureSamples:
    """Weighted samples of ``aperture`` on an ``n x n`` grid (see the module doc).

    Args:
        aperture: the aperture; ``cat_eye`` must be 0 (the tracer uses one aperture for the whole frame).
        n: the grid side.
        jitter: two numbers in ``[-0.5, 0.5)``, in cells, that shift the whole grid (an unbiased random
            placement of the pattern); None keeps the grid centred on the aperture.

    Returns:
        The :class:`ApertureSamples` of the open cells.

    Raises:
        InputError: ``cat_eye`` is not 0, or no cell is open.
    """
    if aperture.cat_eye:
        raise InputError("aperture", expected="cat_eye=0 (the ray tracer uses one aperture for the whole frame)",
                         got=f"cat_eye={aperture.cat_eye}", fix="trace with Aperture(cat_eye=0)")
    h = 2.0 / n
    shift = torch.zeros(2, dtype=torch.float64) if jitter is None else jitter.to(torch.float64) * h
    # Cell centres; one extra ring when jittered so the shifted grid still covers the aperture.
    extra = 0 if jitter is None else 1
    idx = torch.arange(-extra, n + extra, dtype=torch.float64)
    centres = -1.0 + (idx + 0.5) * h
    sub = (torch.arange(_SUB, dtype=torch.float64) + 0.5) / _SUB - 0.5
    cy, cx, sy, sx = torch.meshgrid(centres, centres, sub * h, sub * h, indexing="ij")
    px = cx + sx + shift[0]
    py = cy + sy + shift[1]
    t = _inside(aperture, px, py)
    mass = t.sum(dim=(2, 3))
    keep = mass > 0
    w = mass[keep]
    if w.numel() == 0:
        raise InputError("aperture", expected="an aperture with an open area", got="nothing open",
                         fix="e.g. Aperture(blades=0) for a circle, Aperture(blades=6), or a kernel image with white in it")
    rows, cols = torch.nonzero(keep, as_tuple=True)
    edges = -1.0 + (torch.arange(-extra, n + extra + 1, dtype=torch.float64)) * h
    edges = torch.stack([edges + shift[0], edges + shift[1]])
    offsets = torch.stack([centres[cols] + shift[0], centres[rows] + shift[1]], dim=1)
    return ApertureSamples(offsets=offsets, weights=w / w.sum(), cell=h,
                           cells=torch.stack([cols, rows], dim=1), edges=edges)
