"""The third paper's baselines: their networks, losses and methods (pix2pix and BGGAN so far).

:mod:`.networks` holds the U-Net and ResNet generators, the PatchGAN discriminator and the N(0, 0.02)
initialisation; :mod:`.losses` the vanilla, least-squares and hinge adversarial losses and the pix2pix
objective. Their layouts and parameter counts follow the reference pix2pix/CycleGAN implementation.
:mod:`.bggan_networks` builds BGGAN's Glass-Net and multi-receptive-field discriminator from them.
"""

from __future__ import annotations

from .bggan import BGGAN, BGGANConfig, hybrid_loss, perceptual_loss, reconstruction_terms
from .bggan_networks import GlassNet, MultiReceptiveFieldDiscriminator, VGGFeatures
from .losses import (
    GAN_MODES,
    GANLoss,
    critic_generator_loss,
    discriminator_loss,
    gan_loss,
    hinge_discriminator_loss,
    pix2pix_generator_loss,
)
from .networks import NLayerDiscriminator, ResnetGenerator, UnetGenerator, init_weights, make_norm
from .pix2pix import Pix2Pix, Pix2PixConfig

__all__ = [
    "BGGAN",
    "GAN_MODES",
    "BGGANConfig",
    "GANLoss",
    "GlassNet",
    "MultiReceptiveFieldDiscriminator",
    "NLayerDiscriminator",
    "Pix2Pix",
    "Pix2PixConfig",
    "ResnetGenerator",
    "UnetGenerator",
    "VGGFeatures",
    "critic_generator_loss",
    "discriminator_loss",
    "gan_loss",
    "hinge_discriminator_loss",
    "hybrid_loss",
    "init_weights",
    "make_norm",
    "perceptual_loss",
    "pix2pix_generator_loss",
    "reconstruction_terms",
]
