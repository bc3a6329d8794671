"""The reference renderer: every pixel spreads its light over its own CoC, nearer light hides farther light.

The model, at an output pixel ``x``:

1. Every source pixel ``p`` sends the fraction ``w_p(x)`` of its light to ``x``: its point-spread function
   (the aperture scaled by its signed CoC, turned by 180 degrees behind the focal plane, clipped by the
   cat-eye circle of its frame position) integrated over the square of ``x`` (``S x S`` sub-samples, a soft
   sub-pixel edge), normalised so each pixel's light sums to 1. ``w_p(x)`` is also the fraction of ``x``'s
   view through the aperture that ``p`` covers.
2. Occlusion by coverage: contributions are taken nearest first (largest disparity). The light of ``p``
   passes in the proportion of the aperture not yet covered by strictly nearer pixels,
   ``1 - min(1, sum of w_q(x) over q nearer than p)``. A single surface (equal disparity) does not hide
   itself; a nearer surface covering a fraction ``a`` of the view leaves ``1 - a`` to what is behind.
3. The result is the sum of the passed light divided by the passed weight: where the photo holds nothing
   for part of the view (the hidden background behind a foreground edge, the frame border) the visible
   surfaces fill it in proportion.

This is the continuous limit of layered compositing, evaluated exactly per pixel: slow
(``O(H W (2R+1)^2 S^2)`` for a largest CoC ``R``), it documents the model and anchors the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..lens import Lens
from .kernel import aperture_mask, cat_eye_offset, kernel_half_size

__all__ = ["cat_eye_offsets", "render_scatter"]


def render_scatter(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, *, supersample: int = 4) -> torch.Tensor:
    """Render bokeh with the reference model (see the module doc): exact, and slow.

    Args:
        image: ``(B, 3, H, W)`` linear RGB, float.
        disparity: ``(B, 1, H, W)``.
        lens: the lens: focus, blur scale and aperture (cat-eye included).
        supersample: sub-samples per pixel side of each output pixel's square, >= 1.

    Returns:
        ``(B, 3, H, W)`` linear RGB, the dtype of ``image``.
    """
    return torch.cat([_render_one(image[i:i + 1], disparity[i:i + 1], lens, supersample)
                      for i in range(image.shape[0])])


def cat_eye_offsets(lens: Lens, h: int, w: int, dtype: torch.dtype = torch.float64, *,
                    device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-pixel shift of the vignetting circle over a frame.

    Args:
        lens: the lens; its ``aperture.cat_eye`` sets the strength.
        h: the frame's height, pixels; ``w`` its width.
        dtype: the dtype of the result.
        device: the device of the result (None: the CPU).

    Returns:
        ``(u, v)``, each ``(h, w)``: :func:`~lensblur.render.kernel.cat_eye_offset` at every pixel's centre;
        ``None`` without cat-eye.
    """
    if lens.aperture.cat_eye <= 0:
        return None
    y, x = torch.meshgrid(torch.arange(h, dtype=dtype, device=device) + 0.5 - h / 2,
                          torch.arange(w, dtype=dtype, device=device) + 0.5 - w / 2, indexing="ij")
    return cat_eye_offset(lens.aperture.cat_eye, y, x, (h, w))


def _coverage(lens: Lens, coc: torch.Tensor, ox: int, oy: int, sub: torch.Tensor, offsets) -> torch.Tensor:
    """Fraction of the output pixel at offset ``(ox, oy)`` covered by each source pixel's PSF (unnormalised)."""
    inv = 1.0 / torch.where(coc.abs() > 1e-12, coc, torch.full_like(coc, 1e-12))
    sy, sx = torch.meshgrid(sub, sub, indexing="ij")
    u = (ox + sx.reshape(-1, 1, 1)) * inv          # (S*S, H, W): every sub-sample of the output pixel
    v = (oy + sy.reshape(-1, 1, 1)) * inv
    inside = aperture_mask(lens.aperture, u, v)
    if offsets is not None:
        inside = inside * (((u - offsets[0]) ** 2 + (v - offsets[1]) ** 2) <= 1)
    total = inside.sum(dim=0)
    return total / sub.numel() ** 2


def _shift(t: torch.Tensor, ox: int, oy: int, fill: float) -> torch.Tensor:
    """``out[..., y, x] = t[..., y - oy, x - ox]`` with ``fill`` outside the frame."""
    h, w = t.shape[-2:]
    padded = F.pad(t, (abs(ox), abs(ox), abs(oy), abs(oy)), value=fill)
    return padded[..., abs(oy) - oy: abs(oy) - oy + h, abs(ox) - ox: abs(ox) - ox + w]


def _render_one(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, supersample: int) -> torch.Tensor:
    _, _, h, w = image.shape
    # Exact sums in float64, where the device has it (Apple's MPS has not).
    exact = torch.float32 if image.device.type == "mps" else torch.float64
    disp = disparity[0, 0].to(exact)
    coc = lens.blur * (disp - lens.focus_disparity)
    radius = float(coc.abs().max())
    half = kernel_half_size(radius)
    if half == 0:
        return image.clone()
    sub = (torch.arange(supersample, dtype=exact, device=image.device) + 0.5) / supersample - 0.5
    offsets = cat_eye_offsets(lens, h, w, exact, device=image.device)
    window = [(ox, oy) for oy in range(-half, half + 1) for ox in range(-half, half + 1)]

    # Each source pixel's light sums to one over its footprint; a CoC too small to hit any sub-sample
    # keeps all its light on its own pixel.
    norm = torch.zeros_like(coc)
    for ox, oy in window:
        norm += _coverage(lens, coc, ox, oy, sub, offsets)
    point = norm <= 0

    weights, depths, colours = [], [], []
    colour = image[0].to(exact)
    for ox, oy in window:
        cov = _coverage(lens, coc, ox, oy, sub, offsets) / norm.clamp_min(1e-12)
        cov = torch.where(point, torch.full_like(cov, float(ox == 0 and oy == 0)), cov)
        weights.append(_shift(cov, ox, oy, 0.0))
        depths.append(_shift(disp, ox, oy, -1.0))
        colours.append(_shift(colour, ox, oy, 0.0))
    weight = torch.stack(weights)            # (O, H, W): light from the pixel at x - o
    depth = torch.stack(depths)              # its disparity
    col = torch.stack(colours)               # (O, 3, H, W)

    # Nearest first; coverage by strictly nearer contributions (ties share the coverage before them).
    depth_sorted, order = depth.sort(dim=0, descending=True)
    w_sorted = weight.gather(0, order)
    before = w_sorted.cumsum(0) - w_sorted
    group_start = torch.ones_like(depth_sorted, dtype=torch.bool)
    group_start[1:] = depth_sorted[1:] != depth_sorted[:-1]
    index = torch.arange(depth.shape[0], device=depth.device).view(-1, 1, 1).expand_as(depth_sorted)
    first = torch.where(group_start, index, torch.zeros_like(index)).cummax(0).values
    nearer = before.gather(0, first)
    passed = w_sorted * (1.0 - nearer.clamp(max=1.0))
    passed = torch.zeros_like(weight).scatter_(0, order, passed)

    total = passed.sum(0)
    out = (passed[:, None] * col).sum(0) / total.clamp_min(1e-12)
    out = torch.where(total > 1e-12, out, colour)
    return out[None].to(image.dtype)
