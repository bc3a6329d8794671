"""Separable Gaussian filtering, the one implementation the Gaussian baseline and SSIM share.

Each caller keeps its own truncation (SSIM must match scikit-image's window, the baseline its own ladder);
the kernel and the filtering are written once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_kernel1d", "separable_filter"]


def gaussian_kernel1d(sigma: float, radius: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The normalised 1-D Gaussian ``exp(-x^2 / (2 sigma^2))`` on ``x = -radius..radius``.

    Args:
        sigma: standard deviation in pixels (> 0).
        radius: half-width of the kernel in pixels (>= 0).
        dtype: the kernel's dtype (the sum is normalised in it).

    Returns:
        ``(2 radius + 1,)`` weights summing to 1.
    """
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def separable_filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter every channel of ``x`` along its rows, then its columns, with the 1-D ``kernel``.

    Borders are reflected about the edge pixel (torch's "reflect": ``c b | a b c``, scipy's "mirror"), so
    the output has the input's size.

    Args:
        x: ``(B, C, H, W)``; ``H`` and ``W`` larger than the kernel's radius.
        kernel: ``(k,)`` with ``k`` odd, in ``x``'s dtype.

    Returns:
        ``(B, C, H, W)``.
    """
    radius = kernel.numel() // 2
    c = x.shape[1]
    out = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                   groups=c)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                    groups=c)
