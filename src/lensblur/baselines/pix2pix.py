"""pix2pix (Isola et al. 2017) as the third paper trains it on EBB!: a U-Net generator and a 70x70 PatchGAN
on the concatenated (input, output) pair, the vanilla GAN loss plus 100 x L1, Adam 2e-4 with beta1 0.5, the
learning rate constant and then decayed linearly to 0, weights drawn from N(0, 0.02).

Images enter the networks as sRGB display values scaled to [-1, 1], as the reference implementation's
``Normalize(0.5, 0.5)`` does; :meth:`Pix2Pix.predict` takes and returns linear RGB like every lensblur
renderer. Inputs of any size are padded (reflected) to a multiple of the U-Net's ``2 ** num_downs`` and
cropped back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..color import linear_to_srgb, srgb_to_linear
from ..errors import InputError, check_integer, check_learning_rate
from .losses import discriminator_loss, pix2pix_generator_loss
from .networks import NLayerDiscriminator, UnetGenerator, check_training_size, init_weights

__all__ = ["Pix2Pix", "Pix2PixConfig", "from_display", "linear_decay", "to_display", "translate"]


def to_display(linear: torch.Tensor) -> torch.Tensor:
    """Linear RGB to the networks' values: sRGB display values in [-1, 1]."""
    return linear_to_srgb(linear) * 2.0 - 1.0


def from_display(values: torch.Tensor) -> torch.Tensor:
    """The networks' values in [-1, 1] back to linear RGB."""
    return srgb_to_linear((values + 1.0) / 2.0)


