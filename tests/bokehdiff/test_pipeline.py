"""BokehDiffPipeline on tiny random SDXL and SD 1.x components: the one-step formula, the equality with a
hand-written encode -> UNet -> formula -> decode, tile, seeds, the CoC radius against lensblur's renderers,
and the checks of a request (section 8, items 16 and 20 of the fact sheet)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import diffusion_dummies  # tests/ is on sys.path: its conftest.py is the root one
from lensblur.bokehdiff import BokehDiffPipeline, PISAProcessor
from lensblur.bokehdiff import pipeline as pipeline_module
from lensblur.bokehdiff.pisa import coc_log_mask, coc_radius, distance_matrix
from lensblur.bokehdiff.tiles import blend, context_tiles, gaussian_window, tile_origins, tiles
from lensblur.errors import InputError
from lensblur.lens import Lens

PROMPT = "an excellent photo with a large aperture"
LENS = Lens(focus_disparity=0.5, blur=12.0)
PARTS = ("unet", "vae", "scheduler", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")


def srgb_decode(s):
    """IEC 61966-2-1, written out here (numpy, float64) as the test's own reference."""
    s = np.clip(s, 0, 1)
    return np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)


def photo(h=32, w=32, seed=0):
    """Display values (sRGB) in [0, 1], their linear image, and a smooth disparity map in [0, 1]."""
    rng = np.random.default_rng(seed)
    display = rng.random((h, w, 3))
    y, x = np.mgrid[0:h, 0:w]
    disparity = (0.5 + 0.45 * np.sin(x / 5.0) * np.cos(y / 7.0)).astype(np.float32)
    return display, srgb_decode(display).astype(np.float32), disparity


def build(components, **options):
    return BokehDiffPipeline.from_components(**{k: v for k, v in components.items() if k in PARTS}, **options)


@pytest.fixture
def xl(xl_components):
    return build(xl_components)


# ------------------------------------------------------------------------------------------ 16: one step
def test_the_one_step_is_the_ddpm_step_from_499_without_noise(xl_components):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, prediction_type="epsilon")
    pipe = build({**xl_components, "scheduler": scheduler})
    g = torch.Generator().manual_seed(0)
    z, eps = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    expected = (z - 0.849900 * eps) / 0.526944               # the sheet's constants at t = 499
    torch.testing.assert_close(pipe.one_step(z, eps), expected, rtol=0, atol=1e-4)
    steps = []
    for seed in (1, 2):
        scheduler.set_timesteps(timesteps=[499])
        steps.append(scheduler.step(eps, 499, z, generator=torch.Generator().manual_seed(seed)).prev_sample)
    assert (steps[0] - steps[1]).abs().max() < 1e-8              # no noise worth the name
    torch.testing.assert_close(pipe.one_step(z, eps), steps[0], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------ the whole pipeline
def test_sdxl_pipeline_equals_the_hand_written_steps(xl):
    display, linear, disparity = photo()
    out = xl(linear, disparity, LENS, output_type="pt").images

    x = torch.from_numpy(display).permute(2, 0, 1)[None].float() * 2 - 1
    vae, unet = xl.base.vae, xl.base.unet
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
        embeds, pooled = diffusion_dummies.sdxl_embed((xl.base.tokenizer, xl.base.tokenizer_2),
                                                       (xl.base.text_encoder, xl.base.text_encoder_2), PROMPT)
        d = torch.from_numpy(disparity)[None, None]
        cond = {"disparity": d, "coc": 12.0 * (d - 0.5), "generator": torch.Generator().manual_seed(0)}
        added = {"text_embeds": pooled, "time_ids": torch.tensor([[32.0, 32.0, 0.0, 0.0, 32.0, 32.0]])}
        eps = unet(z, 499, encoder_hidden_states=embeds, added_cond_kwargs=added, cross_attention_kwargs=cond).sample
        abar = xl.base.scheduler.alphas_cumprod[499].double()
        z0 = (z.double() - (1 - abar).sqrt() * eps.double()) / abar.sqrt()
        y = vae.decode(z0.float() / vae.config.scaling_factor).sample
    expected = srgb_decode((y.double().numpy() + 1) / 2)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=2e-5)


