"""The layer layout: which layers there are, where each pixel sits between them, at which scale each is
blurred, which part of a block each may touch, and each layer's share of the photo, pooled to its scale.

The disparity range is cut into layers whose CoC radii are close enough that a blend of two neighbours
passes for the radius in between (:func:`layer_radii`). A pixel at position ``t = l + frac`` between the
layers belongs to layer ``l`` with weight ``1 - frac`` and to ``l + 1`` with ``frac`` (:func:`fractional_index`).
Sharp layers are drawn at full resolution; blurred ones at a power-of-two scale (:func:`layer_scale`), in
runs of one scale on one side of the focus that are pooled together (:class:`Layers`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...lens import Lens
from .constants import BAND, FILL_SCALE, REACH_MARGIN, SHARP_RADIUS, weight_floor
from .grid import Window, align, by_bands, pool

__all__ = ["LayerStacks", "Layers", "Plan", "Settings", "coc_of", "coc_range", "fill_scale", "fractional_index",
           "layer_radii", "layer_scale", "layer_share", "layer_share_into", "layer_windows", "plan_layers"]


@dataclass(frozen=True, slots=True)
class Settings:
    """The speed/quality knobs of :func:`~lensblur.render.layered.render_layered`."""

    coarse_radius: float
    min_step: float
    ratio: float


@dataclass(frozen=True, slots=True)
class Plan:
    """What the blocks of a frame share, decided for the whole frame.

    ``radii``: the layers' signed CoC radii, ascending (float64). ``scales``: the scale each layer is
    blurred at. ``first_behind``: the nearest blurred layer behind the focus that has pixels, composited at
    full size (see the package doc), or ``None``. ``pad``: the largest CoC in the frame, rounded up, plus
    :data:`REACH_MARGIN`: how far a layer's light reaches at most, and how far around it a layer counts as
    present behind a nearer one.
    """

    radii: torch.Tensor
    scales: tuple[int, ...]
    first_behind: int | None
    pad: int


def layer_radii(low: float, high: float, *, min_step: float = 1.0, ratio: float = 0.15) -> torch.Tensor:
    """Signed CoC radii of the layers covering a range of CoC radii.

    Args:
        low: the smallest signed CoC radius to cover, pixels (negative behind the focus).
        high: the largest, pixels, at least ``low``.
        min_step: the least spacing of neighbouring layers, pixels, > 0.
        ratio: the spacing as a fraction of the radius farther out, >= 0.

    Returns:
        ``(L,)`` float64, ascending, through 0 (included even when ``[low, high]`` does not hold it), the
        last ones beyond ``low`` and ``high``; neighbours are ``max(min_step, ratio * |r|)`` apart.
    """
    def side(limit: float) -> list[float]:
        radii, r = [], 0.0
        while r < limit - 1e-9:
            r += max(min_step, ratio * r)
            radii.append(r)
        return radii

    pos = side(max(high, 0.0))
    neg = [-r for r in side(max(-low, 0.0))]
    return torch.tensor(sorted(neg) + [0.0] + pos, dtype=torch.float64)


def coc_of(disparity: torch.Tensor, lens: Lens) -> torch.Tensor:
    """The signed CoC radius (pixels, float32) of each disparity through ``lens``."""
    return lens.blur * (disparity.to(torch.float32) - lens.focus_disparity)


def fractional_index(coc: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Position of each CoC between the layer radii: ``l + frac`` means weights ``1 - frac`` and ``frac``."""
    r = radii.to(device=coc.device, dtype=coc.dtype)
    hi = _count_below(coc.flatten(), radii).clamp_(1, len(r) - 1)
    lo = hi - 1
    below, above = r.index_select(0, lo), r.index_select(0, hi)
    frac = ((coc.flatten() - below) / (above - below)).clamp_(0.0, 1.0)
    return (lo.to(coc.dtype) + frac).view_as(coc)


