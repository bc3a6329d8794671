"""The two stages of GBSD stage diffusion: where the switch happens and what the focus stage is conditioned on.

Pure torch and arithmetic, no diffusers: the pipeline applies these inside diffusers' own sampling loop.
"""

from __future__ import annotations

import math

import torch

from ..choices import DEFAULT_ALPHA, DEFAULT_SIGMA, DEFAULT_STRENGTH, SIGMA_READINGS
from ..errors import InputError

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_SIGMA",
    "DEFAULT_STRENGTH",
    "SIGMA_READINGS",
    "check_alpha",
    "check_inputs",
    "check_sigma",
    "global_step_count",
    "mix_embeddings",
    "steps_run",
]



def check_sigma(sigma) -> float:
    """Check the fraction of the steps run in the global layout stage.

    Args:
        sigma: a number in (0, 1] (not a bool).

    Returns:
        ``sigma`` as a float.

    Raises:
        InputError: not a number in (0, 1].
    """
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(sigma, bool) or not (0.0 < value <= 1.0):
        raise InputError("sigma", expected="a number in (0, 1]: the fraction of the denoising steps run with the "
                         "global prompt", got=sigma,
                         fix="e.g. sigma=0.8 (the paper's Figure 5); use global_steps=N for a step count")
    return value


def check_alpha(alpha) -> float:
    """Check the weight of the global embedding in the focus stage.

    Args:
        alpha: a number >= 0 (not a bool); ``inf`` is allowed: the focus stage then uses the global
            embedding alone.

    Returns:
        ``alpha`` as a float.

    Raises:
        InputError: not a number >= 0.
    """
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(alpha, bool) or not value >= 0.0:
        raise InputError("alpha", expected="a number >= 0 (inf allowed)", got=alpha,
                         fix="e.g. alpha=0 (focus stage on the focus prompt alone) or alpha=1 (equal mix)")
    return value




def global_step_count(num_steps_run: int, *, sigma: float = 1.0, global_steps: int | None = None,
                      num_inference_steps: int | None = None, sigma_of: str = "steps-run") -> int:
    """Number of steps, out of the ``num_steps_run`` steps actually run, conditioned on the global prompt.

    ``global_steps`` (an explicit count, 1 <= count <= ``num_steps_run``) wins over ``sigma``. Otherwise the count
    is ``sigma * num_steps_run`` rounded half up (0.5 -> 1), and at least 1 so that the global layout stage is
    never empty: 50 steps at ``sigma = 0.8`` give 40 global steps and 10 focus steps; image-to-image at strength
    0.5 runs 25 of the 50 steps, and ``sigma = 0.8`` gives 20 global steps (19.9 -> 20, 20.5 -> 21).

    ``sigma_of="schedule"`` reads the paper's ``sigma * T`` the other way for image-to-image: the switch is at
    step ``sigma * num_inference_steps`` of the whole schedule, whose first ``num_inference_steps -
    num_steps_run`` steps image-to-image skips; strength 0.5 and ``sigma = 0.8`` of 50 steps then give
    40 - 25 = 15 global steps and 10 focus steps (still at least 1 global step). For text-to-image the two
    readings agree.

    Args:
        num_steps_run: the steps the schedule runs (``num_inference_steps``, times ``strength`` in
            image-to-image), >= 1.
        sigma: fraction of them in the global stage, in (0, 1].
        global_steps: an explicit count, or None.
        num_inference_steps: the whole schedule's steps (needed by ``sigma_of="schedule"``; default
            ``num_steps_run``).
        sigma_of: ``"steps-run"`` (the default) or ``"schedule"``, see above.

    Returns:
        The number of global steps, from 1 to ``num_steps_run``.

    Raises:
        InputError: no step to run, ``global_steps`` not a whole number inside the schedule, or ``sigma``
            out of range.
    """
    if num_steps_run < 1:
        raise InputError("num_inference_steps", expected="at least one denoising step to run", got=num_steps_run,
                         fix="raise num_inference_steps or strength, e.g. num_inference_steps=50")
    if global_steps is not None:
        if isinstance(global_steps, bool) or int(global_steps) != global_steps or not (
                1 <= int(global_steps) <= num_steps_run):
            raise InputError("global_steps", expected=f"a whole number from 1 to {num_steps_run} (the steps run)",
                             got=global_steps, fix=f"pass a step count inside the schedule, e.g. global_steps={num_steps_run}, or use sigma")
        return int(global_steps)
    sigma = check_sigma(sigma)
    if sigma_of not in SIGMA_READINGS:
        raise InputError("sigma_of", expected=f"one of {', '.join(SIGMA_READINGS)}", got=sigma_of,
                         fix="sigma_of=steps-run")
    total = num_steps_run if num_inference_steps is None or sigma_of == "steps-run" else int(num_inference_steps)
    if total < num_steps_run:
        raise InputError("num_inference_steps", expected=f"at least the {num_steps_run} steps run", got=total,
                         fix=f"num_inference_steps={num_steps_run}")
    switch = math.floor(sigma * total + 0.5) - (total - num_steps_run)
    return min(num_steps_run, max(1, switch))


