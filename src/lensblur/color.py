"""sRGB transfer curve (IEC 61966-2-1), in torch.

lensblur renders in linear light. Files are sRGB-encoded unless their format is linear (PFM, EXR); this
module is the only place that converts between the two.
"""

from __future__ import annotations

import torch

__all__ = ["linear_to_srgb", "srgb_to_linear"]

_A = 0.055
_GAMMA = 2.4
_DECODE_KNEE = 0.04045
_ENCODE_KNEE = 0.0031308
_SLOPE = 12.92


def srgb_to_linear(image: torch.Tensor) -> torch.Tensor:
    """Decode sRGB values to linear light with the exact piecewise IEC 61966-2-1 curve.

    Args:
        image: sRGB-encoded values, any shape; clamped to [0, 1] first.

    Returns:
        Linear values in [0, 1], same shape and dtype.
    """
    image = image.clamp(0.0, 1.0)
    # The same operations as ((x + a) / (1 + a)) ** gamma, in one buffer: a 12 MP image is 145 MB a pass.
    high = image.add(_A).div_(1.0 + _A).pow_(_GAMMA)
    return torch.where(image <= _DECODE_KNEE, image / _SLOPE, high)


def linear_to_srgb(image: torch.Tensor) -> torch.Tensor:
    """Encode linear light to sRGB.

    Args:
        image: linear values, any shape; clamped to [0, 1] first (a file cannot hold values above 1).

    Returns:
        sRGB-encoded values in [0, 1], same shape and dtype.
    """
    image = image.clamp(0.0, 1.0)
    # The same operations as (1 + a) * x ** (1 / gamma) - a, in one buffer.
    high = image.clamp_min(_ENCODE_KNEE).pow_(1.0 / _GAMMA).mul_(1.0 + _A).sub_(_A)
    return torch.where(image <= _ENCODE_KNEE, image * _SLOPE, high)
