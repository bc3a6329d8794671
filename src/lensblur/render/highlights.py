"""Clipped lights: find them in a display-referred photo and give them back the light the file cut off.

A camera records a street light or a lit window at white; spread over its circle of confusion, that white
becomes a dim grey disc where the real lens makes a bright one. This module finds the lights and raises
them to an estimate of their true energy before any renderer runs, so that every renderer turns a light
into the aperture's shape of the light's CoC (the shape follows from feeding an HDR region to the
renderer, exactly as an HDR point becomes the aperture in :mod:`lensblur.render.scatter`).

The steps, all in torch on ``(B, 3, H, W)`` linear RGB:

1. **Clipped pixels**: a pixel is clipped when its brightest channel is at the format's maximum within
   :data:`CLIP_CODE`: sRGB code 250 of 255 or above (linear >= :data:`CLIP_LEVEL`, 0.956). An exact 255
   would miss most clipped JPEG/HEIC pixels: the codec's quantisation ripples a flat white patch by a few
   codes, and chroma subsampling pulls a coloured light's channels down at its edge. A 16-bit file is
   held to the same level (a pixel at 98 % of full scale in a 16-bit file is taken as clipped).
2. **Regions**: 8-connected components of the clipped pixels (:func:`label_regions`, a label propagation
   over the rows' runs with pointer jumping, in torch so that the default render needs no extra package).
3. **Lights and surfaces**: a region is a light when it is small (at most :func:`max_light_area` pixels, a
   disc of 1 % of the longer side, at least :data:`MIN_LIGHT_RADIUS` px of radius) and compact (it fills at
   least :data:`MIN_FILL` of its bounding box, which is at most :data:`MAX_ASPECT` times longer than wide).
   Larger or thin regions (sky, white walls, paper, a specular edge) are surfaces that are only bright:
   they are left as they are.
4. **Brightness** (:func:`find_lights`): the image formation of a small light is a disc of radius ``r`` and
   radiance ``I`` (times white) integrated over the pixel squares, then clipped. Every pixel the disc covers
   by more than ``1 / I`` of its area clips, so the clipped set is, to a fraction of a pixel, the disc of
   radius ``r + 1/2 - 1/I``: the recorded area ``N`` gives ``r = sqrt(N / pi) - (1/2 - 1/I)`` and the
   light's area ``A = pi r^2`` (at least :data:`MIN_LIGHT_RADIUS_EST` px of radius). The radiance is not in the
   file: the unclipped pixels around a light are the ramp of the pixels it barely covers, whose values
   spread evenly between the background and white whatever ``I`` is (a simulation of the formation over
   ``I`` in 5..50, ``r`` in 0.6..3 px, random sub-pixel positions and backgrounds finds that the halo's
   values reduce the spread of ``log E`` from 0.55 to 0.51 only). So ``I`` is the prior :data:`LIGHT_RADIANCE`
   (20x white, the geometric middle of the 5..50x white of street lights and lit windows at a night
   exposure, which ``lensblur synth`` draws), and the same simulation gives ``1/2 - 1/I = 0.46`` for the best
   least-squares fit of ``log E`` against ``N``, which this formula reproduces. The glow around the region
   decides whether it gets the prior at all, three ways. *Its edge*: a light far above white clips every
   pixel it covers by more than ``1 / I``, so the pixels just outside the clipped set are covered by less
   and sit near the background; a bright surface whose top was clipped rolls off, its neighbours close to
   white. The 1-px halo's mean level, from the background (0) to white (1), is the region's softness: on
   ``lensblur synth`` scenes 95 % of the true lights have at most 0.14, and half the clipped spots of
   surfaces more than 0.24; the prior falls linearly from full at :data:`HARD_EDGE` to none at
   :data:`SOFT_EDGE`. *Its core*: a light many times white clips all three channels at its centre whatever
   its tint; a region with no pixel clipped in every channel is a saturated colour, not a light.
   *Its surroundings* (the ring 2..3 px out): a region on a nearly white surround is the brightest part of
   a bright surface; the prior falls linearly from full at sRGB :data:`DARK_SURROUND` to none at
   :data:`BRIGHT_SURROUND`.
5. **Boost**: the light's energy ``E = (I - b) A`` above its background ``b`` goes back into its clipped
   pixels: each is multiplied by one gain, so that their sum over the light, plus the halo's own recorded
   excess, is ``E`` (with ``strength`` s: the recorded energy plus s times what is missing). Unclipped pixels
   are never changed, and an image with a value above 1 anywhere is linear HDR that already holds its
   light: it is returned unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._threads import parallel_bands
from ..color import linear_to_srgb, srgb_to_linear
from ..errors import InputError

__all__ = [
    "BRIGHT_SURROUND",
    "CLIP_CODE",
    "CLIP_LEVEL",
    "DARK_SURROUND",
    "HARD_EDGE",
    "LIGHT_RADIANCE",
    "MAX_ASPECT",
    "MIN_FILL",
    "MIN_LIGHT_RADIUS",
    "MIN_LIGHT_RADIUS_EST",
    "SOFT_EDGE",
    "Lights",
    "boost_near_white",
    "check_highlights",
    "clipped_mask",
    "find_lights",
    "highlight_strength",
    "label_regions",
    "max_light_area",
    "recover_highlights",
]

CLIP_CODE = 250
"""The lowest 8-bit sRGB code (of 255) at which a channel counts as clipped (the JPEG/HEIC tolerance)."""
CLIP_LEVEL = float(srgb_to_linear(torch.tensor(CLIP_CODE / 255.0, dtype=torch.float64)))
""":data:`CLIP_CODE` in linear light (0.956): a pixel whose brightest channel reaches it is clipped."""
MIN_LIGHT_RADIUS = 4.0
"""Pixels: the radius of the largest light is at least this, whatever the image's size."""
LIGHT_FRACTION = 0.01
"""The radius of the largest light as a fraction of the image's longer side."""
MIN_FILL = 0.3
"""A light fills at least this fraction of its bounding box (a disc fills 0.79, a thin diagonal line little)."""
MAX_ASPECT = 3.0
"""A light's bounding box is at most this many times longer than wide (a clipped line along a row is not one)."""
LIGHT_RADIANCE = 20.0
"""The prior radiance of a clipped light against a dark surround, in multiples of white."""
MIN_LIGHT_RADIUS_EST = 0.3
"""Pixels: the smallest radius a light's area estimate gives (one clipped pixel is a light of this radius)."""
DARK_SURROUND = 0.7
"""sRGB level of a light's surroundings at and below which it gets the full :data:`LIGHT_RADIANCE`."""
BRIGHT_SURROUND = 0.9
"""sRGB level of a light's surroundings at and above which it is the clipped top of a bright surface (no boost)."""
HARD_EDGE = 0.1
"""The 1-px halo's level (0 = the background, 1 = white) at and below which a region has a light's hard edge."""
SOFT_EDGE = 0.2
"""The halo's level at and above which a region rolls off like a bright surface's clipped top (no boost)."""
# Brightness is measured as the mean of the three channels (what a tinted light's energy is counted in).
_INNER_RING, _OUTER_RING = 2, 3