def _count_below(x: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """How many of the ascending ``radii`` are below each value of the flat ``x`` (``torch.bucketize``), int64.

    Through a table on bins half as wide as the closest two radii (at most one radius within any two bins): a
    value's bin gives the count at the bin's start, corrected by the radii just below and above the value, so
    a bin off by one through rounding still gives the exact count. About three times faster than the binary
    search of ``bucketize`` on the CPU.
    """
    r64 = radii.detach().to("cpu", torch.float64)
    spacing = float((r64[1:] - r64[:-1]).min()) if len(r64) > 1 else 0.0
    lo = float(r64[0])
    bins = math.ceil((float(r64[-1]) - lo) / (spacing / 2)) + 1 if spacing > 0 else 0
    if not 0 < bins <= 1 << 16:
        return torch.bucketize(x, radii.to(x), out_int32=False)
    width = spacing / 2
    starts = lo + width * torch.arange(bins, dtype=torch.float64)
    table = torch.bucketize(starts, r64).to(x.device)                       # radii below each bin's start
    padded = torch.cat([r64.new_tensor([-math.inf]), r64, r64.new_tensor([math.inf])]).to(x)
    count = table.index_select(0, ((x - lo) * (1.0 / width)).floor_().clamp_(0, bins - 1).to(torch.int64))
    # The bin's count less a radius at or above the value, plus one below it.
    return count.sub_((padded.index_select(0, count) >= x).to(torch.int64)).add_(
        (padded.index_select(0, count + 1) < x).to(torch.int64))


def layer_scale(radius: float, coarse_radius: float) -> int:
    """Downscale factor for a layer: full resolution for small kernels (radius <= SHARP_RADIUS), otherwise the
    power of two (at least 2) that leaves between 0.71 and 1.41 times ``coarse_radius`` pixels of kernel
    radius. Powers of two nest: every grid's cells are whole cells of the coarser grids."""
    r = abs(radius)
    if r <= SHARP_RADIUS:
        return 1
    return max(2, 2 ** round(math.log2(r / coarse_radius)))


def fill_scale(s: int) -> int:
    """Scale of a layer's hidden-part estimate: its own, or FILL_SCALE if that is coarser."""
    return max(s, FILL_SCALE)


def layer_share(t: torch.Tensor, first: int, last: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The share of each pixel (at position ``t`` between the layers) that goes to layers ``first..last``,
    and the cover of those layers by the nearer ones; both the shape of ``t``, in [0, 1]."""
    own, nearer = torch.empty_like(t), torch.empty_like(t)
    layer_share_into(t, first, last, own, nearer)
    return own, nearer


def layer_share_into(t: torch.Tensor, first: int, last: int, own: torch.Tensor, nearer: torch.Tensor) -> None:
    """:func:`layer_share` written into ``own`` and ``nearer`` (the shape of ``t``), with no temporaries:
    ``nearer = clamp(t - last, 0, 1)``, ``own = clamp(t - first + 1, 0, 1) - nearer``."""
    torch.sub(t, last, out=nearer).clamp_(0.0, 1.0)
    torch.sub(t, first, out=own).add_(1.0).clamp_(0.0, 1.0).sub_(nearer)


def _present_layers(t: torch.Tensor, count: int) -> torch.Tensor:
    """Which of ``count`` layers have pixels: layer ``l`` has those at ``l - 1 < t < l + 1``, whose ``t``
    rounds down or up to ``l``. ``(count,)`` bool, on the CPU."""
    bins = count + 1

    def band_present(band: torch.Tensor) -> torch.Tensor:
        present = torch.zeros(bins, dtype=torch.bool, device=band.device)
        for rounded in (band.floor(), band.ceil()):
            present |= torch.bincount(rounded.to(torch.int32).flatten(), minlength=bins)[:bins] > 0
        return present.view(1, 1, 1, bins)

    # Bands of rows on the render's workers, each giving one row of presence.
    return by_bands(band_present, BAND, t).any(dim=-2).flatten().cpu()


def coc_range(disparity: torch.Tensor, lens: Lens) -> tuple[float, float]:
    """The smallest and largest signed CoC radius (pixels) of a disparity map through ``lens``."""
    low, high = (float(v) for v in coc_of(torch.stack(disparity.aminmax()), lens))   # the CoC grows with disparity
    return low, high


def plan_layers(radii: torch.Tensor, t: torch.Tensor, reach: float, coarse_radius: float) -> Plan:
    """The :class:`Plan` of a frame.

    Args:
        radii: ``(L,)`` the layers' radii (:func:`layer_radii`).
        t: ``(1, 1, H, W)`` each pixel's position between them (:func:`fractional_index`), the whole frame.
        reach: the largest CoC radius in the frame, pixels.
        coarse_radius: the kernel radius (pixels) a blurred layer keeps at its scale.
    """
    scales = tuple(layer_scale(float(r), coarse_radius) for r in radii)
    present = _present_layers(t, len(radii))
    behind = [i for i in range(len(radii)) if present[i] and scales[i] > 1 and radii[i] < 0]
    return Plan(radii, scales, behind[-1] if behind else None, math.ceil(reach) + REACH_MARGIN)


def _support(tmin: torch.Tensor, tmax: torch.Tensor, index: int, pad: int, size: int) -> tuple[int, int]:
    """Rows (or columns) that may hold pixels of layer ``index`` (``index - 1 < t < index + 1``), padded."""
    hit = torch.nonzero((tmax > index - 1) & (tmin < index + 1))
    if hit.numel() == 0:
        return 0, 0
    return max(0, int(hit[0]) - pad), min(size, int(hit[-1]) + 1 + pad)


def layer_windows(t: torch.Tensor, plan: Plan) -> list[Window | None]:
    """The part of a block each layer may touch: its pixels' rows and columns, padded by ``plan.pad``, the
    start aligned on the grids of its scale, its fill's and the canvases'; ``None`` for a layer without pixels.

    ``t``: the block's ``(1, 1, h, w)`` positions between the layers.
    """
    h, w = t.shape[-2:]
    t_rows = (t[0, 0].amin(dim=1), t[0, 0].amax(dim=1))
    t_cols = (t[0, 0].amin(dim=0), t[0, 0].amax(dim=0))
    windows: list[Window | None] = []
    for index, s in enumerate(plan.scales):
        unit = 2 * fill_scale(s)          # an origin on the layer's, its fill's and the canvases' grids
        y0, y1 = _support(*t_rows, index, plan.pad, h)
        x0, x1 = _support(*t_cols, index, plan.pad, w)
        windows.append(Window(align(y0, unit), y1, align(x0, unit), x1) if y1 > y0 and x1 > x0 else None)
    return windows


@dataclass(slots=True)
class LayerStacks:
    """What a blurred layer is made of, cut from its run's pooled grids.

    ``stack``: ``(1, 3 + 1, h, w)`` its premultiplied light and own weight at its scale. ``fill``:
    ``(1, 3 + 1, h', w')`` at the scale of its hidden-part estimate, its light clipped to its weight, and
    its weight. ``nearer``: ``(1, 1, h', w')`` its cover by nearer layers there. ``fill_window``: where
    ``fill`` lies in the run's grid at that scale.
    """

    stack: torch.Tensor
    fill: torch.Tensor
    nearer: torch.Tensor
    fill_window: tuple


@dataclass(slots=True)
class _PooledRun:
    """A run ``first..last`` pooled over the union of its layers' windows (top-left ``top, left``).

    At the run's scale: ``stack`` its light and weight, ``position`` its weight's mean position between the
    layers. At its fills' scale: ``fill`` its light clipped to the weight and its weight, ``fill_position``,
    ``beyond`` the cover by layers nearer than the run, and ``drawn`` the cover by the run's layers drawn so far.
    """

    first: int
    last: int
    top: int
    left: int
    stack: torch.Tensor
    position: torch.Tensor
    fill: torch.Tensor
    fill_position: torch.Tensor
    beyond: torch.Tensor
    drawn: torch.Tensor


class Layers:
    """Each blurred layer's premultiplied light and own weight at its scale, to be blurred; and at the scale
    of its hidden-part estimate its own weight, its light clipped to the weight and its cover by nearer layers.

    Blurred layers come in runs of one scale on one side of the focus; a run is pooled to its scale once,
    and from there to its fills' scale, keeping per cell its total weight, light, mean position between the
    layers and the cover by layers nearer than the run, and the cell's weight is shared among the run's
    layers by that mean position. A cell mixing two layers of one run (a few pixels along an edge between
    surfaces that are both blurred by at least ``s`` times the kernel's coarse radius) thus goes to the layer
    between them. Layers are taken nearest first; each one taken is marked drawn (:meth:`add_cover`), and
    covers the farther layers of its run.
    """

    def __init__(self, t: torch.Tensor, image: torch.Tensor, plan: Plan, windows: list[Window | None]):
        self.t, self.image, self.scales, self.windows = t, image, plan.scales, windows
        radii, scales = plan.radii, plan.scales
        self.run_of: dict[int, tuple[int, int]] = {}
        start = 0
        for i in range(1, len(radii) + 1):
            if i == len(radii) or scales[i] != scales[start] or (radii[i] > 0) != (radii[start] > 0):
                if scales[start] > 1:
                    for j in range(start, i):
                        self.run_of[j] = (start, i - 1)
                start = i
        self._run: _PooledRun | None = None

    def layer(self, index: int) -> LayerStacks:
        """Layer ``index``'s stacks (pooling its run the first time one of the run's layers is asked for)."""
        window = self.windows[index]
        first, last = self.run_of[index]
        if self._run is None or (self._run.first, self._run.last) != (first, last):
            self._run = self._pool_run(first, last)
        run = self._run

        def cut(position: torch.Tensor, s: int):
            cells = (..., slice((window.top - run.top) // s,
                                (window.top - run.top) // s + -(-(window.bottom - window.top) // s)),
                     slice((window.left - run.left) // s,
                           (window.left - run.left) // s + -(-(window.right - window.left) // s)))
            # 1 - |position - index|, at least 0, in one buffer ((-x) + 1 is 1 - x to the bit).
            return cells, torch.sub(position[cells], index).abs_().neg_().add_(1.0).clamp_min_(0.0)

        cells, part = cut(run.position, self.scales[index])
        stack = run.stack[cells] * part
        cells, part = cut(run.fill_position, fill_scale(self.scales[index]))
        fill = run.fill[cells] * part
        return LayerStacks(stack, fill, torch.add(run.beyond[cells], run.drawn[cells]), cells)

    def add_cover(self, index: int, layer: LayerStacks) -> None:
        """Mark layer ``index`` (just taken by :meth:`layer`) drawn: the next layers of its run are farther,
        and it covers them."""
        assert self._run is not None and self._run.first <= index <= self._run.last
        self._run.drawn[layer.fill_window] += layer.fill[:, 3:]

    def _pool_run(self, first: int, last: int) -> _PooledRun:
        members = [self.windows[i] for i in range(first, last + 1) if self.windows[i] is not None]
        gy, gx = min(m.top for m in members), min(m.left for m in members)
        gy1, gx1 = max(m.bottom for m in members), max(m.right for m in members)
        s = self.scales[first]

        def pooled_parts(t, image):
            # [weight * image, weight, weight * t, beyond], made in place in one buffer
            parts = t.new_empty((t.shape[0], 6) + t.shape[2:])
            weight = parts[:, 3:4]
            layer_share_into(t, first, last, weight, parts[:, 5:6])
            torch.mul(weight, image, out=parts[:, :3])
            torch.mul(weight, t, out=parts[:, 4:5])
            return pool(parts, s)

        pooled = by_bands(pooled_parts, max(BAND, s), self.t[..., gy:gy1, gx:gx1], self.image[..., gy:gy1, gx:gx1])
        coarser = pool(pooled, fill_scale(s) // s)

        def position(grid):
            return (grid[:, 4:5] / grid[:, 3:4].clamp_min(weight_floor(grid.dtype))).clamp(first, last)

        weight = coarser[:, 3:4]
        # Hidden parts are guessed from ordinary colours: a light's HDR energy (premultiplied colour above
        # its alpha) would otherwise glow out of it.
        return _PooledRun(first, last, gy, gx, pooled[:, :4], position(pooled),
                          torch.cat([torch.minimum(coarser[:, :3], weight), weight], 1), position(coarser),
                          coarser[:, 5:6], torch.zeros_like(weight))
