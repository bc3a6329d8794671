"""Full-reference fidelity: PSNR and SSIM (Wang et al. 2004, Gaussian window as in scikit-image)."""

from __future__ import annotations

import math

import torch

from .._filters import gaussian_kernel1d, separable_filter
from ..choices import SSIM_VARIANTS
from ..errors import InputError, ShapeError
from ._regions import region_mask, to_display_tensor

__all__ = ["SSIM_VARIANTS", "psnr", "ssim", "ssim_map", "ssim_tensor"]

UNIFORM_WINDOW = 7

# scikit-image truncates the SSIM window 3.5 sigmas from its centre.
SSIM_TRUNCATE = 3.5


def _pair(image_true, image_test):
    a = to_display_tensor(image_true, argument="image_true")
    b = to_display_tensor(image_test, argument="image_test")
    if a.shape != b.shape:
        raise ShapeError("image_test", expected=f"the shape of image_true {tuple(a.shape)}",
                         got=f"{tuple(b.shape)}", fix="compare images of the same size")
    return a, b


def _check_range(data_range):
    if data_range is None or not data_range > 0:
        raise InputError("data_range", expected="the value range of the images (> 0), e.g. 1.0 or 255",
                         got=data_range, fix="pass data_range explicitly; it is never guessed from the dtype")


