"""Google depth in JPEGs (GDepth XMP with extended XMP; Dynamic Depth), on files built by _jpeg.py."""

import numpy as np
import pytest
from _jpeg import dynamic_depth_jpeg, gdepth_jpeg

from lensblur.depth import EmbeddedDepth, read_photo, resolve
from lensblur.depth.jpeg import read_jpeg_depth
from lensblur.errors import InputError

RNG = np.random.default_rng(1)
RGB = (RNG.random((48, 64, 3)) * 255).astype(np.uint8)


def _depth_samples():
    # Stored samples: a gradient, so every value checks the formula.
    return np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))


def _depth_of(samples, fmt, near, far):
    """Metric depth the samples stand for, from Google's depth map spec (independent of the reader)."""
    v = samples / 255.0
    if fmt == "RangeLinear":
        return near + v * (far - near)
    return far * near / (far - v * (far - near))


@pytest.mark.parametrize("fmt", ["RangeInverse", "RangeLinear"])
def test_gdepth_matches_the_specification(tmp_path, fmt):
    samples = _depth_samples()
    path = tmp_path / "lensblur.jpg"
    path.write_bytes(gdepth_jpeg(RGB, samples, fmt=fmt, near=0.8, far=6.0, units="m"))
    found = read_jpeg_depth(path)
    assert found.kind == "GDepth XMP"
    assert (found.depth_range.near, found.depth_range.far) == (0.8, 6.0)
    depth = np.array([[found.depth_range.depth(float(x)) for x in row] for row in found.disparity[:2]])
    np.testing.assert_allclose(depth, _depth_of(samples[:2], fmt, 0.8, 6.0), rtol=1e-4)


def test_dynamic_depth_finds_its_item_and_units(tmp_path):
    samples = _depth_samples()
    path = tmp_path / "pxl.jpg"
    path.write_bytes(dynamic_depth_jpeg(RGB, samples, fmt="RangeLinear", near=300.0, far=4000.0, units="mm"))
    image = read_photo(path)
    result = EmbeddedDepth(path).estimate(image)
    assert "Dynamic Depth" in result.source
    assert result.depth_range.near == pytest.approx(0.3) and result.depth_range.far == pytest.approx(4.0)
    found = read_jpeg_depth(path)
    depth = np.array([found.depth_range.depth(float(x)) for x in found.disparity[0]])
    np.testing.assert_allclose(depth, _depth_of(samples[0], "RangeLinear", 0.3, 4.0), rtol=1e-4)
    assert resolve(path, image).source == result.source  # auto picks it


def test_corrupt_xmp_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(gdepth_jpeg(RGB, _depth_samples(), fmt="RangeInverse", near=1, far=2, corrupt_extended=True))
    with pytest.raises(InputError, match="well-formed extended XMP"):
        read_jpeg_depth(path)


def test_truncated_extended_xmp_is_a_clear_error(tmp_path):
    data = gdepth_jpeg(RGB, _depth_samples(), fmt="RangeInverse", near=1, far=2, chunk=100)
    # drop the second extended chunk: find the second extension header and cut that segment out
    marker = b"http://ns.adobe.com/xmp/extension/\x00"
    first = data.find(marker)
    second = data.find(marker, first + 1)
    assert second > 0
    start = second - 4
    length = int.from_bytes(data[start + 2:start + 4], "big")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:start] + data[start + 2 + length:])
    with pytest.raises(InputError, match="extended XMP"):
        read_jpeg_depth(path)


def test_plain_jpeg_has_no_depth(tmp_path):
    from _jpeg import jpeg_bytes

    path = tmp_path / "plain.jpg"
    path.write_bytes(jpeg_bytes(RGB))
    with pytest.raises(InputError, match="no depth metadata"):
        read_jpeg_depth(path)
