"""The adversarial losses of pix2pix, CycleGAN and BGGAN, and the pix2pix generator objective.

``vanilla`` is the original GAN loss written on logits (``BCEWithLogitsLoss`` against a map of ones for
real and zeros for fake); ``lsgan`` is the least-squares loss (``MSELoss`` against the same maps). Both
average over every patch of a PatchGAN output. The discriminator loss is halved, as in the reference
(``backward_D``), and the pix2pix generator adds ``l1_weight`` (100) times the L1 distance to the target.

BGGAN's generator loss is the negated mean raw score (:func:`critic_generator_loss`, its eq. 3), which goes
with a hinge discriminator (:func:`hinge_discriminator_loss`); both take one score map or a list of maps (one
per branch of a multi-receptive-field discriminator) and average over the list.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, ShapeError

__all__ = ["GAN_MODES", "GANLoss", "critic_generator_loss", "discriminator_loss", "gan_loss",
           "hinge_discriminator_loss", "pix2pix_generator_loss"]

GAN_MODES = ("vanilla", "lsgan")


def _check_mode(mode: str) -> str:
    if mode not in GAN_MODES:
        raise InputError("mode", expected="vanilla or lsgan", got=mode, fix='mode="vanilla" for pix2pix')
    return mode


def gan_loss(logits: torch.Tensor, target_is_real: bool, mode: str = "vanilla") -> torch.Tensor:
    """The adversarial loss of a discriminator output against an all-real or all-fake target.

    Args:
        logits: discriminator output of any shape, usually ``(B, 1, H', W')`` patch logits.
        target_is_real: compare with ones (True) or zeros (False).
        mode: ``"vanilla"`` (binary cross-entropy on logits) or ``"lsgan"`` (mean squared error).

    Returns:
        A scalar tensor: the mean over every element of ``logits``.

    Raises:
        InputError: ``mode`` is not vanilla or lsgan.
    """
    _check_mode(mode)
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.mse_loss(logits, target)


class GANLoss(nn.Module):
    """:func:`gan_loss` as a module with a fixed ``mode``.

    Args:
        mode: ``"vanilla"`` (pix2pix) or ``"lsgan"`` (CycleGAN).

    Raises:
        InputError: ``mode`` is not vanilla or lsgan.

    Example:
        >>> float(GANLoss("lsgan")(torch.zeros(1, 1, 2, 2), True))
        1.0
    """

    def __init__(self, mode: str = "vanilla"):
        super().__init__()
        self.mode = _check_mode(mode)

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """The loss of ``logits`` against ones (``target_is_real``) or zeros.

        Args:
            logits: discriminator output of any shape.
            target_is_real: compare with ones (True) or zeros (False).

        Returns:
            A scalar tensor.
        """
        return gan_loss(logits, target_is_real, self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, mode: str = "vanilla"
) -> torch.Tensor:
    """The discriminator loss ``0.5 * (loss(real, 1) + loss(fake, 0))``.

    The caller detaches the fake images (or their logits) so that no gradient reaches the generator.

    Args:
        real_logits: discriminator output on real pairs (pix2pix) or real images (CycleGAN), any shape.
        fake_logits: discriminator output on generated ones, any shape.
        mode: ``"vanilla"`` or ``"lsgan"``.

    Returns:
        A scalar tensor (``ln 2`` for vanilla and 0.5 for lsgan when every logit is 0).

    Raises:
        InputError: ``mode`` is not vanilla or lsgan.
    """
    return 0.5 * (gan_loss(real_logits, True, mode) + gan_loss(fake_logits, False, mode))


def pix2pix_generator_loss(
    fake_logits: torch.Tensor,
    fake: torch.Tensor,
    target: torch.Tensor,
    l1_weight: float = 100.0,
    mode: str = "vanilla",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The pix2pix generator objective ``loss(D(x, G(x)), 1) + l1_weight * mean|G(x) - y|``.

    Args:
        fake_logits: discriminator output on ``cat([x, G(x)], 1)``, any shape (``(B, 1, H', W')``).
        fake: generated image ``G(x)``, ``(B, C, H, W)``.
        target: ground truth ``y``, same shape as ``fake``.
        l1_weight: weight of the L1 term (lambda, 100 in pix2pix).
        mode: adversarial loss, ``"vanilla"`` (pix2pix) or ``"lsgan"``.

    Returns:
        ``(total, parts)``: the scalar to back-propagate, and ``{"gan": ..., "l1": ...}`` with the two
        unweighted terms (``total = gan + l1_weight * l1``).

    Raises:
        ShapeError: ``fake`` and ``target`` differ in shape.
        InputError: ``l1_weight`` is negative, or ``mode`` is not vanilla or lsgan.
    """
    if fake.shape != target.shape:
        raise ShapeError("target", expected=f"the shape of fake {tuple(fake.shape)}", got=tuple(target.shape))
    if not l1_weight >= 0:
        raise InputError("l1_weight", expected="a weight >= 0", got=l1_weight, fix="l1_weight=100.0")
    adversarial = gan_loss(fake_logits, True, mode)
    l1 = F.l1_loss(fake, target)
    return adversarial + l1_weight * l1, {"gan": adversarial, "l1": l1}


def _maps(scores, argument: str) -> list[torch.Tensor]:
    maps = list(scores) if isinstance(scores, (list, tuple)) else [scores]
    if not maps:
        raise InputError(argument, expected="a score map or a non-empty list of them", got="an empty list",
                         fix="pass the discriminator's output")
    return maps


def hinge_discriminator_loss(real_scores, fake_scores) -> torch.Tensor:
    """The hinge discriminator loss ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``.

    Args:
        real_scores: raw scores on real images, a tensor of any shape or a list of them (one per branch).
        fake_scores: the same for generated images (detached by the caller), as many maps.

    Returns:
        A scalar tensor, the mean over the branches (2 when every score is 0; 0 once real scores are >= 1 and
        fake ones <= -1).

    Raises:
        InputError: empty lists, or lists of different lengths.
    """
    real, fake = _maps(real_scores, "real_scores"), _maps(fake_scores, "fake_scores")
    if len(real) != len(fake):
        raise InputError("fake_scores", expected=f"{len(real)} score maps, as real_scores", got=len(fake))
    terms = [F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean() for r, f in zip(real, fake)]
    return torch.stack(terms).mean()


def critic_generator_loss(fake_scores) -> torch.Tensor:
    """The generator's adversarial loss ``-mean D(G(x))`` over every patch (BGGAN's eq. 3).

    Args:
        fake_scores: raw scores on generated images, a tensor of any shape or a list of them (one per branch).

    Returns:
        A scalar tensor, the mean over the branches.

    Raises:
        InputError: an empty list.
    """
    return -torch.stack([f.mean() for f in _maps(fake_scores, "fake_scores")]).mean()
