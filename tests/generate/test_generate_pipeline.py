"""StageDiffusionPipeline on tiny random Stable Diffusion 1.x components.

The reference is diffusers' own StableDiffusionPipeline / StableDiffusionImg2ImgPipeline on the same modules,
and the text embeddings computed here straight from the tokenizer and text encoder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lensblur.errors import InputError

PROMPT = "a cute baby bunny standing on top of a pile of baby carrots under a spot light"
FOCUS = "a pile of baby carrots under a spot light"
SETTINGS = {"num_inference_steps": 4, "height": 32, "width": 32, "output_type": "np"}


def gen(seed: int = 42) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def stage(sd_pipe):
    from lensblur.generate import StageDiffusionPipeline

    return StageDiffusionPipeline.from_pipe(sd_pipe)


def embed(pipe, text: str) -> torch.Tensor:
    """CLIP last hidden state of ``text``, padded to 77 tokens: computed here, not with diffusers' encode_prompt."""
    ids = pipe.tokenizer(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


def input_image(mirror: bool = False) -> np.ndarray:
    """A 32 x 32 layout: a bright disc on the left over a dark-to-light ramp (display values in [0, 1])."""
    y, x = np.mgrid[0:32, 0:32] / 31.0
    disc = ((x - 0.3) ** 2 + (y - 0.45) ** 2 < 0.05).astype(np.float32)
    img = np.stack([0.1 + 0.8 * disc, 0.2 + 0.6 * y * (1 - disc), 0.9 * (1 - x) * (1 - disc)], axis=-1)
    img = img.astype(np.float32)
    return np.ascontiguousarray(img[:, ::-1]) if mirror else img


@pytest.mark.parametrize("guidance", [1.0, 15.0])
def test_sigma_one_equals_diffusers_text_to_image(sd_pipe, stage, guidance):
    expected = sd_pipe(PROMPT, guidance_scale=guidance, generator=gen(), **SETTINGS).images
    out = stage(PROMPT, focus_prompt=FOCUS, sigma=1.0, alpha=0.0, guidance_scale=guidance, generator=gen(),
                **SETTINGS)
    assert out.global_steps == 4 and out.focus_steps == 0
    assert np.array_equal(out.images, expected)
    plain = stage(PROMPT, guidance_scale=guidance, generator=gen(), **SETTINGS).images
    assert np.array_equal(plain, expected)
    infinite = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, alpha=float("inf"), guidance_scale=guidance,
                     generator=gen(), **SETTINGS).images
    assert np.array_equal(infinite, expected)
    switched = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, alpha=0.0, guidance_scale=guidance, generator=gen(),
                     **SETTINGS).images
    assert not np.array_equal(switched, expected)


def test_sigma_one_equals_diffusers_image_to_image(sd_components, stage):
    from diffusers import StableDiffusionImg2ImgPipeline

    ref = StableDiffusionImg2ImgPipeline(**sd_components, requires_safety_checker=False)
    ref.set_progress_bar_config(disable=True)
    image = input_image()
    settings = {"num_inference_steps": 4, "strength": 0.75, "guidance_scale": 15.0, "output_type": "np"}
    expected = ref(PROMPT, image=image, generator=gen(), **settings).images
    out = stage(PROMPT, focus_prompt=FOCUS, sigma=1.0, image=image, generator=gen(), **settings)
    assert out.steps_run == 3 and out.global_steps == 3
    assert np.array_equal(out.images, expected)
    switched = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, image=image, generator=gen(), **settings)
    assert (switched.steps_run, switched.global_steps, switched.focus_steps) == (3, 2, 1)  # 1.5 rounds up to 2
    assert not np.array_equal(switched.images, expected)


def _latents(stage, **kwargs):
    seen = []

    def record(pipe, i, t, tensors):
        seen.append(tensors["latents"].clone())
        return {}

    stage(PROMPT, generator=gen(), callback_on_step_end=record, num_inference_steps=4, height=32, width=32,
          output_type="latent", **kwargs)
    return seen


