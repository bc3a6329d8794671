"""Stage diffusion with Stable Diffusion XL: two text encoders, pooled embeddings and time ids.

The reference is diffusers' StableDiffusionXLPipeline on the same tiny random components.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffusion_dummies  # tests/ is on sys.path: its conftest.py is the root one

PROMPT = "a cute baby bunny standing on top of a pile of baby carrots under a spot light"
FOCUS = "a pile of baby carrots under a spot light"
SETTINGS = {"num_inference_steps": 4, "height": 32, "width": 32, "output_type": "np"}


def gen(seed: int = 42) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def xl_pipe(sdxl_components):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(**sdxl_components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def xl_embed(pipe, text: str):
    return diffusion_dummies.sdxl_embed((pipe.tokenizer, pipe.tokenizer_2), (pipe.text_encoder, pipe.text_encoder_2),
                                        text)


def test_sigma_one_equals_diffusers_sdxl(xl_pipe):
    from lensblur.generate import StageDiffusionPipeline

    stage = StageDiffusionPipeline.from_pipe(xl_pipe)
    assert stage.is_xl
    expected = xl_pipe(PROMPT, guidance_scale=15.0, generator=gen(), **SETTINGS).images
    out = stage(PROMPT, focus_prompt=FOCUS, sigma=1.0, guidance_scale=15.0, generator=gen(), **SETTINGS)
    assert np.array_equal(out.images, expected)
    switched = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, guidance_scale=15.0, generator=gen(), **SETTINGS)
    assert not np.array_equal(switched.images, expected)


@pytest.mark.parametrize("guidance", [1.0, 15.0])
def test_sdxl_mixes_token_and_pooled_embeddings(xl_pipe, unet_inputs, guidance):
    from lensblur.generate import StageDiffusionPipeline

    alpha = 0.5
    stage = StageDiffusionPipeline.from_pipe(xl_pipe)
    (e_g, p_g), (e_l, p_l) = xl_embed(xl_pipe, PROMPT), xl_embed(xl_pipe, FOCUS)
    seen = unet_inputs(xl_pipe.unet)
    time_ids = []
    handle = xl_pipe.unet.register_forward_pre_hook(
        lambda m, a, k: time_ids.append(k["added_cond_kwargs"]["time_ids"].clone()), with_kwargs=True)
    try:
        out = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, alpha=alpha, guidance_scale=guidance, generator=gen(),
                    **SETTINGS)
    finally:
        handle.remove()
    assert (out.global_steps, out.focus_steps) == (2, 2)
    rows = 2 if guidance > 1 else 1
    for i in range(4):
        hidden, pooled = seen.hidden[i], seen.text_embeds[i]
        assert hidden.shape[0] == pooled.shape[0] == rows
        want_hidden = e_g if i < 2 else (e_l + alpha * e_g) / (1 + alpha)
        want_pooled = p_g if i < 2 else (p_l + alpha * p_g) / (1 + alpha)
        torch.testing.assert_close(hidden[-1:], want_hidden, rtol=0, atol=1e-5)
        torch.testing.assert_close(pooled[-1:], want_pooled, rtol=0, atol=1e-5)
        if rows == 2:  # the unconditional half (zeros for an empty negative prompt in SDXL) is untouched
            torch.testing.assert_close(hidden[:1], seen.hidden[0][:1], rtol=0, atol=0)
            torch.testing.assert_close(pooled[:1], seen.text_embeds[0][:1], rtol=0, atol=0)
        # time ids (size and crop) are the same for both prompts, so their mix is the same vector
        torch.testing.assert_close(time_ids[i], time_ids[0], rtol=0, atol=0)
    assert not torch.allclose(p_l, p_g, atol=1e-3)


def test_sdxl_image_to_image_switches(xl_pipe):
    from lensblur.generate import StageDiffusionPipeline

    stage = StageDiffusionPipeline.from_pipe(xl_pipe)
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    settings = {"num_inference_steps": 4, "strength": 0.5, "guidance_scale": 5.0, "output_type": "np"}
    base = stage(PROMPT, image=image, generator=gen(), **settings)
    staged = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, image=image, generator=gen(), **settings)
    assert (staged.steps_run, staged.global_steps, staged.focus_steps) == (2, 1, 1)
    assert base.images.shape == staged.images.shape == (1, 32, 32, 3)
    assert not np.array_equal(base.images, staged.images)