def psnr(image_true, image_test, *, data_range: float, box=None, mask=None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``, over all channels of a region.

    Args:
        image_true: the reference, ``H x W x 3`` / ``H x W`` array or ``(B, C, H, W)`` tensor.
        image_test: the image scored, of ``image_true``'s shape.
        data_range: the value of white (> 0), e.g. 1.0 or 255; never guessed from the dtype.
        box: ``(x0, y0, x1, y1)`` region, or None.
        mask: ``H x W`` region mask (above 0.5 selected), or None; at most one of ``box`` and ``mask``.

    Returns:
        The PSNR in dB; ``inf`` for identical images.

    Raises:
        ShapeError: shapes that differ or are not images.
        InputError: ``data_range`` not > 0, or a bad region (see :func:`region_mask`).
    """
    _check_range(data_range)
    a, b = _pair(image_true, image_test)
    region = region_mask(tuple(a.shape[-2:]), box=box, mask=mask)
    err = (a - b) ** 2
    mse = float(err.mean()) if region is None else float(err[..., region].mean())
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def _gaussian_window(sigma: float, truncate: float = SSIM_TRUNCATE) -> torch.Tensor:
    """scikit-image's SSIM window: radius ``int(truncate * sigma + 0.5)``, in float64."""
    return gaussian_kernel1d(sigma, int(truncate * sigma + 0.5), dtype=torch.float64)


def _window(variant: str, sigma: float) -> tuple[torch.Tensor, float]:
    """The 1-D window of an SSIM variant and its covariance normalisation (1, or N / (N - 1))."""
    if variant == "gaussian":
        return _gaussian_window(sigma), 1.0
    if variant == "skimage-default":
        n = UNIFORM_WINDOW * UNIFORM_WINDOW
        return torch.full((UNIFORM_WINDOW,), 1.0 / UNIFORM_WINDOW, dtype=torch.float64), n / (n - 1.0)
    raise InputError("variant", expected=f"one of {', '.join(SSIM_VARIANTS)}", got=variant, fix="variant=gaussian")


def ssim_map(image_true, image_test, *, data_range: float, sigma: float = 1.5,
             variant: str = "gaussian") -> torch.Tensor:
    """Per-pixel SSIM ``(B, C, H, W)``, K1 = 0.01, K2 = 0.03, as scikit-image computes it.

    ``variant="gaussian"`` (the default) is a Gaussian window (sigma 1.5, truncated at 3.5 sigma) and the
    population covariance: scikit-image's ``gaussian_weights=True, use_sample_covariance=False``.
    ``variant="skimage-default"`` is scikit-image's defaults: a 7 x 7 uniform window and the sample
    covariance (``N / (N - 1)``, N = 49).

    Args:
        image_true: the reference, ``H x W x 3`` / ``H x W`` array or ``(B, C, H, W)`` tensor.
        image_test: the image scored, of ``image_true``'s shape.
        data_range: the value of white (> 0).
        sigma: the Gaussian window's standard deviation in pixels (the gaussian variant).
        variant: one of :data:`SSIM_VARIANTS`.

    Returns:
        ``(B, C, H, W)`` float64 SSIM per pixel.

    Raises:
        ShapeError: shapes that differ or are not images.
        InputError: ``data_range`` not > 0, or images no larger than the window.
    """
    _check_range(data_range)
    a, b = _pair(image_true, image_test)
    return _ssim_map(a, b, data_range=data_range, sigma=sigma, variant=variant)


def _ssim_map(a: torch.Tensor, b: torch.Tensor, *, data_range: float, sigma: float, variant: str) -> torch.Tensor:
    """:func:`ssim_map` on two ``(B, C, H, W)`` tensors of one shape, in their dtype and on their device."""
    g, cov_norm = _window(variant, sigma)
    g = g.to(a.device, a.dtype)
    _check_window(a, g)
    return _ssim_formula(a, b, g, cov_norm, data_range)


def _check_window(a: torch.Tensor, window: torch.Tensor) -> None:
    pad = window.numel() // 2
    if min(a.shape[-2:]) <= 2 * pad:
        raise InputError("image_true", expected=f"images larger than {2 * pad + 1} pixels on each side",
                         got=f"{a.shape[-1]}x{a.shape[-2]}", fix="use a smaller sigma or larger images")


def _ssim_formula(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor, cov_norm: float,
                  data_range: float) -> torch.Tensor:
    """Wang et al.'s SSIM per pixel of two ``(B, C, H, W)`` tensors (any dtype or device; differentiable)."""
    def filt(x):
        return separable_filter(x, window)

    mu_a, mu_b = filt(a), filt(b)
    var_a = cov_norm * (filt(a * a) - mu_a**2)
    var_b = cov_norm * (filt(b * b) - mu_b**2)
    cov = cov_norm * (filt(a * b) - mu_a * mu_b)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return num / den


def ssim(image_true, image_test, *, data_range: float, sigma: float = 1.5, variant: str = "gaussian", box=None,
         mask=None) -> float:
    """Mean SSIM over a region (the whole image by default), borders cropped by the window radius like
    scikit-image; equal to ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=..., channel_axis=-1)`` on the whole image.

    Args:
        image_true, image_test, data_range, sigma, variant: as :func:`ssim_map`.
        box: ``(x0, y0, x1, y1)`` region, or None.
        mask: ``H x W`` region mask, or None; at most one of ``box`` and ``mask``.

    Returns:
        The mean SSIM, at most 1.

    Raises:
        ShapeError, InputError: as :func:`ssim_map` and :func:`psnr`; also a region that lies wholly in
            the cropped border band.
    """
    smap = ssim_map(image_true, image_test, data_range=data_range, sigma=sigma, variant=variant)
    pad = (_window(variant, sigma)[0].numel() - 1) // 2
    region = region_mask(tuple(smap.shape[-2:]), box=box, mask=mask)
    if region is None:
        region = torch.ones(smap.shape[-2:], dtype=torch.bool)
    crop = torch.zeros_like(region)
    crop[pad:-pad, pad:-pad] = True
    region = region & crop
    if not bool(region.any()):
        raise InputError("box", expected=f"a region reaching more than {pad} pixels inside the border",
                         got="a region inside the border band", fix="use a larger box")
    return float(smap[..., region].mean())


def ssim_tensor(image_true: torch.Tensor, image_test: torch.Tensor, *, data_range: float, sigma: float = 1.5,
                variant: str = "gaussian") -> torch.Tensor:
    """The SSIM of each image pair of a batch, kept in torch: differentiable, in the tensors' dtype and on
    their device (a training loss, ``1 - ssim_tensor``). The value is :func:`ssim`'s: the same window and
    constants, the mean over the pixels more than the window radius inside the border.

    Args:
        image_true: ``(B, C, H, W)`` reference.
        image_test: ``(B, C, H, W)`` image scored, of ``image_true``'s shape, dtype and device.
        data_range: the value of white (> 0).
        sigma, variant: as :func:`ssim_map`.

    Returns:
        ``(B,)`` mean SSIM per pair.

    Raises:
        ShapeError: tensors that are not ``(B, C, H, W)`` or differ in shape.
        InputError: ``data_range`` not > 0, or images no larger than the window.
    """
    _check_range(data_range)
    for name, t in (("image_true", image_true), ("image_test", image_test)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise ShapeError(name, expected="a (B, C, H, W) tensor", got=getattr(t, "shape", type(t).__name__),
                             fix="add the batch dimension with tensor[None]")
    if image_true.shape != image_test.shape:
        raise ShapeError("image_test", expected=f"the shape of image_true {tuple(image_true.shape)}",
                         got=f"{tuple(image_test.shape)}", fix="compare images of the same size")
    smap = _ssim_map(image_true, image_test, data_range=data_range, sigma=sigma, variant=variant)
    pad = (_window(variant, sigma)[0].numel() - 1) // 2
    return smap[..., pad:-pad, pad:-pad].mean(dim=(1, 2, 3))
