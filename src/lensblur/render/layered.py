"""The layered renderer: fast, occlusion-aware bokeh for photos.

The disparity range is cut into layers whose CoC radii are close enough that a blend of two neighbours is
indistinguishable from the radius in between (``min_step`` pixels apart near focus, ``ratio`` of the radius
farther out). A pixel belongs to its two nearest layers with linear ("hat") weights, so blur varies
continuously with disparity: no banding on a ground plane.

Compositing follows the reference model (:mod:`lensblur.render.scatter`) layer by layer, nearest first:
each layer's blurred light passes in the proportion of the view not yet covered by nearer layers,
``1 - min(1, coverage of nearer layers)``, so a nearer surface hides a farther one by its coverage. The
immediate neighbour does not count as nearer: a pixel between two layers is split over both (that is what
makes blur continuous) and is one surface, which must not hide half of itself. Each layer is also extended
under the pixels that hide it, with colours pulled in from its own visible pixels (a push-pull pyramid);
where the view is not fully covered by visible light (behind the soft edge of a blurred foreground, or near
a hole left by a sharp one) those hidden-part estimates fill the remainder, each weighted by how much of
its layer is present nearby (what continues behind a surface is most likely what is around it). So:

- a sharp foreground over a blurred background: no foreground colour bleeds into the background and no
  blurred background leaks over the foreground;
- a blurred foreground spreads semi-transparently over what is behind it, and behind its soft edge one
  sees the filled-in background, not smeared foreground.

Where the work goes, and how it is kept small:

- Layers within 4 px of focus ("sharp") are exact at full resolution, but only on the 64 px tiles each of
  them reaches (in a photo the in-focus part is usually small).
- Blurred layers are blurred with their aperture-shaped point-spread function through an FFT at a reduced
  scale ``s``, a power of two leaving about ``coarse_radius`` pixels of kernel radius, with the frame's
  borders renormalised. The layers of one scale on one side of the focus (a "run") are pooled to that
  scale once. A layer that is a thin band across its window is convolved only on the strips of cells
  holding it. Those in front of the focus are composited on a half-resolution canvas; those behind it on
  another, and what the layers in front of them let pass is applied once at the end (covers in front of
  and among them then combine as independent ones).
- Hidden-part estimates are smooth guesses, made and accumulated at quarter resolution.
- The frame is rendered in blocks with margins of twice the largest CoC: memory stays bounded whatever the
  size, and a layer absent from a block costs nothing there.
- Chains of operations on whole images run by bands of rows that stay in the cache (:func:`_by_bands`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..lens import Lens
from .kernel import cat_eye_grid, kernel_half_size, psf

__all__ = ["layer_radii", "render_layered"]

# Canvas scale of the blurred layers' composite.
COARSE = 2
# Scale of the hidden-part estimates (at least).
FILL_SCALE = 4
# Side of the tiles the sharp layers work on, in pixels.
TILE = 64
# Rows per band of the chains of operations on whole images (see _by_bands).
BAND = 64


def layer_radii(low: float, high: float, *, min_step: float = 1.0, ratio: float = 0.15) -> torch.Tensor:
    """Signed CoC radii of the layers covering ``[low, high]`` (ascending, through 0 when it is inside).

    Neighbours are ``max(min_step, ratio * |r|)`` apart.
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