def test_sd1_pipeline_equals_the_hand_written_steps(sd_components):
    pipe = build(sd_components)
    assert not pipe.is_xl and pipe.pisa_layers == ["down_blocks.1.attentions.0.transformer_blocks.0.attn1"]
    display, linear, disparity = photo(seed=1)
    out = pipe(linear, disparity, LENS, output_type="pt").images
    x = torch.from_numpy(display).permute(2, 0, 1)[None].float() * 2 - 1
    with torch.no_grad():
        z = pipe.vae.encode(x).latent_dist.mode() * pipe.vae.config.scaling_factor
        ids = pipe.base.tokenizer(PROMPT, padding="max_length", max_length=77, truncation=True,
                                  return_tensors="pt").input_ids
        embeds = pipe.base.text_encoder(ids)[0]
        d = torch.from_numpy(disparity)[None, None]
        cond = {"disparity": d, "coc": 12.0 * (d - 0.5), "generator": torch.Generator().manual_seed(0)}
        eps = pipe.unet(z, 499, encoder_hidden_states=embeds, cross_attention_kwargs=cond).sample
        abar = pipe.base.scheduler.alphas_cumprod[499].double()
        z0 = (z.double() - (1 - abar).sqrt() * eps.double()) / abar.sqrt()
        y = pipe.vae.decode(z0.float() / pipe.vae.config.scaling_factor).sample
    np.testing.assert_allclose(out.numpy(), srgb_decode((y.double().numpy() + 1) / 2), rtol=0, atol=2e-5)


def test_same_seed_same_bytes_and_dropout_only_when_asked(xl_components):
    _, linear, disparity = photo()
    pipe = build(xl_components)
    a, b = (pipe(linear, disparity, LENS).images for _ in range(2))
    assert a.dtype == np.float32 and a.shape == (32, 32, 3)
    assert a.tobytes() == b.tobytes()
    noisy = build(xl_components, processor=PISAProcessor.released_inference(dropout=0.1))
    c, d = noisy(linear, disparity, LENS, seed=3).images, noisy(linear, disparity, LENS, seed=3).images
    e = noisy(linear, disparity, LENS, seed=4).images
    assert c.tobytes() == d.tobytes() and c.tobytes() != e.tobytes()


def test_the_blur_reaches_the_output(xl, xl_components):
    """On a 32-px image PISA's 8 x 8 tokens are 4 px apart, but the release's distance puts them 51.2 / 7 = 7.3
    CoC units (73 px) apart: a 40-px blur reaches no neighbour there, a 400-px one does; with pixel distances
    the 40-px blur does."""
    _, linear, disparity = photo()

    def change(pipe, blur):
        sharp = pipe(linear, disparity, Lens(focus_disparity=0.5, blur=0.0)).images
        return np.abs(sharp - pipe(linear, disparity, Lens(focus_disparity=0.5, blur=blur)).images).max()

    assert change(xl, 40.0) == 0 and change(xl, 400.0) > 1e-3
    assert change(build(xl_components, processor=PISAProcessor.released_inference(distance="pixels")), 40.0) > 1e-3


def test_sizes_off_the_vae_grid_are_padded_and_cropped(xl):
    _, linear, disparity = photo(h=31, w=27)
    out = xl(linear, disparity, LENS)
    assert out.images.shape == (31, 27, 3) and np.isfinite(out.images).all()


# ------------------------------------------------------------------------------------------ 20: tile
def test_tile_origins_follow_the_release_and_cover_the_latent():
    assert tile_origins(128, 64) == [0, 32, 64]              # 1 + (128 - 16) // 48 = 3 tiles
    assert tile_origins(100, 64) == [0, 36]
    assert tile_origins(64, 64) == [0]                        # the release runs two identical tiles here
    assert tile_origins(40, 64) == [0]
    for length in (64, 65, 100, 131, 200, 777):
        origins = tile_origins(length, 64)
        covered = np.zeros(length, bool)
        for o in origins:
            covered[o:o + 64] = True
        assert covered.all() and origins[-1] == length - 64
        assert max(np.diff(origins), default=0) <= 48


def test_the_window_and_a_constant_prediction():
    w = gaussian_window(64, 64)
    assert math.isclose(w[0, 32].item(), math.exp(-4 - (2 / 63) ** 2), rel_tol=1e-5)     # ~0.018 at an edge
    assert math.isclose(w[0, 0].item(), math.exp(-8), rel_tol=1e-5)                      # 3e-4 at a corner
    layout = tiles(100, 150, 64)
    out = blend(lambda tile: torch.full((1, 4, tile[2], tile[3]), 2.5), layout, (1, 4, 100, 150))
    torch.testing.assert_close(out, torch.full((1, 4, 100, 150), 2.5), rtol=0, atol=1e-6)


