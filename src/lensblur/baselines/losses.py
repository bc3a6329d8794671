"""The adversarial losses of pix2pix, CycleGAN and BGGAN, and the pix2pix and CycleGAN generator objectives.

``vanilla`` is the original GAN loss written on logits (``BCEWithLogitsLoss`` against a map of ones for
real and zeros for fake); ``lsgan`` is the least-squares loss (``MSELoss`` against the same maps). Both
average over every patch of a PatchGAN output. The discriminator loss is halved, as in the reference
(``backward_D``), and the pix2pix generator adds ``l1_weight`` (100) times the L1 distance to the target. The
CycleGAN generators add the cycle-consistency L1 of both directions times ``cycle_weight`` (lambda, 10) and the
identity L1 times ``identity_weight * cycle_weight`` (0.5 x 10), as the reference's ``backward_G`` does.

BGGAN's generator loss is the negated mean raw score (:func:`critic_generator_loss`, its eq. 3), which goes
with a hinge discriminator (:func:`hinge_discriminator_loss`); both take one score map or a list of maps (one
per branch of a multi-receptive-field discriminator) and average over the list.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, ShapeError

__all__ = ["GAN_MODES", "GANLoss", "critic_generator_loss", "cyclegan_generator_loss", "discriminator_loss",
           "gan_loss", "hinge_discriminator_loss", "pix2pix_generator_loss"]

GAN_MODES = ("vanilla", "lsgan")


def _check_mode(mode: str) -> str:
    if mode not in GAN_MODES:
        raise InputError("mode", expected="vanilla or lsgan", got=mode, fix='mode="vanilla" for pix2pix')
    return mode


def gan_loss(logits: torch.Tensor, target_is_real: bool, mode: str = "vanilla", *,
             real_label: float = 1.0) -> torch.Tensor:
    """The adversarial loss of a discriminator output against an all-real or all-fake target.

    Args:
        logits: discriminator output of any shape, usually ``(B, 1, H', W')`` patch logits.
        target_is_real: compare with ``real_label`` (True) or zeros (False).
        mode: ``"vanilla"`` (binary cross-entropy on logits) or ``"lsgan"`` (mean squared error).
        real_label: the target of real images (1; below 1 is one-sided label smoothing, BokehDiff's 0.8).

    Returns:
        A scalar tensor: the mean over every element of ``logits``.

    Raises:
        InputError: ``mode`` is not vanilla or lsgan.
    """
    _check_mode(mode)
    target = torch.full_like(logits, float(real_label) if target_is_real else 0.0)
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


def cyclegan_generator_loss(
    fake_b_logits: torch.Tensor,
    fake_a_logits: torch.Tensor,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    rec_a: torch.Tensor,
    rec_b: torch.Tensor,
    same_a: torch.Tensor | None = None,
    same_b: torch.Tensor | None = None,
    *,
    cycle_weight: float = 10.0,
    identity_weight: float = 0.5,
    mode: str = "lsgan",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The CycleGAN objective of the two generators G (A -> B) and F (B -> A).

    ``total = loss(D_B(G(a)), 1) + loss(D_A(F(b)), 1) + cycle_weight * (|F(G(a)) - a| + |G(F(b)) - b|)
    + identity_weight * cycle_weight * (|F(a) - a| + |G(b) - b|)``, each ``|.|`` a mean absolute difference.

    Args:
        fake_b_logits: ``D_B(G(a))``, any shape.
        fake_a_logits: ``D_A(F(b))``, any shape.
        real_a: images of domain A, ``(B, C, H, W)``.
        real_b: images of domain B, ``(B, C, H, W)``.
        rec_a: ``F(G(a))``, the shape of ``real_a``.
        rec_b: ``G(F(b))``, the shape of ``real_b``.
        same_a: ``F(a)`` (the identity term of F), or None when ``identity_weight`` is 0.
        same_b: ``G(b)`` (the identity term of G), or None when ``identity_weight`` is 0.
        cycle_weight: lambda, the weight of both cycle terms (10).
        identity_weight: the identity terms' weight relative to ``cycle_weight`` (0.5).
        mode: adversarial loss, ``"lsgan"`` (CycleGAN) or ``"vanilla"``.

    Returns:
        ``(total, parts)``: the scalar to back-propagate, and the unweighted terms ``gan_ab``, ``gan_ba``,
        ``cycle_a``, ``cycle_b`` and, with an identity weight, ``identity_a``, ``identity_b``.

    Raises:
        ShapeError: a reconstruction or identity image differs in shape from its real image.
        InputError: a negative weight, identity images missing with an identity weight, or an unknown ``mode``.
    """
    for name, value, default in (("cycle_weight", cycle_weight, 10.0), ("identity_weight", identity_weight, 0.5)):
        if not value >= 0:
            raise InputError(name, expected="a weight >= 0", got=value, fix=f"{name}={default}")
    # term -> (made, real, the argument holding the made images)
    pairs = {"cycle_a": (rec_a, real_a, "rec_a"), "cycle_b": (rec_b, real_b, "rec_b")}
    if identity_weight:
        if same_a is None or same_b is None:
            raise InputError("same_a", expected="F(a) and G(b) for the identity terms", got="None",
                             fix="pass same_a and same_b, or identity_weight=0")
        pairs.update({"identity_a": (same_a, real_a, "same_a"), "identity_b": (same_b, real_b, "same_b")})
    for made, real, argument in pairs.values():
        if made.shape != real.shape:
            raise ShapeError(argument, expected=f"the shape of its real images {tuple(real.shape)}",
                             got=tuple(made.shape))
    parts = {"gan_ab": gan_loss(fake_b_logits, True, mode), "gan_ba": gan_loss(fake_a_logits, True, mode)}
    parts.update({name: F.l1_loss(made, real) for name, (made, real, _) in pairs.items()})
    total = parts["gan_ab"] + parts["gan_ba"] + cycle_weight * (parts["cycle_a"] + parts["cycle_b"])
    if identity_weight:
        total = total + identity_weight * cycle_weight * (parts["identity_a"] + parts["identity_b"])
    return total, parts


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
