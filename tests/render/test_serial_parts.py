"""The steps of a render outside its blocks, done by bands of rows on the render's workers: the numpy/torch
boundary and the clipped lights give what one whole-image operation gives, on one worker or two."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lensblur._convert import image_to_tensor, tensor_to_image
from lensblur._threads import coarse_parallel
from lensblur.errors import InputError
from lensblur.render.highlights import clipped_mask, find_lights, label_regions, recover_highlights

WORKERS = [1, 2]


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("shape", [(131, 70, 3), (2, 65, 9, 3), (1, 1, 3)])
def test_the_boundary_moves_channels_exactly(workers, shape):
    rng = np.random.default_rng(0)
    image = rng.standard_normal(shape).astype(np.float32)
    with coarse_parallel(workers):
        x = image_to_tensor(image)
        back = tensor_to_image(x, batched=len(shape) == 4)
    batched = image if len(shape) == 4 else image[None]
    assert x.shape == (batched.shape[0], 3) + batched.shape[1:3] and x.is_contiguous()
    assert np.array_equal(x.numpy(), np.transpose(batched, (0, 3, 1, 2)))      # an independent transpose
    assert back.dtype == np.float32 and np.array_equal(back, image)


@pytest.mark.parametrize("workers", WORKERS)
def test_a_nan_in_the_last_band_is_refused(workers):
    image = np.zeros((200, 30, 3), np.float32)
    image[199, 29, 2] = np.nan
    with coarse_parallel(workers), pytest.raises(InputError) as caught:
        image_to_tensor(image)
    assert caught.value.argument == "image" and "NaN" in str(caught.value)


def test_tensor_to_image_takes_any_layout_and_type():
    x = torch.arange(2 * 3 * 5 * 4, dtype=torch.float64).reshape(2, 3, 5, 4)
    expected = x.permute(0, 2, 3, 1).numpy().astype(np.float32)
    assert np.array_equal(tensor_to_image(x, batched=True), expected)
    assert np.array_equal(tensor_to_image(x.contiguous(memory_format=torch.channels_last)), expected[0])
    assert np.array_equal(tensor_to_image(x.requires_grad_()), expected[0])


def lights_across_bands() -> torch.Tensor:
    """A dark 3 x 150 x 90 frame with lights that straddle the scan's 64-row bands, one tinted, and a large
    clipped surface (not a light)."""
    image = torch.full((3, 150, 90), 0.04)
    image[:, 61:67, 10:16] = 1.0                  # across rows 63 | 64
    image[:, 126:130, 40:44] = 1.0                # across 127 | 128
    image[0, 20:24, 60:63] = 1.0                  # a tinted light, clipped in red only at its edge...
    image[:, 21:23, 61:62] = 1.0                  # ...and white at its core
    image[:, 80:140, 60:90] = 1.0                 # a wall
    return image


@pytest.mark.parametrize("workers", WORKERS)
def test_the_scan_finds_the_pixels_a_whole_image_mask_gives(workers):
    image = lights_across_bands()
    mask = clipped_mask(image[None])[0, 0]
    with coarse_parallel(workers):
        lights = find_lights(image)
    # the lights' labels are where the whole-image mask's regions are small and compact
    regions = label_regions(mask)
    assert len(lights) == 3
    for label in lights.labels.unique().tolist():
        if label >= 0:
            pixels = lights.labels == label
            assert regions[pixels].unique().numel() == 1
            assert int((regions == regions[pixels][0]).sum()) == int(pixels.sum())
    assert not bool((lights.labels[80:140, 60:90] >= 0).any())
    ys = torch.sort(lights.y).values.tolist()
    assert ys == [22.0, 64.0, 128.0]                # pixel centres' means, rows 20-23, 61-66, 126-129


@pytest.mark.parametrize("workers", WORKERS)
def test_the_boost_touches_the_lights_pixels_with_the_whole_image_formula(workers):
    image = lights_across_bands()
    batch = torch.stack([image, image.flip(-1), image * 0.9])         # the last has nothing clipped
    lights = [find_lights(one) for one in batch]
    with coarse_parallel(workers):
        out = recover_highlights(batch, 0.8)
    for one, found, got in zip(batch, lights, out, strict=True):
        # the formula over the whole frame, written out: the light's gain where the labels say, 1 elsewhere
        if len(found) == 0:
            assert torch.equal(got, one)
            continue
        gain = 1.0 + 0.8 * (found.gain - 1.0)
        factor = torch.where(found.labels >= 0, gain[found.labels.clamp_min(0)], torch.ones((), dtype=gain.dtype))
        expected = torch.where(found.labels >= 0, (one.double() * factor).to(one.dtype), one)
        assert torch.equal(got, expected)
        assert bool((got > 1.0).any()) == bool((found.gain > 1.0).any())
    assert torch.equal(batch, torch.stack([image, image.flip(-1), image * 0.9]))      # the input is kept


def test_an_hdr_value_in_any_band_leaves_the_image_as_it_is():
    image = lights_across_bands()
    image[2, 149, 0] = 1.5
    with coarse_parallel(2):
        assert torch.equal(recover_highlights(image[None]), image[None])
        image[2, 149, 0] = 1.0
        assert bool((recover_highlights(image[None]) > 1.0).any())       # the same frame without it is boosted