@pytest.mark.parametrize("guidance", [1.0, 15.0])
def test_latents_equal_before_the_switch_and_differ_after(stage, guidance):
    base = _latents(stage, guidance_scale=guidance)
    staged = _latents(stage, focus_prompt=FOCUS, sigma=0.5, guidance_scale=guidance)
    assert len(base) == len(staged) == 4
    for i in range(2):  # steps 0 and 1 run on the global prompt
        assert torch.equal(base[i], staged[i]), i
    for i in range(2, 4):
        assert not torch.allclose(base[i], staged[i], atol=1e-6), i


@pytest.mark.parametrize("guidance", [1.0, 15.0])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 3.0])
def test_unet_receives_global_then_mixed_embedding(stage, sd_pipe, unet_inputs, guidance, alpha):
    e_g, e_l, e_u = embed(sd_pipe, PROMPT), embed(sd_pipe, FOCUS), embed(sd_pipe, "")
    mixed = (e_l + alpha * e_g) / (1 + alpha)
    seen = unet_inputs(sd_pipe.unet)
    out = stage(PROMPT, focus_prompt=FOCUS, sigma=0.75, alpha=alpha, guidance_scale=guidance, generator=gen(),
                **SETTINGS)
    assert (out.global_steps, out.focus_steps) == (3, 1)
    assert len(seen.hidden) == 4
    for i, hidden in enumerate(seen.hidden):
        cond = hidden[-1:]
        if guidance > 1:
            assert hidden.shape[0] == 2
            torch.testing.assert_close(hidden[:1], e_u, rtol=0, atol=1e-6)  # unconditional half never changes
        else:
            assert hidden.shape[0] == 1
        torch.testing.assert_close(cond, e_g if i < 3 else mixed, rtol=0, atol=1e-6)
    assert not torch.allclose(mixed, e_g, atol=1e-3)


def test_same_seed_same_bytes(stage):
    a = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, generator=gen(7), **SETTINGS).images
    b = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, generator=gen(7), **SETTINGS).images
    c = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, generator=gen(8), **SETTINGS).images
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("guidance", [1.0, 15.0])
def test_batch_equals_single_runs(stage, guidance):
    n = 3
    batch = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, guidance_scale=guidance, num_images_per_prompt=n,
                  generator=[gen(42 + j) for j in range(n)], **SETTINGS).images
    assert batch.shape == (n, 32, 32, 3)
    for j in range(n):
        single = stage(PROMPT, focus_prompt=FOCUS, sigma=0.5, guidance_scale=guidance, generator=gen(42 + j),
                       **SETTINGS).images
        np.testing.assert_allclose(batch[j], single[0], rtol=0, atol=1e-5)


def test_several_prompts_with_their_own_focus(stage, sd_pipe, unet_inputs):
    prompts = [PROMPT, "a red car parked in front of a brick house"]
    focus = [FOCUS, "a red car"]
    seen = unet_inputs(sd_pipe.unet)
    stage(prompts, focus_prompt=focus, sigma=0.5, alpha=1.0, guidance_scale=1.0, generator=gen(), **SETTINGS)
    last = seen.hidden[-1]
    for row, (p, f) in enumerate(zip(prompts, focus)):
        torch.testing.assert_close(last[row:row + 1], (embed(sd_pipe, f) + embed(sd_pipe, p)) / 2, rtol=0, atol=1e-6)


