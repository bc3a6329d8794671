"""BokehDiff (Zhu et al., ICCV 2025): lens blur by one-step diffusion with physics-inspired self-attention.

The all-in-focus photo is VAE-encoded, taken as the latent at t = 499 without noise, passed once through an
SDXL (or SD 1.x) UNet whose chosen self-attention layers run PISA (:mod:`lensblur.bokehdiff.pisa`), stepped to
``z0 = (z - sqrt(1 - abar) eps) / sqrt(abar)`` and decoded. ``BokehDiffPipeline`` (diffusers' components) and
the loaders import diffusers on first access, so ``import lensblur.bokehdiff`` stays light.

Training (:mod:`lensblur.bokehdiff.training`, ``lensblur train bokehdiff``): ``BokehDiffTrainer`` on the shared
loop, its settings ``BokehDiffTrainConfig`` (the paper's and the release's recipes), the losses
(:mod:`~lensblur.bokehdiff.losses`), the ConvNeXt discriminator (:mod:`~lensblur.bokehdiff.discriminator`) and
the training view ``BokehDiffPairs`` (:mod:`~lensblur.bokehdiff.pairs`).
"""

from __future__ import annotations

from .constants import DEFAULT_BASE, DEFAULT_LORA, PROMPT, TIMESTEP

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_LORA",
    "PROMPT",
    "TIMESTEP",
    "BokehDiffOutput",
    "BokehDiffPairs",
    "BokehDiffPipeline",
    "BokehDiffTrainConfig",
    "BokehDiffTrainer",
    "PISAProcessor",
    "Sharpness",
    "install_pisa",
]

_LAZY = {"BokehDiffPipeline": "pipeline", "BokehDiffOutput": "pipeline", "PISAProcessor": "pisa",
         "Sharpness": "pisa", "install_pisa": "pisa", "BokehDiffTrainer": "training",
         "BokehDiffTrainConfig": "training", "BokehDiffPairs": "pairs"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
