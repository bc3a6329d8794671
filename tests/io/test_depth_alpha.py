"""Bit depth, alpha, grey and quality: the output is written like the input unless asked otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lensblur.errors import InputError
from lensblur.io import read_image_info, read_raw, write_image


def _ramp16() -> np.ndarray:
    return (np.linspace(0, 65535, 8 * 12 * 3).reshape(8, 12, 3)).astype(np.uint16)


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_16_bit_in_gives_16_bit_out(tmp_path, suffix):
    import cv2
    import tifffile

    codes = _ramp16()
    src = tmp_path / f"in{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(src, codes, photometric="rgb")
    else:
        cv2.imwrite(str(src), codes[..., ::-1])
    image, info = read_image_info(src)
    assert info.bits == 16
    out = write_image(tmp_path / f"out{suffix}", image, info=info)       # today: 8 bits
    back, full = read_raw(out)
    assert full == 65535 and np.array_equal(back, codes)


def test_16_bit_in_jpeg_out_is_8_bit_with_a_notice(tmp_path, caplog):
    import tifffile

    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _ramp16(), photometric="rgb")
    image, info = read_image_info(src)
    with caplog.at_level("WARNING"):
        out = write_image(tmp_path / "out.jpg", image, info=info)
    assert read_raw(out)[1] == 255 and "at most 8 bits" in caplog.text


def test_bits_override_and_float_tiff(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(np.full((4, 4, 3), 128, np.uint8)).save(src)
    image, info = read_image_info(src)
    out16 = write_image(tmp_path / "o.png", image, info=info, bits=16)
    assert read_raw(out16)[1] == 65535
    out32 = write_image(tmp_path / "o.tif", image, info=info, bits=32)
    back, full = read_raw(out32)
    assert full is None and back.dtype == np.float32 and np.allclose(back, image)
    with pytest.raises(InputError, match="^bits: "):
        write_image(tmp_path / "o.jpg", image, bits=32)


def test_alpha_is_passed_through_and_dropped_with_a_notice_for_jpeg(tmp_path, caplog):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = np.arange(8, dtype=np.uint8)[None, :] * 36
    src = tmp_path / "in.png"
    Image.fromarray(rgba, "RGBA").save(src)
    image, info = read_image_info(src)
    assert info.alpha is not None and image.shape == (6, 8, 3)
    for suffix in (".png", ".webp", ".tif"):
        out = write_image(tmp_path / f"out{suffix}", image, info=info, quality=100)
        with Image.open(out) as back:
            assert back.mode == "RGBA"
            assert np.abs(np.asarray(back)[..., 3].astype(int) - rgba[..., 3]).max() <= (0 if suffix != ".webp" else 2)
    with caplog.at_level("WARNING"):
        out = write_image(tmp_path / "out.jpg", image, info=info)
    with Image.open(out) as back:
        assert back.mode == "RGB"
    assert f"{tmp_path / 'out.jpg'}: JPG cannot hold an alpha channel" in caplog.text      # names its file


def test_grey_stays_grey(tmp_path):
    grey = np.tile(np.arange(0, 240, 20, dtype=np.uint8), (5, 1))
    src = tmp_path / "in.png"
    Image.fromarray(grey, "L").save(src)
    image, info = read_image_info(src)
    assert info.grey and image.shape == (5, 12, 3)
    for suffix in (".png", ".jpg", ".tif"):
        out = write_image(tmp_path / f"out{suffix}", image, info=info, quality=100)
        with Image.open(out) as back:
            assert back.mode == "L"                                         # today: RGB
            assert np.abs(np.asarray(back).astype(int) - grey).max() <= (0 if suffix != ".jpg" else 1)
    rgb = write_image(tmp_path / "rgb.png", image, info=info, output_profile="srgb")
    with Image.open(rgb) as back:
        assert back.mode == "RGB"                                           # a colour profile needs RGB


def test_quality_changes_the_file_and_is_checked(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((32, 32, 3)).astype(np.float32)
    sizes = [write_image(tmp_path / f"q{q}.jpg", image, quality=q).stat().st_size for q in (20, 95)]
    assert sizes[0] < sizes[1]
    with pytest.raises(InputError, match="^quality: "):
        write_image(tmp_path / "bad.jpg", image, quality=0)


@pytest.mark.parametrize("suffix", [".heic", ".avif"])
def test_heic_and_avif_are_written(tmp_path, suffix):
    if suffix == ".heic":
        pytest.importorskip("pillow_heif")
    from lensblur.io import icc

    src = tmp_path / "in.png"
    codes = np.full((16, 16, 3), (200, 120, 40), np.uint8)
    Image.fromarray(codes).save(src, icc_profile=icc.display_p3())
    image, info = read_image_info(src)
    out = write_image(tmp_path / f"out{suffix}", image, info=info, quality=90)
    back, info_back = read_image_info(out)
    assert info_back.input_profile == icc.display_p3()
    assert np.abs(back - image).max() < 0.03


def test_16_bit_grey_with_alpha_png(tmp_path):
    import tifffile

    la = np.zeros((4, 6, 2), np.uint16)
    la[..., 0] = 40000
    la[..., 1] = np.arange(6, dtype=np.uint16)[None, :] * 10000
    src = tmp_path / "la.tif"
    tifffile.imwrite(src, la, photometric="minisblack", extrasamples=("unassalpha",))
    image, info = read_image_info(src)
    assert info.grey and info.bits == 16 and info.alpha is not None
    back, full = read_raw(write_image(tmp_path / "o.png", image, info=info))
    assert full == 65535 and back.shape == (4, 6, 4)
    assert np.array_equal(back[..., 3], la[..., 1]) and np.array_equal(back[..., 0], la[..., 0])