def check_highlights(highlights) -> str | float:
    """``highlights`` as :func:`recover_highlights` takes it: ``"auto"``, ``"off"`` or a strength.

    Args:
        highlights: ``"auto"``, ``"off"``, or a number in [0, 4] (0 = off, 1 = auto's estimate).

    Returns:
        ``"auto"``, ``"off"`` or a float.

    Raises:
        InputError: anything else.
    """
    if isinstance(highlights, str):
        text = highlights.strip().lower()
        if text in ("auto", "off"):
            return text
        try:
            highlights = float(text)
        except ValueError:
            highlights = text
    if isinstance(highlights, bool) or not isinstance(highlights, (int, float)) or not 0.0 <= highlights <= 4.0:
        raise InputError("highlights", expected='"auto", "off" or a strength in [0, 4]', got=highlights,
                         fix='highlights="auto" (the default), "off", or 1.5 for brighter lights')
    return float(highlights)


def highlight_strength(highlights) -> float:
    """The strength ``highlights`` stands for: 1 for ``"auto"``, 0 for ``"off"``, else the number itself.

    Args:
        highlights: as :func:`check_highlights` takes it.

    Returns:
        The strength in [0, 4].

    Raises:
        InputError: ``highlights`` is not ``"auto"``, ``"off"`` or a strength in [0, 4].
    """
    highlights = check_highlights(highlights)
    return {"auto": 1.0, "off": 0.0}.get(highlights, highlights)


