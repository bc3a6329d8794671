"""The third paper's baselines: their networks, losses and methods (pix2pix, CycleGAN, DenseDepth + threshold blur).

:mod:`.networks` holds the U-Net and ResNet generators, the PatchGAN discriminator and the N(0, 0.02)
initialisation; :mod:`.losses` the vanilla and least-squares adversarial losses and the pix2pix and CycleGAN
objectives. Their layouts and parameter counts follow the reference pix2pix/CycleGAN implementation.
:mod:`.densedepth` is the depth network of the paper's first method (DenseNet-169 + the Keras DenseDepth
decoder, its target, loss and training view), :mod:`.threshold` that method's Gaussian blur beyond a depth
threshold.
"""

from __future__ import annotations

from .cyclegan import CycleGAN, CycleGANConfig, ImagePool
from .densedepth import DenseDepth, DenseDepthConfig, DenseDepthNet, DepthTargets, depth_loss
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
from .threshold import DepthThreshold, threshold_blur

__all__ = [
    "GAN_MODES",
    "CycleGAN",
    "CycleGANConfig",
    "DenseDepth",
    "DenseDepthConfig",
    "DenseDepthNet",
    "DepthTargets",
    "DepthThreshold",
    "GANLoss",
    "ImagePool",
    "NLayerDiscriminator",
    "Pix2Pix",
    "Pix2PixConfig",
    "ResnetGenerator",
    "UnetGenerator",
    "cyclegan_generator_loss",
    "depth_loss",
    "discriminator_loss",
    "gan_loss",
    "init_weights",
    "make_norm",
    "pix2pix_generator_loss",
    "threshold_blur",
]
