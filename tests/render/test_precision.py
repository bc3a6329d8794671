"""Half precision (``render(..., dtype=)``): the float32 default untouched, half renders close to float32 ones,
zero blur still the photo, and bad precisions refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lensblur
from lensblur import Aperture, Lens
from lensblur._device import fft_dtype, resolve_dtype
from lensblur.errors import InputError
from lensblur.methods import get_method
from lensblur.metrics import psnr
from lensblur.render import PRECISIONS, check_dtype, render_tensor

HALF = ["float16", "bfloat16"]
# PSNR of a half render against the float32 one, 8-bit sRGB. Measured on these scenes: float16 62.6 to 63.2 dB
# (a code value of difference on about 3 % of the pixels), bfloat16 53.8 to 53.9 dB; the fidelity bench moves
# by at most 0.08 dB (docs/performance.md).
LEAST_PSNR = {"float16": 58.0, "bfloat16": 48.0}


def scene(seed: int = 3, h: int = 96, w: int = 128):
    """A textured photo (a few clipped lights among it) on a ground plane from far (top) to near (bottom),
    with a near rectangle: blurred layers in front of and behind the focus, and sharp ones between."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / w
    image = np.stack([0.5 + 0.4 * np.sin(9 * x), 0.5 + 0.4 * np.cos(7 * y), 0.3 + 0.5 * x * y], axis=-1)
    image = np.clip(image + rng.normal(0.0, 0.05, image.shape), 0.0, 0.95)
    image[10:13, 20:23] = 1.0
    disparity = np.repeat(np.linspace(0.0, 0.7, h)[:, None], w, 1)
    disparity[40:70, 60:100] = 1.0
    image[40:70, 60:100] = [0.8, 0.2, 0.1]
    return image.astype(np.float32), disparity.astype(np.float32)


def srgb8(x: np.ndarray) -> np.ndarray:
    return np.round(lensblur.color.linear_to_srgb(torch.from_numpy(np.clip(x, 0.0, 1.0))).numpy() * 255) / 255


def test_float32_is_the_default_bit_for_bit():
    image, disparity = scene()
    lens = Lens(0.45, 30.0)
    default = lensblur.render(image, disparity, lens)
    for dtype in ("float32", torch.float32, "FLOAT32", "torch.float32", "fp32"):
        assert np.array_equal(lensblur.render(image, disparity, lens, dtype=dtype), default)
    # render_tensor without dtype keeps the tensors' own type, float64 included.
    x = torch.from_numpy(image).permute(2, 0, 1)[None].double()
    d = torch.from_numpy(disparity)[None, None].double()
    assert render_tensor(x, d, lens, method="gaussian").dtype == torch.float64


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("aperture, block, size", [(Aperture(), 1536, (96, 128)), (Aperture(blades=6), 48, (96, 128)),
                                                   (Aperture(blades=5, cat_eye=0.4), 1536, (48, 64))],
                         ids=["circle", "hexagon-in-blocks", "cat-eye"])
def test_a_half_render_is_close_to_the_float32_one(dtype, aperture, block, size):
    image, disparity = scene(h=size[0], w=size[1])
    lens = Lens(0.45, 30.0, aperture)     # CoC from -13.5 px (far) to +16.5 px (near): FFT-blurred layers
    reference = lensblur.render(image, disparity, lens, block=block)
    out = lensblur.render(image, disparity, lens, dtype=dtype, block=block)
    assert out.dtype == np.float32 and out.shape == image.shape and np.isfinite(out).all()
    assert psnr(srgb8(reference), srgb8(out), data_range=1.0) >= LEAST_PSNR[dtype]
    # The half render is a render, not the photo: the blurred parts moved as far as the float32 ones.
    assert psnr(srgb8(image), srgb8(out), data_range=1.0) < psnr(srgb8(reference), srgb8(out), data_range=1.0) - 20


@pytest.mark.parametrize("dtype", HALF)
def test_a_half_tensor_render_stays_in_half(dtype):
    image, disparity = scene(h=48, w=64)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    d = torch.from_numpy(disparity)[None, None]
    out = render_tensor(x, d, Lens(0.45, 16.0), dtype=dtype)
    assert out.dtype == resolve_dtype(dtype)