def max_light_area(height: int, width: int) -> float:
    """The largest area, in pixels, a clipped region may have to be taken as a light.

    Args:
        height: the image's height; ``width`` its width.

    Returns:
        ``pi * R^2`` for ``R = max(MIN_LIGHT_RADIUS, LIGHT_FRACTION * max(height, width))``.
    """
    radius = max(MIN_LIGHT_RADIUS, LIGHT_FRACTION * max(height, width))
    return math.pi * radius * radius


def clipped_mask(image: torch.Tensor) -> torch.Tensor:
    """The pixels clipped in at least one channel.

    Args:
        image: ``(B, 3, H, W)`` linear RGB of a display-referred photo.

    Returns:
        ``(B, 1, H, W)`` bool: the brightest channel at or above :data:`CLIP_LEVEL`.
    """
    return image.amax(dim=1, keepdim=True) >= CLIP_LEVEL - 1e-6


def label_regions(mask: torch.Tensor) -> torch.Tensor:
    """8-connected components of a mask.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(H, W)`` int64: -1 outside the mask; inside, the flat index (row by row) of the region's first
        pixel, the same for every pixel of a region.
    """
    ys, xs, roots = _components(mask)
    out = torch.full(mask.shape, -1, dtype=torch.int64, device=mask.device)
    out[ys, xs] = roots
    return out


def _components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mask's pixels row by row and each one's region (as :func:`label_regions` numbers it).

    The pixels are first gathered into runs (horizontal stretches of a row); two runs in neighbouring rows
    touch (8-connectivity) when their columns overlap once each is widened by one. The runs, not the pixels,
    are the nodes of the graph, so the work grows with the regions' outlines, not their areas, and no
    frame-sized array is made. Each round hooks, for every edge whose ends have different roots, the larger
    root under the smaller (the smallest offer wins), then compresses every path to its root (pointer
    jumping), so whole trees merge at once and the rounds grow with the logarithm of a region's size.

    Args:
        mask: ``(H, W)`` bool.

    Returns:
        ``(ys, xs, roots)``, int64 of the mask's pixel count: rows, columns, and the flat index of the
        pixel's region's first pixel.
    """
    return _regions(*torch.nonzero(mask, as_tuple=True), mask.shape[1])


def _regions(ys: torch.Tensor, xs: torch.Tensor, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_components` of the mask whose pixels, row by row, are ``ys, xs`` in rows ``w`` wide."""
    device = ys.device
    count = int(ys.numel())
    if count == 0:
        return ys, xs, ys.clone()
    flat = ys * w + xs
    begins = torch.ones(count, dtype=torch.bool, device=device)
    begins[1:] = flat[1:] != flat[:-1] + 1
    begins[1:] |= ys[1:] != ys[:-1]
    first = torch.nonzero(begins).squeeze(1)
    last = torch.cat([first[1:] - 1, first.new_tensor([count - 1])])
    row, x0, x1 = ys[first], xs[first], xs[last]
    # Keys ordered by row, then column, with a row's keys apart from the next row's even when widened.
    stride = w + 3
    start_key, end_key = row * stride + x0 + 1, row * stride + x1 + 1
    lo = torch.searchsorted(end_key, (row - 1) * stride + x0)                 # runs above ending at x0 - 1 or later
    hi = torch.searchsorted(start_key, (row - 1) * stride + x1 + 2, right=True)   # ... starting by x1 + 1
    touching = (hi - lo).clamp_min(0)
    runs = torch.arange(first.numel(), device=device)
    src = torch.repeat_interleave(runs, touching)
    offsets = torch.cumsum(touching, 0) - touching
    dst = lo[src] + torch.arange(src.numel(), device=device) - offsets[src]
    labels = runs.clone()                                # each run's root; always fully compressed
    while src.numel():
        a, b = labels[src], labels[dst]
        apart = a != b
        src, dst, a, b = src[apart], dst[apart], a[apart], b[apart]
        if not src.numel():
            break
        labels.scatter_reduce_(0, torch.maximum(a, b), torch.minimum(a, b), "amin")   # hook roots downward
        while True:
            jumped = labels[labels]
            if torch.equal(jumped, labels):
                break
            labels = jumped
    pixel_run = torch.cumsum(begins, 0) - 1
    return ys, xs, flat[first[labels[pixel_run]]]