def test_tiled_equals_untiled_when_the_image_is_one_tile(xl_components, monkeypatch):
    pipe = build(xl_components, tile_size=16)               # 16 latents = 32 px with the tiny 2x VAE
    _, linear, disparity = photo()
    blends = []
    monkeypatch.setattr(pipeline_module, "blend", lambda *a, **k: blends.append(1) or blend(*a, **k))
    whole = pipe(linear, disparity, LENS, tile="never", output_type="latent")
    tiled = pipe(linear, disparity, LENS, tile="always", output_type="latent")
    assert blends == [1] and tiled.tiles == 1
    torch.testing.assert_close(tiled.images, whole.images, rtol=0, atol=1e-5)


def test_a_tile_margin_runs_tile_sized_windows_and_keeps_their_cores(xl_components, monkeypatch):
    pipe = build(xl_components, tile_size=8, tile_margin=2)
    _, linear, disparity = photo(h=32, w=48)
    seen, blended = [], []
    original = pipe.noise_prediction

    def spy(latents, d, coc, **kwargs):
        seen.append((tuple(latents.shape[-2:]), kwargs["crop"]))
        return original(latents, d, coc, **kwargs)

    def spy_blend(predict, layout, *args, **kwargs):
        blended.append(layout)
        return blend(predict, layout, *args, **kwargs)

    monkeypatch.setattr(pipe, "noise_prediction", spy)
    monkeypatch.setattr(pipeline_module, "blend", spy_blend)
    out = pipe(linear, disparity, LENS)                      # 16 x 24 latents: cores of 4 in windows of 8
    layout = context_tiles(16, 24, 8, 2)
    assert blended == [layout] and out.tiles == len(layout) == len(seen) > len(tiles(16, 24, 8))
    assert [s for s, _ in seen] == [(8, 8)] * len(layout)    # the memory of one tile, as released
    assert [c for _, c in seen] == [w[:2] for w, _ in layout]
    with pytest.raises(InputError, match="tile_margin"):
        build(xl_components, tile_size=8, tile_margin=4)


@pytest.mark.parametrize("crop_coords", ["latent", "pixels"])
def test_each_tile_gets_its_crop_of_the_conditioning(xl_components, monkeypatch, crop_coords):
    pipe = build(xl_components, tile_size=8, crop_coords=crop_coords)
    _, linear, disparity = photo(h=32, w=48)
    seen = []
    original = pipe.noise_prediction

    def spy(latents, d, coc, **kwargs):
        seen.append((latents.shape[-2:], d.clone(), coc.clone(), kwargs["crop"], kwargs["image_size"]))
        return original(latents, d, coc, **kwargs)

    monkeypatch.setattr(pipe, "noise_prediction", spy)
    out = pipe(linear, disparity, LENS)                      # 16 x 24 latents > 2 tiles of 8 x 8: tiled
    layout = tiles(16, 24, 8)
    assert out.tiles == len(layout) == len(seen) == 12
    full = torch.from_numpy(disparity)
    for (y, x, h, w), (shape, d, coc, crop, size) in zip(layout, seen):
        assert tuple(shape) == (h, w) and size == (32, 48)
        assert crop == ((y, x) if crop_coords == "latent" else (2 * y, 2 * x))
        torch.testing.assert_close(d[0, 0], full[2 * y:2 * (y + h), 2 * x:2 * (x + w)], rtol=0, atol=0)
        torch.testing.assert_close(coc, 12.0 * (d - 0.5), rtol=0, atol=1e-6)


@pytest.mark.parametrize("crop_coords", ["latent", "pixels"])
def test_the_unet_gets_each_tiles_sdxl_time_ids(xl_components, crop_coords):
    """What reaches the UNet: original and target size the whole image's pixels (32 x 48), the crop the tile's
    origin in latents (the release) or in pixels (2 per latent for this VAE)."""
    pipe = build(xl_components, tile_size=8, crop_coords=crop_coords)
    _, linear, disparity = photo(h=32, w=48)
    seen = []
    handle = pipe.unet.register_forward_pre_hook(
        lambda m, a, k: seen.append(k["added_cond_kwargs"]["time_ids"].clone()), with_kwargs=True)
    try:
        pipe(linear, disparity, LENS)
    finally:
        handle.remove()
    scale = 1 if crop_coords == "latent" else 2
    expected = [[32.0, 48.0, y * scale, x * scale, 32.0, 48.0] for y, x, _, _ in tiles(16, 24, 8)]
    assert [ids[0].tolist() for ids in seen] == expected
    assert any(e[2] > 0 for e in expected) and any(e[3] > 0 for e in expected)


