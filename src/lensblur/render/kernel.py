"""Point-spread functions: the aperture's image for a given signed CoC radius, rasterised to pixels.

``psf(aperture, radius)`` returns a ``(k, k)`` tensor with unit sum: the fraction of a point's light that
lands on each pixel offset (row = +y down, column = +x right, centre at ``k // 2``). Pixels on the
boundary get their covered fraction (supersampled), so the kernel changes continuously with the radius.
A negative radius (behind the focal plane) gives the shape turned by 180 degrees.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..lens import Aperture

__all__ = ["aperture_mask", "kernel_half_size", "psf"]


def kernel_half_size(radius: float) -> int:
    """Half width of the kernel for a CoC radius: pixels whose square the disk can touch."""
    return max(0, math.ceil(abs(radius) - 0.5 + 1e-6))


def aperture_mask(aperture: Aperture, u: torch.Tensor, v: torch.Tensor,
                  offset: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """Transmission of the aperture at unit coordinates ``(u, v)`` (+u right, +v down), in [0, 1].

    ``offset`` shifts the clipping circle of optical vignetting (cat-eye); see :class:`Aperture`.
    """
    if aperture.kernel is not None:
        k = torch.as_tensor(aperture.kernel, dtype=torch.float32)
        side = max(k.shape)
        pad = ((side - k.shape[1]) // 2, side - k.shape[1] - (side - k.shape[1]) // 2,
               (side - k.shape[0]) // 2, side - k.shape[0] - (side - k.shape[0]) // 2)
        k = F.pad(k, pad)[None, None]
        grid = torch.stack([u, v], dim=-1).to(torch.float32).reshape(1, -1, 1, 2)
        values = F.grid_sample(k, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        inside = values.reshape(u.shape).to(u.dtype)
    else:
        inside = aperture.contains(u, v).to(u.dtype)
    if aperture.cat_eye > 0 and (offset[0] or offset[1]):
        inside = inside * (((u - offset[0]) ** 2 + (v - offset[1]) ** 2) <= 1.0).to(u.dtype)
    return inside


def psf(aperture: Aperture, radius: float, *, offset: tuple[float, float] = (0.0, 0.0),
        supersample: int | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``(k, k)`` point-spread function of ``aperture`` at signed CoC ``radius`` (pixels), sum 1."""
    return _psf_cached(aperture, round(float(radius), 4), offset, supersample).to(dtype).clone()


@lru_cache(maxsize=512)
def _psf_cached(aperture: Aperture, radius: float, offset, supersample) -> torch.Tensor:
    half = kernel_half_size(radius)
    if half == 0 or abs(radius) < 1e-3:
        return torch.ones(1, 1, dtype=torch.float64)
    size = 2 * half + 1
    ss = supersample or max(4, min(16, int(64 / size) + 1))
    # Sub-sample centres of every pixel, in pixels relative to the kernel centre.
    steps = (torch.arange(size * ss, dtype=torch.float64) + 0.5) / ss - 0.5 - half
    y, x = torch.meshgrid(steps, steps, indexing="ij")
    scale = 1.0 / radius  # a negative radius turns the shape by 180 degrees
    fine = aperture_mask(aperture, x * scale, y * scale, offset)
    kernel = fine.reshape(size, ss, size, ss).mean(dim=(1, 3))
    total = kernel.sum()
    if total <= 0:  # a shape thinner than the sampling: fall back to the centre pixel
        return torch.ones(1, 1, dtype=torch.float64)
    return kernel / total
