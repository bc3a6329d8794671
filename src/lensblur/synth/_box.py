"""Box means on the pixel grid, the filters behind the tracer's exact average over one aperture cell.

Pixels are taken as piecewise constant (pixel ``j`` covers ``[j, j + 1)``), so the mean of a layer over any
interval, or any square, is exact: :func:`box_weights` gives the taps of a fixed box (a flat layer, whose box
is the same everywhere) and :func:`variable_box` the mean over a square whose side changes per pixel (a
tilted layer, whose CoC does). :func:`reach_region` bounds the output a layer can touch, so the tracer
computes nothing where a layer is empty and fully transparent.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["box_weights", "reach_region", "variable_box"]


def box_weights(lo: float, hi: float) -> tuple[int, list[float]]:
    """Taps of the mean over ``[y + lo, y + hi]`` of a piecewise-constant signal ``f``.

    Args:
        lo: start of the box, in pixels relative to the output position ``y``.
        hi: end of the box, ``>= lo``; ``hi <= lo`` asks for a point sample.

    Returns:
        ``(k0, weights)`` with ``sum_t weights[t] * f[y + k0 + t]`` the mean; the weights sum to 1, and are a
        single weight 1 for a point sample. Taps of zero weight at either end are dropped.
    """
    if hi - lo <= 1e-9:
        return math.floor(lo), [1.0]
    k0, k1 = math.floor(lo), math.ceil(hi) - 1
    weights = [(min(k + 1, hi) - max(k, lo)) / (hi - lo) for k in range(k0, k1 + 1)]
    while len(weights) > 1 and weights[-1] <= 1e-12:
        weights.pop()
    while len(weights) > 1 and weights[0] <= 1e-12:
        weights.pop(0)
        k0 += 1
    return k0, weights


def _box_along_last(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` ``(C, H, W)`` along its last axis over ``w`` ``(1, H, W)`` pixels centred on every pixel,
    from a float64 cumulative sum interpolated at the box edges; the border value is repeated beyond it."""
    n = t.shape[-1]
    t64 = t.to(torch.float64)
    csum = F.pad(torch.cumsum(t64, dim=-1), (1, 0))
    pos = torch.arange(n, dtype=torch.float64, device=t.device) + 0.5
    w64 = w.to(torch.float64)

    def at(edge: torch.Tensor) -> torch.Tensor:
        edge = edge.clamp(0, n)
        i0 = edge.floor().clamp(max=n - 1)
        frac = edge - i0
        i0 = i0.long().expand(t.shape[0], -1, -1)
        c0 = torch.gather(csum, -1, i0)
        c1 = torch.gather(csum, -1, i0 + 1)
        return c0 + (c1 - c0) * frac

    lo, hi = pos - w64 / 2, pos + w64 / 2
    inside = at(hi) - at(lo)
    below = (-lo).clamp_min(0) * t64[..., :1]
    above = (hi - n).clamp_min(0) * t64[..., -1:]
    return ((inside + below + above) / w64).to(t.dtype)


def variable_box(x: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over a square of side ``width[y, x]`` pixels centred on every pixel.

    Args:
        x: ``(C, H, W)`` values, pixels piecewise constant; the border is repeated beyond the canvas.
        width: ``(H, W)`` side of the square in pixels, ``> 0``.

    Returns:
        ``(C, H, W)``, same dtype as ``x`` (accumulated in float64). Separable: x first, then y.
    """
    out = _box_along_last(x, width[None])
    return _box_along_last(out.transpose(-1, -2), width[None].transpose(-1, -2)).transpose(-1, -2).contiguous()


def reach_region(stack: torch.Tensor, reach_px: float, margin: int,
                 size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The output rows and columns a layer can touch.

    Args:
        stack: ``(4, H, W)`` the layer on its canvas: premultiplied colour and transmittance ``1 - alpha``.
        reach_px: its largest displacement plus the box, in pixels, ``>= 0``.
        margin: canvas pixels beyond each side of the frame.
        size: ``(h, w)`` of the frame, ``H - 2 * margin`` by ``W - 2 * margin``.

    Returns:
        ``(y0, y1, x0, x1)`` in frame pixels: where the layer has colour or alpha, grown by ``reach_px`` and
        clipped to the frame; ``(0, 0, 0, 0)`` when it has neither (empty and fully transparent).
    """
    h, w = size
    busy = (stack[:3].abs().amax(0) > 0) | (stack[3] < 1)
    rows = torch.nonzero(busy.any(1)).flatten()
    cols = torch.nonzero(busy.any(0)).flatten()
    if rows.numel() == 0:
        return (0, 0, 0, 0)
    grow = math.ceil(reach_px) + 2
    y0 = max(0, int(rows[0]) - margin - grow)
    y1 = min(h, int(rows[-1]) + 1 - margin + grow)
    x0 = max(0, int(cols[0]) - margin - grow)
    x1 = min(w, int(cols[-1]) + 1 - margin + grow)
    return (y0, max(y0, y1), x0, max(x0, x1))