@dataclass(frozen=True)
class Lights:
    """The lights :func:`find_lights` found in one image (one entry per light, all tensors of length L).

    Args:
        labels: ``(H, W)`` int64, the light's number (0..L-1) on its clipped pixels, -1 elsewhere.
        y, x: the light's centroid, pixels (centre of the top-left pixel at 0.5).
        area: its clipped pixels.
        background: its surroundings' level (mean of the channels, linear).
        radiance: the estimated radiance, multiples of white (1 = no boost).
        energy: the estimated energy above the background, ``(radiance - background) * pi r^2``, in pixels
            of white (mean of the channels).
        recorded: the recorded energy above the background, clipped pixels and their 1-px halo.
        gain: the factor each clipped pixel of the light is multiplied by (strength 1).
        softness: the 1-px halo's mean level between the background (0) and white (1).
    """

    labels: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    area: torch.Tensor
    background: torch.Tensor
    radiance: torch.Tensor
    energy: torch.Tensor
    recorded: torch.Tensor
    gain: torch.Tensor
    softness: torch.Tensor

    def __len__(self) -> int:
        return int(self.area.numel())


def _ring_means(values: torch.Tensor, owner: torch.Tensor, ring: torch.Tensor, count: int) -> tuple:
    """Sum and count of ``values`` over the pixels of ``ring``, per owner (``owner`` in 0..count-1)."""
    sel = ring & (owner >= 0)
    ids = owner[sel]
    picked = values[sel].double()
    sums = torch.zeros(count, dtype=torch.float64, device=values.device).index_add_(0, ids, picked)
    counts = torch.zeros(count, dtype=torch.float64, device=values.device).index_add_(0, ids, torch.ones_like(picked))
    return sums, counts


def _spread(ids: torch.Tensor, steps: int) -> torch.Tensor:
    """Each light's number (``ids``, -1 elsewhere) carried ``steps`` pixels out (the largest number wins)."""
    h, w = ids.shape
    grown = F.pad(ids, (steps, steps, steps, steps), value=-1)     # a square window: rows, then columns
    rows = grown[:, :w]
    for dx in range(1, 2 * steps + 1):
        rows = torch.maximum(rows, grown[:, dx: dx + w])
    out = rows[:h]
    for dy in range(1, 2 * steps + 1):
        out = torch.maximum(out, rows[dy: dy + h])
    return out


def find_lights(image: torch.Tensor) -> Lights:
    """Find the clipped lights of one display-referred image and estimate their energy (see the module doc).

    Args:
        image: ``(3, H, W)`` linear RGB in [0, 1].

    Returns:
        The :class:`Lights` (possibly none).
    """
    h, w = image.shape[-2:]
    _, mask, ys, xs = _scan(image)
    found = _estimate(image, mask, ys, xs)
    labels = torch.full((h, w), -1, dtype=torch.int64, device=image.device)
    if found is None:
        empty = torch.zeros(0, dtype=torch.float64, device=image.device)
        return Lights(labels, *([empty] * 9))
    (ly, lx, lid), estimates = found
    labels[ly, lx] = lid
    return Lights(labels, *estimates)