def mix_embeddings(local: torch.Tensor, global_: torch.Tensor, alpha: float) -> torch.Tensor:
    """The focus stage's conditioning ``(local + alpha * global_) / (1 + alpha)`` (GBSD eq. for e-bar).

    ``alpha = 0`` is the local (focus) prompt alone; ``alpha = inf`` returns ``global_`` unchanged. Works for the
    token embeddings ``(B, 77, D)``, SDXL's pooled embeddings ``(B, D)`` and its time ids alike; the arithmetic is
    done in float32 and cast back to ``global_``'s dtype.

    Args:
        local: the focus prompt's embedding.
        global_: the global prompt's embedding, of ``local``'s shape.
        alpha: >= 0, ``inf`` allowed.

    Returns:
        The mixed embedding, of ``global_``'s shape and dtype.

    Raises:
        InputError: ``alpha`` out of range, or the shapes differ.
    """
    alpha = check_alpha(alpha)
    if tuple(local.shape) != tuple(global_.shape):
        raise InputError("focus_prompt", expected=f"an embedding of the global prompt's shape {tuple(global_.shape)}",
                         got=f"shape {tuple(local.shape)}", fix="encode both prompts with the same text encoder")
    if math.isinf(alpha):
        return global_
    mixed = (local.float() + alpha * global_.float()) / (1.0 + alpha)
    return mixed.to(global_.dtype)


def as_prompts(value, argument: str, count: int | None = None) -> list[str]:
    """One prompt or a list of them as a list of non-empty texts; focus prompts are repeated to ``count``.

    Args:
        value: a text or a list/tuple of texts.
        argument: ``"prompt"`` or ``"focus_prompt"``, for error messages.
        count: the number of global prompts a focus prompt list must match (1 is repeated), or None.

    Returns:
        The prompts, ``count`` of them when given.

    Raises:
        InputError: an empty or non-text prompt, or a list of another length.
    """
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if not items or any(not isinstance(p, str) or not p.strip() for p in items):
        what = "the global prompt describing the whole image" if argument == "prompt" else "a prompt naming the " \
            "object to bring into focus"
        raise InputError(argument, expected=f"a non-empty text ({what}) or a list of them", got=value,
                         fix="e.g. prompt='a cute baby bunny standing on top of a pile of baby carrots', "
                             "focus_prompt='a pile of baby carrots'")
    if count is not None and len(items) not in (1, count):
        raise InputError(argument, expected=f"one focus prompt or one per global prompt ({count})",
                         got=f"{len(items)} prompts", fix="pass as many focus prompts as global prompts")
    if count is not None and len(items) == 1:
        items = items * count
    return items


