"""Training BokehDiff (``lensblur train bokehdiff``): the one-step renderer fine-tuned on paired data with the
shared loop :func:`lensblur.train.train`.

One step, on a batch of :class:`~lensblur.bokehdiff.pairs.BokehDiffPairs` items:

1. the all-in-focus crop is encoded (``z = E(x).mode() * scaling_factor``: gradients reach the encoder's
   trained parts), one UNet pass at t = 499 with PISA reading the disparity and CoC, the one-step formula
   ``z0 = (z - sqrt(1 - abar) eps) / sqrt(abar)``, and the frozen decoder (gradients pass through it);
2. the losses in pixel space, values in [-1, 1] (paper §3.4, eq. 12): ``mse_weight`` x MSE on the unclamped
   prediction, and on the prediction clamped to [-1, 1] ``lpips_weight`` x LPIPS-VGG, ``edge_weight`` x the
   multi-scale edge loss (:mod:`lensblur.bokehdiff.losses`) and, from ``adv_start`` optimiser steps on,
   ``adv_weight`` x the generator's adversarial term;
3. the LoRA (and the VAE encoder's parts) take an AdamW step, gradients clipped to norm 1 per set;
4. the discriminator head takes its own step on the ground truth against the detached prediction (every
   step from the first, as released).

What is trained (``recipe``):

``"released"`` (the release's ``train_lora_otf.py`` and README)
    LoRA of rank 8 (alpha 8, Gaussian A, zero B) on every target layer of the whole UNet; the VAE encoder's
    ``conv_in``, ``mid_block`` and ``conv_out`` fine-tuned in full at 0.1 x the learning rate; 5e-5 with 20
    warm-up steps; the edge loss's forward-difference form; the adversarial term at 0.1 after 30 000 steps;
    PISA with the release's occlusion indexing, dropout 0.1 and the CoC under-conditioning of its loader.
``"paper"`` (§4.1: "only the LoRA of the downsampling layers in eps_theta and the middle block and output
    layers of E are trained")
    LoRA of rank 8 on the same kinds of layer inside ``down_blocks`` only; LoRA (rank 8) on the encoder's
    ``mid_block`` and ``conv_out``, at the full learning rate; 1e-4, no warm-up; the Sobel edge loss of eq.
    10; the adversarial term at 0.5 from the start; PISA with the equations' occlusion (eq. 7-8), no dropout,
    and the exact CoC.

Both: AdamW (0.9, 0.95), weight decay 1e-2, eps 1e-7; a half-cosine schedule to 0 over ``total_steps``; the
discriminator at 2 x the learning rate; LPIPS weight 5, edge and MSE weight 1; real label 0.8. The decoder,
the text encoders and every base weight stay frozen. Each field of :class:`BokehDiffTrainConfig` can be set
on its own; ``recipe`` only fills the ones left as None.

The PISA processor's sharpness counter (the soft CoC edge's hardness, ``3 + calls``) is part of the
checkpoint (``extra_state``), so a resumed run continues it exactly; so are the optimiser-step and forward
counters. The randomness of a step (PISA's jittered occlusion paths and dropout) comes from a generator seeded
by ``(seed, forward)``, independent of any global state. Gradient checkpointing is not used: recomputing a
PISA layer would count the sharpness twice.

A checkpoint holds only the trained tensors: ``unet.`` (the LoRA under peft's names with the adapter
``default``), ``vae.`` (the fine-tuned encoder tensors, or its LoRA) and ``discriminator.`` (the head), and
records the base model's name or path. ``lensblur render --method bokehdiff --lora RUN`` (or
``RUN/last.safetensors``) renders with it (:func:`lensblur.bokehdiff.loading.find_training_run`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, check_integer, check_learning_rate
from .constants import DEFAULT_BASE, PROMPT, TIMESTEP
from .discriminator import CONVNEXT_CHANNELS, DISCRIMINATORS
from .losses import EDGE_FORMS, REAL_LABEL
from .pisa import DEFAULT_LAYERS, DISTANCES, NORMALIZATIONS, OCCLUSIONS, Sharpness

__all__ = ["COC_CONDITIONINGS", "LORA_SCOPES", "LORA_TARGETS", "RECIPES", "VAE_PARTS", "VAE_TUNINGS",
           "BokehDiffTrainConfig", "BokehDiffTrainer", "ParameterSubset", "cosine_schedule", "lora_target_names",
           "loss_weights", "pisa_coc", "pixel_losses", "vae_lora_target_names"]

logger = logging.getLogger(__name__)

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
                "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj")
"""The release's LoRA target modules (peft names: a layer is adapted when its name ends with one of them)."""
LORA_SCOPES = ("unet", "down")
"""``"unet"``: the targets anywhere in the UNet (the release); ``"down"``: only inside ``down_blocks`` (the paper)."""
VAE_PARTS = ("encoder.conv_in.", "encoder.mid_block.", "encoder.conv_out.")
"""The VAE encoder's parts the release fine-tunes (names in ``AutoencoderKL.state_dict()``)."""
VAE_LORA_PARTS = ("encoder.mid_block.", "encoder.conv_out")
"""The paper's "middle block and output layers of E", adapted by LoRA."""
VAE_TUNINGS = ("full", "lora", "frozen")
COC_CONDITIONINGS = ("exact", "release")
"""PISA's CoC: the pair's exact one, or the release's ``ratio * max(d_f, 1 - d_f)`` times it, ratio ~ U(2/3, 1)."""