def _scan(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The largest value of ``(3, H, W)`` ``image``, its :func:`clipped_mask` ``(H, W)`` and the mask's pixels
    row by row (``ys, xs``), by bands of rows on the render's workers (:func:`~lensblur._threads.parallel_bands`)."""
    h, w = image.shape[-2:]
    mask = torch.empty((h, w), dtype=torch.bool, device=image.device)

    def band(rows: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        peak = image[:, rows].amax(dim=0)
        clipped = torch.ge(peak, CLIP_LEVEL - 1e-6, out=mask[rows])
        ys, xs = torch.nonzero(clipped, as_tuple=True)
        return peak.max(), ys + rows.start, xs

    bands = parallel_bands(band, h)
    largest = torch.stack([b[0] for b in bands]).max()            # NaN if any band has one, as image.max()
    return largest, mask, torch.cat([b[1] for b in bands]), torch.cat([b[2] for b in bands])


class _Estimates(NamedTuple):
    """Per light, what :class:`Lights` holds beside its labels (in its order and meaning)."""

    y: torch.Tensor
    x: torch.Tensor
    area: torch.Tensor
    background: torch.Tensor
    radiance: torch.Tensor
    energy: torch.Tensor
    recorded: torch.Tensor
    gain: torch.Tensor
    softness: torch.Tensor


def _estimate(image: torch.Tensor, mask: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor):
    """The lights of ``(3, H, W)`` ``image`` whose :func:`clipped_mask` is ``mask`` (pixels ``ys, xs`` row by
    row), as :func:`find_lights` estimates them: ``((rows, columns, light numbers) of the lights' pixels,
    :class:`_Estimates`)``, or ``None`` when there is none."""
    h, w = image.shape[-2:]
    ys, xs, regions = _regions(ys, xs, w)
    if not regions.numel():
        return None
    roots, compact = torch.unique(regions, return_inverse=True)
    count = int(roots.numel())
    ones = torch.ones(ys.numel(), dtype=torch.float64, device=image.device)
    area = torch.zeros(count, dtype=torch.float64, device=image.device).index_add_(0, compact, ones)

    def extent(coord: torch.Tensor) -> torch.Tensor:
        lo = torch.full((count,), 1 << 40, dtype=torch.int64, device=image.device).scatter_reduce(
            0, compact, coord, "amin")
        hi = torch.full((count,), -1, dtype=torch.int64, device=image.device).scatter_reduce(
            0, compact, coord, "amax")
        return (hi - lo + 1).double()

    tall, wide = extent(ys), extent(xs)
    fill = area / (tall * wide)
    aspect = torch.maximum(tall, wide) / torch.minimum(tall, wide)
    # A light many times white clips all three channels somewhere (its centre), whatever its tint.
    white = torch.zeros(count, dtype=torch.float64, device=image.device).index_add_(
        0, compact, (image[:, ys, xs].amin(dim=0) >= CLIP_LEVEL - 1e-6).double())
    is_light = (area <= max_light_area(h, w)) & (fill >= MIN_FILL) & (aspect <= MAX_ASPECT) & (white > 0)
    if not bool(is_light.any()):
        return None
    number = torch.cumsum(is_light.long(), 0) - 1            # region -> light number
    lights = int(is_light.sum())
    keep = is_light[compact]
    ly, lx, lid = ys[keep], xs[keep], number[compact[keep]]
    zeros = torch.zeros(lights, dtype=torch.float64, device=image.device)
    n = zeros.clone().index_add_(0, lid, ones[keep])
    cy = zeros.clone().index_add_(0, lid, ly.double() + 0.5) / n
    cx = zeros.clone().index_add_(0, lid, lx.double() + 0.5) / n
    core = zeros.clone().index_add_(0, lid, image[:, ly, lx].double().mean(dim=0))
    # The surroundings (2..3 px out, unclipped) give the background; the 1-px halo its recorded excess.
    # Both are looked for in the box around the lights only.
    y0, x0 = max(int(ly.min()) - _OUTER_RING, 0), max(int(lx.min()) - _OUTER_RING, 0)
    y1, x1 = min(int(ly.max()) + _OUTER_RING + 1, h), min(int(lx.max()) + _OUTER_RING + 1, w)
    level = image[:, y0:y1, x0:x1].mean(dim=0)
    box = torch.full((y1 - y0, x1 - x0), -1, dtype=torch.int64, device=image.device)
    box[ly - y0, lx - x0] = lid
    clipped = mask[y0:y1, x0:x1]
    near, outer = _spread(box, 1), _spread(box, _OUTER_RING)
    inner = near if _INNER_RING == 2 else _spread(box, _INNER_RING - 1)
    ring = (outer >= 0) & (inner < 0) & ~clipped
    sums, counts = _ring_means(level, outer, ring, lights)
    background = torch.where(counts > 0, sums / counts.clamp_min(1), zeros)
    halo = (near >= 0) & (box < 0) & ~clipped
    owner = torch.where(halo, near, torch.full_like(near, -1))
    excess = (level - background.clamp_min(0)[owner.clamp_min(0)]).clamp_min(0)
    halo_sum, halo_count = _ring_means(excess, owner, halo, lights)
    softness = (halo_sum / halo_count.clamp_min(1)) / (1.0 - background).clamp_min(1e-6)
    # Brightness: the prior radiance, scaled down toward 1 as the surroundings approach white.
    surround = linear_to_srgb(background.clamp(0, 1))
    weight = ((BRIGHT_SURROUND - surround) / (BRIGHT_SURROUND - DARK_SURROUND)).clamp(0.0, 1.0)
    weight = weight * ((SOFT_EDGE - softness) / (SOFT_EDGE - HARD_EDGE)).clamp(0.0, 1.0)
    radiance = 1.0 + (LIGHT_RADIANCE - 1.0) * weight
    radius = (torch.sqrt(n / math.pi) - (0.5 - 1.0 / LIGHT_RADIANCE)).clamp_min(MIN_LIGHT_RADIUS_EST)
    energy = (radiance - background) * math.pi * radius * radius
    recorded = (core - background * n) + halo_sum
    gain = torch.where(radiance > 1.0, 1.0 + (energy - recorded).clamp_min(0) / core, torch.ones_like(core))
    return (ly, lx, lid), _Estimates(cy, cx, n, background, radiance, energy, recorded, gain, softness)


def recover_highlights(image: torch.Tensor, highlights="auto") -> torch.Tensor:
    """Raise the clipped lights of display-referred images to their estimated energy (see the module doc).

    Args:
        image: ``(B, 3, H, W)`` linear RGB.
        highlights: ``"auto"`` (strength 1), ``"off"``, or a strength in [0, 4]: each light gets its recorded
            energy plus ``strength`` times what the estimate says is missing.

    Returns:
        ``(B, 3, H, W)``: ``image`` itself when nothing changes (off, strength 0, no clipped lights, or an
        image with values above 1, which is linear HDR), else a copy with only the lights' clipped pixels
        raised.

    Raises:
        InputError: ``highlights`` is not one of those.
    """
    strength = highlight_strength(highlights)
    if strength == 0.0:
        return image
    out = None
    for b in range(image.shape[0]):
        one = image[b]
        largest, mask, ys, xs = _scan(one)
        if float(largest) > 1.0 + 1e-6:     # HDR: the light is already there
            continue
        found = _estimate(one, mask, ys, xs)
        if found is None or not bool((found[1].gain > 1.0).any()):   # no lights, or only regions judged surfaces
            continue
        (ly, lx, lid), estimates = found
        gain = 1.0 + strength * (estimates.gain - 1.0)
        if out is None:
            out = image.clone()
        out[b][:, ly, lx] = (one[:, ly, lx].double() * gain[lid]).to(one.dtype)
    return image if out is None else out


def boost_near_white(image: torch.Tensor, *, strength: float, threshold: float = 0.9,
                     gain: float = 8.0) -> torch.Tensor:
    """The former highlight boost, kept as the baseline ``bench/highlights.py`` compares against: every pixel
    whose brightest channel, sRGB-encoded, is above ``threshold`` is raised by an inverse tone curve that is 1
    at the threshold and ``1 + strength * gain`` at white (lights and bright surfaces alike)::

        t = ((srgb_max - threshold) / (1 - threshold)).clamp(0, 1)
        image * (1 + strength * gain * t ** 2)

    Args:
        image: ``(B, 3, H, W)`` linear RGB.
        strength: >= 0; 0 returns ``image`` unchanged.
        threshold: sRGB level in [0, 1) where the boost starts.
        gain: the boost at pure white is ``1 + strength * gain``.

    Returns:
        ``(B, 3, H, W)`` linear RGB, values possibly above 1.
    """
    if strength == 0:
        return image
    peak = linear_to_srgb(image.amax(dim=1, keepdim=True))
    t = ((peak - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)
    return image * (1.0 + strength * gain * t * t)
