"""The layered renderer: fast, occlusion-aware bokeh for photos.

The disparity range is cut into layers whose CoC radii are close enough that a blend of two neighbours is
indistinguishable from the radius in between (``min_step`` pixels apart near focus, ``ratio`` of the radius
farther out). A pixel belongs to its two nearest layers with linear ("hat") weights, so blur varies
continuously with disparity: no banding on a ground plane.

Compositing follows the reference model (:mod:`lensblur.render.scatter`) layer by layer, nearest first:
each layer's blurred light passes in the proportion of the view not yet covered by nearer layers,
``1 - min(1, coverage of nearer layers)``, so a nearer surface hides a farther one by its coverage. The
immediate neighbour does not count as nearer: a pixel between two layers is split over both (that is
what makes blur continuous) and is one surface, which must not hide half of itself. Each layer is also extended under the
pixels that hide it, with colours pulled in from its own visible pixels (a push-pull pyramid); where the
view is not fully covered by visible light (behind the soft edge of a blurred foreground, or near a hole
left by a sharp one) those hidden-part estimates fill the remainder, each weighted by how much of its layer
is present nearby (what continues behind a surface is most likely what is around it). So:

- a sharp foreground over a blurred background: no foreground colour bleeds into the background and no
  blurred background leaks over the foreground;
- a blurred foreground spreads semi-transparently over what is behind it, and behind its soft edge one
  sees the filled-in background, not smeared foreground.

Each layer is blurred with its aperture-shaped point-spread function at a reduced scale ``s`` (so that the
kernel is about ``coarse_radius`` pixels there) through an FFT, with the borders renormalised, and is
upsampled back for compositing. Memory stays at a few full-size buffers per layer: a 24-megapixel photo
fits in a few gigabytes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..lens import Lens
from .kernel import psf

__all__ = ["layer_radii", "render_layered"]


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
    hi = torch.bucketize(coc, r).clamp(1, len(r) - 1)
    lo = hi - 1
    frac = ((coc - r[lo]) / (r[hi] - r[lo])).clamp(0.0, 1.0)
    return lo.to(coc.dtype) + frac


def _pool(x: torch.Tensor, s: int) -> torch.Tensor:
    return x if s == 1 else F.avg_pool2d(x, s, stride=s, ceil_mode=True)


def _unpool(x: torch.Tensor, s: int, size: tuple[int, int]) -> torch.Tensor:
    if s == 1:
        return x
    up = F.interpolate(x, size=(x.shape[-2] * s, x.shape[-1] * s), mode="bilinear", align_corners=False)
    return up[..., : size[0], : size[1]]


def _push_pull(premultiplied: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Colour everywhere from the pixels where ``alpha > 0``: each hole takes the colour of the nearest
    content, blended smoothly (pull the pyramid down, then composite each level over the coarser one).
    """
    levels = [(premultiplied, alpha)]
    while min(levels[-1][1].shape[-2:]) > 1:
        p, a = levels[-1]
        levels.append((F.avg_pool2d(p, 2, ceil_mode=True), F.avg_pool2d(a, 2, ceil_mode=True)))
    p, a = levels[-1]
    colour = p / a.clamp_min(1e-12)
    for p, a in reversed(levels[:-1]):
        up = F.interpolate(colour, size=p.shape[-2:], mode="bilinear", align_corners=False)
        # Normalised colour where the level has content, the coarser estimate elsewhere.
        weight = (a * 4.0).clamp(max=1.0)
        colour = weight * (p / a.clamp_min(1e-12)) + (1.0 - weight) * up
    return colour


