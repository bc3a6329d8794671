"""BokehDiff's discriminator: a frozen ConvNeXt backbone and a small trainable spectral-norm head on each of
its stride-32 feature vectors (a patch discriminator), as the release builds it from ``vision_aided_loss``.

The release reads ``timm``'s ImageNet-22k ``convnext_base_in22k`` (``forward_features``: the four stages, 1024
channels); lensblur builds torchvision's ConvNeXt architecture (``features``: the same stem and stages) and
reads its weights from a local file only: torchvision's ImageNet-1k ``convnext_base-6075fbad.pth`` in the torch
hub cache, or any file of the same keys. It never downloads them and never runs a random backbone. Images
enter as ``0.5 + 0.5 x`` (display values in [0, 1]) without ImageNet normalisation, as released.

The head is ``SN-Linear(C, 256) -> LeakyReLU(0.2) -> SN-Linear(256, 1)`` applied at every feature location
(1x1 convolutions), with PyTorch's spectral-norm parametrisation. Only the head is trained and checkpointed.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import InputError

__all__ = ["CONVNEXT_CHANNELS", "DISCRIMINATORS", "ConvNeXtDiscriminator", "FrozenFeatures", "SpectralHead",
           "convnext_features"]

CONVNEXT_CHANNELS = {"convnext_tiny": 768, "convnext_small": 768, "convnext_base": 1024, "convnext_large": 1536}
"""torchvision's ConvNeXt variants and the channels of their last stage."""
DISCRIMINATORS = (*CONVNEXT_CHANNELS, "custom", "none")
"""The discriminator choices: a torchvision ConvNeXt (weights from a file), ``"custom"`` (a frozen backbone
module given in Python, e.g. timm's ``convnext_base_in22k``) or ``"none"`` (no adversarial term)."""
HEAD_WIDTH = 256


class FrozenFeatures(nn.Module):
    """A feature extractor that is never trained: no gradient to its weights and always in evaluation mode
    (ConvNeXt's stochastic depth stays off). Gradients still flow through it to its input.

    Args:
        network: maps ``(B, 3, H, W)`` display values in [0, 1] to ``(B, C, h, w)`` features.
    """

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenFeatures:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def convnext_features(variant: str = "convnext_base", *, weights: str | os.PathLike | None = None,
                      hub_dir=None) -> FrozenFeatures:
    """torchvision's ConvNeXt ``features`` (stem and four stages) with ImageNet weights from a local file.

    Args:
        variant: ``convnext_tiny``, ``convnext_small``, ``convnext_base`` (the release's size) or ``convnext_large``.
        weights: a safetensors or torchvision ``.pth`` file of the whole classifier's state dict (keys
            ``features.N...``) or of its features (``N...``), or None for the torch hub cache's file.
        hub_dir: the torch hub folder to look in, or None for torch's own.

    Returns:
        The frozen features.

    Raises:
        InputError: an unknown variant, or a file without the variant's weights.
        ModelNotFoundError: no weights file (nothing is downloaded).
    """
    if variant not in CONVNEXT_CHANNELS:
        raise InputError("discriminator", expected=f"one of {', '.join(DISCRIMINATORS)}", got=variant,
                         fix="discriminator=convnext_base")
    from ..metrics.perceptual import load_torchvision_features

    features = load_torchvision_features(
        variant, what="BokehDiff's discriminator", argument="discriminator_weights", path=weights, hub_dir=hub_dir,
        otherwise="or pass discriminator=none (lensblur train bokehdiff --discriminator none) to train without the "
                  "adversarial term")
    return FrozenFeatures(features)


class SpectralHead(nn.Module):
    """The trainable head: ``SN-Linear(channels, 256) -> LeakyReLU(0.2) -> SN-Linear(256, 1)`` per location.

    Args:
        channels: the backbone's feature channels.
        width: the hidden width (256).
    """

    def __init__(self, channels: int, width: int = HEAD_WIDTH):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.layers = nn.Sequential(sn(nn.Conv2d(channels, width, 1)), nn.LeakyReLU(0.2),
                                    sn(nn.Conv2d(width, 1, 1)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` features -> ``(B, 1, h, w)`` logits."""
        return self.layers(features)


class ConvNeXtDiscriminator(nn.Module):
    """The frozen backbone and the trainable head.

    Args:
        backbone: the frozen features (:func:`convnext_features`, or any :class:`FrozenFeatures`).
        channels: the backbone's output channels, or None to measure them on a 64 x 64 input.
    """

    def __init__(self, backbone: nn.Module, channels: int | None = None):
        super().__init__()
        self.backbone = backbone if isinstance(backbone, FrozenFeatures) else FrozenFeatures(backbone)
        if channels is None:
            weight = next(self.backbone.parameters())
            with torch.no_grad():
                channels = int(self.backbone(torch.zeros(1, 3, 64, 64, device=weight.device, dtype=weight.dtype)).shape[1])
        self.head = SpectralHead(channels)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` values in [-1, 1] -> ``(B, 1, H / 32, W / 32)`` patch logits (for ConvNeXt)."""
        return self.head(self.backbone(0.5 + 0.5 * image))
