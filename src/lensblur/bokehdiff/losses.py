"""BokehDiff's training losses in pixel space (values in [-1, 1], the VAE's range): the multi-scale edge loss
in its two forms, the adversarial terms with one-sided label smoothing, and the weighted sum of eq. 12.

The edge loss (paper eq. 10)::

    L_edge = sum_{l=1..3} 1/l^2 || (grad_l pred - grad_l gt) * max_{I in {gt, aif}} |grad_l I| ||_1

``form="sobel"`` is the paper's equation with its "extended Sobel operator pair with the kernel size of l".
The paper does not say what a Sobel kernel of size 1 or 2 is; lensblur reads scale ``l`` as the
``(2l + 1) x (2l + 1)`` extended Sobel pair (3, 5, 7 taps: binomial smoothing times a binomial derivative,
OpenCV's ``getDerivKernels``), each normalised to answer 1 to a unit slope so that the three scales share a
unit, the two directions summed, and the norm taken as a mean over pixels (so that ``lambda_edge = 1`` weighs
it like the mean squared error). Convolutions are "valid" (no padding).

``form="difference"`` is what the released code computes: for ``s = 1, 2, 3`` the three images are
area-downsampled by ``1/s``, differenced forward along x and y (``I[..., :-1] - I[..., 1:]``), and each
direction adds ``mean(|grad pred - grad gt| * (1/s) * (1 + max(|grad gt|, |grad aif|)))``: 1/s instead of
1/l^2, a floor of 1 on the weight map, means instead of sums.

The adversarial losses are binary cross-entropy on logits against a real label of 0.8 and a fake label of 0
(the released ``multilevel_sigmoid_s``): the discriminator's ``BCE(D(real), 0.8) + BCE(D(fake), 0)``, the
generator's non-saturating ``BCE(D(fake), 0.8)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..baselines.losses import gan_loss
from ..errors import InputError, ShapeError

__all__ = ["EDGE_FORMS", "REAL_LABEL", "adversarial_d_loss", "adversarial_g_loss", "edge_loss", "edge_loss_difference",
           "edge_loss_sobel", "sobel_kernels", "weighted_sum"]

EDGE_FORMS = ("sobel", "difference")
"""``"sobel"``: the paper's eq. 10; ``"difference"``: the released code's forward differences."""
REAL_LABEL = 0.8
"""The released discriminator's target for real images (one-sided label smoothing)."""
SCALES = (1, 2, 3)


def _binomial(order: int) -> list[float]:
    return [float(math.comb(order, k)) for k in range(order + 1)]


def sobel_kernels(size: int, *, dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The extended Sobel pair of an odd ``size`` (3, 5, 7...), normalised to answer 1 to a unit slope.

    The x kernel is the outer product of a binomial smoothing column of ``size`` taps (summing to 1) and a
    derivative row, the binomial of ``size - 2`` taps convolved with ``[-1, 0, 1]`` (OpenCV's
    ``getDerivKernels``), scaled so that its correlation with ``f(x) = x`` is 1. The y kernel is its transpose.

    Args:
        size: the side, odd and >= 3.
        dtype, device: of the kernels.

    Returns:
        ``(kx, ky)``, each ``(size, size)``.

    Raises:
        InputError: an even size or one below 3.
    """
    if not (isinstance(size, int) and size >= 3 and size % 2 == 1):
        raise InputError("size", expected="an odd kernel side >= 3", got=size, fix="size=3")
    smooth = torch.tensor(_binomial(size - 1), dtype=torch.float64)
    smooth = smooth / smooth.sum()
    inner = _binomial(size - 3)
    derivative = torch.zeros(size, dtype=torch.float64)
    for i, value in enumerate(inner):          # inner * [-1, 0, 1]: taps i (weight -1) and i + 2 (weight +1)
        derivative[i] -= value
        derivative[i + 2] += value
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    derivative = derivative / (derivative * offsets).sum()
    kx = smooth[:, None] * derivative[None, :]
    return kx.to(dtype=dtype, device=device), kx.T.contiguous().to(dtype=dtype, device=device)


def _check(pred: torch.Tensor, target: torch.Tensor, aif: torch.Tensor) -> None:
    if pred.ndim != 4:
        raise ShapeError("pred", expected="a (B, C, H, W) tensor", got=f"shape {tuple(pred.shape)}",
                         fix="pass a batch of images")
    for name, other in (("target", target), ("aif", aif)):
        if other.shape != pred.shape:
            raise ShapeError(name, expected=f"the shape of pred {tuple(pred.shape)}", got=f"{tuple(other.shape)}",
                             fix="pass the prediction, its ground truth and its all-in-focus input at one size")


def _correlate(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each channel of ``x`` correlated with ``kernel`` (valid: no padding)."""
    c = x.shape[1]
    weight = kernel.to(x)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=c)