def translate(network: torch.nn.Module, image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Run an image-to-image generator on linear RGB of any size, in evaluation mode.

    The image goes to display values, is padded (reflected; replicated when it is too small to reflect) on
    the right and bottom to a multiple of ``multiple``, goes through ``network``, and is cropped back and
    clamped to [-1, 1] before it returns to linear RGB.

    Args:
        network: the generator (on any device); it is put in evaluation mode.
        image: ``(B, 3, H, W)`` linear RGB.
        multiple: the side the network's input must be a multiple of (``2 ** num_downs`` for a U-Net).

    Returns:
        ``(B, 3, H, W)`` linear RGB on the network's device.
    """
    h, w = image.shape[-2:]
    pad = (0, -w % multiple, 0, -h % multiple)
    network.eval()
    device = next(network.parameters()).device
    with torch.no_grad():
        x = to_display(image.to(device))
        if any(pad):
            mode = "reflect" if max(pad) < min(h, w) else "replicate"
            x = F.pad(x, pad, mode=mode)
        out = network(x)[..., :h, :w].clamp(-1.0, 1.0)
    return from_display(out)


def linear_decay(optimizer: torch.optim.Optimizer, constant_steps: int, decay_steps: int):
    """The reference's ``linear`` policy counted in steps instead of epochs: the first ``constant_steps`` steps
    at the full learning rate, then ``decay_steps`` steps decaying linearly, the last at ``1 / (decay_steps +
    1)`` of it. Step ``s`` (from 0) runs at ``1 - max(0, s + 1 - constant_steps) / (decay_steps + 1)``, the
    reference's rule with its ``epoch_count`` of 1.

    Args:
        optimizer: the optimiser whose learning rate it scales.
        constant_steps: steps at the full learning rate, >= 0.
        decay_steps: steps of the decay, >= 0.

    Returns:
        A ``LambdaLR`` to step once per optimiser step.
    """
    def factor(step: int) -> float:
        return 1.0 - max(0, step + 1 - constant_steps) / float(decay_steps + 1)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class Pix2PixConfig:
    """pix2pix's settings (defaults: the reference's ``unet_256`` / ``basic`` PatchGAN run).

    Args:
        num_downs: the U-Net's down-sampling steps (8: ``unet_256``, 7: ``unet_128``; fewer for small tests).
        ngf: the generator's first layer width.
        ndf: the discriminator's first layer width.
        n_layers: the PatchGAN's strided layers (3: 70x70 receptive field).
        l1_weight: the weight of L1 against the GAN term (100).
        lr: Adam's learning rate (2e-4).
        beta1: Adam's beta1 (0.5).
        lr_constant_steps: steps at the full learning rate.
        lr_decay_steps: steps over which it then decays linearly to 0.
    """

    num_downs: int = 8
    ngf: int = 64
    ndf: int = 64
    n_layers: int = 3
    l1_weight: float = 100.0
    lr: float = 2e-4
    beta1: float = 0.5
    lr_constant_steps: int = 100_000
    lr_decay_steps: int = 100_000

    def __post_init__(self) -> None:
        for name in ("num_downs", "ngf", "ndf", "n_layers"):
            check_integer(name, getattr(self, name), 1, fix=f"{name}=8" if name == "num_downs" else f"{name}=64")
        check_learning_rate(self.lr, default=2e-4)
        if self.lr_constant_steps < 0 or self.lr_decay_steps < 0:
            raise InputError("lr_decay_steps", expected="step counts >= 0", got=(self.lr_constant_steps,
                             self.lr_decay_steps), fix="lr_constant_steps=100000")


class Pix2Pix:
    """The pix2pix method for :func:`lensblur.train.train` (and, trained, for rendering).

    Args:
        config: the settings (:class:`Pix2PixConfig`); ``seed`` seeds the weights' initialisation.
        seed: the initialisation's seed.
    """

    name = "pix2pix"

    def __init__(self, config: Pix2PixConfig = Pix2PixConfig(), *, seed: int = 0):
        self.settings = config
        generator = torch.Generator().manual_seed(seed)
        self.generator = UnetGenerator(3, 3, num_downs=config.num_downs, ngf=config.ngf)
        self.discriminator = NLayerDiscriminator(6, ndf=config.ndf, n_layers=config.n_layers)
        init_weights(self.generator, generator=generator)
        init_weights(self.discriminator, generator=generator)
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        self.sched_g = linear_decay(self.opt_g, config.lr_constant_steps, config.lr_decay_steps)
        self.sched_d = linear_decay(self.opt_d, config.lr_constant_steps, config.lr_decay_steps)
        self._g, self._d = self.generator, self.discriminator

    # -- what the loop asks for ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return asdict(self.settings)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def schedulers(self) -> dict[str, Any]:
        return {"generator": self.sched_g, "discriminator": self.sched_d}

    def prepare(self, accelerator) -> None:
        self._g, self._d, self._opt_g, self._opt_d = accelerator.prepare(self.generator, self.discriminator,
                                                                         self.opt_g, self.opt_d)

    def training_step(self, batch: dict[str, torch.Tensor], accelerator) -> dict[str, float]:
        """One discriminator and one generator update on a batch of (image, target) pairs."""
        self._g.train()
        self._d.train()
        real_a, real_b = to_display(batch["image"]), to_display(batch["target"])
        fake_b = self._g(real_a)
        # 1. The discriminator: real pairs against generated ones.
        self._opt_d.zero_grad()
        loss_d = discriminator_loss(self._d(torch.cat([real_a, real_b], 1)),
                                    self._d(torch.cat([real_a, fake_b.detach()], 1)), mode="vanilla")
        accelerator.backward(loss_d)
        self._opt_d.step()
        # 2. The generator: fool the discriminator, stay near the target (L1).
        self._opt_g.zero_grad()
        for p in self._d.parameters():
            p.requires_grad_(False)
        loss_g, parts = pix2pix_generator_loss(self._d(torch.cat([real_a, fake_b], 1)), fake_b, real_b,
                                               l1_weight=self.settings.l1_weight)
        accelerator.backward(loss_g)
        for p in self._d.parameters():
            p.requires_grad_(True)
        self._opt_g.step()
        if accelerator.sync_gradients:
            self.sched_g.step()
            self.sched_d.step()
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()),
                **{k: float(v.detach()) for k, v in parts.items()}}

    def check_size(self, height: int, width: int) -> None:
        """Refuse training items the U-Net cannot take (sides not multiples of ``2 ** num_downs``)."""
        downs = self.settings.num_downs
        check_training_size(height, width, 2 ** downs, f"2**num_downs, num_downs={downs}")

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """Render ``(B, 3, H, W)`` linear RGB (any size) with the generator, in evaluation mode."""
        return translate(self._g, image, 2 ** self.settings.num_downs)