def test_image_to_image_keeps_the_layout_at_low_strength(stage, sd_pipe):
    """At low strength the output stays near the input's own VAE reconstruction (the layout the tiny random VAE
    can represent) and far nearer to it than to the mirrored layout's; at strength 1 the input is forgotten.
    Measured when written: strength 0.2 -> 0.026 from the input, 0.072 from the mirror; strength 1 -> 0.17."""
    image, mirrored = input_image(), input_image(mirror=True)

    def reconstruct(img):
        with torch.no_grad():
            x = torch.from_numpy(img).permute(2, 0, 1)[None] * 2 - 1
            z = sd_pipe.vae.encode(x).latent_dist.mode()
            return ((sd_pipe.vae.decode(z).sample[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()

    recon, recon_mirrored = reconstruct(image), reconstruct(mirrored)
    assert np.abs(recon - recon_mirrored).mean() > 0.01  # the two layouts are distinguishable after the VAE
    settings = {"focus_prompt": FOCUS, "sigma": 0.5, "num_inference_steps": 10, "guidance_scale": 15.0, "output_type": "np"}
    low = stage(PROMPT, image=image, strength=0.2, generator=gen(), **settings).images[0]
    full = stage(PROMPT, image=image, strength=1.0, generator=gen(), **settings).images[0]
    d_low, d_full = np.abs(low - recon).mean(), np.abs(full - recon).mean()
    assert d_low < 0.5 * d_full, (d_low, d_full)
    assert d_low < 0.5 * np.abs(low - recon_mirrored).mean()


@pytest.mark.parametrize("kwargs, argument", [
    ({"sigma": 0.0}, "sigma"), ({"sigma": 1.5}, "sigma"), ({"sigma": -0.2}, "sigma"),
    ({"alpha": -1.0}, "alpha"), ({"prompt": ""}, "prompt"), ({"focus_prompt": " "}, "focus_prompt"),
    ({"focus_prompt": ["a", "b"]}, "focus_prompt"), ({"global_steps": 5}, "global_steps"),
    ({"global_steps": 0}, "global_steps"), ({"num_inference_steps": 0}, "num_inference_steps"),
])
def test_bad_arguments_name_themselves(stage, kwargs, argument):
    call = dict(prompt=PROMPT, focus_prompt=FOCUS, **SETTINGS)
    call.update(kwargs)
    with pytest.raises(InputError, match=f"^{argument}: expected"):
        stage(**call)


def test_image_to_image_refuses_a_size(stage):
    with pytest.raises(InputError, match="^height: expected None in image-to-image.*height=None"):
        stage(PROMPT, focus_prompt=FOCUS, image=input_image(), height=64, num_inference_steps=2)


def test_global_steps_count_directly(stage, sd_pipe, unet_inputs):
    seen = unet_inputs(sd_pipe.unet)
    out = stage(PROMPT, focus_prompt=FOCUS, global_steps=1, guidance_scale=1.0, generator=gen(), **SETTINGS)
    assert (out.global_steps, out.focus_steps) == (1, 3)
    e_g, e_l = embed(sd_pipe, PROMPT), embed(sd_pipe, FOCUS)
    torch.testing.assert_close(seen.hidden[0], e_g, rtol=0, atol=1e-6)
    torch.testing.assert_close(seen.hidden[1], e_l, rtol=0, atol=1e-6)


def test_image_to_image_sigma_of_the_whole_schedule(stage):
    """8 steps at strength 0.5 run 4; sigma 0.75 is 3 of them, or the step 6 of 8 of the whole schedule: 2."""
    call = {"focus_prompt": FOCUS, "image": input_image(), "strength": 0.5, "sigma": 0.75, "num_inference_steps": 8,
            "guidance_scale": 1.0, "output_type": "np"}
    run = stage(PROMPT, generator=gen(), **call)
    schedule = stage(PROMPT, generator=gen(), sigma_of="schedule", **call)
    assert (run.steps_run, run.global_steps, run.focus_steps) == (4, 3, 1)
    assert (schedule.steps_run, schedule.global_steps, schedule.focus_steps) == (4, 2, 2)


@pytest.mark.parametrize("name, cls", [("ddim", "DDIMScheduler"), ("dpm++", "DPMSolverMultistepScheduler"),
                                       ("euler", "EulerDiscreteScheduler")])
def test_schedulers_switch_at_the_same_step(stage, sd_pipe, name, cls):
    stage.set_scheduler(name)
    assert type(stage.scheduler).__name__ == cls
    if name == "dpm++":
        assert stage.scheduler.config.algorithm_type == "dpmsolver++"
    base = _latents(stage, guidance_scale=15.0)
    staged = _latents(stage, focus_prompt=FOCUS, sigma=0.5, guidance_scale=15.0)
    assert torch.equal(base[1], staged[1]) and not torch.allclose(base[2], staged[2], atol=1e-6)
