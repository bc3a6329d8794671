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
left by a sharp one) that hidden-background estimate fills the remainder. So:

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

__all__ = ["render_layered", "layer_radii"]


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
    r = radii.to(coc.dtype)
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


def _convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """True 2-D convolution (``out[y] = sum_o k[o] x[y - o]``) of ``(1, C, H, W)``, zero outside the frame."""
    k = kernel.shape[-1]
    half = k // 2
    if k == 1:
        return x * kernel[0, 0]
    if k <= 7:
        weight = kernel.flip(0, 1).to(x.dtype).expand(x.shape[1], 1, k, k)
        return F.conv2d(F.pad(x, (half, half, half, half)), weight, groups=x.shape[1])
    h, w = x.shape[-2:]
    size = (h + 2 * half, w + 2 * half)
    spectrum = torch.fft.rfft2(F.pad(x, (0, 2 * half, 0, 2 * half)), s=size)
    kpad = torch.zeros(size, dtype=x.dtype)
    kpad[:k, :k] = kernel.to(x.dtype)
    out = torch.fft.irfft2(spectrum * torch.fft.rfft2(kpad), s=size)
    return out[..., half: half + h, half: half + w]


def render_layered(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, *, coarse_radius: float = 6.0,
                   min_step: float = 1.0, ratio: float = 0.15) -> torch.Tensor:
    """Render ``(B, 3, H, W)`` linear RGB with ``(B, 1, H, W)`` disparity (see the module doc).

    ``coarse_radius``: the kernel radius (pixels) a layer is blurred at after downscaling; larger is more
    faithful to the aperture's shape and slower. ``min_step`` and ``ratio`` set the layer spacing.
    """
    return torch.cat([_render_one(image[i:i + 1], disparity[i:i + 1], lens, coarse_radius, min_step, ratio)
                      for i in range(image.shape[0])])


def _render_one(image, disparity, lens: Lens, coarse_radius: float, min_step: float, ratio: float):
    h, w = image.shape[-2:]
    coc = lens.blur * (disparity.to(torch.float32) - lens.focus_disparity)
    low, high = float(coc.min()), float(coc.max())
    if max(abs(low), abs(high)) < 1e-3:
        return image.clone()
    radii = layer_radii(low, high, min_step=min_step, ratio=ratio)
    t = _fractional_index(coc, radii)
    zeros1 = torch.zeros_like(disparity, dtype=image.dtype)
    light, weight = torch.zeros_like(image), zeros1.clone()
    # Coverage by the layers at least two steps nearer: a pixel shared by two neighbouring layers is
    # one surface, and must not hide half of itself.
    covered, adjacent, adjacent_index = zeros1.clone(), zeros1.clone(), None
    fill_light, fill_weight = torch.zeros_like(image), zeros1.clone()
    # Nearest layer first: what is nearer hides what is farther.
    for index in reversed(range(len(radii))):
        radius = float(radii[index])
        nearer = (t - index).clamp(0.0, 1.0)
        own = (t - index + 1.0).clamp(0.0, 1.0) - nearer
        if float(own.max()) <= 0.0:
            continue
        s = max(1, int(abs(radius) / coarse_radius))
        own_c, nearer_c = _pool(own, s), _pool(nearer, s)
        own_light = _pool(own * image, s)
        parts = [own_light, own_c]
        hidden = float(nearer_c.max()) > 0.0
        if hidden:
            fill = _push_pull(own_light, own_c)
            parts += [nearer_c * fill, nearer_c]
        stack = torch.cat(parts + [torch.ones_like(own_c)], dim=1)
        blurred = _convolve(stack, psf(lens.aperture, radius / s))
        blurred = _unpool(blurred[:, :-1] / blurred[:, -1:].clamp_min(1e-6), s, (h, w))
        alpha = blurred[:, 3:4].clamp_min(0.0)
        if adjacent_index is not None and adjacent_index != index + 1:
            covered += adjacent          # the last layer drawn was not this one's neighbour
            adjacent = zeros1
        passed = (1.0 - covered).clamp(0.0, 1.0)
        light += blurred[:, :3] * passed
        weight += alpha * passed
        covered += adjacent
        adjacent, adjacent_index = alpha, index
        if hidden:
            fill_light += blurred[:, 4:7]
            fill_weight += blurred[:, 7:8].clamp_min(0.0)
    # Where the view is not fully covered (behind a blurred edge, under a hole left by a nearer object),
    # the remainder shows the layers' filled-in hidden parts.
    remainder = (1.0 - weight).clamp(0.0, 1.0)
    has_fill = fill_weight > 1e-6
    fill_colour = fill_light / fill_weight.clamp_min(1e-6)
    filled = light / weight.clamp_min(1.0) + remainder * fill_colour
    normalised = light / weight.clamp_min(1e-6)
    return torch.where(has_fill, filled, normalised)
