"""Semantic bokeh from text: GBSD stage diffusion (text-to-image and image-to-image).

A global layout stage runs the first ``sigma`` of the denoising steps on the global prompt; a focus stage runs
the rest on ``(e_local + alpha * e_global) / (1 + alpha)``, where the local prompt names the object that must be
sharp. ``StageDiffusionPipeline`` imports diffusers on first access, so ``import lensblur.generate`` stays light.
"""

from __future__ import annotations

from .stages import (
    DEFAULT_ALPHA,
    DEFAULT_SIGMA,
    DEFAULT_STRENGTH,
    check_alpha,
    check_inputs,
    check_sigma,
    global_step_count,
    mix_embeddings,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_SIGMA",
    "DEFAULT_STRENGTH",
    "StageDiffusionOutput",
    "StageDiffusionPipeline",
    "check_alpha",
    "check_inputs",
    "check_sigma",
    "global_step_count",
    "mix_embeddings",
]

_LAZY = {"StageDiffusionPipeline", "StageDiffusionOutput"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
