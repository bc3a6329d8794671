"""``StageDiffusionPipeline``: GBSD stage diffusion on top of diffusers' Stable Diffusion pipelines.

The sampler is diffusers' own (text-to-image, image-to-image, 1.x/2.x and XL): lensblur only changes the text
conditioning once, at the end of the last global-layout step, through diffusers' ``callback_on_step_end`` hook.
Until then every tensor is exactly what diffusers computes for the global prompt; afterwards the conditional
half of the embeddings is ``(e_local + alpha * e_global) / (1 + alpha)``.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._optional import require
from .._progress import Channel
from ..errors import InputError
from .loading import FEATURE, load_text_to_image, make_scheduler
from .stages import (
    DEFAULT_ALPHA,
    DEFAULT_SIGMA,
    DEFAULT_STRENGTH,
    check_inputs,
    global_step_count,
    mix_embeddings,
)
from .stages import steps_run as count_steps_run

__all__ = ["DEFAULT_ALPHA", "DEFAULT_SIGMA", "StageDiffusionOutput", "StageDiffusionPipeline", "reporting"]

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from PIL import Image


def _diffusers():
    """diffusers, imported when a pipeline is built or inspected (not when this module is imported)."""
    return require("diffusers", extra="diffusion", feature=FEATURE)


_STEPS = Channel("generation steps")


def reporting(progress: Callable[[int, int], None]):
    """Within the block, every :class:`StageDiffusionPipeline` call reports ``progress(step, steps_run)`` at the
    end of each denoising step (``step`` from 1 to the steps that run), after the switch and after the caller's
    own ``callback_on_step_end``. What ``lensblur ui`` counts the steps of ``lensblur generate`` with. Blocks
    nest: inside another ``reporting`` block both callbacks are called (the inner one first).

    Args:
        progress: the callback.
    """
    return _STEPS.listening(progress)


@dataclass
class StageDiffusionOutput:
    """What :class:`StageDiffusionPipeline` returns.

    Args:
        images: as ``output_type`` asks: ``"pil"``, a list of N PIL images; ``"np"``, a ``(N, H, W, 3)``
            float32 array; ``"pt"``, a ``(N, 3, H, W)`` tensor, both of display (sRGB-encoded) values in
            [0, 1]; ``"latent"``, the ``(N, C, h, w)`` latents tensor.
        nsfw_content_detected: per image, whether the safety checker flagged it (None without a checker).
        steps_run: denoising steps actually run (fewer than ``num_inference_steps`` in image-to-image).
        global_steps: how many of them used the global prompt.
        focus_steps: how many used the mixed embedding (0 for a plain run).
    """

    images: list[Image.Image] | np.ndarray | torch.Tensor
    nsfw_content_detected: list[bool] | None
    steps_run: int
    global_steps: int
    focus_steps: int


class StageDiffusionPipeline:
    """GBSD stage diffusion (semantic bokeh) with diffusers' Stable Diffusion 1.x/2.x/XL components.

    Build it with :meth:`from_pretrained` (diffusers folder or cached Hugging Face id), :meth:`from_single_file`
    or :meth:`from_pipe` (an existing ``StableDiffusionPipeline`` / ``StableDiffusionXLPipeline``; the modules
    are shared, not copied). Then::

        pipe = StageDiffusionPipeline.from_pretrained("sd-v1-4").to("cuda")
        out = pipe("a cute baby bunny standing on top of a pile of baby carrots under a spot light",
                   focus_prompt="a pile of baby carrots under a spot light", sigma=0.8, alpha=0.0,
                   generator=torch.Generator().manual_seed(42))
        out.images[0].save("gbsd.png")

    Args:
        pipe: a diffusers ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``.

    Raises:
        InputError: ``pipe`` is another kind of object.
        MissingDependencyError: diffusers is not installed.
    """

    def __init__(self, pipe):
        diffusers = _diffusers()
        base = (diffusers.StableDiffusionPipeline, diffusers.StableDiffusionXLPipeline)
        if not isinstance(pipe, base):
            raise InputError("pipe", expected="a diffusers StableDiffusionPipeline or StableDiffusionXLPipeline",
                             got=type(pipe).__name__, fix="load the text-to-image pipeline of the model")
        self.text2img = pipe
        self._img2img = None

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def from_pipe(cls, pipe, *, scheduler: str | None = None) -> StageDiffusionPipeline:
        """Wrap a diffusers text-to-image pipeline (its modules are shared, not copied).

        Args:
            pipe: a ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``.
            scheduler: ``"ddim"``, ``"dpm++"`` or ``"euler"`` to replace its own, or None to keep it.

        Returns:
            The pipeline.

        Raises:
            InputError: another kind of ``pipe``, or an unknown scheduler.
        """
        out = cls(pipe)
        if scheduler is not None:
            out.set_scheduler(scheduler)
        return out

    @classmethod
    def from_pretrained(cls, model, *, scheduler: str = "ddim", torch_dtype: torch.dtype | None = None,
                        allow_download: bool = False, config: str | None = None,
                        variant: str | None = None) -> StageDiffusionPipeline:
        """Load Stable Diffusion 1.x/2.x/XL from a diffusers folder, a single-file checkpoint or a cached id.

        Args:
            model: a diffusers folder, a ``.safetensors``/``.ckpt`` file or a Hugging Face id (read from the
                local cache only, unless ``allow_download``).
            scheduler: ``"ddim"`` (eta = 0, the paper's sampler), ``"dpm++"``, ``"euler"`` or ``"model"``.
            torch_dtype: the weights' dtype.
            allow_download: let a Hugging Face id be fetched into the cache.
            config: for a single file, a diffusers folder or id with the matching configs.
            variant: the weights variant (e.g. ``"fp16"``).

        Returns:
            The pipeline.

        Raises:
            ModelNotFoundError: the model is missing or unusable (where it looked, how to get the weights).
            InputError: an unknown scheduler.
            MissingDependencyError: diffusers is not installed.
        """
        pipe = load_text_to_image(model, torch_dtype=torch_dtype, allow_download=allow_download, config=config,
                                  variant=variant)
        return cls.from_pipe(pipe, scheduler=scheduler)

    @classmethod
    def from_single_file(cls, path, *, config: str | None = None, **kwargs) -> StageDiffusionPipeline:
        """Load a ``.safetensors``/``.ckpt`` checkpoint (diffusers' ``from_single_file``).

        Args:
            path: the checkpoint file.
            config: a diffusers folder or id with the matching configs.
            **kwargs: the other keywords of :meth:`from_pretrained`.

        Returns:
            The pipeline.

        Raises:
            InputError: ``path`` is not an existing file.
            ModelNotFoundError: the checkpoint cannot be loaded.
        """
        from pathlib import Path

        if not Path(path).is_file():
            raise InputError("path", expected="an existing .safetensors or .ckpt file", got=str(path),
                             fix="check the path, or use from_pretrained for a diffusers folder")
        return cls.from_pretrained(path, config=config, **kwargs)

    # -- diffusers-style plumbing ------------------------------------------------------------------------------
    @property
    def is_xl(self) -> bool:
        """Whether the model is Stable Diffusion XL."""
        return isinstance(self.text2img, _diffusers().StableDiffusionXLPipeline)

    @property
    def components(self) -> dict:
        """The diffusers modules (``unet``, ``vae``, text encoders, ``scheduler``...) by name."""
        return self.text2img.components

    @property
    def scheduler(self):
        """The scheduler both pipelines use."""
        return self.text2img.scheduler

    @property
    def device(self) -> torch.device:
        """Where the modules are."""
        return self.text2img.device

    @property
    def img2img(self):
        """The image-to-image pipeline on the same modules (built on first use)."""
        if self._img2img is None or self._img2img.scheduler is not self.text2img.scheduler:
            diffusers = _diffusers()
            cls = (diffusers.StableDiffusionXLImg2ImgPipeline if self.is_xl
                   else diffusers.StableDiffusionImg2ImgPipeline)
            accepted = inspect.signature(cls.__init__).parameters
            parts = {k: v for k, v in self.components.items() if k in accepted}
            if "requires_safety_checker" in accepted:
                parts["requires_safety_checker"] = bool(self.text2img.config.get("requires_safety_checker", True)) \
                    and parts.get("safety_checker") is not None
            if "force_zeros_for_empty_prompt" in accepted:
                parts["force_zeros_for_empty_prompt"] = self.text2img.config.get("force_zeros_for_empty_prompt", True)
            self._img2img = cls(**parts)
            self._img2img.set_progress_bar_config(**getattr(self.text2img, "_progress_bar_config", {}))
        return self._img2img

    def set_scheduler(self, name: str) -> StageDiffusionPipeline:
        """Use scheduler ``name`` (``"ddim"``, ``"dpm++"``, ``"euler"``, or ``"model"`` to keep the model's own).

        Returns:
            This pipeline.

        Raises:
            InputError: an unknown name.
        """
        scheduler = make_scheduler(name, self.text2img.scheduler.config)
        if scheduler is not None:
            self.text2img.scheduler = scheduler
            self._img2img = None
        return self

    def set_progress_bar_config(self, **kwargs) -> None:
        """diffusers' progress bar options (e.g. ``disable=True``) for both pipelines."""
        self.text2img.set_progress_bar_config(**kwargs)
        if self._img2img is not None:
            self._img2img.set_progress_bar_config(**kwargs)

    def to(self, *args, **kwargs) -> StageDiffusionPipeline:
        """Move the modules, as diffusers' ``to`` (e.g. ``to("cuda")``); returns this pipeline."""
        self.text2img.to(*args, **kwargs)
        return self

    def save_pretrained(self, path, **kwargs) -> None:
        """Save the text-to-image pipeline as a diffusers folder (loadable with :meth:`from_pretrained`)."""
        self.text2img.save_pretrained(path, **kwargs)

    # -- the focus stage's conditioning ---------------------------------------------------------------------------
    def encode_prompt(self, prompts: list[str], num_images_per_prompt: int = 1, clip_skip: int | None = None):
        """Conditional embeddings of ``prompts`` exactly as the pipeline encodes its own prompt.

        Args:
            prompts: the texts.
            num_images_per_prompt: each embedding is repeated this many times.
            clip_skip: CLIP layers skipped, as diffusers' pipelines take it.

        Returns:
            ``(prompt_embeds, pooled_prompt_embeds)``: ``(B, 77, D)`` and, for SDXL only, ``(B, D)`` (else
            None), ``B = len(prompts) * num_images_per_prompt``.
        """
        pipe = self.text2img
        with torch.no_grad():
            if self.is_xl:
                embeds, _, pooled, _ = pipe.encode_prompt(
                    prompt=prompts, device=pipe._execution_device, num_images_per_prompt=num_images_per_prompt,
                    do_classifier_free_guidance=False, clip_skip=clip_skip)
                return embeds, pooled
            embeds, _ = pipe.encode_prompt(prompts, pipe._execution_device, num_images_per_prompt, False,
                                           clip_skip=clip_skip)
            return embeds, None

    @staticmethod
    def _replace_conditional(current: torch.Tensor, local: torch.Tensor, alpha: float, what: str) -> torch.Tensor:
        """Mix the conditional part of ``current`` (the second half under classifier-free guidance)."""
        n = local.shape[0]
        if current.shape[0] == n:
            return mix_embeddings(local.to(current.device), current, alpha)
        if current.shape[0] == 2 * n:
            return torch.cat([current[:n], mix_embeddings(local.to(current.device), current[n:], alpha)])
        raise RuntimeError(f"{what}: the sampler holds {current.shape[0]} rows, expected {n} or {2 * n}")

    # -- sampling ---------------------------------------------------------------------------------------------
    def __call__(
        self,
        prompt: str | Sequence[str],
        focus_prompt: str | Sequence[str] | None = None,
        sigma: float = DEFAULT_SIGMA,
        alpha: float = DEFAULT_ALPHA,
        image=None,
        strength: float = DEFAULT_STRENGTH,
        *,
        global_steps: int | None = None,
        sigma_of: str = "steps-run",
        num_inference_steps: int = 50,
        guidance_scale: float = 15.0,
        negative_prompt: str | Sequence[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        **kwargs,
    ):
        """Generate images with a global layout stage and a focus stage.

        Args:
            prompt: the global prompt (describes the whole image; for image-to-image, the input image), or a
                list of them.
            focus_prompt: names the object to bring into focus (one, or one per prompt); None gives the plain
                baseline (the global prompt throughout, bit-identical to diffusers' pipeline).
            sigma: fraction of the steps actually run that use the global prompt, in (0, 1] (rounded half
                up, at least one step).
            alpha: >= 0, the weight of the global embedding in the focus stage (``inf`` = baseline).
            image: a PIL image, or display values in [0, 1] as diffusers takes them; switches to
                image-to-image at the image's size.
            strength: image-to-image noise, in (0, 1]: ``int(num_inference_steps * strength)`` steps are run.
            global_steps: the number of global steps, instead of ``sigma``.
            sigma_of: how ``sigma`` reads in image-to-image: ``"steps-run"`` (a fraction of the steps run, the
                default) or ``"schedule"`` (the step ``sigma * num_inference_steps`` of the whole schedule);
                see :func:`~lensblur.generate.global_step_count`.
            num_inference_steps: steps of the schedule, >= 1.
            guidance_scale: classifier-free guidance scale.
            negative_prompt: as diffusers takes it.
            height: output height in pixels, a multiple of 8 (text-to-image only).
            width: output width in pixels, a multiple of 8 (text-to-image only).
            num_images_per_prompt: images per prompt, >= 1.
            generator: one, or one per image; makes runs repeatable.
            output_type: ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"`` (see :class:`StageDiffusionOutput`).
            return_dict: return a :class:`StageDiffusionOutput`; else a tuple ``(images, nsfw)``.
            callback_on_step_end: called after each step as diffusers calls it (after the switch).
            callback_on_step_end_tensor_inputs: the tensors that callback receives.
            **kwargs: passed to the diffusers pipeline unchanged.

        Returns:
            :class:`StageDiffusionOutput`, or ``(images, nsfw_content_detected)`` when ``return_dict`` is False.

        Raises:
            InputError: a request :func:`~lensblur.generate.check_inputs` refuses, or ``global_steps``
                outside the schedule.
        """
        # 1. Check inputs
        prompts, focus, sigma, alpha = check_inputs(
            prompt, focus_prompt, sigma=sigma, alpha=alpha, num_inference_steps=num_inference_steps,
            num_images_per_prompt=num_images_per_prompt, image_to_image=image is not None, strength=strength,
            height=height, width=width, global_steps=global_steps if focus_prompt is not None else None,
            sigma_of=sigma_of)

        # 2. Steps actually run and the step at which the focus stage starts
        steps_run = count_steps_run(num_inference_steps, image_to_image=image is not None, strength=strength)
        n_global = global_step_count(steps_run, sigma=sigma, global_steps=global_steps,
                                     num_inference_steps=num_inference_steps, sigma_of=sigma_of)
        switching = focus is not None and n_global < steps_run and not math.isinf(alpha)
        state = {"steps_run": steps_run, "global": n_global if switching else steps_run}

        # 3. The focus prompts' embeddings, encoded exactly like the global prompt
        local = pooled_local = None
        if switching:
            local, pooled_local = self.encode_prompt(focus, num_images_per_prompt, kwargs.get("clip_skip"))

        # 4. The switch, at the end of the last global step, inside diffusers' loop
        pipe = self.text2img if image is None else self.img2img
        tensor_inputs = ["prompt_embeds"] + (["add_text_embeds"] if self.is_xl else [])
        tensor_inputs += [k for k in callback_on_step_end_tensor_inputs if k not in tensor_inputs]
        report = _STEPS.listener()

        def on_step_end(p, i, t, tensors):
            if i == 0 and p.num_timesteps != state["steps_run"]:
                # A scheduler with its own step arithmetic: follow what diffusers actually runs.
                state["steps_run"] = p.num_timesteps
                state["global"] = global_step_count(
                    p.num_timesteps, sigma=sigma, global_steps=global_steps,
                    num_inference_steps=max(num_inference_steps, p.num_timesteps), sigma_of=sigma_of) \
                    if switching else p.num_timesteps
            if switching and i == state["global"] - 1 and state["global"] < state["steps_run"]:
                logger.info("focus stage from step %d of %d", i + 1, state["steps_run"])
                tensors["prompt_embeds"] = self._replace_conditional(tensors["prompt_embeds"], local, alpha,
                                                                     "prompt_embeds")
                if pooled_local is not None:
                    tensors["add_text_embeds"] = self._replace_conditional(tensors["add_text_embeds"], pooled_local,
                                                                           alpha, "add_text_embeds")
            if callback_on_step_end is not None:
                tensors.update(callback_on_step_end(p, i, t, tensors) or {})
            if report is not None:
                report(i + 1, state["steps_run"])
            return tensors

        # 5. diffusers' sampler, decoder and post-processing
        call = dict(prompt=prompts, negative_prompt=negative_prompt, num_inference_steps=num_inference_steps,
                    guidance_scale=guidance_scale, num_images_per_prompt=num_images_per_prompt, generator=generator,
                    output_type=output_type, callback_on_step_end=on_step_end,
                    callback_on_step_end_tensor_inputs=tensor_inputs, **kwargs)
        if image is None:
            call.update(height=height, width=width)
        else:
            call.update(image=image, strength=strength)
        result = pipe(**call)
        images, nsfw = result.images, getattr(result, "nsfw_content_detected", None)
        out = StageDiffusionOutput(images=images, nsfw_content_detected=nsfw, steps_run=state["steps_run"],
                                   global_steps=state["global"], focus_steps=state["steps_run"] - state["global"])
        return out if return_dict else (out.images, out.nsfw_content_detected)
