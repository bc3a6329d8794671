"""The third paper's baselines: their networks, losses and methods (pix2pix and CycleGAN so far).

:mod:`.networks` holds the U-Net and ResNet generators, the PatchGAN discriminator and the N(0, 0.02)
initialisation; :mod:`.losses` the vanilla and least-squares adversarial losses and the pix2pix and CycleGAN
objectives.
Their layouts and parameter counts follow the reference pix2pix/CycleGAN implementation.
"""

from __future__ import annotations

from .cyclegan import CycleGAN, CycleGANConfig, ImagePool
from .losses import (
    GAN_MODES,
    GANLoss,
    cyclegan_generator_loss,
    discriminator_loss,
    gan_loss,
    pix2pix_generator_loss,
)
from .networks import NLayerDiscriminator, ResnetGenerator, UnetGenerator, init_weights, make_norm
from .pix2pix import Pix2Pix, Pix2PixConfig

__all__ = [
    "GAN_MODES",
    "CycleGAN",
    "CycleGANConfig",
    "GANLoss",
    "ImagePool",
    "NLayerDiscriminator",
    "Pix2Pix",
    "Pix2PixConfig",
    "ResnetGenerator",
    "UnetGenerator",
    "cyclegan_generator_loss",
    "discriminator_loss",
    "gan_loss",
    "init_weights",
    "make_norm",
    "pix2pix_generator_loss",
]
