"""BGGAN (Qian et al., "BGGAN: Bokeh-Glass Generative Adversarial Network for Rendering Realistic Bokeh",
AIM 2020 / ECCV workshops): the Glass-Net generator (:mod:`.bggan_networks`) trained in two phases, as the
third paper (Singh & Gothe, section 3.2.4) and BGGAN's abstract describe it.

1. **Reconstruction.** Glass-Net alone, on ``l1_weight * L1 + ssim_weight * (1 - SSIM)``. The abstract says
   only that GAN and perceptual losses are added "in the stage of finetuning"; which reconstruction losses come
   before is not published, and these are the hybrid loss's own two terms with its own weights.
2. **Fine-tuning** (after ``pretrain_steps``) with the hybrid loss of the third paper's eq. (4),
   ``0.5 L1 + 0.05 L_SSIM + 0.1 L_VGG + L_adv``:

   - L_SSIM is *"negative SSIM"*; ``1 - SSIM`` is used (the same gradient, and 0 at a perfect result);
   - L_VGG (eq. 2) is the mean absolute difference of VGG-19 feature maps (``features[:35]``, conv5_4 before
     ReLU, by default; :class:`~.bggan_networks.VGGFeatures`). The text calls it a Euclidean loss but writes
     an L1 norm; the formula is followed;
   - L_adv (eq. 3) is ``-mean D(G(I))`` over every patch, averaged over the discriminator's branches, and the
     multi-receptive-field discriminator is trained with the hinge loss that goes with such a critic (BGGAN's
     discriminator loss is not published).
   - the critic is spectrally normalised (``d_norm``), and may train alone for the first ``d_warmup_steps`` of
     the phase before its term enters Glass-Net's loss.

Throughout, the rough result of stage one is also held to the target with the reconstruction loss, times
``rough_weight`` (1 by default; 0 gives eq. 4 alone in phase 2): the paper calls it "a rough bokeh result",
and this supervision is what makes it one.

Values: the networks see sRGB display values in [-1, 1] (:func:`~.pix2pix.to_display`); the losses are taken
on display values in [0, 1] (L1, SSIM with a data range of 1, and the VGG input, which is then normalised
with ImageNet's mean and standard deviation as torchvision's weights expect). :meth:`BGGAN.predict` takes and
returns linear RGB like every lensblur renderer, at any size (padded to the U-Nets' grid and cropped back).

The VGG network is a loss, not part of the model: it is not in the checkpoints, and a trained BGGAN renders
without its weights (:meth:`BGGAN.for_inference`). Training with it needs a local ImageNet VGG-19 file
(``vgg_weights=PATH``, or torchvision's ``vgg19-dcbba9e9.pth`` in ``$TORCH_HOME/hub/checkpoints``); without
one, training is refused unless ``use_vgg=False``.

Optimisation (not published for BGGAN): Adam at ``lr`` 1e-4, betas (0.5, 0.999), for both networks; the
learning rate constant for ``lr_constant_steps`` and then decaying linearly to 0 over ``lr_decay_steps`` (one
clock for both networks: the discriminator, which starts at phase 2, is on the same schedule); weights from
N(0, 0.02) (the pix2pix initialisation), with both stages' last layers zeroed so that Glass-Net starts as the
identity mapping (``identity_init``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import InputError, check_integer, check_learning_rate
from ..metrics import ssim_tensor
from .bggan_networks import (
    REFINE_INPUTS,
    VGG19_FEATURES,
    GlassNet,
    MultiReceptiveFieldDiscriminator,
    VGGFeatures,
)
from .losses import critic_generator_loss, hinge_discriminator_loss
from .networks import D_NORMS, NORMS, check_training_size, init_weights
from .pix2pix import to_display, translate

__all__ = ["BGGAN", "BGGANConfig", "hybrid_loss", "perceptual_loss", "reconstruction_terms"]


@dataclass(frozen=True)
class BGGANConfig:
    """BGGAN's settings. The defaults are lensblur's choices where the paper is silent (see the module docs).

    Args:
        num_downs: stage one's U-Net down-samplings (8: ``unet_256``; H and W of the input are padded to a
            multiple of ``2 ** max(num_downs, refine_num_downs)``).
        ngf: stage one's first width.
        refine_num_downs: stage two's down-samplings.
        refine_ngf: stage two's first width.
        refine_input: what stage two sees, ``"both"`` (input and rough result) or ``"rough"``.
        norm: the U-Nets' normalisation (``"instance"`` as BGGAN).
        identity_init: zero both stages' last layers, so that training starts from the identity mapping.
        ndf: the discriminator branches' first width.
        d_layers: the branches' depths (2, 3, 4: receptive fields 34, 70, 142 px); the deepest needs crops of
            at least ``3 * 2 ** max(d_layers)`` px (48 for 4).
        d_norm: the discriminator's normalisation: ``"spectral"`` (spectral normalisation of its convolutions,
            no norm layers), or ``"instance"``, ``"batch"``, ``"none"``. Eq. 3 feeds the critic's raw scores to
            the generator, so the critic must change slowly with its input: with norm layers, a fresh critic's
            input gradient is hundreds of times the L1 term's, and fine-tuning starts by undoing phase 1.
        conditional: the discriminator also sees the input (6 channels) instead of ``D(G(I))`` alone.
        l1_weight, ssim_weight, vgg_weight, adv_weight: the hybrid loss's weights (0.5, 0.05, 0.1, 1).
        rough_weight: the weight of the rough result's reconstruction loss.
        use_vgg: include the VGG term (needs VGG-19 weights to train).
        vgg_layer: the last module of ``vgg19().features`` kept (34: conv5_4; 33: relu5_3).
        pretrain_steps: optimiser steps of phase 1 (reconstruction only) before the GAN fine-tuning.
        d_warmup_steps: the first steps of phase 2 in which the discriminator trains but the generator's loss
            has no adversarial term yet (a new critic's gradient says nothing about the targets).
        lr: Adam's learning rate, both networks.
        beta1, beta2: Adam's betas.
        lr_constant_steps: steps at the full learning rate.
        lr_decay_steps: steps over which it then decays linearly to 0.
    """

    num_downs: int = 8
    ngf: int = 64
    refine_num_downs: int = 8
    refine_ngf: int = 64
    refine_input: str = "both"
    norm: str = "instance"
    identity_init: bool = True
    ndf: int = 64
    d_layers: tuple[int, ...] = field(default=(2, 3, 4))
    d_norm: str = "spectral"
    conditional: bool = False
    l1_weight: float = 0.5
    ssim_weight: float = 0.05
    vgg_weight: float = 0.1
    adv_weight: float = 1.0
    rough_weight: float = 1.0
    use_vgg: bool = True
    vgg_layer: int = 34
    pretrain_steps: int = 100_000
    d_warmup_steps: int = 0
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_constant_steps: int = 100_000
    lr_decay_steps: int = 100_000

    def __post_init__(self) -> None:
        for name, low, fix in (("num_downs", 5, "num_downs=8"), ("refine_num_downs", 5, "refine_num_downs=8"),
                               ("ngf", 1, "ngf=64"), ("refine_ngf", 1, "refine_ngf=64"), ("ndf", 1, "ndf=64"),
                               ("pretrain_steps", 0, "pretrain_steps=100000"),
                               ("d_warmup_steps", 0, "d_warmup_steps=0"),
                               ("lr_constant_steps", 0, "lr_constant_steps=100000"),
                               ("lr_decay_steps", 0, "lr_decay_steps=100000")):
            check_integer(name, getattr(self, name), low, fix=fix)
        check_learning_rate(self.lr, default=1e-4)
        layers = self.d_layers
        if not isinstance(layers, (list, tuple)) or not layers:
            raise InputError("d_layers", expected="a non-empty list of branch depths", got=layers, fix="d_layers=2,3,4")
        for n in layers:
            check_integer("d_layers", n, 1, fix="d_layers=(2, 3, 4)")
        object.__setattr__(self, "d_layers", tuple(layers))   # a JSON list read back from a checkpoint
        if self.refine_input not in REFINE_INPUTS:
            raise InputError("refine_input", expected="both or rough", got=self.refine_input, fix='refine_input="both"')
        for name, names, fix in (("norm", NORMS, "instance"), ("d_norm", D_NORMS, "spectral")):
            if getattr(self, name) not in names:
                raise InputError(name, expected=f"one of {', '.join(names)}", got=getattr(self, name),
                                 fix=f'{name}="{fix}"')
        for name in ("l1_weight", "ssim_weight", "vgg_weight", "adv_weight", "rough_weight"):
            if not getattr(self, name) >= 0:
                raise InputError(name, expected="a weight >= 0", got=getattr(self, name))
        if isinstance(self.vgg_layer, bool) or not isinstance(self.vgg_layer, int) \
                or not 0 <= self.vgg_layer < VGG19_FEATURES:
            raise InputError("vgg_layer", expected=f"an index of vgg19().features, 0..{VGG19_FEATURES - 1}",
                             got=self.vgg_layer, fix="vgg_layer=34 (conv5_4)")
        if not self.lr > 0:
            raise InputError("lr", expected="a learning rate > 0", got=self.lr, fix="lr=1e-4")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise InputError("beta1", expected="Adam betas in [0, 1)", got=(self.beta1, self.beta2), fix="beta1=0.5")

    @property
    def unit(self) -> int:
        """The side Glass-Net's input must be a multiple of: ``2 ** max(num_downs, refine_num_downs)``."""
        return 2 ** max(self.num_downs, self.refine_num_downs)

# ------------------------------------------------------------------------------------------ the losses
def _unit(values: torch.Tensor) -> torch.Tensor:
    """The networks' [-1, 1] display values as [0, 1] display values."""
    return (values + 1.0) / 2.0


def reconstruction_terms(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1 and ``1 - SSIM`` of an output against its target, on display values in [0, 1].

    Args:
        output: ``(B, 3, H, W)`` display values in [0, 1] (not clamped: gradients pass everywhere).
        target: the same shape.

    Returns:
        ``{"l1": mean |output - target|, "ssim": 1 - mean SSIM}`` (:func:`~lensblur.metrics.ssim_tensor`,
        Gaussian window sigma 1.5, data range 1). SSIM is computed in at least float32, outside any mixed
        precision autocast: its variances are differences of nearly equal means.
    """
    dtype = torch.promote_types(output.dtype, torch.float32)
    with torch.autocast(device_type=output.device.type, enabled=False):
        similarity = ssim_tensor(output.to(dtype), target.to(dtype), data_range=1.0).mean()
    return {"l1": F.l1_loss(output, target), "ssim": 1.0 - similarity}


def perceptual_loss(features: torch.nn.Module, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The VGG term of eq. (2): the mean over the feature map of ``|F(output) - F(target)|``.

    Args:
        features: the feature extractor (:class:`~.bggan_networks.VGGFeatures`), on display values in [0, 1].
        output: ``(B, 3, H, W)`` display values in [0, 1].
        target: the same shape.

    Returns:
        A scalar tensor.
    """
    with torch.no_grad():
        wanted = features(target)
    return F.l1_loss(features(output), wanted)


def hybrid_loss(terms: dict[str, torch.Tensor], *, l1_weight: float = 0.5, ssim_weight: float = 0.05,
                vgg_weight: float = 0.1, adv_weight: float = 1.0) -> torch.Tensor:
    """The third paper's eq. (4), ``l1_weight L1 + ssim_weight L_SSIM + vgg_weight L_VGG + adv_weight L_adv``,
    over the terms present (phase 1 has only ``l1`` and ``ssim``).

    Args:
        terms: unweighted terms by name: ``l1``, ``ssim`` (``1 - SSIM``), and optionally ``vgg``, ``adv``.
        l1_weight, ssim_weight, vgg_weight, adv_weight: the weights (0.5, 0.05, 0.1, 1).

    Returns:
        A scalar tensor.

    Raises:
        InputError: a term of another name.
    """
    weights = {"l1": l1_weight, "ssim": ssim_weight, "vgg": vgg_weight, "adv": adv_weight}
    unknown = set(terms) - set(weights)
    if unknown:
        raise InputError("terms", expected=f"terms among {', '.join(weights)}", got=sorted(unknown))
    return sum(weights[name] * value for name, value in terms.items())


# ------------------------------------------------------------------------------------------ the method
class BGGAN:
    """The BGGAN method for :func:`lensblur.train.train` (and, trained, for rendering).

    Args:
        config: the settings (:class:`BGGANConfig`).
        seed: the seed of the weights' initialisation.
        vgg_weights: a VGG-19 weights file (safetensors or torchvision ``.pth``) for the VGG term, or None for
            the torch hub cache's ``vgg19-dcbba9e9.pth``. A machine's path, not a setting: not recorded.
        training: build the loss network (False: for rendering only, see :meth:`for_inference`).

    Raises:
        ModelNotFoundError: ``use_vgg`` and no VGG-19 weights file (nothing is downloaded).
        InputError: ``vgg_weights`` with ``use_vgg=False``, or a file without VGG-19 weights.
    """

    name = "bggan"

    def __init__(self, config: BGGANConfig = BGGANConfig(), *, seed: int = 0,
                 vgg_weights: str | os.PathLike | None = None, training: bool = True):
        if vgg_weights is not None and not config.use_vgg:
            raise InputError("vgg_weights", expected="no VGG weights when use_vgg=False", got=str(vgg_weights),
                             fix="drop vgg_weights=PATH, or train with use_vgg=True")
        self.settings = config
        # The loss network first: a missing file is refused before anything is built or written.
        self.vgg = VGGFeatures(config.vgg_layer, weights=vgg_weights) if training and config.use_vgg else None
        generator = torch.Generator().manual_seed(seed)
        self.generator = GlassNet(num_downs=config.num_downs, ngf=config.ngf, refine_num_downs=config.refine_num_downs,
                                  refine_ngf=config.refine_ngf, norm=config.norm, refine_input=config.refine_input)
        self.discriminator = MultiReceptiveFieldDiscriminator(6 if config.conditional else 3, ndf=config.ndf,
                                                              n_layers=config.d_layers, norm=config.d_norm)
        init_weights(self.generator, generator=generator)
        init_weights(self.discriminator, generator=generator)
        if config.identity_init:
            self.generator.zero_residuals_()
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

        def linear_decay(step: int) -> float:
            return 1.0 - max(0, step - config.lr_constant_steps) / float(config.lr_decay_steps + 1)

        # The discriminator's scheduler steps only when it is trained (phase 2): its own count is offset.
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, linear_decay)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(
            self.opt_d, lambda step: linear_decay(step + config.pretrain_steps))
        self.updates = 0          # optimiser steps done (phase 2 from pretrain_steps on)
        self._g, self._d, self._vgg = self.generator, self.discriminator, self.vgg
        self._opt_g, self._opt_d = self.opt_g, self.opt_d

    @classmethod
    def for_inference(cls, config: BGGANConfig, *, seed: int = 0) -> BGGAN:
        """The method without its loss network, to load a checkpoint into and render (no VGG weights needed)."""
        return cls(config, seed=seed, training=False)

    # -- what the loop asks for ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        settings["d_layers"] = list(settings["d_layers"])
        return settings

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def schedulers(self) -> dict[str, Any]:
        return {"generator": self.sched_g, "discriminator": self.sched_d}

    def extra_state(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.updates = int(state.get("updates", 0))

    def prepare(self, accelerator) -> None:
        self._g, self._d, self._opt_g, self._opt_d = accelerator.prepare(self.generator, self.discriminator,
                                                                         self.opt_g, self.opt_d)
        if self.vgg is not None:
            self._vgg = self.vgg.to(accelerator.device)

    @property
    def phase(self) -> int:
        """1 (reconstruction) before ``pretrain_steps`` optimiser steps, then 2 (GAN fine-tuning)."""
        return 1 if self.updates < self.settings.pretrain_steps else 2

    def _scored(self, image: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        return torch.cat([image, output], 1) if self.settings.conditional else output

    def training_step(self, batch: dict[str, torch.Tensor], accelerator) -> dict[str, float]:
        """One step: in phase 1 a generator update on the reconstruction loss; in phase 2 a discriminator
        update (hinge) and then a generator update on the hybrid loss."""
        cfg = self.settings
        adversarial = self.phase == 2
        self._g.train()
        self._d.train()
        image, target = to_display(batch["image"]), to_display(batch["target"])
        rough, fake = self._g(image, stages=True)
        logs: dict[str, torch.Tensor] = {}
        # 1. The discriminator (phase 2): real targets against generated images.
        if adversarial:
            self._opt_d.zero_grad()
            loss_d = hinge_discriminator_loss(self._d(self._scored(image, target)),
                                              self._d(self._scored(image, fake.detach())))
            accelerator.backward(loss_d)
            self._opt_d.step()
            logs["loss_d"] = loss_d
        # 2. The generator: the reconstruction terms, and in phase 2 the VGG and adversarial ones.
        self._opt_g.zero_grad()
        wanted = _unit(target)
        terms = reconstruction_terms(_unit(fake), wanted)
        for p in self._d.parameters():
            p.requires_grad_(False)
        if adversarial:
            if self._vgg is not None:
                terms["vgg"] = perceptual_loss(self._vgg, _unit(fake), wanted)
            if self.updates >= cfg.pretrain_steps + cfg.d_warmup_steps:
                terms["adv"] = critic_generator_loss(self._d(self._scored(image, fake)))
        weights = {"l1_weight": cfg.l1_weight, "ssim_weight": cfg.ssim_weight, "vgg_weight": cfg.vgg_weight,
                   "adv_weight": cfg.adv_weight}
        loss_g = hybrid_loss(terms, **weights)
        if cfg.rough_weight > 0:
            rough_terms = reconstruction_terms(_unit(rough), wanted)
            loss_g = loss_g + cfg.rough_weight * hybrid_loss(rough_terms, **weights)
            logs.update({f"rough_{k}": v for k, v in rough_terms.items()})
        accelerator.backward(loss_g)
        for p in self._d.parameters():
            p.requires_grad_(True)
        self._opt_g.step()
        if accelerator.sync_gradients:
            self.sched_g.step()
            if adversarial:
                self.sched_d.step()
            self.updates += 1
        logs.update({"loss_g": loss_g, **terms})
        return {"phase": float(2 if adversarial else 1), **{k: float(v.detach()) for k, v in logs.items()}}

    def check_size(self, height: int, width: int) -> None:
        """Refuse training items that Glass-Net (sides multiples of :attr:`BGGANConfig.unit`) or the deepest
        discriminator branch (at least ``3 * 2 ** max(d_layers)``) cannot take."""
        c = self.settings
        check_training_size(height, width, c.unit, "Glass-Net's 2**max(num_downs, refine_num_downs)",
                            smallest=3 * 2 ** max(c.d_layers), smallest_why=f" (the d_layers={max(c.d_layers)} branch)")

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """Render ``(B, 3, H, W)`` linear RGB (any size) with Glass-Net, in evaluation mode."""
        self._g.eval()
        return translate(self._g, image, self.settings.unit)
