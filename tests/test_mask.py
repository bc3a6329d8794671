"""read_mask: one reader for every mask option (alpha when present, else luminance; range and size checked)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from lensblur.errors import InputError, ShapeError
from lensblur.io import read_mask


def _region(h=6, w=8):
    m = np.zeros((h, w), dtype=np.uint8)
    m[1:4, 2:6] = 255
    return m


def test_grey_png_is_its_values_over_255(tmp_path):
    m = _region()
    m[5, 7] = 128
    Image.fromarray(m).save(tmp_path / "m.png")
    out = read_mask(tmp_path / "m.png", (6, 8))
    assert out.dtype == np.float32 and out.shape == (6, 8)
    np.testing.assert_array_equal(out, m.astype(np.float32) / np.float32(255))


def test_alpha_channel_wins_over_colour(tmp_path):
    """A cut-out: white everywhere in colour, the region in alpha."""
    rgba = np.full((6, 8, 4), 255, dtype=np.uint8)
    rgba[..., 3] = _region()
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "cut.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "cut.png"), _region() / np.float32(255))


def test_opaque_alpha_falls_back_to_luminance(tmp_path):
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[..., :3] = _region()[..., None]
    rgba[..., 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "opaque.png"), _region() / np.float32(255))


def test_colour_mask_uses_rec709_luminance(tmp_path):
    """Pure red, green and blue give the Rec. 709 weights (ITU-R BT.709: 0.2126, 0.7152, 0.0722)."""
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, 0, 0] = rgb[0, 1, 1] = rgb[0, 2, 2] = 255
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_allclose(read_mask(tmp_path / "c.png")[0], [0.2126, 0.7152, 0.0722], rtol=1e-6)


def test_float_and_16_bit_masks(tmp_path):
    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    tifffile.imwrite(tmp_path / "f.tif", values)
    np.testing.assert_array_equal(read_mask(tmp_path / "f.tif"), values)
    codes = (values * 65535).round().astype(np.uint16)
    Image.fromarray(codes).save(tmp_path / "m16.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m16.png"), codes / np.float32(65535))


def test_size_and_range_are_checked(tmp_path):
    Image.fromarray(_region()).save(tmp_path / "m.png")
    with pytest.raises(ShapeError, match=r"^mask: expected a mask of the photo's size 10x6.*got 8x6"):
        read_mask(tmp_path / "m.png", (6, 10))
    tifffile.imwrite(tmp_path / "wide.tif", np.array([[0.0, 2.0]], dtype=np.float32))
    with pytest.raises(InputError, match=r"^focus_mask: expected values in \[0, 1\].*range \[0, 2\]"):
        read_mask(tmp_path / "wide.tif", argument="focus_mask")
    with pytest.raises(InputError, match="^mask: expected an existing file"):
        read_mask(tmp_path / "missing.png")


def test_one_mask_file_selects_the_same_pixels_in_every_command(tmp_path, capsys):
    """An RGBA cut-out (white everywhere in colour, the subject in alpha): focus --mask, render --focus-mask and
    the subject source all read it with read_mask, so they all see the alpha's region."""
    import json

    from lensblur.cli import main
    from lensblur.depth.subject import read_subject_mask
    from lensblur.io import write_image
    from lensblur.lens import focus_in_mask

    h, w = 24, 32
    rgba = np.full((h, w, 4), 255, dtype=np.uint8)
    rgba[..., 3] = 0
    rgba[4:12, 6:20, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "cut.png")
    selected = read_mask(tmp_path / "cut.png", (h, w)) > 0.5
    assert int(selected.sum()) == 8 * 14
    rng = np.random.default_rng(0)
    write_image(tmp_path / "photo.png", rng.uniform(0.1, 0.9, (h, w, 3)).astype(np.float32))
    disparity = np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))
    Image.fromarray(np.round(disparity * 65535).astype(np.uint16)).save(tmp_path / "disp.png")

    assert main(["focus", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "cut.png"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["regions"][0]["pixels"] == int(selected.sum())
    assert main(["render", str(tmp_path / "photo.png"), "--disparity", str(tmp_path / "disp.png"), "--focus-mask",
                 str(tmp_path / "cut.png"), "--blur", "4", "-o", str(tmp_path / "out.png")]) == 0
    stored = np.round(disparity * 65535).astype(np.uint16) / np.float32(65535)
    expected = focus_in_mask(stored, read_mask(tmp_path / "cut.png", (h, w)))
    assert f"focus disparity {expected:.3f}" in capsys.readouterr().out
    np.testing.assert_array_equal(read_subject_mask(tmp_path / "cut.png", (h, w)) > 0.5, selected)
