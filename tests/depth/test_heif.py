"""HEIC/HEIF depth: files built in the test (see _heic.py) and read back through pillow-heif/libheif."""

import numpy as np
import pytest
from _heic import depth_sei, heic_with_depth
from PIL import Image

from lensblur.depth import EmbeddedDepth, read_photo, resolve
from lensblur.depth.heif import read_heif_depth, representation_to_disparity
from lensblur.errors import InputError

RNG = np.random.default_rng(0)


def _scene(h=64, w=96):
    """A photo with a bright square in front of a dark textured wall, and its depth at half size."""
    rgb = (RNG.random((h, w, 3)) * 60).astype(np.uint8)
    rgb[16:48, 24:72] = 220
    depth = np.full((h // 2, w // 2), 40, np.uint8)
    depth[8:24, 12:36] = 200
    return rgb, depth


def test_uniform_disparity_becomes_samples_with_range_in_inverse_metres(tmp_path):
    rgb, depth = _scene()
    path = tmp_path / "p.heic"
    path.write_bytes(heic_with_depth(rgb, depth, depth_sei(1, d_min=0.5, d_max=2.5)))
    found = read_heif_depth(path)
    assert found.depth_range.near == pytest.approx(1 / 2.5, rel=1e-5)
    assert found.depth_range.far == pytest.approx(1 / 0.5, rel=1e-5)
    np.testing.assert_allclose(found.disparity, depth / 255.0, atol=2 / 255)  # lossless-ish HEVC


def test_embedded_source_upsamples_to_photo_and_reports(tmp_path):
    rgb, depth = _scene()
    path = tmp_path / "p.heic"
    path.write_bytes(heic_with_depth(rgb, depth, depth_sei(1, d_min=0.5, d_max=2.5)))
    image = read_photo(path)
    assert image.shape == (64, 96, 3)
    result = resolve(path, image)  # auto finds the embedded depth
    assert result.disparity.shape == (64, 96)
    assert "embedded HEIC depth (48x32" in result.source
    # inside the square (near) and on the wall (far), away from the edges, values are the stored ones
    assert result.disparity[32, 48] == pytest.approx(200 / 255, abs=0.02)
    assert result.disparity[4, 4] == pytest.approx(40 / 255, abs=0.02)
    # the edge follows the photo: just inside/outside the square's boundary
    assert result.disparity[17, 48] > 0.6 and result.disparity[14, 48] < 0.3


def test_inverse_z_with_z_range(tmp_path):
    rgb, depth = _scene()
    path = tmp_path / "p.heic"
    path.write_bytes(heic_with_depth(rgb, depth, depth_sei(0, z_near=0.75, z_far=12.0)))
    found = read_heif_depth(path)
    assert found.depth_range.near == pytest.approx(0.75, rel=1e-5)
    assert found.depth_range.far == pytest.approx(12.0, rel=1e-5)
    np.testing.assert_allclose(found.disparity, depth / 255.0, atol=2 / 255)


def test_uniform_z_is_converted_to_inverse_depth():
    z_near, z_far = 1.0, 5.0
    v = np.array([0.0, 0.25, 1.0])
    d, rng = representation_to_disparity(v, {"representation_type": 2, "z_near": z_near, "z_far": z_far})
    z = z_near + v * (z_far - z_near)
    # the disparity must reproduce the depth through DepthRange
    np.testing.assert_allclose([rng.depth(x) for x in d], z, rtol=1e-5)
    assert d[0] == pytest.approx(1.0) and d[-1] == pytest.approx(0.0)


def test_uniform_z_without_range_and_nonuniform_are_refused():
    with pytest.raises(InputError, match="z_near and z_far"):
        representation_to_disparity(np.zeros(3), {"representation_type": 2})
    with pytest.raises(InputError, match="non-uniform disparity"):
        representation_to_disparity(np.zeros(3), {"representation_type": 3})


def test_heic_without_depth_is_a_clear_error(tmp_path):
    import pillow_heif

    path = tmp_path / "plain.heic"
    pillow_heif.from_pillow(Image.fromarray(_scene()[0])).save(path, quality=90)
    image = read_photo(path)
    with pytest.raises(InputError, match="no depth image inside"):
        EmbeddedDepth(path).estimate(image)
    with pytest.raises(InputError, match="ways to supply depth|give one of"):
        resolve(path, image)