def _fractional_index(coc: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Position of each CoC between the layer radii: ``l + frac`` means weights ``1 - frac`` and ``frac``."""
    r = radii.to(device=coc.device, dtype=coc.dtype)
    hi = torch.bucketize(coc, r, out_int32=True).clamp_(1, len(r) - 1).flatten()
    lo = hi - 1
    below, above = r.index_select(0, lo), r.index_select(0, hi)
    frac = ((coc.flatten() - below) / (above - below)).clamp_(0.0, 1.0)
    return (lo.to(coc.dtype) + frac).view_as(coc)


def _scale(radius: float, coarse_radius: float) -> int:
    """Downscale factor for a layer: full resolution for small kernels (radius <= 4 px), otherwise the power
    of two (at least 2) that leaves between 0.71 and 1.41 times ``coarse_radius`` pixels of kernel radius.
    Powers of two nest: every grid's cells are whole cells of the coarser grids."""
    r = abs(radius)
    if r <= 4.0:
        return 1
    return max(2, 2 ** round(math.log2(r / coarse_radius)))


def _fill_scale(s: int) -> int:
    """Scale of a layer's hidden-part estimate: its own, or FILL_SCALE if that is coarser."""
    return max(s, FILL_SCALE)


def render_layered(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, *, coarse_radius: float = 12.0,
                   min_step: float = 1.0, ratio: float = 0.12, block: int = 1536) -> torch.Tensor:
    """Render ``(B, 3, H, W)`` linear RGB with ``(B, 1, H, W)`` disparity (see the module doc).

    ``coarse_radius``: the kernel radius (pixels) a layer is blurred at after downscaling; larger is more
    faithful to the aperture's shape and slower. ``min_step`` and ``ratio`` set the layer spacing. Frames
    are rendered in blocks of ``block`` pixels square, each with a margin of twice the reach of the largest
    CoC, so memory stays bounded whatever the size (and layers absent from a block cost nothing there).
    """
    options = {"coarse_radius": coarse_radius, "min_step": min_step, "ratio": ratio}
    frames = [_render_blocks(image[i:i + 1], disparity[i:i + 1], lens, block, options)
              for i in range(image.shape[0])]
    return frames[0] if len(frames) == 1 else torch.cat(frames)


def _render_blocks(image, disparity, lens: Lens, block: int, options) -> torch.Tensor:
    """Render one frame in blocks. What the blocks share is decided for the whole frame: the layers, each
    pixel's position between them, and which blurred layer behind the focus is composited at full size."""
    h, w = image.shape[-2:]

    def coc(d: torch.Tensor) -> torch.Tensor:
        return lens.blur * (d.to(torch.float32) - lens.focus_disparity)

    low, high = (float(v) for v in coc(torch.stack(disparity.aminmax())))     # the CoC grows with disparity
    if max(abs(low), abs(high)) < 1e-3:
        return image.clone()
    radii = layer_radii(low, high, min_step=options["min_step"], ratio=options["ratio"])
    scales = [_scale(float(r), options["coarse_radius"]) for r in radii]
    t = _by_bands(lambda d: _fractional_index(coc(d), radii).to(image.dtype), BAND, disparity)
    # Layers with pixels: layer l has those at l - 1 < t < l + 1, whose t rounds down or up to l.
    n = len(radii) + 1
    present = torch.zeros(n, dtype=torch.bool, device=t.device)
    for y in range(0, h, BAND):
        band = t[..., y: y + BAND, :]
        for rounded in (band.floor(), band.ceil()):
            present |= torch.bincount(rounded.to(torch.int32).flatten(), minlength=n)[:n] > 0
    present = present.cpu()
    behind = [i for i in range(len(radii)) if present[i] and scales[i] > 1 and radii[i] < 0]
    reach = max(abs(low), abs(high))
    layout = {"radii": radii, "scales": scales, "first_behind": behind[-1] if behind else None,
              "pad": math.ceil(reach) + 2}
    overlap = 2 * (math.ceil(reach) + 2) + 8        # what a kept pixel's light, fill and presence depend on
    # Blocks start where every grid of the frame has a cell boundary, so they pool what the whole frame would.
    unit = 2 * _fill_scale(_scale(reach, options["coarse_radius"]))
    # As few blocks as ``block`` allows across and down, of equal sizes.
    steps = [-(-math.ceil(n / max(1, math.ceil((n - overlap) / block))) // unit) * unit for n in (h, w)]
    if steps[0] >= h and steps[1] >= w:
        return _render_one(image, t, lens, frame=(h, w), origin=(0, 0), **layout)
    out = torch.empty_like(image)
    for top in range(0, h, steps[0]):
        for left in range(0, w, steps[1]):
            bottom, right = min(h, top + steps[0]), min(w, left + steps[1])
            y0, y1 = max(0, _align(top - overlap, unit)), min(h, bottom + overlap)
            x0, x1 = max(0, _align(left - overlap, unit)), min(w, right + overlap)
            part = _render_one(image[..., y0:y1, x0:x1], t[..., y0:y1, x0:x1], lens, frame=(h, w),
                               origin=(y0, x0), **layout)
            out[..., top:bottom, left:right] = part[..., top - y0: bottom - y0, left - x0: right - x0]
    return out


def _render_one(image, t, lens: Lens, *, frame: tuple[int, int], origin: tuple[int, int], radii: torch.Tensor,
                scales: list[int], first_behind: int | None, pad: int):
    """Render one block of the frame, its top-left at ``origin``, from each pixel's position ``t`` between
    the layers at ``radii`` (their ``scales``); borders and cat-eye positions are those of the frame.

    ``first_behind``: the nearest blurred layer behind the focus, composited at full size (see the
    module doc). ``pad``: the largest CoC in the frame, rounded up, plus 2: how far a layer's light
    reaches at most, and how far around it a layer counts as present behind a nearer one.
    """
    h, w = image.shape[-2:]
    t_rows = (t[0, 0].amin(dim=1), t[0, 0].amax(dim=1))
    t_cols = (t[0, 0].amin(dim=0), t[0, 0].amax(dim=0))

    def window_of(index: int) -> tuple[int, int, int, int] | None:
        s = scales[index]
        unit = 2 * _fill_scale(s)          # an origin on the layer's, its fill's and the canvases' grids
        y0, y1 = _support(*t_rows, index, pad, h)
        x0, x1 = _support(*t_cols, index, pad, w)
        if y1 <= y0 or x1 <= x0:
            return None
        return _align(y0, unit), y1, _align(x0, unit), x1

    windows = [window_of(i) for i in range(len(radii))]
    order = [i for i in reversed(range(len(radii))) if windows[i] is not None]     # nearest first
    front = [i for i in order if scales[i] > 1 and radii[i] > 0]
    sharp = [i for i in order if scales[i] == 1]
    back = [i for i in order if scales[i] > 1 and radii[i] < 0]
    layers = _Layers(t, image, radii, scales, windows)
    fill = _Canvas(FILL_SCALE, (h, w), image)   # hidden-background estimates: light and weight, no occlusion

    def blurred_layer(index: int):
        """A blurred layer's light and alpha at its scale (its fill added on the way), and its origin."""
        radius, s = float(radii[index]), scales[index]
        y0, _, x0, _ = windows[index]
        stack, (hidden_stack, nearer) = layers.layer(index)
        own = stack[0, 3]
        if float(own.max()) <= 0.0:
            return None
        frame_origin = (origin[0] + y0, origin[1] + x0)
        out = _blur(stack, lens, radius, s, frame_origin, frame, own > 0)
        _renormalise_borders(out, psf(lens.aperture, radius / s), s, frame_origin, frame)
        if float(nearer.max()) > 0.0:
            _add_fill_pooled(fill, hidden_stack, nearer, radius, _fill_scale(s), (y0, x0), frame_origin, pad)
        return out, s, (y0, x0)

    def draw(target: _Canvas, index: int) -> bool:
        layer = blurred_layer(index)
        if layer is None:
            return False
        values, window = target.window(*layer)
        target.draw(index, values[:, :3], values[:, 3:4].clamp_min(0.0), window)
        return True

    # Blurred layers in front of the focus: composited at COARSE.
    canvas = _Canvas(COARSE, (h, w), image)
    for index in front:
        draw(canvas, index)
    canvas = canvas.rescaled(1)
    # Layers near the focus: at full resolution, on their tiles.
    if sharp:
        halo = max(kernel_half_size(float(radii[i])) for i in sharp)
        tiles = _Tiles(t, image, min(sharp), max(sharp), halo)
        state = _tile_canvas(canvas, tiles) if len(tiles) else None
        for index in sharp if state is not None else ():
            _draw_sharp(state, tiles, index, float(radii[index]), lens, origin, frame)
        if state is not None:
            _untile_canvas(state, tiles, canvas)
        # Their hidden parts are guessed together (their blur is at most a few pixels; the fill is smooth).
        first, last = min(sharp), max(sharp)

        def pool(t, image):
            own, beyond = _share(t, first, last)
            return _pool(torch.cat([torch.minimum(own * image, own), own, beyond], dim=1), FILL_SCALE)

        pooled = _by_bands(pool, BAND, t, image)
        if float(pooled[:, 4:].max()) > 0.0:
            _add_fill_pooled(fill, pooled[:, :4], pooled[:, 4:], 0.0, FILL_SCALE, (0, 0), origin, pad)
    # Blurred layers behind the focus: the first at full resolution, the rest at COARSE, where what the
    # layers in front let pass is applied once at the end (covers in front of and among them combine as
    # independent ones).
    behind = None
    rest = list(back)
    if rest and rest[0] == first_behind:
        draw(canvas, rest.pop(0))
    if rest:
        coarse = _Canvas(COARSE, (h, w), image)
        if canvas.pending is not None and canvas.pending[0] == first_behind:    # blurred: smooth
            i, alpha, window = canvas.pending
            coarse.pending = (i,) + coarse.window(alpha, 1, (window[-2].start, window[-1].start))
            canvas.pending = None
        canvas.settle()
        for index in rest:
            draw(coarse, index)
        behind = coarse

    # What the layers behind let pass, and where the view is not fully covered (behind a blurred edge, under
    # a hole left by a nearer object) the layers' filled-in hidden parts; where there are none, the visible
    # light is normalised. Finished in place on the canvas's own buffers, by bands.
    light, weight, covered = canvas.light, canvas.weight, canvas.covered

    def finish(y0: int, y1: int) -> None:
        band = (..., slice(y0, y1), slice(None))
        if behind is not None:
            passed = (1.0 - covered[band]).clamp_(0.0, 1.0)
            light[band].addcmul_(passed, _upsampled_rows(behind.light, COARSE, y0, y1, w))
            weight[band].addcmul_(passed, _upsampled_rows(behind.weight, COARSE, y0, y1, w))
        fill_weight = _upsampled_rows(fill.weight, FILL_SCALE, y0, y1, w)
        has_fill = fill_weight > 1e-6
        colour = _upsampled_rows(fill.light, FILL_SCALE, y0, y1, w).div_(fill_weight.clamp_min(1e-6))
        remainder = (1.0 - weight[band]).clamp_(0.0, 1.0).mul_(has_fill)
        light[band].div_(torch.where(has_fill, weight[band].clamp_min(1.0), weight[band].clamp_min(1e-6)))
        light[band].addcmul_(remainder, colour)

    for y in range(0, h, BAND):
        finish(y, min(h, y + BAND))
    return light


def _upsampled_rows(x: torch.Tensor, factor: int, y0: int, y1: int, w: int) -> torch.Tensor:
    """Rows ``y0:y1`` and columns ``:w`` of ``_resample(x, factor)`` (an enlargement), made from only the
    rows of ``x`` they interpolate between."""
    first, last = max(0, y0 // factor - 1), min(x.shape[-2], -(-y1 // factor) + 1)
    up = _resample(x[..., first:last, :], factor)
    return up[..., y0 - first * factor: y1 - first * factor, :w]


def _share(t: torch.Tensor, first: int, last: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The share of each pixel (at position ``t`` between the layers) that goes to layers ``first..last``,
    and the cover of those layers by the nearer ones."""
    nearer = (t - last).clamp(0.0, 1.0)
    return (t - first + 1.0).clamp(0.0, 1.0) - nearer, nearer


def _support(tmin: torch.Tensor, tmax: torch.Tensor, index: int, pad: int, size: int) -> tuple[int, int]:
    """Rows (or columns) that may hold pixels of layer ``index`` (``index - 1 < t < index + 1``), padded."""
    hit = torch.nonzero((tmax > index - 1) & (tmin < index + 1))
    if hit.numel() == 0:
        return 0, 0
    return max(0, int(hit[0]) - pad), min(size, int(hit[-1]) + 1 + pad)


def _align(lo: int, unit: int) -> int:
    return lo - lo % unit


class _Layers:
    """Each blurred layer's premultiplied light and own weight at its scale, to be blurred; and at the scale
    of its hidden-part estimate its own weight, its light clipped to the weight and its cover by nearer layers.

    Blurred layers come in runs of one scale on one side of the focus; a run is pooled to its scale once,
    and from there to its fills' scale, keeping per cell its total weight, light, mean position between the
    layers and the cover by layers nearer than the run, and the cell's weight is shared among the run's
    layers by that mean position. A cell mixing two layers of one run (a few pixels along an edge between
    surfaces that are both blurred by at least ``s`` times the kernel's coarse radius) thus goes to the layer
    between them.
    """

    def __init__(self, t: torch.Tensor, image: torch.Tensor, radii: torch.Tensor, scales: list[int], windows):
        self.t, self.image, self.scales, self.windows = t, image, scales, windows
        self.run_of: dict[int, tuple[int, int]] = {}
        start = 0
        for i in range(1, len(radii) + 1):
            if i == len(radii) or scales[i] != scales[start] or (radii[i] > 0) != (radii[start] > 0):
                if scales[start] > 1:
                    for j in range(start, i):
                        self.run_of[j] = (start, i - 1)
                start = i
        self._run = None

    def layer(self, index: int):
        """Layer ``index``'s premultiplied light and own weight at its scale (``(1, 3 + 1, h, w)``), and at the
        scale of its fill its own weight, its light clipped to the weight and its cover by nearer layers."""
        y0, y1, x0, x1 = self.windows[index]
        run = self.run_of[index]
        if self._run is None or self._run[0] != run:
            self._run = (run,) + self._pool_run(*run)
        _, (gy, gx), at_scale, at_fill = self._run

        def share(position, s):
            window = (..., slice((y0 - gy) // s, (y0 - gy) // s + -(-(y1 - y0) // s)),
                      slice((x0 - gx) // s, (x0 - gx) // s + -(-(x1 - x0) // s)))
            return window, (1.0 - (position[window] - index).abs()).clamp_min(0.0)

        stack, position = at_scale
        window, part = share(position, self.scales[index])
        stack = stack[window] * part
        fill_stack, position, beyond, drawn = at_fill
        window, part = share(position, _fill_scale(self.scales[index]))
        fill_stack = fill_stack[window] * part
        nearer = beyond[window] + drawn[window]
        drawn[window] += fill_stack[:, 3:]      # the next layer of the run is farther: this one is nearer than it
        return stack, (fill_stack, nearer)

    def _pool_run(self, first: int, last: int):
        """The run's weight, mean position between its layers and light at its scale; and its weight, mean
        position, light clipped to the weight and cover by nearer layers at the scale of its fills."""
        members = [self.windows[i] for i in range(first, last + 1) if self.windows[i] is not None]
        gy, gx = min(m[0] for m in members), min(m[2] for m in members)
        gy1, gx1 = max(m[1] for m in members), max(m[3] for m in members)
        s = self.scales[first]

        def pool(t, image):
            weight, beyond = _share(t, first, last)
            return _pool(torch.cat([weight * image, weight, weight * t, beyond], 1), s)

        pooled = _by_bands(pool, max(BAND, s), self.t[..., gy:gy1, gx:gx1], self.image[..., gy:gy1, gx:gx1])
        coarser = _pool(pooled, _fill_scale(s) // s)

        def position(grid):
            return (grid[:, 4:5] / grid[:, 3:4].clamp_min(1e-12)).clamp(first, last)

        at_scale = (pooled[:, :4], position(pooled))
        weight = coarser[:, 3:4]
        # Hidden parts are guessed from ordinary colours: a light's HDR energy (premultiplied colour above
        # its alpha) would otherwise glow out of it.
        at_fill = (torch.cat([torch.minimum(coarser[:, :3], weight), weight], 1), position(coarser), coarser[:, 5:6],
                   torch.zeros_like(weight))
        return (gy, gx), at_scale, at_fill


class _Canvas:
    """Running composite at one scale: light, accumulated weight, coverage by nearer layers, and the
    last drawn layer's alpha, which counts as cover only once a layer that is not its neighbour comes."""

    def __init__(self, scale: int, size: tuple[int, int], like: torch.Tensor):
        self.scale = scale
        self.size = size
        self.shape = (-(-size[0] // scale), -(-size[1] // scale))
        self.light = like.new_zeros((1, 3) + self.shape)
        self.weight = like.new_zeros((1, 1) + self.shape)
        self.covered = like.new_zeros((1, 1) + self.shape)
        self.pending = None    # (layer index, alpha, window)
        self.extent = None     # cells drawn on, (top, bottom, left, right)

    def window(self, x: torch.Tensor, x_scale: int, origin: tuple[int, int]):
        """``x`` (at ``x_scale``, top-left ``origin`` in pixels) resampled to this canvas, with its window."""
        x = _resample(x, x_scale / self.scale)
        cy, cx = origin[0] // self.scale, origin[1] // self.scale
        n, m = min(x.shape[-2], self.shape[0] - cy), min(x.shape[-1], self.shape[1] - cx)
        return x[..., :n, :m], (..., slice(cy, cy + n), slice(cx, cx + m))

    def draw(self, index: int, light: torch.Tensor, alpha: torch.Tensor, window) -> None:
        if self.pending is not None and self.pending[0] != index + 1:
            self.settle()
        self._grow(window)
        passed = (1.0 - self.covered[window]).clamp_(0.0, 1.0)
        _add_product(self.light, window, light, passed)
        _add_product(self.weight, window, alpha, passed)
        self.settle()
        self.pending = (index, alpha, window)

    def settle(self) -> None:
        if self.pending is not None:
            _add_product(self.covered, self.pending[2], self.pending[1])
            self._grow(self.pending[2])
            self.pending = None

    def _grow(self, window) -> None:
        if isinstance(window[-1], slice):
            rows, cols = window[-2], window[-1]
            extent = self.extent or (rows.start, rows.stop, cols.start, cols.stop)
            self.extent = (min(extent[0], rows.start), max(extent[1], rows.stop), min(extent[2], cols.start),
                           max(extent[3], cols.stop))

    def rescaled(self, scale: int) -> _Canvas:
        """The same composite on a canvas of a finer scale (the pending alpha carried over)."""
        if scale == self.scale:
            return self
        other = _Canvas(scale, self.size, self.light)
        factor = self.scale // scale
        if self.extent is None:
            return other
        # Only around what was drawn: elsewhere the canvas is empty.
        top, bottom, left, right = self.extent
        top, left = max(0, top - 1), max(0, left - 1)
        bottom, right = min(self.shape[0], bottom + 1), min(self.shape[1], right + 1)
        region = (..., slice(top * factor, min(other.shape[0], bottom * factor)),
                  slice(left * factor, min(other.shape[1], right * factor)))
        for name in ("light", "weight", "covered"):
            value = _resample(getattr(self, name)[..., top:bottom, left:right], factor)
            getattr(other, name)[region] = value[..., : region[1].stop - region[1].start,
                                                 : region[2].stop - region[2].start]
        other.extent = (region[1].start, region[1].stop, region[2].start, region[2].stop)
        if self.pending is not None:
            index, alpha, window = self.pending
            origin = (window[1].start * self.scale, window[2].start * self.scale)
            other.pending = (index,) + other.window(alpha, self.scale, origin)
        return other


def _add_product(target: torch.Tensor, window, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    """``target[window] += x * y`` (or ``+= x``) in place, ``window`` a tuple of slices or ``(tile indices,)``."""
    if len(window) == 1 and isinstance(window[0], torch.Tensor):
        target.index_add_(0, window[0], x if y is None else x * y)
    elif y is None:
        target[window] += x
    else:
        target[window].addcmul_(x, y)


class _Tiles:
    """The tiles of a band that the sharp layers ``first..last`` reach: where they have pixels, and within
    ``halo`` pixels of them.

    Holds the disparity positions and the photo on each tile with a ``halo`` of pixels around it, so a
    kernel of at most that half size gives exact values on the tile, and the composite on the tiles, which
    is gathered from and put back to a full-size canvas.
    """

    def __init__(self, t: torch.Tensor, image: torch.Tensor, first: int, last: int, halo: int):
        h, w = t.shape[-2:]
        self.size, self.halo = (h, w), halo
        # Where a layer may have pixels, and up to ``halo`` pixels around them (the light they spread): the
        # range of positions on each tile with its halo.
        extent = {"kernel_size": TILE + 2 * halo, "stride": TILE, "padding": halo, "ceil_mode": True}
        t_max = F.max_pool2d(t, **extent)[0, 0]
        t_min = -F.max_pool2d(-t, **extent)[0, 0]
        active = (t_max > first - 1) & (t_min < last + 1)
        self.grid = active.shape
        self.ty, self.tx = torch.nonzero(active, as_tuple=True)
        self.t_min, self.t_max = t_min[self.ty, self.tx], t_max[self.ty, self.tx]
        span = torch.arange(-halo, TILE + halo, device=t.device)
        rows = self.ty[:, None] * TILE + span
        cols = self.tx[:, None] * TILE + span
        rows_in, cols_in = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
        outside = ((rows != rows_in)[:, :, None] | (cols != cols_in)[:, None, :])[:, None]
        # Outside the frame: a position below every layer (no light, no cover) and black.
        self.t = t[0, 0][rows_in[:, :, None], cols_in[:, None, :]][:, None].masked_fill_(outside, -2.0)
        self.image = image[0][:, rows_in[:, :, None], cols_in[:, None, :]].transpose(0, 1).masked_fill_(outside, 0.0)
        self.rows = rows[:, halo: halo + TILE]
        self.cols = cols[:, halo: halo + TILE]

    def reached_by(self, index: int) -> torch.Tensor:
        """The tiles (indices) that layer ``index`` may reach: some position within ``index +- 1``."""
        return torch.nonzero((self.t_max > index - 1) & (self.t_min < index + 1), as_tuple=True)[0]

    def __len__(self) -> int:
        return len(self.ty)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """A full-size ``(1, C, h, w)`` map padded to whole tiles."""
        h, w = self.size
        return F.pad(x, (0, self.grid[1] * TILE - w, 0, self.grid[0] * TILE - h))

    def blank(self, like: torch.Tensor) -> torch.Tensor:
        """Zeros the size of ``like`` (a full-size map) padded to whole tiles."""
        return like.new_zeros(like.shape[:2] + (self.grid[0] * TILE, self.grid[1] * TILE))

    def _blocks(self, padded: torch.Tensor) -> torch.Tensor:
        """A map padded to whole tiles seen as ``(C, tiles down, TILE, tiles across, TILE)``."""
        return padded[0].view(padded.shape[1], self.grid[0], TILE, self.grid[1], TILE)

    def gather(self, padded: torch.Tensor) -> torch.Tensor:
        """The tiles of a map padded to whole tiles, ``(n, C, TILE, TILE)``."""
        return self._blocks(padded)[:, self.ty, :, self.tx, :].contiguous()

    def put(self, padded: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Replace the tiles of a map padded to whole tiles by ``values``; the map at full size (a view)."""
        self._blocks(padded)[:, self.ty, :, self.tx, :] = values
        h, w = self.size
        return padded[..., :h, :w]

    def frame_weights(self, fy: torch.Tensor, fx: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        """Per-tile ``(n, 1, TILE, TILE)`` product of row and column fractions given for the whole band."""
        fy = F.pad(fy, (0, self.grid[0] * TILE - len(fy)), value=1.0)[self.rows[pick]]
        fx = F.pad(fx, (0, self.grid[1] * TILE - len(fx)), value=1.0)[self.cols[pick]]
        return (fy[:, :, None] * fx[:, None, :])[:, None]


def _tile_canvas(canvas: _Canvas, tiles: _Tiles) -> _Canvas:
    """A canvas whose storage is ``tiles`` of the full-size ``canvas``; the last drawn layer's alpha is
    settled on ``canvas`` and stays pending on the tiles. ``canvas`` keeps its maps padded to whole tiles
    (in ``canvas.padded``) for :func:`_untile_canvas`."""
    state = _Canvas.__new__(_Canvas)
    state.scale, state.size, state.shape = 1, canvas.size, None
    canvas.padded = {name: tiles.padded(getattr(canvas, name)) for name in ("light", "weight", "covered")}
    state.light, state.weight, state.covered = (tiles.gather(canvas.padded[name])
                                                for name in ("light", "weight", "covered"))
    state.pending = None
    if canvas.pending is not None:
        index, alpha, window = canvas.pending
        h, w = canvas.size
        dense = tiles.blank(canvas.weight)
        dense[..., :h, :w][window] += alpha
        state.pending = (index, tiles.gather(dense), (...,))
        canvas.pending = None
        canvas.padded["covered"] += dense       # off the tiles; on them it stays pending
    return state


def _untile_canvas(state: _Canvas, tiles: _Tiles, canvas: _Canvas) -> None:
    """Put the tiles' composite back on ``canvas``, with what is still pending there."""
    for name in ("light", "weight", "covered"):
        setattr(canvas, name, tiles.put(canvas.padded[name], getattr(state, name)))
    del canvas.padded
    if state.pending is not None:
        index, alpha, window = state.pending
        every = alpha.new_zeros((len(tiles),) + alpha.shape[1:])
        every[window] = alpha
        canvas.pending = (index, tiles.put(tiles.blank(canvas.weight), every), (...,))


def _draw_sharp(state: _Canvas, tiles: _Tiles, index: int, radius: float, lens: Lens, origin: tuple[int, int],
                frame: tuple[int, int]) -> None:
    """Draw a layer near the focus (scale 1) on the tiles it reaches, exactly as the module doc describes."""
    pick = tiles.reached_by(index)
    t, image = tiles.t[pick], tiles.image[pick]
    own, _ = _share(t, index, index)
    if len(pick) == 0 or float(own.max()) <= 0.0:
        return
    h, w = tiles.size
    halo = tiles.halo
    kernel = psf(lens.aperture, radius)
    half = kernel.shape[-1] // 2
    # The tiles with as much of their halo as this kernel reaches.
    reach = (..., slice(halo - half, TILE + halo + half), slice(halo - half, TILE + halo + half))
    stack = torch.cat([own[reach] * image[reach], own[reach]], dim=1)
    if lens.aperture.cat_eye > 0 and half > 0:
        out = _blur_tiles_cat_eye(stack, tiles.rows[pick] + origin[0], tiles.cols[pick] + origin[1], lens, radius,
                                  frame)
    elif half > 0:
        out = _depthwise(stack, kernel)
    else:
        out = stack
    fy, fx = _frame_fractions(kernel, (h, w), 1, origin, frame)
    out = out / tiles.frame_weights(fy.to(out), fx.to(out), pick)
    state.draw(index, out[:, :3], out[:, 3:4].clamp_min(0.0), (pick,))


def _add_fill_pooled(fill: _Canvas, stack, nearer, radius: float, fs: int, origin, frame_origin, pad: int) -> None:
    """Extend a layer under the pixels that hide it, with colours pulled in from its visible pixels, weighted
    by how much of the layer is around, spread about as far as the layer's blur, into the ``fill`` canvas.
    The inputs are at scale ``fs``: ``stack`` holds the layer's premultiplied light clipped to its weight, and
    its weight, ``(1, 3 + 1, h, w)``; ``nearer`` its cover by nearer layers.

    The fill is a smooth guess: a box mean (with the variance of the layer's disk) spreads it, not the
    aperture's shape.
    """
    # The pull reaches twice ``pad`` (beyond ``pad`` nothing counts as present) on cells of the frame's grid.
    levels = max(1, math.ceil(math.log2(2 * pad / fs)))
    cells = 2 ** levels
    top, left = (frame_origin[0] // fs) % cells, (frame_origin[1] // fs) % cells
    h, w = stack.shape[-2:]
    grow = (left, -(left + w) % cells, top, -(top + h) % cells)
    colour = _push_pull(F.pad(stack, grow), levels)[..., top: top + h, left: left + w]
    # A layer is a likely thing to see behind a nearer one only where it is actually around.
    hidden = nearer * _box_mean(stack[:, 3:], max(1, math.ceil(pad / fs)))
    spread = round(0.87 * abs(radius) / fs)
    blurred = _box_mean(torch.cat([hidden * colour, hidden], dim=1), spread)
    values, window = fill.window(blurred, fs, origin)
    fill.light[window] += values[:, :3]
    fill.weight[window] += values[:, 3:4].clamp_min(0.0)


def _push_pull(stack: torch.Tensor, levels: int) -> torch.Tensor:
    """Colour everywhere within reach of the pixels where alpha > 0, from ``stack``: premultiplied colour and
    alpha, ``(1, 3 + 1, h, w)``. Each hole takes the colour of the nearest content, blended smoothly (pull
    ``levels`` halvings down, then composite each level over the coarser one). The grid's sides must be
    multiples of ``2 ** levels``; placed on the frame's grid, every level's cells are then the frame's, and
    blocks of a frame agree.
    """
    pyramid = [stack]
    for _ in range(levels):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    top = _resample(pyramid.pop(), 2)
    # The coarsest level is interpolated normalised: an empty cell borrows from its neighbours.
    colour = top[:, :3] / top[:, 3:].clamp_min(1e-12)
    for level in reversed(pyramid):
        alpha = level[:, 3:]
        # Normalised colour where the level has content, the coarser estimate elsewhere.
        colour = torch.lerp(colour, level[:, :3] / alpha.clamp_min(1e-12), (alpha * 4.0).clamp_(max=1.0))
        if level is not stack:
            colour = _resample(colour, 2)
    return colour


def _box_mean(x: torch.Tensor, reach: int) -> torch.Tensor:
    """Mean over the ``2 reach + 1`` square around each cell, of the cells inside the grid: separable, from
    running sums, so its cost does not grow with ``reach``."""
    if reach <= 0:
        return x
    span = 2 * reach + 1
    for dim in (-2, -1):
        n = x.shape[dim]
        # Zeros around the grid add nothing: a window's sum is the difference of two running sums.
        sums = torch.cumsum(F.pad(x, (reach + 1, reach) if dim == -1 else (0, 0, reach + 1, reach)), dim=dim)
        total = sums.narrow(dim, span, n) - sums.narrow(dim, 0, n)
        index = torch.arange(n, device=x.device)
        count = ((index + reach + 1).clamp(max=n) - (index - reach).clamp(min=0)).to(x.dtype)
        x = total.div_(count[:, None] if dim == -2 else count)
    return x


def _depthwise(x: torch.Tensor, kernel: torch.Tensor, strip: int = 64) -> torch.Tensor:
    """Valid true convolution of every channel of ``(N, C, H, W)`` with one ``(k, k)`` kernel.

    The batch, and tall images cut into overlapping strips of ``strip`` output rows, are folded into the
    channels: on the CPU a depthwise convolution of one image with many small channels runs several times
    faster than the same work as a batch, or as one large image with few channels.
    """
    n, c, h, w = x.shape
    k = kernel.shape[-1]
    rows = h - k + 1
    m = -(-rows // strip) if rows > 2 * strip else 1
    if m > 1:
        x = F.pad(x, (0, 0, 0, m * strip + k - 1 - h)).unfold(2, strip + k - 1, strip).transpose(-2, -1)
    x = x.reshape(1, -1, x.shape[-2], w)
    weight = kernel.flip(0, 1).to(x).expand(x.shape[1], 1, k, k)
    out = F.conv2d(x, weight, groups=x.shape[1])
    return out.view(n, c, -1, w - k + 1)[:, :, :rows]


def _by_bands(fn, rows: int, *maps: torch.Tensor) -> torch.Tensor:
    """``fn`` of full-size ``maps``, computed on bands of ``rows`` rows and stacked back: the same as
    ``fn(*maps)`` for a ``fn`` that works row by row (or on whole cells of ``rows``), but each band's
    intermediate results stay in the processor's cache; a chain of simple operations on whole images is
    bound by memory traffic, and runs two to three times faster this way."""
    h = maps[0].shape[-2]
    if h <= rows:
        return fn(*maps)
    return torch.cat([fn(*(x[..., y: y + rows, :] for x in maps)) for y in range(0, h, rows)], dim=-2)


def _pool(x: torch.Tensor, s: int) -> torch.Tensor:
    return x if s == 1 else F.avg_pool2d(x, s, stride=s, ceil_mode=True)


def _resample(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resampling by ``factor`` on grids that share their origin (cell ``i`` of a grid of scale
    ``s`` covers ``[s i, s (i + 1))``): ``factor = s_from / s_to``."""
    if factor == 1:
        return x
    if factor < 1:
        return F.avg_pool2d(x, round(1 / factor), ceil_mode=True)
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False,
                         recompute_scale_factor=False)


def _fft_size(n: int) -> int:
    """The smallest ``m >= n`` whose prime factors are 2, 3 and 5: FFTs of such sizes are fast."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _convolve(x: torch.Tensor, kernel: torch.Tensor, support: torch.Tensor | None = None) -> torch.Tensor:
    """True 2-D convolution (``out[y] = sum_o k[o] x[y - o]``) of ``(1, C, H, W)``, zero outside the frame.

    ``support``: an ``(H, W)`` mask outside which ``x`` is zero. A layer is often a thin band across its
    window; then only the strips of cells holding it are convolved, and their results added up.
    """
    k = kernel.shape[-1]
    half = k // 2
    if k == 1:
        return x * float(kernel[0, 0])
    if k <= 7:
        return _depthwise(F.pad(x, (half, half, half, half)), kernel)
    h, w = x.shape[-2:]
    size = (_fft_size(h + 2 * half), _fft_size(w + 2 * half))
    if support is not None:
        strips = _strips(support)
        if sum(_fft_area(STRIP + 2 * half, length * STRIP + 2 * half) for *_, length in strips) < size[0] * size[1]:
            return _convolve_strips(x, kernel, strips)
    return _fft_convolve(x, kernel, size)[..., half: half + h, half: half + w]


# Height of the strips of cells a sparse layer is convolved in (pixels at its scale).
STRIP = 32


def _fft_area(h: int, w: int) -> int:
    return _fft_size(h) * _fft_size(w)


def _fft_convolve(x: torch.Tensor, kernel: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Full linear convolution of ``(N, C, h, w)`` by FFTs of ``size``: ``out[y + half]`` gathers around
    ``x[y]``, ``h + k - 1`` rows (and columns) of it are valid."""
    k = kernel.shape[-1]
    spectrum = torch.fft.rfft2(x, s=size)
    kpad = torch.zeros(size, dtype=x.dtype, device=x.device)
    kpad[:k, :k] = kernel.to(x)
    return torch.fft.irfft2(spectrum * torch.fft.rfft2(kpad), s=size)


def _strips(support: torch.Tensor) -> list[tuple[int, int, int]]:
    """Runs of ``STRIP``-square cells holding some of ``support``: ``(cell row, first cell column, length)``."""
    cells = F.max_pool2d(support[None, None].to(torch.float32), STRIP, ceil_mode=True)[0, 0] > 0
    # A run starts where a held cell follows an empty one and ends where an empty one follows a held one.
    edges = torch.diff(F.pad(cells.to(torch.int8), (1, 1)), dim=1)
    starts, ends = torch.nonzero(edges == 1).tolist(), torch.nonzero(edges == -1).tolist()
    return [(row, first, end - first) for (row, first), (_, end) in zip(starts, ends)]


def _convolve_strips(x: torch.Tensor, kernel: torch.Tensor, strips) -> torch.Tensor:
    """:func:`_convolve` of an ``x`` that is zero outside the given ``strips`` (see :func:`_strips`):
    strips of one length are convolved together, and their full results overlap-added."""
    k = kernel.shape[-1]
    half = k // 2
    h, w = x.shape[-2:]
    rows, cols = -(-h // STRIP), -(-w // STRIP)
    x = F.pad(x, (0, cols * STRIP - w, 0, rows * STRIP - h))
    out = x.new_zeros(x.shape[:2] + (rows * STRIP + 2 * half, cols * STRIP + 2 * half))
    for length in sorted({strip[2] for strip in strips}):
        group = [(row * STRIP, first * STRIP) for row, first, n in strips if n == length]
        span = length * STRIP
        stack = torch.cat([x[..., y: y + STRIP, x0: x0 + span] for y, x0 in group])
        full = _fft_convolve(stack, kernel, (_fft_size(STRIP + k - 1), _fft_size(span + k - 1)))
        for (y, x0), part in zip(group, full[..., : STRIP + k - 1, : span + k - 1]):
            out[..., y: y + STRIP + k - 1, x0: x0 + span + k - 1] += part
    return out[..., half: half + h, half: half + w]


def _blur(stack: torch.Tensor, lens: Lens, radius: float, s: int, origin: tuple[int, int],
          frame: tuple[int, int], support: torch.Tensor | None = None) -> torch.Tensor:
    """Blur a layer's ``(1, C, h, w)`` stack (at scale ``s``, top-left ``origin`` in the frame) with its PSF;
    ``support`` as in :func:`_convolve`."""
    if lens.aperture.cat_eye <= 0:
        return _convolve(stack, psf(lens.aperture, radius / s), support)
    h, w = stack.shape[-2:]
    # Frame position of every coarse pixel's centre.
    ys = origin[0] + (torch.arange(h, dtype=stack.dtype, device=stack.device) + 0.5) * s
    xs = origin[1] + (torch.arange(w, dtype=stack.dtype, device=stack.device) + 0.5) * s
    grid = cat_eye_grid(lens.aperture.cat_eye, ys, xs, frame)
    out = torch.zeros_like(stack)
    for i, wy in enumerate(grid.rows):
        if float(wy.max()) <= 0:
            continue
        for j, wx in enumerate(grid.cols):
            if float(wx.max()) <= 0:
                continue
            kernel = psf(lens.aperture, radius / s, offset=grid.offsets[i][j])
            out += _convolve(stack, kernel, support) * (wy[:, None] * wx[None, :])
    return out


def _blur_tiles_cat_eye(stack, rows, cols, lens: Lens, radius: float, frame) -> torch.Tensor:
    """Valid convolution of tile stacks (their pixels' frame ``rows`` and ``cols``) with the cat-eye kernels,
    blended between anchors as :func:`_blur`."""
    grid = cat_eye_grid(lens.aperture.cat_eye, rows.to(stack.dtype) + 0.5, cols.to(stack.dtype) + 0.5, frame)
    out = stack.new_zeros((stack.shape[0], stack.shape[1], TILE, TILE))
    for i, wy in enumerate(grid.rows):          # (tiles, TILE)
        for j, wx in enumerate(grid.cols):
            pick = torch.nonzero((wy.amax(dim=1) > 0) & (wx.amax(dim=1) > 0), as_tuple=True)[0]
            if len(pick) == 0:
                continue
            kernel = psf(lens.aperture, radius, offset=grid.offsets[i][j])
            grow = (kernel.shape[-1] // 2) - (stack.shape[-1] - TILE) // 2      # a smaller kernel: crop less
            part = stack[pick]
            if grow < 0:
                part = part[..., -grow: part.shape[-2] + grow, -grow: part.shape[-1] + grow]
            part = _depthwise(part, kernel)
            out[pick] += part * (wy[pick][:, None, :, None] * wx[pick][:, None, None, :])
    return out


def _frame_fractions(kernel: torch.Tensor, shape: tuple[int, int], s: int, origin: tuple[int, int],
                     frame: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Share of the kernel's light that each row and each column of a grid gathers from inside the frame.

    Near the frame's border a blur only gathers light from inside it; dividing by the product of the row
    and column fractions (exact along straight borders, close at corners) keeps the border's brightness.
    The grid has ``shape`` cells of ``s`` pixels, its top-left at ``origin`` in the frame. Edges of a crop
    that lie inside the frame are not borders.
    """
    k = kernel.shape[-1]
    half = k // 2
    rows = kernel.sum(dim=1).to(torch.float32)   # light falling dy = i - half rows away
    cols = kernel.sum(dim=0).to(torch.float32)

    def fraction(weights: torch.Tensor, n: int, start: int, limit: int) -> torch.Tensor:
        # Coarse pixel i sits at frame position (start + (i + 0.5) * s); it gathers from offsets -half..half
        # (in coarse pixels), each of which must land inside [0, limit).
        pos = (start + (torch.arange(n, dtype=torch.float32) + 0.5) * s)[:, None]
        offsets = (torch.arange(k, dtype=torch.float32) - half)[None, :] * s
        inside = ((pos - offsets) >= 0) & ((pos - offsets) < limit)
        return (inside.float() * weights.flip(0)[None, :]).sum(dim=1).clamp_min(1e-6)

    return (fraction(rows, shape[0], origin[0], frame[0]).to(kernel.device),
            fraction(cols, shape[1], origin[1], frame[1]).to(kernel.device))


def _renormalise_borders(x: torch.Tensor, kernel: torch.Tensor, s: int, origin: tuple[int, int],
                         frame: tuple[int, int]) -> None:
    """Divide, in place, the rows and columns of a blurred grid near the frame's border by the share of the
    kernel's light they gather from inside the frame (see :func:`_frame_fractions`)."""
    half = kernel.shape[-1] // 2
    if all(start + (0.5 - half) * s >= 0 and start + (n - 0.5 + half) * s < limit
           for start, n, limit in zip(origin, x.shape[-2:], frame)):
        return      # no border within the kernel's reach
    fy, fx = _frame_fractions(kernel, x.shape[-2:], s, origin, frame)
    for dim, f in ((-2, fy), (-1, fx)):
        short = torch.nonzero(f < 1.0).flatten()
        if len(short) == 0:
            continue
        f = f.to(x)
        for part in (short[short < len(f) // 2], short[short >= len(f) // 2]):
            if len(part):
                lo, hi = int(part.min()), int(part.max()) + 1
                view = x.narrow(dim, lo, hi - lo)
                view /= f[lo:hi, None] if dim == -2 else f[lo:hi]