def _frame_coverage(kernel: torch.Tensor, shape: tuple[int, int], s: int, origin: tuple[int, int],
                    frame: tuple[int, int]) -> torch.Tensor:
    """Fraction of each output pixel's kernel that falls inside the frame, ``(1, 1, h, w)``.

    Near the frame's border a blur only gathers light from inside it; dividing by this fraction keeps
    the border's brightness. Taken as the product of the row and column fractions (exact along straight
    borders, close at corners). Edges of a crop that lie inside the frame are not borders.
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

    fy = fraction(rows, shape[0], origin[0], frame[0])
    fx = fraction(cols, shape[1], origin[1], frame[1])
    return (fy[:, None] * fx[None, :])[None, None].to(kernel.device)


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


def _scale(radius: float, coarse_radius: float) -> int:
    """Downscale factor for a layer: full resolution for small kernels (radius <= 4 px), otherwise about
    ``coarse_radius`` pixels of kernel radius at the reduced scale (at least 2)."""
    r = abs(radius)
    if r <= 4.0:
        return 1
    return max(2, int(r / coarse_radius))


def _convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """True 2-D convolution (``out[y] = sum_o k[o] x[y - o]``) of ``(1, C, H, W)``, zero outside the frame."""
    k = kernel.shape[-1]
    half = k // 2
    if k == 1:
        return x * float(kernel[0, 0])
    if k <= 7:
        weight = kernel.flip(0, 1).to(x).expand(x.shape[1], 1, k, k)
        return F.conv2d(F.pad(x, (half, half, half, half)), weight, groups=x.shape[1])
    h, w = x.shape[-2:]
    size = (_fft_size(h + 2 * half), _fft_size(w + 2 * half))
    spectrum = torch.fft.rfft2(x, s=size)
    kpad = torch.zeros(size, dtype=x.dtype, device=x.device)
    kpad[:k, :k] = kernel.to(x)
    out = torch.fft.irfft2(spectrum * torch.fft.rfft2(kpad), s=size)
    return out[..., half: half + h, half: half + w]


# Optical vignetting (cat-eye) changes the kernel across the frame: kernels are made for a grid of anchor
# positions and blended bilinearly between them.
CAT_EYE_ANCHORS = 5


def _blur(stack: torch.Tensor, lens: Lens, radius: float, s: int, origin: tuple[int, int],
          frame: tuple[int, int]) -> torch.Tensor:
    """Blur a layer's ``(1, C, h, w)`` stack (at scale ``s``, top-left ``origin`` in the frame) with its PSF."""
    if lens.aperture.cat_eye <= 0:
        return _convolve(stack, psf(lens.aperture, radius / s))
    h, w = stack.shape[-2:]
    fh, fw = frame
    half_diag = 0.5 * math.hypot(fw, fh)
    # Frame position (pixels from the centre) of every coarse pixel, and its place on the anchor grid.
    ys = (origin[0] + (torch.arange(h, dtype=stack.dtype, device=stack.device) + 0.5) * s) - fh / 2
    xs = (origin[1] + (torch.arange(w, dtype=stack.dtype, device=stack.device) + 0.5) * s) - fw / 2
    n = CAT_EYE_ANCHORS
    gy = ((ys / (fh / 2)).clamp(-1, 1) + 1) * (n - 1) / 2
    gx = ((xs / (fw / 2)).clamp(-1, 1) + 1) * (n - 1) / 2
    out = torch.zeros_like(stack)
    for i in range(n):
        wy = (1 - (gy - i).abs()).clamp(min=0)
        if float(wy.max()) <= 0:
            continue
        for j in range(n):
            wx = (1 - (gx - j).abs()).clamp(min=0)
            if float(wx.max()) <= 0:
                continue
            py = (i / (n - 1) * 2 - 1) * fh / 2
            px = (j / (n - 1) * 2 - 1) * fw / 2
            offset = (-2 * lens.aperture.cat_eye * px / half_diag, -2 * lens.aperture.cat_eye * py / half_diag)
            out += _convolve(stack, psf(lens.aperture, radius / s, offset=offset)) * (wy[:, None] * wx[None, :])
    return out


def render_layered(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, *, coarse_radius: float = 12.0,
                   min_step: float = 1.0, ratio: float = 0.1, tile_pixels: int = 6_000_000) -> torch.Tensor:
    """Render ``(B, 3, H, W)`` linear RGB with ``(B, 1, H, W)`` disparity (see the module doc).

    ``coarse_radius``: the kernel radius (pixels) a layer is blurred at after downscaling; larger is more
    faithful to the aperture's shape and slower. ``min_step`` and ``ratio`` set the layer spacing. Frames
    larger than ``tile_pixels`` are rendered in bands of rows that overlap by twice the reach of the
    largest CoC, so memory stays bounded whatever the size.
    """
    options = {"coarse_radius": coarse_radius, "min_step": min_step, "ratio": ratio}
    return torch.cat([_render_tiled(image[i:i + 1], disparity[i:i + 1], lens, tile_pixels, options)
                      for i in range(image.shape[0])])