RECIPES: dict[str, dict[str, Any]] = {
    "released": {"lora_scope": "unet", "vae_tuning": "full", "lr": 5e-5, "vae_lr_scale": 0.1, "warmup_steps": 20,
                 "edge_loss": "difference", "adv_weight": 0.1, "adv_start": 30_000, "occlusion": "release",
                 "dropout": 0.1, "coc_conditioning": "release"},
    "paper": {"lora_scope": "down", "vae_tuning": "lora", "lr": 1e-4, "vae_lr_scale": 1.0, "warmup_steps": 0,
              "edge_loss": "sobel", "adv_weight": 0.5, "adv_start": 0, "occlusion": "paper", "dropout": 0.0,
              "coc_conditioning": "exact"},
}
"""The settings each recipe gives the fields left as None (see the module doc)."""


# ------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class BokehDiffTrainConfig:
    """BokehDiff's training settings (recorded in every checkpoint; see the module doc for the recipes).

    Args:
        recipe: ``"released"`` (default) or ``"paper"``: the values of the fields left as None.
        base_model: the base model's folder, single file or cached Hugging Face id (recorded, so that a render
            of the run finds it).
        rank: the LoRA rank (alpha = rank: scale 1).
        lora_scope: ``"unet"`` or ``"down"``.
        vae_tuning: the encoder's ``VAE_PARTS`` fine-tuned (``"full"``), its mid block and output layer by LoRA
            (``"lora"``) or ``"frozen"`` (the paper's "fixed E" ablation).
        lr: the UNet LoRA's learning rate.
        vae_lr_scale: the encoder's learning rate as a fraction of ``lr``.
        discriminator_lr_scale: the discriminator head's, likewise (2).
        warmup_steps: linear warm-up steps before the half cosine.
        total_steps: the schedule's length in optimiser steps (the run's ``steps``).
        betas, weight_decay, eps: AdamW's.
        grad_clip: the largest gradient norm of each parameter set (0: no clipping).
        mse_weight, lpips_weight, edge_weight, adv_weight: eq. 12's lambdas (0 turns a term off; LPIPS off
            needs no VGG weights).
        edge_loss: ``"sobel"`` (eq. 10) or ``"difference"`` (the release).
        adv_start: optimiser steps before the generator's adversarial term is added.
        real_label: the discriminator's target for real images.
        discriminator: a torchvision ConvNeXt (``convnext_base``, the release's size; ``convnext_tiny``,
            ``convnext_small``, ``convnext_large``), ``"custom"`` (a backbone given in Python) or ``"none"``.
        coc_conditioning: ``"exact"`` or ``"release"`` (see :data:`COC_CONDITIONINGS`).
        pisa_layers: the self-attention layers PISA runs on (names or prefixes).
        occlusion: PISA's occlusion convention (``"release"``, ``"paper"``, ``"off"``: the "w/o occlusion"
            ablation).
        distance: PISA's distance (``"release"``: 51.2 per side; ``"pixels"``).
        coc_mask: PISA's soft CoC mask (False: the "w/o CoC" ablation).
        normalize: PISA's softmax over ``"queries"`` (energy conserving) or ``"keys"`` ("w/o SoftmaxQ").
        dropout: PISA's dropout in training (off at inference).
        segments, supersamples: PISA's occlusion samples in training (the release: 5 and 4).
        hardness_start: the soft CoC edge's hardness at the first call (3).
        timestep: the one timestep (499).
        prompt: the fixed prompt.

    Raises:
        InputError: a value outside its choices or range.
    """

    recipe: str = "released"
    base_model: str = DEFAULT_BASE
    rank: int = 8
    lora_scope: str | None = None
    vae_tuning: str | None = None
    lr: float | None = None
    vae_lr_scale: float | None = None
    discriminator_lr_scale: float = 2.0
    warmup_steps: int | None = None
    total_steps: int = 1000
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 1e-2
    eps: float = 1e-7
    grad_clip: float = 1.0
    mse_weight: float = 1.0
    lpips_weight: float = 5.0
    edge_weight: float = 1.0
    adv_weight: float | None = None
    edge_loss: str | None = None
    adv_start: int | None = None
    real_label: float = REAL_LABEL
    discriminator: str = "convnext_base"
    coc_conditioning: str | None = None
    pisa_layers: tuple[str, ...] = DEFAULT_LAYERS
    occlusion: str | None = None
    distance: str = "release"
    coc_mask: bool = True
    normalize: str = "queries"
    dropout: float | None = None
    segments: int = 5
    supersamples: int = 4
    hardness_start: float = 3.0
    timestep: int = TIMESTEP
    prompt: str = PROMPT

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise InputError("recipe", expected=f"one of {', '.join(RECIPES)}", got=self.recipe, fix="recipe=released")
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        layers = (self.pisa_layers,) if isinstance(self.pisa_layers, str) else tuple(self.pisa_layers)
        object.__setattr__(self, "pisa_layers", layers)
        for name, choices in (("lora_scope", LORA_SCOPES), ("vae_tuning", VAE_TUNINGS), ("edge_loss", EDGE_FORMS),
                              ("discriminator", DISCRIMINATORS), ("coc_conditioning", COC_CONDITIONINGS),
                              ("occlusion", OCCLUSIONS), ("distance", DISTANCES), ("normalize", NORMALIZATIONS)):
            if getattr(self, name) not in choices:
                raise InputError(name, expected=f"one of {', '.join(choices)}", got=getattr(self, name),
                                 fix=f"{name}={choices[0]}")
        for name, low in (("rank", 1), ("warmup_steps", 0), ("total_steps", 1), ("adv_start", 0), ("segments", 1),
                          ("supersamples", 1), ("timestep", 0)):
            check_integer(name, getattr(self, name), low, fix=f"{name}={max(low, 1)}")
        check_learning_rate(self.lr, default=5e-5)
        for name in ("vae_lr_scale", "discriminator_lr_scale", "weight_decay", "eps", "grad_clip",
                     "mse_weight", "lpips_weight", "edge_weight", "adv_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and value >= 0):
                raise InputError(name, expected="a finite number >= 0", got=value, fix=f"{name}=1")
        if not (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas)):
            raise InputError("betas", expected="two AdamW betas in [0, 1)", got=self.betas, fix="betas=(0.9, 0.95)")
        if not 0 < self.real_label <= 1:
            raise InputError("real_label", expected="a label in (0, 1]", got=self.real_label, fix="real_label=0.8")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise InputError("dropout", expected="a fraction in [0, 1)", got=self.dropout, fix="dropout=0.1")
        if not (isinstance(self.hardness_start, (int, float)) and self.hardness_start > 1):
            raise InputError("hardness_start", expected="a hardness > 1", got=self.hardness_start,
                             fix="hardness_start=3")
        if not isinstance(self.coc_mask, bool):
            raise InputError("coc_mask", expected="True or False", got=self.coc_mask, fix="coc_mask=True")
        if not isinstance(self.base_model, str):
            raise InputError("base_model", expected="a folder, file or Hugging Face id (a string)", got=self.base_model,
                             fix=f"base_model={DEFAULT_BASE}")

    @property
    def adversarial(self) -> bool:
        """Whether a discriminator is trained (it is from the first step, even before ``adv_start``)."""
        return self.discriminator != "none" and self.adv_weight > 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (tuples as lists), as checkpoints record it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def cosine_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up from 0, then a half cosine from 1 to 0 at ``total_steps`` (diffusers'
    ``get_cosine_schedule_with_warmup``, the release's): step ``s`` runs at ``s / warmup`` of the rate while
    ``s < warmup``, then at ``0.5 (1 + cos(pi (s - warmup) / (total - warmup)))``.

    Returns:
        A ``LambdaLR`` to step once per optimiser step.
    """
    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def pisa_coc(batch: dict[str, torch.Tensor], conditioning: str = "exact") -> torch.Tensor:
    """PISA's CoC for a batch of :class:`~lensblur.bokehdiff.pairs.BokehDiffPairs` items: the exact ``coc``
    (``"exact"``), or the release's ``coc * ratio * max(d_f, 1 - d_f)`` (``"release"``): with the release's
    blur ``K = 12 times / max(d_f, 1 - d_f)``, a CoC channel (radius / 10) of ``1.2 ratio times |d - d_f|``.

    Returns:
        ``(B, 1, H, W)`` signed pixels.
    """
    coc = batch["coc"]
    if conditioning == "release":
        focus = batch["focus_disparity"].reshape(-1, 1, 1, 1).to(coc)
        ratio = batch["coc_ratio"].reshape(-1, 1, 1, 1).to(coc)
        coc = coc * ratio * torch.maximum(focus, 1 - focus)
    return coc


def pixel_losses(pred: torch.Tensor, target: torch.Tensor, aif: torch.Tensor, *, settings: BokehDiffTrainConfig,
                 lpips=None, discriminator: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The unweighted terms of eq. 12 on ``(B, 3, H, W)`` values in [-1, 1]: ``mse`` on the prediction as it
    is, and on the prediction clamped to [-1, 1] ``lpips`` (with ``lpips``, a
    :class:`~lensblur.metrics.perceptual.PerceptualMetric`), ``edge`` (``settings.edge_loss``'s form) and
    ``adv`` (the generator's term, with ``discriminator``). A term whose weight is 0 is left out.

    Args:
        pred: the decoded prediction (unclamped); ``target`` the ground truth; ``aif`` the all-in-focus input.
        settings: the weights and the edge loss's form.
        lpips: the LPIPS-VGG metric, or None.
        discriminator: the discriminator, or None (no adversarial term).

    Returns:
        The terms by name.
    """
    from .losses import adversarial_g_loss, edge_loss

    terms = {"mse": F.mse_loss(pred, target)} if settings.mse_weight > 0 else {}
    clamped = pred.clamp(-1.0, 1.0)
    if lpips is not None and settings.lpips_weight > 0:
        terms["lpips"] = lpips.distance((clamped + 1) / 2, (target + 1) / 2).mean()
    if settings.edge_weight > 0:
        terms["edge"] = edge_loss(clamped, target, aif, form=settings.edge_loss)
    if discriminator is not None and settings.adv_weight > 0:
        terms["adv"] = adversarial_g_loss(discriminator(clamped), real_label=settings.real_label)
    return terms


def loss_weights(settings: BokehDiffTrainConfig) -> dict[str, float]:
    """Eq. 12's lambdas by term name."""
    return {"mse": settings.mse_weight, "lpips": settings.lpips_weight, "edge": settings.edge_weight,
            "adv": settings.adv_weight}


# ------------------------------------------------------------------------------------------ what is trained
def lora_target_names(unet: nn.Module, scope: str = "unet") -> list[str]:
    """The UNet layers the LoRA adapts: linear and convolution layers whose names end with one of
    :data:`LORA_TARGETS` (peft's rule), anywhere (``"unet"``) or inside ``down_blocks`` (``"down"``)."""
    names = []
    for name, module in unet.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or "lora_" in name or name.endswith("base_layer"):
            continue
        if not any(name == t or name.endswith("." + t) for t in LORA_TARGETS):
            continue
        if scope == "down" and not name.startswith("down_blocks."):
            continue
        names.append(name)
    return names


def vae_lora_target_names(vae: nn.Module) -> list[str]:
    """The encoder layers the paper's recipe adapts by LoRA: every linear and convolution layer of
    ``encoder.mid_block`` and ``encoder.conv_out``."""
    return [name for name, module in vae.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))
            and (name.startswith(VAE_LORA_PARTS[0]) or name == VAE_LORA_PARTS[1])]


