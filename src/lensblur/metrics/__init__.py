"""Image quality and focus metrics.

Fidelity (``psnr``, ``ssim``) compares a result with a reference; focus scores (``variance_of_laplacian``,
``brenner``) measure the sharpness of a region. All take ``H x W x 3`` (or ``H x W``) arrays of display
values with an explicit ``data_range`` and an optional ``box = (x0, y0, x1, y1)`` or ``mask``.
"""

from .fidelity import SSIM_VARIANTS, psnr, ssim, ssim_map, ssim_tensor
from .focus import BRENNER_VARIANTS, GREYS, blur_map, brenner, variance_of_laplacian

__all__ = [
    "BRENNER_VARIANTS",
    "GREYS",
    "SSIM_VARIANTS",
    "blur_map",
    "brenner",
    "psnr",
    "ssim",
    "ssim_map",
    "ssim_tensor",
    "variance_of_laplacian",
]