def _render_tiled(image, disparity, lens: Lens, tile_pixels: int, options) -> torch.Tensor:
    h, w = image.shape[-2:]
    reach = lens.blur * float((disparity - lens.focus_disparity).abs().max())
    overlap = 2 * (math.ceil(reach) + 2) + 8        # what a kept pixel's light, fill and presence depend on
    rows = max(1, tile_pixels // max(1, w) - 2 * overlap)
    if h * w <= tile_pixels or rows >= h:
        return _render_one(image, disparity, lens, frame=(h, w), row0=0, **options)
    out = torch.empty_like(image)
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        a, b = max(0, top - overlap), min(h, bottom + overlap)
        band = _render_one(image[..., a:b, :], disparity[..., a:b, :], lens, frame=(h, w), row0=a, **options)
        out[..., top:bottom, :] = band[..., top - a: bottom - a, :]
    return out


def _support(tmin: torch.Tensor, tmax: torch.Tensor, index: int, pad: int, size: int) -> tuple[int, int]:
    """Rows (or columns) that may hold pixels of layer ``index`` (``index - 1 < t < index + 1``), padded."""
    hit = torch.nonzero((tmax > index - 1) & (tmin < index + 1))
    if hit.numel() == 0:
        return 0, 0
    return max(0, int(hit[0]) - pad), min(size, int(hit[-1]) + 1 + pad)


# ---------------------------------------------------------------------------------------------------------
# Scales. A layer with a CoC radius above 4 px is blurred at a reduced scale ``s``; its light is composited
# on a canvas at half resolution (COARSE) unless it sits between sharp layers, and only the layers near
# focus are composited at full resolution.

COARSE = 2

# The hidden-background fill is smooth by nature; it is computed at this many times coarser scale at least.
FILL_SCALE = 4


def _align(lo: int, unit: int) -> int:
    return lo - lo % unit


def _resample(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resampling by ``factor`` on grids that share their origin (cell ``i`` of a grid of scale
    ``s`` covers ``[s i, s (i + 1))``): ``factor = s_from / s_to``."""
    if factor == 1:
        return x
    if factor < 1:
        return F.avg_pool2d(x, round(1 / factor), ceil_mode=True)
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False,
                         recompute_scale_factor=False)


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

    def window(self, x: torch.Tensor, x_scale: int, origin: tuple[int, int]):
        """``x`` (at ``x_scale``, top-left ``origin`` in pixels) resampled to this canvas, with its window."""
        x = _resample(x, x_scale / self.scale)
        cy, cx = origin[0] // self.scale, origin[1] // self.scale
        n, m = min(x.shape[-2], self.shape[0] - cy), min(x.shape[-1], self.shape[1] - cx)
        return x[..., :n, :m], (..., slice(cy, cy + n), slice(cx, cx + m))

    def draw(self, index: int, light: torch.Tensor, alpha: torch.Tensor, window) -> None:
        if self.pending is not None and self.pending[0] != index + 1:
            self.settle()
        passed = (1.0 - self.covered[window]).clamp(0.0, 1.0)
        self.light[window] += light * passed
        self.weight[window] += alpha * passed
        self.settle()
        self.pending = (index, alpha, window)

    def settle(self) -> None:
        if self.pending is not None:
            self.covered[self.pending[2]] += self.pending[1]
            self.pending = None

    def rescaled(self, scale: int) -> "_Canvas":
        """The same composite on a canvas of another scale (the pending alpha carried over)."""
        if scale == self.scale:
            return self
        other = _Canvas(scale, self.size, self.light)
        factor = self.scale / scale
        for name in ("light", "weight", "covered"):
            value = _resample(getattr(self, name), factor)
            setattr(other, name, value[..., : other.shape[0], : other.shape[1]].contiguous())
        if self.pending is not None:
            index, alpha, window = self.pending
            origin = (window[1].start * self.scale, window[2].start * self.scale)
            other.pending = (index,) + other.window(alpha, self.scale, origin)
        return other


class _Layers:
    """Each layer's own weight, premultiplied light and cover by nearer layers, at the layer's scale.

    Near the focus (scale 1) they are exact. Blurred layers come in runs of one scale on one side of the
    focus; a run is pooled to its scale once, keeping per cell its total weight, light, mean position between
    the layers and the cover by layers nearer than the run, and the cell's weight is shared among the run's
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
        y0, y1, x0, x1 = self.windows[index]
        s = self.scales[index]
        if s == 1:
            tc = self.t[..., y0:y1, x0:x1]
            nearer = (tc - index).clamp(0.0, 1.0)
            own = (tc - index + 1.0).clamp(0.0, 1.0) - nearer
            return own, own * self.image[..., y0:y1, x0:x1], nearer
        run = self.run_of[index]
        if self._run is None or self._run[0] != run:
            self._run = (run,) + self._pool_run(*run, s)
        _, (gy, gx), light, weight, position, beyond, drawn = self._run
        share = (1.0 - (position - index).abs()).clamp_min(0.0)
        own, light = weight * share, light * share
        nearer = beyond + drawn
        drawn += own        # the next layer of the run is farther: this one is nearer than it
        window = (..., slice((y0 - gy) // s, (y0 - gy) // s + -(-(y1 - y0) // s)),
                  slice((x0 - gx) // s, (x0 - gx) // s + -(-(x1 - x0) // s)))
        return own[window], light[window], nearer[window]

    def _pool_run(self, first: int, last: int, s: int):
        members = [self.windows[i] for i in range(first, last + 1) if self.windows[i] is not None]
        gy, gx = min(m[0] for m in members), min(m[2] for m in members)
        gy1, gx1 = max(m[1] for m in members), max(m[3] for m in members)
        t = self.t[..., gy:gy1, gx:gx1]
        beyond = (t - last).clamp(0.0, 1.0)                     # cover by the layers nearer than the run
        weight = (t - first + 1.0).clamp(0.0, 1.0) - beyond     # the run's share of each pixel
        pooled = _pool(torch.cat([weight * self.image[..., gy:gy1, gx:gx1], weight, weight * t, beyond], 1), s)
        light, weight = pooled[:, :3], pooled[:, 3:4]
        position = (pooled[:, 4:5] / weight.clamp_min(1e-12)).clamp(first, last)
        return (gy, gx), light, weight, position, pooled[:, 5:6], torch.zeros_like(weight)


def _add_fill(fill: "_Canvas", own, light, nearer, lens: Lens, radius: float, s: int, origin, frame_origin,
              frame, pad: int) -> None:
    """Extend a layer under the pixels that hide it, with colours pulled in from its visible pixels, weighted
    by how much of the layer is around, blurred like the layer, into the ``fill`` canvas."""
    step = max(1, math.ceil(FILL_SCALE / s))      # the fill's scale is a multiple of the layer's
    fs = s * step
    own_f = _pool(own, step)
    # The guess of a hidden background is made from ordinary colours: a light's HDR energy (premultiplied
    # colour above its alpha) would otherwise glow out of it.
    colour = _push_pull(_pool(torch.minimum(light, own), step), own_f)
    # A layer is a likely thing to see behind a nearer one only where it is actually around: a box mean of
    # its weight, separable (rows then columns; border-aware counts factor the same way).
    reach = max(1, math.ceil(pad / fs))
    presence = F.avg_pool2d(own_f, (2 * reach + 1, 1), stride=1, padding=(reach, 0), count_include_pad=False)
    presence = F.avg_pool2d(presence, (1, 2 * reach + 1), stride=1, padding=(0, reach), count_include_pad=False)
    hidden = _pool(nearer, step) * presence
    blurred = _blur(torch.cat([hidden * colour, hidden], dim=1), lens, radius, fs, frame_origin, frame)
    blurred = blurred / _frame_coverage(psf(lens.aperture, radius / fs), blurred.shape[-2:], fs, frame_origin,
                                        frame).to(blurred)
    values, window = fill.window(blurred, fs, origin)
    fill.light[window] += values[:, :3]
    fill.weight[window] += values[:, 3:4].clamp_min(0.0)


def _render_one(image, disparity, lens: Lens, *, frame: tuple[int, int], row0: int, coarse_radius: float,
                min_step: float, ratio: float):
    """Render one band of rows starting at frame row ``row0`` (the whole frame when ``row0 = 0`` and the
    band is ``frame`` high); borders and cat-eye positions are those of the frame."""
    h, w = image.shape[-2:]
    coc = lens.blur * (disparity.to(torch.float32) - lens.focus_disparity)
    low, high = float(coc.min()), float(coc.max())
    if max(abs(low), abs(high)) < 1e-3:
        return image.clone()
    radii = layer_radii(low, high, min_step=min_step, ratio=ratio)
    scales = [_scale(float(r), coarse_radius) for r in radii]
    t = _fractional_index(coc, radii).to(image.dtype)
    t_rows = (t[0, 0].amin(dim=1), t[0, 0].amax(dim=1))
    t_cols = (t[0, 0].amin(dim=0), t[0, 0].amax(dim=0))
    # Light of a layer reaches at most its own radius away; its hidden-background fill may serve any
    # pixel that a blurred edge of any layer reaches.
    pad = math.ceil(max(abs(low), abs(high))) + 2

    def window_of(index: int) -> tuple[int, int, int, int] | None:
        s = scales[index]
        unit = 2 * s * max(1, math.ceil(FILL_SCALE / s))     # origins shared by the layer's, fill's, canvas grids
        y0, y1 = _support(*t_rows, index, pad, h)
        x0, x1 = _support(*t_cols, index, pad, w)
        if y1 <= y0 or x1 <= x0:
            return None
        return _align(y0, unit), y1, _align(x0, unit), x1

    windows = [window_of(i) for i in range(len(radii))]
    layers = _Layers(t, image, radii, scales, windows)
    fill = _Canvas(COARSE, (h, w), image)   # hidden-background estimates: light and weight, no occlusion
    canvas = None          # the composite: at COARSE for blurred layers in front of the focus, else full size
    behind = None          # blurred layers behind the focus: (canvas at COARSE, what passes the layers in front)
    drawn_behind = False
    for index in reversed(range(len(radii))):
        if windows[index] is None:
            continue
        radius, s = float(radii[index]), scales[index]
        y0, y1, x0, x1 = windows[index]
        own, light, nearer = layers.layer(index)
        if float(own.max()) <= 0.0:
            continue
        origin = (y0, x0)
        frame_origin = (row0 + y0, x0)
        blurred = _blur(torch.cat([light, own], dim=1), lens, radius, s, frame_origin, frame)
        blurred = blurred / _frame_coverage(psf(lens.aperture, radius / s), blurred.shape[-2:], s, frame_origin,
                                            frame).to(blurred)
        if float(nearer.max()) > 0.0:
            _add_fill(fill, own, light, nearer, lens, radius, s, origin, frame_origin, frame, pad)

        if behind is not None:                       # only blurred layers behind the focus are left
            target = behind[0]
        elif s > 1 and radius > 0:                   # blurred, in front of the focus
            canvas = canvas or _Canvas(COARSE, (h, w), image)
            target = canvas
        elif s == 1 or not drawn_behind:             # near the focus, or the first blurred layer behind it
            canvas = _Canvas(1, (h, w), image) if canvas is None else canvas.rescaled(1)
            target = canvas
        else:
            # Only blurred layers are left: they are composited at COARSE, and what the layers in front let
            # pass is applied once at the end (covers in front of and among them combine as independent).
            coarse = _Canvas(COARSE, (h, w), image)
            i, alpha, window = canvas.pending
            coarse.pending = (i,) + coarse.window(alpha, 1, (window[1].start, window[2].start))
            canvas.pending = None
            behind = (coarse, (1.0 - canvas.covered).clamp(0.0, 1.0))
            target = coarse
        drawn_behind = drawn_behind or radius < 0
        values, window = target.window(blurred, s, origin)
        target.draw(index, values[:, :3], values[:, 3:4].clamp_min(0.0), window)

    if canvas is None:
        return image.clone()
    if canvas.scale != 1:
        canvas = canvas.rescaled(1)
    light, weight = canvas.light, canvas.weight
    if behind is not None:
        coarse, passed = behind
        up = coarse.rescaled(1)
        light = light + passed * up.light
        weight = weight + passed * up.weight
    fill = fill.rescaled(1)
    # Where the view is not fully covered (behind a blurred edge, under a hole left by a nearer object),
    # the remainder shows the layers' filled-in hidden parts.
    remainder = (1.0 - weight).clamp(0.0, 1.0)
    has_fill = fill.weight > 1e-6
    fill_colour = fill.light / fill.weight.clamp_min(1e-6)
    filled = light / weight.clamp_min(1.0) + remainder * fill_colour
    normalised = light / weight.clamp_min(1e-6)
    return torch.where(has_fill, filled, normalised)