class ParameterSubset(nn.Module):
    """Named parameters of another module, as a module whose state dict is exactly them (a checkpoint of a
    LoRA holds the adapters, not the 2.6 B base weights around them).

    Args:
        owner: the module the parameters belong to (moving it moves them).
        names: their names in ``owner.named_parameters()``.
    """

    def __init__(self, owner: nn.Module, names: list[str]):
        super().__init__()
        own = dict(owner.named_parameters())
        self._names = list(names)
        self._tensors = [own[n] for n in self._names]     # a plain list: not registered as this module's

    def parameters(self, recurse: bool = True):
        yield from self._tensors

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from ((prefix + n, p) for n, p in zip(self._names, self._tensors))

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        out = OrderedDict() if destination is None else destination
        for name, tensor in zip(self._names, self._tensors):
            out[prefix + name] = tensor if keep_vars else tensor.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        missing = [n for n in self._names if n not in state_dict]
        unexpected = [k for k in state_dict if k not in set(self._names)]
        wrong = [n for n, t in zip(self._names, self._tensors) if n in state_dict
                 and tuple(state_dict[n].shape) != tuple(t.shape)]
        if missing or unexpected or wrong:
            raise RuntimeError(f"parameters that do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}, "
                               f"of another shape {wrong[:3]}")
        with torch.no_grad():
            for name, tensor in zip(self._names, self._tensors):
                tensor.copy_(state_dict[name])