def edge_loss_sobel(pred: torch.Tensor, target: torch.Tensor, aif: torch.Tensor) -> torch.Tensor:
    """The paper's multi-scale edge loss (eq. 10, read as in the module doc).

    Args:
        pred: ``(B, C, H, W)`` the prediction; ``target`` the ground truth; ``aif`` the all-in-focus input;
            H and W at least 7.

    Returns:
        A scalar tensor.

    Raises:
        ShapeError: shapes that differ, not 4-D, or smaller than the 7-tap kernel.
    """
    _check(pred, target, aif)
    if min(pred.shape[-2:]) < 2 * SCALES[-1] + 1:
        raise ShapeError("pred", expected=f"images at least {2 * SCALES[-1] + 1} px on each side",
                         got=f"{tuple(pred.shape)}", fix="train on larger crops")
    total = pred.new_zeros(())
    for level in SCALES:
        for kernel in sobel_kernels(2 * level + 1, dtype=pred.dtype, device=pred.device):
            gp, gt, ga = (_correlate(x, kernel) for x in (pred, target, aif))
            weight = torch.maximum(gt.abs(), ga.abs())
            total = total + ((gp - gt).abs() * weight).mean() / level ** 2
    return total


def _forward_differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, :-1] - x[..., :, 1:], x[..., :-1, :] - x[..., 1:, :]


def edge_loss_difference(pred: torch.Tensor, target: torch.Tensor, aif: torch.Tensor) -> torch.Tensor:
    """The released code's multi-scale edge loss (see the module doc).

    Args:
        pred: ``(B, C, H, W)`` the prediction; ``target`` the ground truth; ``aif`` the all-in-focus input;
            H and W at least 6 (two pixels at the coarsest scale).

    Returns:
        A scalar tensor.

    Raises:
        ShapeError: shapes that differ, not 4-D, or too small for the coarsest scale.
    """
    _check(pred, target, aif)
    if min(pred.shape[-2:]) < 2 * SCALES[-1]:
        raise ShapeError("pred", expected=f"images at least {2 * SCALES[-1]} px on each side",
                         got=f"{tuple(pred.shape)}", fix="train on larger crops")
    total = pred.new_zeros(())
    for scale in SCALES:
        images = (pred, target, aif) if scale == 1 else \
            tuple(F.interpolate(x, scale_factor=1 / scale, mode="area") for x in (pred, target, aif))
        for gp, gt, ga in zip(*(_forward_differences(x) for x in images)):
            weight = 1.0 + torch.maximum(gt.abs(), ga.abs())
            total = total + ((gp - gt).abs() * weight).mean() / scale
    return total


def edge_loss(pred: torch.Tensor, target: torch.Tensor, aif: torch.Tensor, *, form: str = "sobel") -> torch.Tensor:
    """The multi-scale edge loss in the paper's (``"sobel"``) or the release's (``"difference"``) form.

    Raises:
        InputError: another ``form``.
    """
    if form == "sobel":
        return edge_loss_sobel(pred, target, aif)
    if form == "difference":
        return edge_loss_difference(pred, target, aif)
    raise InputError("edge_loss", expected=f"one of {', '.join(EDGE_FORMS)}", got=form,
                     fix="edge_loss=sobel (the paper) or edge_loss=difference (the release)")


def adversarial_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, *,
                       real_label: float = REAL_LABEL) -> torch.Tensor:
    """The discriminator's loss ``BCE(real, real_label) + BCE(fake, 0)``, each a mean over the patches.

    The caller detaches the fake images, so that no gradient reaches the generator.
    """
    return gan_loss(real_logits, True, real_label=real_label) + gan_loss(fake_logits, False)


def adversarial_g_loss(fake_logits: torch.Tensor, *, real_label: float = REAL_LABEL) -> torch.Tensor:
    """The generator's non-saturating loss ``BCE(D(fake), real_label)``, a mean over the patches."""
    return gan_loss(fake_logits, True, real_label=real_label)


def weighted_sum(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Eq. 12: ``sum_k weights[k] * terms[k]`` over the terms present.

    Raises:
        InputError: a term without a weight.
    """
    unknown = sorted(set(terms) - set(weights))
    if unknown:
        raise InputError("terms", expected=f"terms among {', '.join(weights)}", got=unknown)
    return sum(weights[name] * value for name, value in terms.items())
