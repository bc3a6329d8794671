"""A plain depth-dependent Gaussian blur: the baseline that ignores occlusion and the aperture's shape.

Each pixel takes the value of a Gaussian blur of the whole image whose sigma is half its CoC radius
(interpolated between a ladder of precomputed blurs). Blurred backgrounds bleed into sharp foregrounds,
which is what the other renderers are measured against.
"""

from __future__ import annotations

import math

import torch

from .._filters import gaussian_kernel1d, separable_filter
from ..lens import Lens

__all__ = ["gaussian_blur", "render_gaussian"]

# The kernel is cut TRUNCATE sigmas from its centre.
TRUNCATE = 3.0


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with reflected borders (truncated at 3 sigma)."""
    if sigma < 1e-3:
        return image
    radius = max(1, math.ceil(TRUNCATE * sigma))
    radius = min(radius, min(image.shape[-2:]) - 1)
    return separable_filter(image, gaussian_kernel1d(sigma, radius, dtype=image.dtype).to(image.device))


def render_gaussian(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, *, levels: int = 12) -> torch.Tensor:
    """Per-pixel Gaussian blur with ``sigma = |coc| / 2``, ``levels`` blurs blended linearly."""
    sigma = (lens.blur * (disparity - lens.focus_disparity)).abs() / 2.0
    top = float(sigma.max())
    if top < 1e-3:
        return image.clone()
    ladder = torch.linspace(0.0, top, levels)
    pos = (sigma / top * (levels - 1)).clamp(0, levels - 1)
    out = torch.zeros_like(image)
    for k, s in enumerate(ladder.tolist()):
        weight = (1.0 - (pos - k).abs()).clamp(min=0.0)
        if float(weight.max()) > 0:
            out += weight * gaussian_blur(image, s)
    return out
