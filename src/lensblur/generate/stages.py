"""The two stages of GBSD stage diffusion: where the switch happens and what the focus stage is conditioned on.

Pure torch and arithmetic, no diffusers: the pipeline applies these inside diffusers' own sampling loop.
"""

from __future__ import annotations

import math

import torch

from ..errors import InputError

__all__ = ["DEFAULT_ALPHA", "DEFAULT_SIGMA", "check_alpha", "check_sigma", "global_step_count", "mix_embeddings"]

# The paper gives no value for alpha; 0 (the focus stage on the focus prompt alone) is lensblur's default: see
# docs/generate.md for the reasoning and the sweep that checks it.
DEFAULT_ALPHA = 0.0
# The paper's Figure 5: 80 % of the steps in the global layout stage.
DEFAULT_SIGMA = 0.8


def check_sigma(sigma) -> float:
    """``sigma`` must be a number in (0, 1]: the fraction of the steps run in the global layout stage."""
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(sigma, bool) or not (0.0 < value <= 1.0):
        raise InputError("sigma", expected="a number in (0, 1]: the fraction of the denoising steps run with the "
                         "global prompt", got=sigma,
                         fix="e.g. --sigma 0.8 (the paper's Figure 5); use --global-steps N for a step count")
    return value


def check_alpha(alpha) -> float:
    """``alpha`` must be >= 0 (``inf`` allowed: the focus stage then uses the global embedding alone)."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(alpha, bool) or not value >= 0.0:
        raise InputError("alpha", expected="a number >= 0 (inf allowed)", got=alpha,
                         fix="e.g. --alpha 0 (focus stage on the focus prompt alone) or --alpha 1 (equal mix)")
    return value


def global_step_count(num_steps_run: int, *, sigma: float = 1.0, global_steps: int | None = None) -> int:
    """Number of steps, out of the ``num_steps_run`` steps actually run, conditioned on the global prompt.

    ``global_steps`` (an explicit count, 1 <= count <= ``num_steps_run``) wins over ``sigma``. Otherwise the count
    is ``sigma * num_steps_run`` rounded half up (0.5 -> 1), and at least 1 so that the global layout stage is
    never empty: 50 steps at ``sigma = 0.8`` give 40 global steps and 10 focus steps; image-to-image at strength
    0.5 runs 25 of the 50 steps, and ``sigma = 0.8`` gives 20 global steps (19.9 -> 20, 20.5 -> 21).
    """
    if num_steps_run < 1:
        raise InputError("steps", expected="at least one denoising step to run", got=num_steps_run,
                         fix="raise --steps or --strength")
    if global_steps is not None:
        if isinstance(global_steps, bool) or int(global_steps) != global_steps or not (
                1 <= int(global_steps) <= num_steps_run):
            raise InputError("global_steps", expected=f"a whole number from 1 to {num_steps_run} (the steps run)",
                             got=global_steps, fix="pass a step count inside the schedule, or use sigma")
        return int(global_steps)
    sigma = check_sigma(sigma)
    return min(num_steps_run, max(1, math.floor(sigma * num_steps_run + 0.5)))


def mix_embeddings(local: torch.Tensor, global_: torch.Tensor, alpha: float) -> torch.Tensor:
    """The focus stage's conditioning ``(local + alpha * global_) / (1 + alpha)`` (GBSD eq. for e-bar).

    ``alpha = 0`` is the local (focus) prompt alone; ``alpha = inf`` returns ``global_`` unchanged. Works for the
    token embeddings ``(B, 77, D)``, SDXL's pooled embeddings ``(B, D)`` and its time ids alike; the arithmetic is
    done in float32 and cast back to ``global_``'s dtype.
    """
    alpha = check_alpha(alpha)
    if tuple(local.shape) != tuple(global_.shape):
        raise InputError("focus_prompt", expected=f"an embedding of the global prompt's shape {tuple(global_.shape)}",
                         got=f"shape {tuple(local.shape)}", fix="encode both prompts with the same text encoder")
    if math.isinf(alpha):
        return global_
    mixed = (local.float() + alpha * global_.float()) / (1.0 + alpha)
    return mixed.to(global_.dtype)