# ------------------------------------------------------------------------------------------ the K mapping
def test_a_given_blur_gives_the_classical_renderers_coc_radius():
    """A point light on a plane at disparity 0.9, focus 0.4, blur 12: lensblur's reference renderer draws a disk
    of radius 12 * 0.5 = 6 px; PISA's support of that source (pixel distances, one token per pixel here) is the
    same disk. The release's 51.2-per-side distance makes it 31/32 of that on a 512-px tile (32 tokens)."""
    from lensblur.render import render

    size, centre = 25, 12
    lens = Lens(focus_disparity=0.4, blur=12.0)
    image = np.zeros((size, size, 3), np.float32)
    image[centre, centre] = 1.0
    disparity = np.full((size, size), 0.9, np.float32)
    rendered = render(image, disparity, lens, method="scatter")[..., 0]
    lit = rendered > 1e-4

    d = torch.from_numpy(disparity)[None, None]
    coc = lens.coc(d)
    radius = coc_radius(coc, (size, size))
    distance = distance_matrix((size, size), (size, size), distance="pixels")
    support = (coc_log_mask(radius, distance, math.log(1e7))[0, 0, :, centre * size + centre].exp() > 0.5)
    support = support.reshape(size, size).numpy()
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - centre, xx - centre)
    assert lit[r <= 5.5].all() and not lit[r >= 6.5].any()             # the renderer's disk: radius 6 px
    assert support[r < 6].all() and not support[r > 6].any()           # PISA's: radius 6 px
    assert (lit != support)[(r < 5.5) | (r > 6.5)].sum() == 0

    # On a 512-px tile (32 x 32 tokens of 16 px), |coc| = 97 px reaches 97 / 16 = 6.06 tokens in pixel distances
    # but 97 / 10 * 31 / 51.2 = 5.87 under the release's 51.2 per side: one CoC unit is 10 * 31/32 px there.
    channel = torch.full((1, 32 * 32), 9.7)

    def reach(kind):
        inside = coc_log_mask(channel, distance_matrix((32, 32), (512, 512), distance=kind), math.log(1e7))
        return int((inside[0, 0, :, 0].exp() > 0.5).reshape(32, 32)[0].sum()) - 1    # along the first row

    assert (reach("pixels"), reach("release")) == (6, 5)


# ------------------------------------------------------------------------------------------ checks
def test_a_disparity_of_another_size_is_refused(xl):
    _, linear, disparity = photo()
    with pytest.raises(InputError, match=r"disparity: expected a map of the image's size 32x32, got 24x32"):
        xl(linear, disparity[:, :24], LENS)
    with pytest.raises(InputError, match="disparity: expected values in"):
        xl(linear, disparity + 1, LENS)
    with pytest.raises(InputError, match="lens"):
        xl(linear, disparity, 12.0)
    with pytest.raises(InputError, match="tile"):
        xl(linear, disparity, LENS, tile="sometimes")


def test_an_image_too_large_for_the_device_is_refused_before_it_runs(xl, monkeypatch):
    _, linear, disparity = photo()
    monkeypatch.setattr(pipeline_module, "_free_bytes", lambda device: 1000)
    calls = []
    monkeypatch.setattr(xl, "encode", lambda *a: calls.append(1))
    with pytest.raises(InputError, match=r"image: expected an image whose attention fits in the .* free on cpu"):
        xl(linear, disparity, LENS)
    assert not calls
    # 4 heads on 32 x 32 tokens at down_blocks.1 of a 64-latent tile, plus one chunk of occlusion samples
    assert xl.pisa_bytes(64, 64) == (2 * 4 + 3) * 32 ** 4 * 4 + 64 * 2 ** 20


def test_a_device_out_of_memory_becomes_one_message(xl, monkeypatch):
    _, linear, disparity = photo()

    def full(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(xl, "tiled_noise_prediction", full)
    with pytest.raises(InputError, match="image: expected an image that fits in the memory of cpu"):
        xl(linear, disparity, LENS)
