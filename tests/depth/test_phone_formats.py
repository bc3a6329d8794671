"""Depth from the phone photos people have, on files built in the test from the public specifications:
Google Lens Blur (GDepth with and without units, GImage, GFocus), iPhone portrait JPEGs (MPF frames with
``apdi`` XMP, the portrait matte), Dynamic Depth 1.0 (units incl. Diopters, confidence, Original,
FocalTable), stereo MPOs, each read through the photo's EXIF orientation (1, 6 and 8)."""

import json

import numpy as np
import pytest
from _jpeg import dynamic_depth_jpeg, exif_orientation, gcontainer_portrait_jpeg, gdepth_jpeg, jpeg_bytes
from _mpf import iphone_portrait_jpeg, stereo_mpo, stereo_views

from lensblur.depth import EmbeddedDepth, StereoDepth, build_source, read_photo, resolve
from lensblur.errors import InputError

H, W = 24, 40          # stored (sensor) size: landscape
RNG = np.random.default_rng(7)
RGB = (RNG.random((H, W, 3)) * 255).astype(np.uint8)
# Stored samples with no symmetry: a ramp along x plus a step along y, so any wrong turn shows.
SAMPLES = (np.arange(W)[None, :] * 5 + (np.arange(H)[:, None] >= H // 2) * 40).astype(np.uint8)


def _upright(stored: np.ndarray, orientation: int) -> np.ndarray:
    """Where each stored pixel lands upright, by hand from the EXIF definitions: 6 = the 0th row is the
    visual right side (turn 90 degrees clockwise to view), 8 = the 0th row is the visual left side."""
    h, w = stored.shape[:2]
    if orientation == 1:
        return stored
    out = np.empty((w, h) + stored.shape[2:], stored.dtype)
    for y in range(h):
        for x in range(w):
            if orientation == 6:
                out[x, h - 1 - y] = stored[y, x]
            else:  # 8
                out[w - 1 - x, y] = stored[y, x]
    return out


def _exif(orientation):
    return exif_orientation(orientation) if orientation != 1 else None


# ------------------------------------------------------------------------------------------ GDepth
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_gdepth_without_units_has_no_metric_range_and_is_turned_upright(tmp_path, orientation):
    path = tmp_path / "lensblur.jpg"
    path.write_bytes(gdepth_jpeg(RGB, SAMPLES, fmt="RangeInverse", near=6.0, far=44.0, exif=_exif(orientation)))
    image = read_photo(path)
    assert image.shape[:2] == ((H, W) if orientation == 1 else (W, H))
    result = EmbeddedDepth(path).estimate(image)
    assert result.depth_range is None and result.relative_range == (6.0, 44.0)
    assert "unknown units" in result.source and result.details["units"] == "none"
    # RangeInverse: disparity = 1 - v, turned as the photo is
    np.testing.assert_allclose(result.disparity, _upright(1.0 - SAMPLES / 255.0, orientation), atol=1e-6)
    assert result.details["orientation"] == orientation


def test_gdepth_with_units_converts_to_metres(tmp_path):
    path = tmp_path / "mm.jpg"
    path.write_bytes(gdepth_jpeg(RGB, SAMPLES, fmt="RangeLinear", near=500.0, far=4000.0, units="mm"))
    result = EmbeddedDepth(path).estimate(read_photo(path))
    assert result.depth_range.near == pytest.approx(0.5) and result.depth_range.far == pytest.approx(4.0)
    z = 0.5 + SAMPLES / 255.0 * 3.5                     # RangeLinear, by the specification
    np.testing.assert_allclose([result.depth_range.depth(float(d)) for d in result.disparity[3]], z[3], rtol=1e-4)


def test_gdepth_original_focus_and_blur_are_used_and_reported(tmp_path):
    original = (RNG.random((H, W, 3)) * 255).astype(np.uint8)      # the sharp photo; RGB is the "blurred" one
    near, far, focal, blur_inf = 6.0, 44.0, 10.0, 0.02
    path = tmp_path / "lensblur.jpg"
    path.write_bytes(gdepth_jpeg(RGB, SAMPLES, fmt="RangeInverse", near=near, far=far, original=original,
                                 focus={"FocalDistance": focal, "FocalPointX": 0.5, "FocalPointY": 0.5,
                                        "BlurAtInfinity": blur_inf}))
    primary = read_photo(path)
    result = resolve(path, primary)
    # the photo to render is the original, not the primary
    assert result.photo is not None and result.photo.shape == primary.shape
    expected = read_photo(_write_jpeg(tmp_path / "o.jpg", original))
    assert np.abs(result.photo - expected).max() < 0.02 < np.abs(primary - expected).mean()
    assert "original image" in result.source and result.details["original_image"] == "image/jpeg"
    # focus: the disparity of the focal distance, by hand: (1/z - 1/far) / (1/near - 1/far)
    assert result.focus == pytest.approx((1 / focal - 1 / far) / (1 / near - 1 / far))
    # blur: radius at infinity blur_inf * long side = K * d_focus... K = b L z_f (1/near - 1/far)
    assert result.blur == pytest.approx(blur_inf * W * focal * (1 / near - 1 / far))
    assert result.details["stored_focus"] == {"distance": focal, "point": [0.5, 0.5], "blur_at_infinity": blur_inf}


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_gdepth_focus_point_follows_the_orientation(tmp_path, orientation):
    samples = np.full((H, W), 255, np.uint8)      # far everywhere (disparity 0) ...
    samples[2:8, 30:38] = 0                        # ... but a near block (disparity 1) in the stored top right
    point = (34 / W, 5 / H)                        # the block's centre, in the stored image
    path = tmp_path / "p.jpg"
    path.write_bytes(gdepth_jpeg(RGB, samples, fmt="RangeInverse", near=1.0, far=9.0, exif=_exif(orientation),
                                 focus={"FocalPointX": point[0], "FocalPointY": point[1]}))
    result = EmbeddedDepth(path).estimate(read_photo(path))
    assert result.focus == pytest.approx(1.0)
    assert result.details["focus_from"].startswith("point")


def _write_jpeg(path, rgb):
    from PIL import Image

    Image.fromarray(rgb).save(path, quality=95)
    return path


# ------------------------------------------------------------------------------------------ iPhone MPF
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_iphone_portrait_jpeg_disparity_frame(tmp_path, orientation):
    codes = np.repeat(np.repeat(np.array([[20, 80, 140, 230], [200, 250, 110, 40]], np.uint8), H // 2, 0), W // 4, 1)
    path = tmp_path / "IMG_0001.jpg"
    path.write_bytes(iphone_portrait_jpeg(RGB, codes, float_min=0.5, float_max=2.5, orientation=orientation))
    image = read_photo(path)
    result = resolve(path, image)                    # auto finds the depth frame
    assert result.source.startswith("embedded Apple MPF depth")
    # disparity in 1/m: D = Fmin + code/255 (Fmax - Fmin), so lensblur disparity = code / 255; near 1/Fmax
    assert result.depth_range.near == pytest.approx(1 / 2.5) and result.depth_range.far == pytest.approx(1 / 0.5)
    np.testing.assert_allclose(result.disparity, _upright(codes / 255.0, orientation), atol=3 / 255)
    assert result.details["map_size"] == [W, H] and result.details["units"] == "inverse metres"


def test_iphone_depth_frame_in_metres_and_int_range(tmp_path):
    codes = np.repeat(np.array([[10, 60, 110, 160, 210]], np.uint8), H, 0).repeat(8, 1)
    path = tmp_path / "depth.jpg"
    path.write_bytes(iphone_portrait_jpeg(RGB, codes, float_min=0.4, float_max=3.0, kind="depth", int_min=10,
                                          int_max=210))
    result = EmbeddedDepth(path).estimate(read_photo(path))
    z = 0.4 + (codes - 10) / 200.0 * 2.6           # metres, by the apdi definition
    assert result.depth_range.near == pytest.approx(0.4) and result.depth_range.far == pytest.approx(3.0)
    got = np.array([result.depth_range.depth(float(d)) for d in result.disparity[5, ::8]])
    np.testing.assert_allclose(got, z[5, ::8], rtol=0.03)


@pytest.mark.parametrize("orientation", [1, 6])
def test_iphone_matte_is_the_subject_and_focus_region_is_used(tmp_path, orientation):
    codes = np.full((H, W), 60, np.uint8)
    codes[4:20, 8:20] = 230
    matte = np.zeros((H, W), np.uint8)
    matte[4:20, 8:20] = 255
    path = tmp_path / "portrait.jpg"
    path.write_bytes(iphone_portrait_jpeg(RGB, codes, float_min=0.5, float_max=2.5, matte=matte,
                                          orientation=orientation, focus=(14 / W, 12 / H)))
    image = read_photo(path)
    depth = resolve(path, image)
    assert depth.focus == pytest.approx(230 / 255, abs=3 / 255)          # the Focus region's depth
    subject = resolve(path, image, source="subject")                      # no mask given: the stored matte
    assert "portrait matte" in subject.source
    upright = _upright(matte, orientation) > 127
    assert subject.disparity[upright].min() > 0.95                       # the person at 1
    assert subject.disparity[~upright].max() < 0.5                       # the background behind


def test_sample_without_depth_frame_still_says_no_depth(tmp_path):
    from _mpf import mpf_file

    from lensblur.depth.embedded import read_stored_depth

    path = tmp_path / "plain_mpo.jpg"
    path.write_bytes(mpf_file(_jpeg_bytes(RGB), [(0x010001, _jpeg_bytes(RGB[::2, ::2].copy()))]))
    with pytest.raises(InputError, match="no depth metadata"):
        read_stored_depth(path)


def _jpeg_bytes(rgb):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ Dynamic Depth
@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_dynamic_depth_metres_confidence_original(tmp_path, orientation):
    original = (RNG.random((H, W, 3)) * 255).astype(np.uint8)
    confidence = np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1))
    path = tmp_path / "PXL.jpg"
    path.write_bytes(dynamic_depth_jpeg(RGB, SAMPLES, fmt="RangeInverse", near=0.3, far=5.0, units="Meters",
                                        original=original, confidence=confidence, exif=_exif(orientation)))
    image = read_photo(path)
    result = resolve(path, image)
    assert result.source.startswith("embedded Dynamic Depth depth")
    assert (result.depth_range.near, result.depth_range.far) == (0.3, 5.0)
    np.testing.assert_allclose(result.disparity, _upright(1.0 - SAMPLES / 255.0, orientation), atol=1e-6)
    assert result.details["confidence_size"] == [W, H] and result.details["original_image"] == "image/jpeg"
    expected = read_photo(_write_jpeg(tmp_path / "o.jpg", _upright(original, orientation)))
    assert np.abs(result.photo - expected).mean() < 0.02


def test_dynamic_depth_confidence_lets_unsure_values_be_redecided(tmp_path):
    """A half-size map with a wrong block marked unsure: upsampled with the file's confidence, the block
    takes the value around it (the photo is flat there, so nothing stops it); without, it stays."""
    from lensblur.depth.embedded import read_stored_depth
    from lensblur.depth.refine import upsample

    flat = np.full((2 * H, 2 * W, 3), 128, np.uint8)
    samples = np.full((H, W), 100, np.uint8)
    samples[8:14, 14:22] = 250                      # wrong: far where everything is at 100
    confidence = np.full((H, W), 255, np.uint8)
    confidence[8:14, 14:22] = 0
    path = tmp_path / "conf.jpg"
    path.write_bytes(dynamic_depth_jpeg(flat, samples, fmt="RangeInverse", near=0.5, far=5.0,
                                        confidence=confidence))
    image = read_photo(path)
    result = EmbeddedDepth(path).estimate(image)
    around = 1 - 100 / 255
    block = result.disparity[18:26, 30:42]
    assert np.abs(block - around).max() < 0.05
    plain = upsample(image, read_stored_depth(path).disparity)
    assert np.abs(plain[18:26, 30:42] - around).max() > 0.3


def test_dynamic_depth_diopters_and_focal_table(tmp_path):
    near_d, far_d = 2.0, 0.25                    # diopters: 0.5 m and 4 m
    table = [(3.0, 5.0), (1.0, 0.0), (0.5, 4.0)]  # (distance, radius): least blur at 1 diopter = 1 m
    path = tmp_path / "dd.jpg"
    path.write_bytes(dynamic_depth_jpeg(RGB, SAMPLES, fmt="RangeLinear", near=near_d, far=far_d, units="Diopters",
                                        focal_table=table))
    result = EmbeddedDepth(path).estimate(read_photo(path))
    assert result.depth_range.near == pytest.approx(0.5) and result.depth_range.far == pytest.approx(4.0)
    # RangeLinear in diopters: inverse depth linear in v, so disparity = 1 - v exactly
    np.testing.assert_allclose(result.disparity, 1.0 - SAMPLES / 255.0, atol=1e-6)
    # focus at 1 diopter: (1 - 0.25) / (2 - 0.25)
    assert result.focus == pytest.approx(0.75 / 1.75)


def test_dynamic_depth_without_units(tmp_path):
    path = tmp_path / "none.jpg"
    path.write_bytes(dynamic_depth_jpeg(RGB, SAMPLES, fmt="RangeInverse", near=2.0, far=30.0, units="None"))
    result = EmbeddedDepth(path).estimate(read_photo(path))
    assert result.depth_range is None and result.relative_range == (2.0, 30.0)


def test_google_camera_container_items_hold_depth_confidence_and_original(tmp_path):
    original = (RNG.random((H, W, 3)) * 255).astype(np.uint8)
    confidence = np.full((H, W), 200, np.uint8)
    path = tmp_path / "PXL_PORTRAIT.jpg"
    path.write_bytes(gcontainer_portrait_jpeg(RGB, SAMPLES, near=0.4, far=7.0, original=original,
                                              confidence=confidence))
    result = resolve(path, read_photo(path))
    assert result.source.startswith("embedded GDepth XMP depth")
    np.testing.assert_allclose(result.disparity, 1.0 - SAMPLES / 255.0, atol=1e-6)
    assert result.details["confidence_size"] == [W, H] and result.details["original_image"] == "image/jpeg"
    expected = read_photo(_write_jpeg(tmp_path / "o.jpg", original))
    assert np.abs(result.photo - expected).mean() < 0.02


# ------------------------------------------------------------------------------------------ stereo MPO
def test_stereo_mpo_feeds_the_stereo_source(tmp_path):
    left, right = stereo_views()              # disparities in pixels: background 4, near patch 16
    path = tmp_path / "DSCF0001.MPO"
    path.write_bytes(stereo_mpo(left, right))
    source = build_source(path)
    assert isinstance(source, StereoDepth)
    result = resolve(path, read_photo(path))
    assert "stereo MPO" in result.source
    assert np.median(result.disparity[35:65, 70:100]) > np.median(result.disparity[5:25, 5:50]) + 0.5


# ------------------------------------------------------------------------------------------ the command line
def test_depth_command_reports_extracts_and_scales(tmp_path, capsys):
    from lensblur.cli import main

    original = (RNG.random((H, W, 3)) * 255).astype(np.uint8)
    path = tmp_path / "lensblur.jpg"
    path.write_bytes(gdepth_jpeg(RGB, SAMPLES, fmt="RangeInverse", near=6.0, far=44.0, original=original,
                                 focus={"FocalDistance": 10.0, "BlurAtInfinity": 0.02}))
    out, extract = tmp_path / "d.png", tmp_path / "original.png"
    assert main(["depth", str(path), "-o", str(out), "--extract-image", str(extract), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["near_m"] is None and record["details"]["units"] == "none"
    assert record["details"]["file_range"] == [6.0, 44.0] and record["focus_disparity"] == pytest.approx(
        (1 / 10 - 1 / 44) / (1 / 6 - 1 / 44))
    assert np.abs(read_photo(extract) - read_photo(_write_jpeg(tmp_path / "o.jpg", original))).max() < 0.03
    exact = tmp_path / "original.jpg"          # the stored JPEG, byte for byte
    assert main(["depth", str(path), "-o", str(out), "--force", "--extract-image", str(exact)]) == 0
    assert exact.read_bytes() == jpeg_bytes(original)
    capsys.readouterr()
    assert main(["depth", str(path), "-o", str(out), "--force", "--depth-scale", "0.1", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["near_m"] == pytest.approx(0.6) and record["far_m"] == pytest.approx(4.4)
    plain = tmp_path / "plain.jpg"
    _write_jpeg(plain, RGB)
    code = main(["depth", str(path), "--disparity", str(out), "--depth-from", "file", "-o", str(tmp_path / "x.png"),
                 "--extract-image", str(tmp_path / "never.png")])
    assert code == 1 and "--extract-image" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_render_uses_the_stored_focus_and_blur_and_asks_for_units_with_a_camera(tmp_path, capsys):
    from lensblur.cli import main

    path = tmp_path / "lensblur.jpg"
    path.write_bytes(gdepth_jpeg(RGB, SAMPLES, fmt="RangeInverse", near=6.0, far=44.0,
                                 focus={"FocalDistance": 10.0, "BlurAtInfinity": 0.02}))
    assert main(["render", str(path), "-o", str(tmp_path / "out.png"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    k = 0.02 * W * 10.0 * (1 / 6 - 1 / 44)
    assert "the focus stored in the photo" in captured.out and f"blur {k:.1f} px" in captured.out
    assert "metric range is unknown" in captured.err
    assert main(["render", str(path), "-o", str(tmp_path / "quiet.png"), "-q"]) == 0
    assert capsys.readouterr().err == ""          # -q: errors only
    code = main(["render", str(path), "-o", str(tmp_path / "cam.png"), "--f-number", "2", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "--depth-scale" in err and not (tmp_path / "cam.png").exists()
    assert main(["render", str(path), "-o", str(tmp_path / "cam.png"), "--f-number", "2", "--depth-scale", "0.05",
                 "--no-progress"]) == 0
    assert "camera:" in capsys.readouterr().err


def test_render_draws_the_stored_original_not_the_blurred_primary(tmp_path, capsys):
    from lensblur.cli import main

    original = (RNG.random((H, W, 3)) * 255).astype(np.uint8)
    path = tmp_path / "lensblur.jpg"
    path.write_bytes(gdepth_jpeg(RGB, SAMPLES, fmt="RangeInverse", near=6.0, far=44.0, original=original))
    assert main(["render", str(path), "--blur", "0", "-o", str(tmp_path / "out.png"), "--no-progress"]) == 0
    assert "rendering from the sharp original" in capsys.readouterr().err
    out, expected = read_photo(tmp_path / "out.png"), read_photo(_write_jpeg(tmp_path / "o.jpg", original))
    assert np.abs(out - expected).max() < 0.02 < np.abs(out - read_photo(path)).mean()
