"""``lensblur render`` writes files like the photo: profile, metadata (carried, stripped, GPS dropped, lensblur's
record), quality, bits; and simulates a full-frame lens at the photo's framing (printed, and in --format json)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from lensblur.cli import main
from lensblur.io import icc
from lensblur.io.camera import FULL_FRAME_DIAGONAL
from lensblur.io.metadata import LENSBLUR_NS


@pytest.fixture
def phone(tmp_path):
    """A 40 x 32 Display P3 JPEG with phone EXIF (5.7 mm, 26 mm equivalent), GPS and a comment, and a disparity map."""
    rng = np.random.default_rng(2)
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif.get_ifd(0x8769).update({0x920A: 5.7, 0xA405: 26, 0x829D: 1.8})
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 30.0)})
    photo = tmp_path / "phone.jpg"
    Image.fromarray((rng.random((32, 40, 3)) * 255).astype(np.uint8)).save(
        photo, exif=exif, icc_profile=icc.display_p3(), comment="holiday", quality=95)
    disparity = np.full((32, 40), 0.2, np.float32)
    disparity[8:24, 10:30] = 0.8
    disp = tmp_path / "disp.png"
    Image.fromarray(np.round(disparity * 65535).astype(np.uint16)).save(disp)
    return tmp_path, photo, disp


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_render_carries_profile_and_metadata_and_records_itself(phone, capsys):
    tmp, photo, disp = phone
    out = tmp / "out.jpg"
    code, _, _ = run_cli(["render", photo, "--disparity", disp, "--focus-disparity", "0.8", "--blur", "4", "-o", out],
                         capsys)
    assert code == 0
    with Image.open(out) as im:
        exif, info = im.getexif(), dict(im.info)
    assert info["icc_profile"] == icc.display_p3()                     # today: untagged
    assert exif[0x010F] == "Apple" and exif.get_ifd(0x8825)[1] == "N" and exif[0x0131].startswith("lensblur")
    assert info["comment"] == b"holiday"
    xmp = info["xmp"].decode()
    assert f'xmlns:lensblur="{LENSBLUR_NS}"' in xmp and "<lensblur:Blur>4</lensblur:Blur>" in xmp
    assert "<lensblur:FocusDisparity>0.8</lensblur:FocusDisparity>" in xmp


def test_render_strips_gps_or_all_metadata_and_converts_to_srgb(phone, capsys):
    tmp, photo, disp = phone
    base = ["render", photo, "--disparity", disp, "--focus-disparity", "0.8", "--blur", "4"]
    assert run_cli(base + ["--strip-gps", "-o", tmp / "a.jpg"], capsys)[0] == 0
    with Image.open(tmp / "a.jpg") as im:
        assert im.getexif()[0x010F] == "Apple" and len(im.getexif().get_ifd(0x8825)) == 0
    assert run_cli(base + ["--strip-metadata", "--output-profile", "srgb", "-o", tmp / "b.png"], capsys)[0] == 0
    with Image.open(tmp / "b.png") as im:
        assert len(im.getexif()) == 0 and "xmp" not in im.info and im.info["icc_profile"] == icc.srgb()


def test_render_quality_and_bad_options_are_refused_before_writing(phone, capsys):
    tmp, photo, disp = phone
    base = ["render", photo, "--disparity", disp, "--focus-disparity", "0.8", "--blur", "4"]
    sizes = []
    for q in ("10", "100"):
        assert run_cli(base + ["--quality", q, "-o", tmp / f"q{q}.jpg"], capsys)[0] == 0
        sizes.append((tmp / f"q{q}.jpg").stat().st_size)
    assert sizes[0] < sizes[1]
    for extra, message in ((["--quality", "0"], "--quality: "), (["--bits", "16"], "--bits: "),
                           (["--simulate", "a big lens"], "--simulate: ")):
        code, _, err = run_cli(base + extra + ["-o", tmp / "bad.jpg"], capsys)
        assert code == 1 and message in err and not (tmp / "bad.jpg").exists()


def test_simulate_a_full_frame_lens_at_the_same_framing(phone, capsys):
    """85 mm f/1.4 on full frame, framing the photo as its 26 mm-equivalent lens does: the full-frame camera
    stands back until the focal plane fills the frame the same way (thin lens: s' = F + F / f_35 * (s - f)), every
    depth moves back with it, and the CoC is the thin-lens one of that camera on the full-frame diagonal cut to
    the 40 x 32 frame."""
    tmp, photo, disp = phone
    args = ["render", photo, "--disparity", disp, "--depth-range", "1,4", "--focus-distance", "2",
            "--format", "json", "-o", tmp / "o.png"]
    code, stdout, err = run_cli(args + ["--simulate", "85mm f/1.4 full-frame"], capsys)
    assert code == 0 and "camera: 85 mm" in err and "26 mm-equivalent" in err
    result = json.loads(stdout)
    sensor = FULL_FRAME_DIAGONAL * 40 / math.hypot(40, 32)
    big, n, f, s_f = 0.085, 1.4, 0.0057, 2.0
    moved = big + 85 / 26 * (s_f - f)                   # same magnification per sensor size
    near, far = 1 + (moved - s_f), 4 + (moved - s_f)
    blur = 0.5 * big * big * moved / (n * (moved - big)) * (1 / near - 1 / far) * 40 / (sensor / 1000)
    assert result["camera"]["focal_length"] == 85 and result["camera"]["f_number"] == 1.4
    assert result["camera"]["sensor_width"] == pytest.approx(sensor)
    assert result["camera"]["focus_distance"] == pytest.approx(moved)
    assert result["blur"] == pytest.approx(blur, rel=1e-6) and result["profile"] == "Display P3 (lensblur)"
    # the phone's own lens at f/1.4 for comparison: at the same framing the blur of an infinitely far background
    # grows by the ratio of the entrance pupils, (85 / 1.4) / (5.7 / 1.4) = 14.9; a background at 4 m, moved back
    # with the camera, gets less. Keeping the camera where it was (no reframing) would give about 48 times.
    code, stdout, _ = run_cli(args + ["--f-number", "1.4"], capsys)
    phone_blur = json.loads(stdout)["blur"]
    background = lambda b, d_f: b * d_f                 # CoC radius of disparity 0 (the far plane)
    ratio = background(result["blur"], result["focus_disparity"]) / background(phone_blur,
                                                                                  json.loads(stdout)["focus_disparity"])
    assert 1.0 < ratio < 85 / 5.7
    code, stdout, _ = run_cli(args + ["--equivalent-focal", "85", "--f-number", "1.4"], capsys)
    assert code == 0 and json.loads(stdout)["blur"] == pytest.approx(blur, rel=1e-6)
    code, _, err = run_cli(args + ["--simulate", "85mm f/1.4", "--f-number", "2"], capsys)
    assert code == 1 and "--simulate" in err and "--f-number" in err


def test_reframe_moves_every_depth_back():
    from lensblur.geometry import DepthRange
    from lensblur.io.camera import reframe

    rng = DepthRange(1.0, 4.0)
    d = np.array([0.0, 1.0, rng.disparity(2.0)])
    moved, moved_range = reframe(d, rng, 3.0)
    assert (moved_range.near, moved_range.far) == (4.0, 7.0)
    assert moved[:2].tolist() == [0.0, 1.0]
    assert moved_range.depth(float(moved[2])) == pytest.approx(5.0, rel=1e-6)


def test_json_output_has_the_exif_camera(phone, capsys):
    tmp, photo, disp = phone
    code, stdout, _ = run_cli(["render", photo, "--disparity", disp, "--depth-range", "1,4", "--focus-distance", "2",
                               "--f-number", "1.4", "--format", "json", "-o", tmp / "o.png"], capsys)
    camera = json.loads(stdout)["camera"]
    assert code == 0 and camera["focal_length"] == 5.7 and camera["focus_distance"] == 2
    assert camera["sensor_width"] == pytest.approx(FULL_FRAME_DIAGONAL * 5.7 / 26 * 40 / math.hypot(40, 32))