@pytest.mark.parametrize("dtype", HALF)
def test_zero_blur_is_the_photo_within_halfs_rounding(dtype):
    image, disparity = scene()
    rounded = torch.from_numpy(image).to(resolve_dtype(dtype)).float().numpy()
    for lens in (Lens(0.45, 0.0), Lens(0.45, 1e-5)):
        assert np.array_equal(lensblur.render(image, disparity, lens, dtype=dtype, highlights="off"), rounded)
    # Everything in focus, with layers there: each pixel shared between the two sharp layers around it.
    flat = np.full_like(disparity, 0.45)
    out = lensblur.render(image, flat, Lens(0.45, 30.0), dtype=dtype, highlights="off")
    step = torch.finfo(resolve_dtype(dtype)).eps
    assert np.abs(out - image).max() <= 2 * step * image.max()


@pytest.mark.parametrize("dtype", ["float8", "float64", "int8", torch.int32, 16])
def test_a_bad_dtype_is_refused_by_name(dtype):
    image, disparity = scene(h=16, w=16)
    with pytest.raises(InputError, match=r"^dtype: expected float32, float16 or bfloat16"):
        lensblur.render(image, disparity, Lens(0.5, 4.0), dtype=dtype)


@pytest.mark.parametrize("method", ["scatter", "gaussian"])
def test_methods_without_half_refuse_it_and_name_the_one_that_takes_it(method):
    image, disparity = scene(h=16, w=16)
    with pytest.raises(InputError, match=rf"^dtype: expected float32 for method {method} \(float16 is taken by "
                                         r"layered\).*method=layered"):
        lensblur.render(image, disparity, Lens(0.5, 4.0), method=method, dtype="float16")
    with pytest.raises(InputError, match="^dtype"):
        get_method(method, dtype="bfloat16")        # refused when the method is made, before any render
    assert check_dtype("float32", method) == torch.float32
    assert PRECISIONS["layered"] == (torch.float32, torch.float16, torch.bfloat16)


def test_the_eval_method_renders_in_its_dtype():
    image, disparity = scene(h=48, w=64)
    lens = Lens(0.45, 16.0)
    method = get_method("layered", dtype="bfloat16")
    out = method.predict(image, disparity=disparity, lens=lens)
    assert np.array_equal(out, lensblur.render(image, disparity, lens, dtype="bfloat16"))
    assert not np.array_equal(out, lensblur.render(image, disparity, lens))


def test_fft_type_follows_what_the_device_runs(monkeypatch):
    cpu = torch.device("cpu")
    for dtype in (torch.float16, torch.bfloat16):
        try:        # what torch itself does here
            torch.fft.rfft2(torch.ones(8, 8, dtype=dtype))
            expected = dtype
        except (RuntimeError, NotImplementedError):
            expected = torch.float32
        assert fft_dtype(cpu, dtype, (8, 8)) == expected
    assert fft_dtype(cpu, torch.float32, (9, 10)) == torch.float32
    # A device with half FFTs of powers of two only (as CUDA's): half kept there, float32 at other sizes.
    import lensblur._device as device

    monkeypatch.setattr(device, "_fft_runs", lambda dev, dtype, power_of_two: power_of_two)
    assert fft_dtype(cpu, torch.float16, (64, 128)) == torch.float16
    assert fft_dtype(cpu, torch.float16, (60, 128)) == torch.float32


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_box_means_of_a_wide_half_grid_keep_halfs_precision(dtype):
    from lensblur.render.layered.fill import box_mean

    x = torch.rand((1, 2, 6, 1200), generator=torch.Generator().manual_seed(2)).to(dtype)
    reach = 4
    # The mean of the cells of each (2 reach + 1)-square window inside the grid, summed directly in float64.
    padded = torch.nn.functional.pad(x.double(), (reach,) * 4)
    inside = torch.nn.functional.pad(torch.ones_like(x, dtype=torch.float64), (reach,) * 4)
    window = torch.ones((2, 1, 2 * reach + 1, 2 * reach + 1), dtype=torch.float64)
    expected = (torch.nn.functional.conv2d(padded, window, groups=2)
                / torch.nn.functional.conv2d(inside, window, groups=2))
    out = box_mean(x, reach)
    assert out.dtype == dtype
    # Within two steps of the type near 1 (a running sum in the type itself is off by up to 0.5 here in bfloat16).
    assert float((out.double() - expected).abs().max()) <= 2 * torch.finfo(dtype).eps