def _whole(value, argument: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(argument, expected="a whole number >= 1", got=value, fix=fix)
    return value


def steps_run(num_inference_steps: int, *, image_to_image: bool = False, strength: float = DEFAULT_STRENGTH) -> int:
    """The denoising steps actually run: all of them in text-to-image, ``int(steps * strength)`` (at most all)
    in image-to-image."""
    if not image_to_image:
        return num_inference_steps
    return min(int(num_inference_steps * strength), num_inference_steps)


def check_inputs(prompt, focus_prompt=None, *, sigma=DEFAULT_SIGMA, alpha=DEFAULT_ALPHA,
                 num_inference_steps: int = 50, num_images_per_prompt: int = 1, image_to_image: bool = False,
                 strength: float = DEFAULT_STRENGTH, height: int | None = None, width: int | None = None,
                 global_steps: int | None = None,
                 sigma_of: str = "steps-run") -> tuple[list[str], list[str] | None, float, float]:
    """Every check of a generation request, in one place and before any model is loaded.

    The pipeline calls it first; the command line calls it before loading the model, so a mistake costs
    nothing.

    Args:
        prompt: the global prompt, or a list of them.
        focus_prompt: the focus prompt (one, or one per global prompt), or ``None`` for a plain run.
        sigma: fraction of the steps run in the global layout stage, in (0, 1].
        alpha: weight of the global embedding in the focus stage, >= 0 (``inf`` allowed).
        num_inference_steps: denoising steps of the schedule, >= 1.
        num_images_per_prompt: images per prompt, >= 1.
        image_to_image: whether an input image is given.
        strength: image-to-image noise strength in (0, 1].
        height: output height in pixels (text-to-image only), a multiple of 8.
        width: output width in pixels (text-to-image only), a multiple of 8.
        global_steps: an explicit number of global steps (see :func:`global_step_count`), or None.
        sigma_of: what ``sigma`` is a fraction of (see :func:`global_step_count`).

    Returns:
        ``(prompts, focus_prompts or None, sigma, alpha)``, the prompts as lists of one length.

    Raises:
        InputError: the first value that is not acceptable, named as the Python argument.
    """
    prompts = as_prompts(prompt, "prompt")
    focus = None if focus_prompt is None else as_prompts(focus_prompt, "focus_prompt", len(prompts))
    sigma, alpha = check_sigma(sigma), check_alpha(alpha)
    _whole(num_inference_steps, "num_inference_steps", "e.g. num_inference_steps=50 (the paper's DDIM step count)")
    _whole(num_images_per_prompt, "num_images_per_prompt", "e.g. num_images_per_prompt=4 (the paper's batch size)")
    if image_to_image:
        try:
            value = float(strength)
        except (TypeError, ValueError):
            value = math.nan
        if not 0.0 < value <= 1.0:
            raise InputError("strength", expected="a number in (0, 1]", got=strength,
                             fix="e.g. strength=0.5 (half of the schedule is re-run from the noised input)")
        if steps_run(num_inference_steps, image_to_image=True, strength=value) < 1:
            raise InputError("strength", expected=f"at least one step to run: int(num_inference_steps * strength) "
                             f">= 1 (num_inference_steps={num_inference_steps})", got=strength,
                             fix=f"raise strength to {1 / num_inference_steps:g} or more, or num_inference_steps")
        if height is not None or width is not None:
            raise InputError("height" if height is not None else "width",
                             expected="None in image-to-image (the input image's size is used)",
                             got=f"height={height}, width={width}",
                             fix="pass height=None and width=None, and resize the input image instead")
    for name, value in (("height", height), ("width", width)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 8 or value % 8):
            raise InputError(name, expected="a multiple of 8 pixels", got=value, fix=f"e.g. {name}=512 or {name}=768")
    if focus is not None:   # the stage split is only used with a focus prompt
        global_step_count(steps_run(num_inference_steps, image_to_image=image_to_image, strength=float(strength)),
                          sigma=sigma, global_steps=global_steps, num_inference_steps=num_inference_steps,
                          sigma_of=sigma_of)
    return prompts, focus, sigma, alpha
