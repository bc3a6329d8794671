"""CycleGAN (Zhu et al. 2017) as the third paper trains it on EBB!: two generators, G from all-in-focus photos
(domain A) to bokeh (domain B) and F back, two PatchGAN discriminators on single images, trained on unpaired
images with the least-squares GAN loss, cycle consistency (lambda 10, both directions) and the identity term
(0.5 x lambda).

The paper "employed similar architecture of generator and discriminator as in pix2pix": the default generator
is the pix2pix U-Net (``unet_256``), with the CycleGAN reference's other defaults (instance norm, no dropout);
``architecture="resnet"`` gives the reference's own default generator (``resnet_9blocks``). Each discriminator
sees a history of 50 generated images (:class:`ImagePool`). Adam 2e-4 with beta1 0.5 for both pairs of
networks, the learning rate constant and then decayed linearly to 0, weights drawn from N(0, 0.02).

Naming: ``discriminator_a`` tells real photos of A from F's outputs, ``discriminator_b`` real bokeh from G's
(the reference calls the latter ``D_A``, after the generator it judges). Values are those of pix2pix: sRGB
display values in [-1, 1] inside, linear RGB at :meth:`CycleGAN.predict`, which renders with G.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..errors import InputError, check_integer, check_learning_rate
from .losses import cyclegan_generator_loss, discriminator_loss
from .networks import NLayerDiscriminator, ResnetGenerator, UnetGenerator, check_training_size, init_weights
from .pix2pix import linear_decay, to_display, translate

__all__ = ["ARCHITECTURES", "CycleGAN", "CycleGANConfig", "ImagePool"]

ARCHITECTURES = ("unet", "resnet")


class ImagePool:
    """The reference's history of generated images, which a discriminator is trained on.

    Each image of a query goes into the pool while it holds fewer than ``size``; after that, with probability
    1/2 the query returns a stored image (chosen uniformly) and stores the new one in its place, and otherwise
    returns the new image and leaves the pool unchanged.

    Args:
        size: images kept (50 in CycleGAN; 0 passes every query through).
        generator: the random generator of the draws, or None for torch's global one (which the training
            loop seeds, saves and restores, so that resume is exact).

    Raises:
        InputError: ``size`` < 0.
    """

    def __init__(self, size: int = 50, *, generator: torch.Generator | None = None):
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InputError("pool_size", expected="an integer >= 0", got=size, fix="pool_size=50")
        self.size, self.generator = size, generator
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The images to train the discriminator on, for a batch of new ones.

        Args:
            images: ``(B, C, H, W)`` generated images.

        Returns:
            ``(B, C, H, W)``, detached: for each image, itself or one it replaced in the pool.
        """
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) > 0.5:
                index = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[index])
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> list[torch.Tensor]:
        """The stored images (on the CPU), for a checkpoint."""
        return [image.to("cpu") for image in self.images]

    def load_state(self, images: list[torch.Tensor], device: torch.device | str = "cpu") -> None:
        """Replace the stored images with ``images`` (what :meth:`state` gave), moved to ``device``.

        Raises:
            InputError: more images than the pool holds.
        """
        if len(images) > self.size:
            raise InputError("pool_size", expected=f"at least the {len(images)} images of the checkpoint's pool",
                             got=self.size, fix="resume with the run's own settings")
        self.images = [image.to(device) for image in images]


