"""The third paper's baselines: their networks, losses and methods (pix2pix, CycleGAN, BGGAN, DenseDepth +
threshold blur).

:mod:`.networks` holds the U-Net and ResNet generators, the PatchGAN discriminator and the N(0, 0.02)
initialisation; :mod:`.losses` the vanilla, least-squares and hinge adversarial losses and the pix2pix and
CycleGAN objectives. Their layouts and parameter counts follow the reference pix2pix/CycleGAN implementation.
:mod:`.bggan_networks` builds BGGAN's Glass-Net and multi-receptive-field discriminator from them.
:mod:`.densedepth` is the depth network of the paper's first method (DenseNet-169 + the Keras DenseDepth
decoder, its target, loss and training view), :mod:`.threshold` that method's Gaussian blur beyond a depth
threshold.
"""

from __future__ import annotations

from .bggan import BGGAN, BGGANConfig, hybrid_loss, perceptual_loss, reconstruction_terms
from .bggan_networks import GlassNet, MultiReceptiveFieldDiscriminator, VGGFeatures
from .cyclegan import CycleGAN, CycleGANConfig, ImagePool
from .densedepth import DenseDepth, DenseDepthConfig, DenseDepthNet, DepthTargets, depth_loss
from .losses import (
    GAN_MODES,
    GANLoss,
    critic_generator_loss,
    cyclegan_generator_loss,
    discriminator_loss,
    gan_loss,
    hinge_discriminator_loss,
    pix2pix_generator_loss,
)
from .networks import NLayerDiscriminator, ResnetGenerator, UnetGenerator, init_weights, make_norm
from .pix2pix import Pix2Pix, Pix2PixConfig
from .threshold import DepthThreshold, threshold_blur

__all__ = [
    "BGGAN",
    "GAN_MODES",
    "BGGANConfig",
    "CycleGAN",
    "CycleGANConfig",
    "DenseDepth",
    "DenseDepthConfig",
    "DenseDepthNet",
    "DepthTargets",
    "DepthThreshold",
    "GANLoss",
    "GlassNet",
    "ImagePool",
    "MultiReceptiveFieldDiscriminator",
    "NLayerDiscriminator",
    "Pix2Pix",
    "Pix2PixConfig",
    "ResnetGenerator",
    "UnetGenerator",
    "VGGFeatures",
    "critic_generator_loss",
    "cyclegan_generator_loss",
    "depth_loss",
    "discriminator_loss",
    "gan_loss",
    "hinge_discriminator_loss",
    "hybrid_loss",
    "init_weights",
    "make_norm",
    "perceptual_loss",
    "pix2pix_generator_loss",
    "reconstruction_terms",
    "threshold_blur",
]