# ------------------------------------------------------------------------------------------ the method
class BokehDiffTrainer:
    """BokehDiff for :func:`lensblur.train.train` (see the module doc), and, trained, for rendering.

    Args:
        config: the settings (:class:`BokehDiffTrainConfig`).
        seed: the seed of the LoRA's and the discriminator head's initialisation and of each step's randomness.
        pipe: a diffusers Stable Diffusion (XL) pipeline to train on instead of loading ``config.base_model``
            (its UNet and VAE are adapted in place).
        diffusion_model: load the base model from here instead of ``config.base_model`` (the same model moved
            to another place; not recorded).
        discriminator_weights: the ConvNeXt weights file (default: the torch hub cache's torchvision file).
        discriminator_backbone: with ``discriminator="custom"``, the frozen feature network (``(B, 3, H, W)``
            values in [0, 1] to ``(B, C, h, w)``), e.g. timm's ``convnext_base_in22k`` as the release uses.
        hub_dir: the torch hub folder that holds the VGG-16 (LPIPS) and ConvNeXt weights, or None for torch's.
        training: build the loss networks (False: to render a checkpoint, see :meth:`for_inference`).

    Raises:
        ModelNotFoundError: the base model, or the weights of LPIPS's VGG-16 or of the ConvNeXt, are not there
            (nothing is downloaded; the message says how to turn the term off).
        InputError: ``discriminator="custom"`` without a backbone (or a backbone with another choice).
    """

    name = "bokehdiff"

    def __init__(self, config: BokehDiffTrainConfig = BokehDiffTrainConfig(), *, seed: int = 0, pipe=None,
                 diffusion_model: str | os.PathLike | None = None,
                 discriminator_weights: str | os.PathLike | None = None,
                 discriminator_backbone: nn.Module | None = None, hub_dir=None, training: bool = True):
        cfg = self.settings = config
        if training and (discriminator_backbone is not None) != (cfg.discriminator == "custom"):
            raise InputError("discriminator_backbone", expected="a backbone module with discriminator=custom only",
                             got=f"{'a module' if discriminator_backbone is not None else 'none'} with "
                                 f"discriminator={cfg.discriminator}",
                             fix="pass both, or neither (discriminator=convnext_base reads a weights file)")
        if discriminator_weights is not None and cfg.discriminator not in CONVNEXT_CHANNELS:
            raise InputError("discriminator_weights", expected="a ConvNeXt weights file with a convnext discriminator",
                             got=f"{discriminator_weights} with discriminator={cfg.discriminator}",
                             fix="drop discriminator_weights, or pick discriminator=convnext_base")
        self.seed = int(seed)
        # 1. The loss networks first: missing weights are refused before the base model loads.
        self.lpips = self._load_lpips(hub_dir) if training and cfg.lpips_weight > 0 else None
        backbone = None
        if training and cfg.adversarial:
            from .discriminator import convnext_features

            backbone = discriminator_backbone if cfg.discriminator == "custom" else \
                convnext_features(cfg.discriminator, weights=discriminator_weights, hub_dir=hub_dir)
        # 2. The base model and PISA.
        from .pipeline import BokehDiffPipeline
        from .pisa import PISAProcessor

        if pipe is None:
            from .loading import load_base

            pipe = load_base(str(diffusion_model) if diffusion_model is not None else cfg.base_model,
                             torch_dtype=torch.float32)
        processor = PISAProcessor(occlusion=cfg.occlusion, distance=cfg.distance, coc_mask=cfg.coc_mask,
                                  normalize=cfg.normalize, dropout=cfg.dropout,
                                  segments=cfg.segments, supersamples=cfg.supersamples,
                                  sharpness=Sharpness.training(cfg.hardness_start))
        self.pipeline = BokehDiffPipeline(pipe, processor=processor, layers=cfg.pisa_layers, timestep=cfg.timestep,
                                          prompt=cfg.prompt, vae_tiling=False)
        self.processor = processor
        # 3. Everything frozen, then the trained parts (initialised from the seed).
        unet, vae = pipe.unet, pipe.vae
        for module in (unet, vae, getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None)):
            if module is not None:
                module.requires_grad_(False)
        self.discriminator = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._add_adapters(unet, vae)
            if backbone is not None:
                from .discriminator import ConvNeXtDiscriminator

                self.discriminator = ConvNeXtDiscriminator(backbone)
        self._unet = ParameterSubset(unet, [n for n, p in unet.named_parameters() if p.requires_grad])
        self._vae = ParameterSubset(vae, [n for n, p in vae.named_parameters() if p.requires_grad])
        # 4. Optimisers and schedules.
        adamw = {"betas": cfg.betas, "weight_decay": cfg.weight_decay, "eps": cfg.eps}
        self.opts: dict[str, torch.optim.Optimizer] = {
            "unet": torch.optim.AdamW(self._unet.parameters(), lr=cfg.lr, **adamw)}
        if cfg.vae_tuning != "frozen":
            self.opts["vae"] = torch.optim.AdamW(self._vae.parameters(), lr=cfg.lr * cfg.vae_lr_scale, **adamw)
        if self.discriminator is not None:
            self.opts["discriminator"] = torch.optim.AdamW(self.discriminator.head.parameters(),
                                                           lr=cfg.lr * cfg.discriminator_lr_scale, **adamw)
        self.scheds = {k: cosine_schedule(o, cfg.warmup_steps, cfg.total_steps) for k, o in self.opts.items()}
        self._prepared = dict(self.opts)
        self.updates = 0        # optimiser steps done
        self.forwards = 0       # UNet passes done (one per micro-batch)

    @classmethod
    def for_inference(cls, config: BokehDiffTrainConfig, *, seed: int = 0, **options) -> BokehDiffTrainer:
        """The method without its loss networks, to load a checkpoint into and render (no LPIPS or ConvNeXt
        weights needed)."""
        return cls(config, seed=seed, training=False, **options)

    @staticmethod
    def _load_lpips(hub_dir):
        from ..metrics.perceptual import find_backbone, load_lpips

        find_backbone("vgg", what="BokehDiff's LPIPS-VGG loss", hub_dir=hub_dir,
                      otherwise="or pass lpips_weight=0 (lensblur train bokehdiff --no-lpips) to train without it")
        metric = load_lpips("vgg", hub_dir=hub_dir)
        metric.network.eval().requires_grad_(False)
        return metric

    def _add_adapters(self, unet, vae) -> None:
        from peft import LoraConfig

        cfg = self.settings
        lora = {"r": cfg.rank, "lora_alpha": cfg.rank, "init_lora_weights": "gaussian"}
        unet.add_adapter(LoraConfig(target_modules=lora_target_names(unet, cfg.lora_scope), **lora))
        for name, p in unet.named_parameters():
            p.requires_grad_(".lora_A." in name or ".lora_B." in name)
        if cfg.vae_tuning == "full":
            for name, p in vae.named_parameters():
                p.requires_grad_(name.startswith(VAE_PARTS))
        elif cfg.vae_tuning == "lora":
            from peft import inject_adapter_in_model

            inject_adapter_in_model(LoraConfig(target_modules=vae_lora_target_names(vae), **lora), vae)
            for name, p in vae.named_parameters():
                p.requires_grad_(".lora_A." in name or ".lora_B." in name)

    # -- what the loop asks for ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return self.settings.to_dict()

    def modules(self) -> dict[str, nn.Module]:
        out: dict[str, nn.Module] = {"unet": self._unet}
        if self.settings.vae_tuning != "frozen":
            out["vae"] = self._vae
        if self.discriminator is not None:
            out["discriminator"] = self.discriminator.head
        return out

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self.opts)

    def schedulers(self) -> dict[str, Any]:
        return dict(self.scheds)

    def extra_state(self) -> dict[str, Any]:
        return {"updates": self.updates, "forwards": self.forwards, "pisa": self.processor.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.updates = int(state.get("updates", 0))
        self.forwards = int(state.get("forwards", 0))
        if "pisa" in state:
            self.processor.load_state_dict(state["pisa"])

    def prepare(self, accelerator) -> None:
        if accelerator.num_processes > 1:
            raise InputError("accelerator", expected="one process (bokehdiff trains on one device)",
                             got=f"{accelerator.num_processes} processes", fix="launch on one GPU")
        device = accelerator.device
        self.pipeline.to(device)
        self.pipeline.prompt_embeddings()           # the fixed prompt, encoded once on the device
        for name in ("text_encoder", "text_encoder_2"):     # then the text encoders leave it (the release deletes
            encoder = getattr(self.pipeline.base, name, None)   # them): about 1.6 GB for SDXL's
            if encoder is not None:
                encoder.to("cpu")
        if self.lpips is not None:
            self.lpips.network.to(device)
        if self.discriminator is not None:
            self.discriminator.to(device)
        names = list(self.opts)
        prepared = accelerator.prepare(*self.opts.values())
        prepared = prepared if isinstance(prepared, (list, tuple)) else (prepared,)
        self._prepared = dict(zip(names, prepared))

    # -- one step -------------------------------------------------------------------------------------------
    def _generator(self, device: torch.device) -> torch.Generator:
        seed = int(np.random.SeedSequence([self.seed, self.forwards]).generate_state(1)[0])
        return torch.Generator(device=device).manual_seed(seed)

    def render_batch(self, batch: dict[str, torch.Tensor], generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The differentiable forward pass: ``(prediction, all-in-focus)``, both ``(B, 3, H, W)`` in [-1, 1]
        (the prediction unclamped)."""
        pipe = self.pipeline
        aif = pipe.to_model_range(batch["image"])
        latents = pipe.encode(aif)
        coc = pisa_coc(batch, self.settings.coc_conditioning)
        noise = pipe.noise_prediction(latents, batch["disparity"], coc, generator=generator)
        return pipe.decode(pipe.one_step(latents, noise)), aif.float()

    def _clip(self, accelerator, module: nn.Module) -> None:
        if self.settings.grad_clip > 0 and accelerator.sync_gradients:
            accelerator.clip_grad_norm_(list(module.parameters()), self.settings.grad_clip)

    def _warn_about_the_coc_scale(self, crop: tuple[int, int]) -> None:
        """Warn once when PISA's ``"release"`` distance gives the training crops another CoC unit than the
        tiles of inference: it spans 51.2 units across whatever map it is given, so only a crop of the tile's
        size trains the unit (10 px) that inference uses."""
        self._scale_checked = True
        tile = self.pipeline.tile_size * self.pipeline.vae_scale_factor
        if self.settings.distance != "release" or crop == (tile, tile):
            return
        logger.warning("PISA's release distance spans 51.2 CoC units across each %dx%d-px training crop, so a CoC "
                       "unit is about %.3g px there but 10 px on the %d-px tiles rendering uses: PISA's disks in training "
                       "are %.3gx the radius they have when rendering. Train on %d-px crops, or with "
                       "distance='pixels' (the same in both).", crop[1], crop[0], max(crop) / 51.2, tile,
                       max(crop) / tile, tile)

    def training_step(self, batch: dict[str, torch.Tensor], accelerator) -> dict[str, float]:
        """One generator step (LoRA and encoder) and one discriminator step; returns the losses."""
        from .losses import adversarial_d_loss, weighted_sum

        cfg = self.settings
        if not getattr(self, "_scale_checked", False):
            self._warn_about_the_coc_scale(tuple(batch["image"].shape[-2:]))
        self._train_mode(True)
        hardness = self.processor.sharpness.hardness
        adversarial = self.discriminator is not None and self.updates >= cfg.adv_start
        head = self.discriminator.head if self.discriminator is not None else None
        if head is not None:
            head.requires_grad_(False)
        generator = self._generator(accelerator.device)
        with accelerator.autocast():
            pred, aif = self.render_batch(batch, generator)
            target = self.pipeline.to_model_range(batch["target"]).float()
            terms = pixel_losses(pred.float(), target, aif, settings=cfg, lpips=self.lpips,
                                 discriminator=self.discriminator if adversarial else None)
            loss = weighted_sum(terms, loss_weights(cfg))
        accelerator.backward(loss)
        self._clip(accelerator, self._unet)
        self._prepared["unet"].step()
        self._prepared["unet"].zero_grad()
        if "vae" in self.opts:
            self._clip(accelerator, self._vae)
            self._prepared["vae"].step()
            self._prepared["vae"].zero_grad()
        logs = {"loss": loss, **terms}
        if head is not None:
            head.requires_grad_(True)
            with accelerator.autocast():
                fake = pred.detach().float().clamp(-1.0, 1.0)
                loss_d = adversarial_d_loss(self.discriminator(target), self.discriminator(fake),
                                            real_label=cfg.real_label)
            accelerator.backward(loss_d)
            self._clip(accelerator, head)
            self._prepared["discriminator"].step()
            self._prepared["discriminator"].zero_grad()
            logs["loss_d"] = loss_d
        self.forwards += 1
        if accelerator.sync_gradients:
            for scheduler in self.scheds.values():
                scheduler.step()
            self.updates += 1
        return {**{k: float(v.detach()) for k, v in logs.items()}, "hardness": float(hardness)}

    def _train_mode(self, mode: bool) -> None:
        self.pipeline.unet.train(mode)
        self.pipeline.vae.train(mode)

    # -- rendering ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def inference(self):
        """PISA at its inference settings (hardness 1e7, 5 x 7 occlusion samples, no dropout) and the networks
        in evaluation mode for the duration; the training settings and the counter are then restored."""
        p = self.processor
        saved = (p.sharpness, p.dropout, p.segments, p.supersamples)
        p.sharpness, p.dropout, p.segments, p.supersamples = Sharpness.inference(), 0.0, 7, 5
        self._train_mode(False)
        try:
            yield self.pipeline
        finally:
            p.sharpness, p.dropout, p.segments, p.supersamples = saved

    def predict(self, image: torch.Tensor, disparity: torch.Tensor | None = None, lens=None, *,
                tile: str = "auto") -> torch.Tensor:
        """Render ``(B, 3, H, W)`` linear RGB with its ``(B, 1, H, W)`` disparity and a
        :class:`~lensblur.lens.Lens`, at the inference settings (:meth:`inference`).

        Raises:
            InputError: no disparity or lens (BokehDiff cannot render without them).
        """
        if disparity is None or lens is None:
            raise InputError("disparity", expected="the disparity map and the lens to render with",
                             got="none", fix="call predict(image, disparity, lens)")
        with self.inference() as pipeline:
            return pipeline(image, disparity, lens, tile=tile, output_type="pt").images

    def validate(self, dataset, limit: int = 16) -> dict[str, float]:
        """Mean PSNR and SSIM (8-bit sRGB values) of up to ``limit`` items rendered with their own disparity
        and lens (``meta["lens"]``), as the loop's default validation scores other methods."""
        from .._convert import display_8bit
        from ..lens import Lens
        from ..metrics import psnr, ssim

        scores: dict[str, list[float]] = {"psnr": [], "ssim": []}
        for i in range(min(limit, len(dataset))):
            item = dataset[i]
            lens = item.get("meta", {}).get("lens")
            if "disparity" not in item or not lens:
                raise InputError("val_dataset", expected="items with disparity and a lens (synth, blb)",
                                 got=f"item {item.get('meta', {}).get('id')} without them",
                                 fix="validate on a synth or blb dataset")
            pred = self.predict(item["image"][None], item["disparity"][None],
                                Lens(focus_disparity=lens["focus_disparity"], blur=lens["blur"]))[0].cpu()
            a, b = display_8bit(item["target"].permute(1, 2, 0)), display_8bit(pred.permute(1, 2, 0))
            scores["psnr"].append(psnr(a, b, data_range=1.0))
            scores["ssim"].append(ssim(a, b, data_range=1.0))
        return {f"val_{k}": float(np.mean([v for v in values if math.isfinite(v)] or [math.inf]))
                for k, values in scores.items()}