@dataclass(frozen=True)
class CycleGANConfig:
    """CycleGAN's settings (defaults: the paper's U-Net run with the reference's other defaults).

    Args:
        architecture: the generators: ``"unet"`` (pix2pix's U-Net, as the paper) or ``"resnet"`` (the
            reference's ResNet generator).
        num_downs: the U-Net's down-sampling steps (8: ``unet_256``, 7: ``unet_128``); U-Net only.
        n_blocks: the ResNet's residual blocks (9: ``resnet_9blocks``); ResNet only.
        ngf: the generators' first layer width.
        ndf: the discriminators' first layer width.
        n_layers: the PatchGANs' strided layers (3: 70x70 receptive field).
        norm: ``"instance"`` (the reference's CycleGAN default), ``"batch"`` or ``"none"``.
        cycle_weight: lambda, the weight of both cycle-consistency terms (10).
        identity_weight: the identity terms' weight, as a fraction of ``cycle_weight`` (0.5; 0 turns them off).
        pool_size: generated images each discriminator's history keeps (50; 0: the latest only).
        lr: Adam's learning rate (2e-4).
        beta1: Adam's beta1 (0.5).
        lr_constant_steps: steps at the full learning rate.
        lr_decay_steps: steps over which it then decays linearly to 0.

    Raises:
        InputError: an unknown architecture, a count out of range or a negative weight.
    """

    architecture: str = "unet"
    num_downs: int = 8
    n_blocks: int = 9
    ngf: int = 64
    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    pool_size: int = 50
    lr: float = 2e-4
    beta1: float = 0.5
    lr_constant_steps: int = 100_000
    lr_decay_steps: int = 100_000

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise InputError("architecture", expected="unet or resnet", got=self.architecture,
                             fix="architecture=unet (the paper's) or architecture=resnet (the reference's)")
        for name, low, default in (("num_downs", 5, 8), ("n_blocks", 0, 9), ("ngf", 1, 64), ("ndf", 1, 64),
                                   ("n_layers", 1, 3), ("pool_size", 0, 50), ("lr_constant_steps", 0, 100_000),
                                   ("lr_decay_steps", 0, 100_000)):
            check_integer(name, getattr(self, name), low, fix=f"{name}={default}")
        check_learning_rate(self.lr, default=2e-4)
        for name, default in (("cycle_weight", 10.0), ("identity_weight", 0.5)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InputError(name, expected="a number >= 0", got=value, fix=f"{name}={default}")

    @property
    def multiple(self) -> int:
        """The side the generators' input must be a multiple of."""
        return 2 ** self.num_downs if self.architecture == "unet" else 4


class CycleGAN:
    """The CycleGAN method for :func:`lensblur.train.train` (and, trained, for rendering with G).

    Train it on unpaired items (:class:`lensblur.train.Unpaired`): ``image`` is a photo of domain A,
    ``target`` a bokeh image of domain B of another scene.

    Args:
        config: the settings (:class:`CycleGANConfig`).
        seed: the initialisation's seed.
    """

    name = "cyclegan"

    def __init__(self, config: CycleGANConfig = CycleGANConfig(), *, seed: int = 0):
        self.settings = config
        generator = torch.Generator().manual_seed(seed)
        self.generator_ab, self.generator_ba = self._generator(), self._generator()
        self.discriminator_a, self.discriminator_b = (
            NLayerDiscriminator(3, ndf=config.ndf, n_layers=config.n_layers, norm=config.norm) for _ in range(2))
        for net in self.modules().values():
            init_weights(net, generator=generator)
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(itertools.chain(self.generator_ab.parameters(), self.generator_ba.parameters()),
                                      lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(itertools.chain(self.discriminator_a.parameters(),
                                                      self.discriminator_b.parameters()), lr=config.lr, betas=betas)
        self.sched_g = linear_decay(self.opt_g, config.lr_constant_steps, config.lr_decay_steps)
        self.sched_d = linear_decay(self.opt_d, config.lr_constant_steps, config.lr_decay_steps)
        # The reference's history buffers, drawing from torch's global generator (the loop's).
        self.pool_a, self.pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)
        self._g, self._f, self._d_a, self._d_b = (self.generator_ab, self.generator_ba, self.discriminator_a,
                                                  self.discriminator_b)
        self._opt_g, self._opt_d = self.opt_g, self.opt_d

    def _generator(self) -> torch.nn.Module:
        c = self.settings
        if c.architecture == "unet":
            return UnetGenerator(3, 3, num_downs=c.num_downs, ngf=c.ngf, norm=c.norm, dropout=False)
        return ResnetGenerator(3, 3, ngf=c.ngf, n_blocks=c.n_blocks, norm=c.norm, dropout=False)

    # -- what the loop asks for ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return asdict(self.settings)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator_ab": self.generator_ab, "generator_ba": self.generator_ba,
                "discriminator_a": self.discriminator_a, "discriminator_b": self.discriminator_b}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generators": self.opt_g, "discriminators": self.opt_d}

    def schedulers(self) -> dict[str, Any]:
        return {"generators": self.sched_g, "discriminators": self.sched_d}

    def prepare(self, accelerator) -> None:
        (self._g, self._f, self._d_a, self._d_b, self._opt_g, self._opt_d) = accelerator.prepare(
            self.generator_ab, self.generator_ba, self.discriminator_a, self.discriminator_b, self.opt_g, self.opt_d)

    def extra_state(self) -> dict[str, Any]:
        """The two image pools, for exact resume."""
        return {"pool_a": self.pool_a.state(), "pool_b": self.pool_b.state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` gave (on the discriminators' device)."""
        device = next(self.discriminator_a.parameters()).device
        self.pool_a.load_state(list(state.get("pool_a", [])), device)
        self.pool_b.load_state(list(state.get("pool_b", [])), device)

    def training_step(self, batch: dict[str, torch.Tensor], accelerator) -> dict[str, float]:
        """One update of both generators, then one of both discriminators, on unpaired (image, target) items."""
        c = self.settings
        nets = (self._g, self._f, self._d_a, self._d_b)
        for net in nets:
            net.train()
        real_a, real_b = to_display(batch["image"]), to_display(batch["target"])
        # 1. Both cycles: A -> B -> A and B -> A -> B.
        fake_b = self._g(real_a)
        rec_a = self._f(fake_b)
        fake_a = self._f(real_b)
        rec_b = self._g(fake_a)
        # 2. The generators, against frozen discriminators.
        discriminators = (self._d_a, self._d_b)
        for p in itertools.chain(*(d.parameters() for d in discriminators)):
            p.requires_grad_(False)
        self._opt_g.zero_grad()
        same_b, same_a = (self._g(real_b), self._f(real_a)) if c.identity_weight else (None, None)
        loss_g, parts = cyclegan_generator_loss(self._d_b(fake_b), self._d_a(fake_a), real_a, real_b, rec_a, rec_b,
                                                same_a, same_b, cycle_weight=c.cycle_weight,
                                                identity_weight=c.identity_weight, mode="lsgan")
        accelerator.backward(loss_g)
        self._opt_g.step()
        for p in itertools.chain(*(d.parameters() for d in discriminators)):
            p.requires_grad_(True)
        # 3. The discriminators: real images against the pools' generated ones (each loss halved).
        self._opt_d.zero_grad()
        loss_d_b = discriminator_loss(self._d_b(real_b), self._d_b(self.pool_b.query(fake_b)), mode="lsgan")
        loss_d_a = discriminator_loss(self._d_a(real_a), self._d_a(self.pool_a.query(fake_a)), mode="lsgan")
        accelerator.backward(loss_d_a + loss_d_b)
        self._opt_d.step()
        if accelerator.sync_gradients:
            self.sched_g.step()
            self.sched_d.step()
        return {"loss_g": float(loss_g.detach()), "loss_d_a": float(loss_d_a.detach()),
                "loss_d_b": float(loss_d_b.detach()), **{k: float(v.detach()) for k, v in parts.items()}}

    def check_size(self, height: int, width: int) -> None:
        """Refuse training items the generators cannot take (sides not multiples of :attr:`CycleGANConfig.multiple`)."""
        c = self.settings
        why = f"2**num_downs, num_downs={c.num_downs}" if c.architecture == "unet" else "the ResNet generator's"
        check_training_size(height, width, c.multiple, why)

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """Render ``(B, 3, H, W)`` linear RGB (any size) with G (A -> B), in evaluation mode."""
        return translate(self._g, image, self.settings.multiple)
