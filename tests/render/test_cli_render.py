"""``lensblur render`` and ``lensblur demo`` end to end on tiny files, including every kind of bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import lensblur
from lensblur import Lens
from lensblur.cli import main


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(5)
    photo = tmp_path / "photo.png"
    Image.fromarray((rng.random((32, 40, 3)) * 255).astype(np.uint8)).save(photo)
    disparity = np.full((32, 40), 0.2, np.float32)
    disparity[8:24, 10:30] = 0.8
    disp = tmp_path / "disp.png"
    Image.fromarray(np.round(disparity * 65535).astype(np.uint16)).save(disp)
    return tmp_path, photo, disp, disparity


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_render_writes_the_result_of_the_library_call(files, capsys):
    tmp, photo, disp, disparity = files
    out = tmp / "out.png"
    code, stdout, _ = run_cli(["render", photo, "--disparity", disp, "--focus", "20,16", "--blur", "6",
                               "--aperture", "hexagon", "-o", out], capsys)
    assert code == 0 and "wrote" in stdout
    lens = lensblur.Lens(focus_disparity=0.8, blur=6.0, aperture=lensblur.Aperture(blades=6))
    expected = lensblur.render(lensblur.read_image(photo), disparity, lens)
    written = lensblur.read_image(out)
    # 8-bit encoding of the same render: within one code value (about 0.004 in sRGB, more in linear near 1).
    encode = lambda x: np.round(lensblur.color.linear_to_srgb(__import__("torch").from_numpy(x)).numpy() * 255)
    assert np.abs(encode(written) - encode(expected)).max() <= 1.0


def test_render_16_bit_and_camera_mapping_from_a_metric_depth(files, capsys):
    tmp, photo, _, _ = files
    depth = np.full((32, 40), 4.0, np.float32)
    depth[8:24, 10:30] = 1.5
    np.save(tmp / "depth.npy", depth)
    out = tmp / "out16.png"
    code, stdout, _ = run_cli(["render", photo, "--depth", tmp / "depth.npy", "--f-number", "1.8",
                               "--focal-length", "50", "--sensor-width", "36", "--focus-distance", "1.5",
                               "--bits", "16", "-o", out], capsys)
    assert code == 0
    # blur = 0.5 f^2 s_f / (N (s_f - f)) (1/near - 1/far) W / sensor, in pixels of the 40-px-wide image
    f, s_f, n = 0.05, 1.5, 1.8
    blur = 0.5 * f * f * s_f / (n * (s_f - f)) * (1 / 1.5 - 1 / 4.0) * 40 / 0.036
    assert f"blur {blur:.1f} px" in stdout
    assert lensblur.io.read_raw(out)[1] == 65535.0


BAD = [
    (["--disparity", "{disp}", "-o", "{tmp}/o.png", "--blur", "-3"], "--blur: expected a finite number"),
    (["--disparity", "{disp}", "-o", "{tmp}/o.png", "--blur", "5000"], "--blur: expected a CoC radius of at most"),
    (["--disparity", "{disp}", "-o", "{tmp}/o.png", "--focus", "500,3"], "--focus: expected a point inside"),
    (["--disparity", "{small}", "-o", "{tmp}/o.png"], "--disparity: expected the image's size"),
    (["--disparity", "{nan}", "-o", "{tmp}/o.png"], "--disparity: expected finite values"),
    (["--disparity", "{big}", "-o", "{tmp}/o.png"], r"--disparity: expected values in \[0, 1\]"),
    (["--disparity", "{disp}", "-o", "{tmp}/o.png", "--aperture", "{notimage}"], "--aperture: expected a readable"),
    (["--disparity", "{disp}", "-o", "{tmp}/o.png", "--aperture", "{black}"], "--aperture: expected an aperture kernel"),
    (["--disparity", "{disp}", "-o", "{photo}"], "--output: expected a path different from the input"),
    (["--disparity", "{disp}", "-o", "{tmp}/missing/o.png"], "--output: expected a path inside an existing folder"),
    (["--disparity", "{disp}", "-o", "{tmp}/o.png", "--aperture", "blob"], "--aperture: expected one of"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_render_bad_input_is_one_clear_line_and_no_output(files, capsys, args, message):
    tmp, photo, disp, _ = files
    np.save(tmp / "nan.npy", np.where(np.eye(32, 40) > 0, np.nan, 0.5).astype(np.float32))
    np.save(tmp / "big.npy", np.full((32, 40), 3.0, np.float32))
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(tmp / "small.png")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp / "black.png")
    (tmp / "notimage.png").write_text("not an image")
    names = {"tmp": tmp, "disp": disp, "photo": photo, "small": tmp / "small.png", "nan": tmp / "nan.npy",
             "big": tmp / "big.npy", "notimage": tmp / "notimage.png", "black": tmp / "black.png"}
    before = photo.read_bytes()
    code, _, stderr = run_cli(["render", photo] + [a.format(**names) for a in args], capsys)
    assert code == 1
    assert stderr.startswith("lensblur render: error: ") and "Traceback" not in stderr
    assert __import__("re").search(message, stderr), stderr
    assert not (tmp / "o.png").exists()
    assert photo.read_bytes() == before
    assert not [p for p in tmp.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_render_truncated_image(files, capsys):
    tmp, photo, disp, _ = files
    broken = tmp / "broken.jpg"
    Image.open(photo).convert("RGB").save(broken, quality=90)
    broken.write_bytes(broken.read_bytes()[:200])
    code, _, stderr = run_cli(["render", broken, "--disparity", disp, "-o", tmp / "o.png"], capsys)
    assert code == 1 and "error: PHOTO: expected a readable image file" in stderr


def test_render_resizes_only_when_asked(files, capsys):
    tmp, photo, _, _ = files
    Image.fromarray(np.full((16, 20), 30000, np.uint16)).save(tmp / "half.png")
    code, _, _ = run_cli(["render", photo, "--disparity", tmp / "half.png", "--resize-disparity",
                          "-o", tmp / "o.png"], capsys)
    assert code == 0 and (tmp / "o.png").exists()


def test_depth_from_file_reads_the_disparity_map_as_given(files, capsys):
    """``--depth-from file`` (the list every command offers) is the same as giving the map alone; without a
    map it asks for --disparity."""
    tmp, photo, disp, _ = files
    common = ["render", photo, "--disparity", disp, "--focus", "20,16", "--blur", "6"]
    assert run_cli([*common, "-o", tmp / "a.png"], capsys)[0] == 0
    assert run_cli([*common, "--depth-from", "file", "-o", tmp / "b.png"], capsys)[0] == 0
    assert (tmp / "a.png").read_bytes() == (tmp / "b.png").read_bytes()
    code, _, stderr = run_cli(["render", photo, "--depth-from", "file", "-o", tmp / "c.png"], capsys)
    assert code == 1 and stderr.startswith("lensblur render: error: --disparity: expected"), stderr


def test_normalize_disparity_and_its_old_spelling(files, capsys):
    tmp, photo, _, _ = files
    ramp = np.tile(np.linspace(2.0, 6.0, 40, dtype=np.float32), (32, 1))
    np.save(tmp / "ramp.npy", ramp)
    outputs = []
    for flag in ("--normalize-disparity", "--normalize"):
        out = tmp / f"o{len(outputs)}.png"
        code, _, stderr = run_cli(["render", photo, "--disparity", tmp / "ramp.npy", flag, "--blur", "4",
                                   "--focus-disparity", "0.5", "-o", out], capsys)
        assert code == 0
        assert ("deprecated" in stderr) == (flag == "--normalize")
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_force_allows_overwriting_the_input(files, capsys):
    _, photo, disp, _ = files
    before = photo.read_bytes()
    code, _, _ = run_cli(["render", photo, "--disparity", disp, "--blur", "4", "-o", photo, "--force"], capsys)
    assert code == 0 and photo.read_bytes() != before


@pytest.mark.slow
def test_demo_writes_its_files(tmp_path, capsys):
    code, stdout, _ = run_cli(["demo", "-o", tmp_path / "demo", "--frames", "2", "--blur", "20"], capsys)
    assert code == 0
    for name in ("focal_stack.png", "focus_pull.gif", "apertures.png", "focus_near.png"):
        assert (tmp_path / "demo" / name).is_file()
    with Image.open(tmp_path / "demo" / "focal_stack.png") as sheet:
        # three 741 x 500 renders in a row, 8 px apart and around, under a caption band
        from lensblur.io.sheet import CAPTION_HEIGHT
        assert sheet.size == (3 * (741 + 8) + 8, CAPTION_HEIGHT + 500 + 2 * 8)
    assert "demo:" in stdout and math.isfinite(float(stdout.rsplit(" in ", 1)[1].split()[0]))


def test_render_with_a_metric_exr_depth_map_and_exr_output(files, capsys):
    """The issue's example: an EXR depth map in metres and a physical camera; EXR out is linear and exact."""
    import OpenEXR  # the [io] extra, which make test installs
    tmp, photo, _, _ = files
    depth = np.full((32, 40), 4.0, np.float32)
    depth[8:24, 10:30] = 1.5
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"Z": depth}) as fh:
        fh.write(str(tmp / "depth.exr"))
    code, stdout, _ = run_cli(["render", photo, "--depth", tmp / "depth.exr", "--focus-disparity", "0.35",
                               "--f-number", "1.8", "--focal-length", "50", "--sensor-width", "36",
                               "--focus-distance", "2.0", "-o", tmp / "out.exr"], capsys)
    assert code == 0 and "focus disparity 0.350" in stdout
    out = lensblur.read_image(tmp / "out.exr")
    disparity, _ = lensblur.io.depth_to_disparity(depth)
    f, s_f, n = 0.05, 2.0, 1.8
    blur = 0.5 * f * f * s_f / (n * (s_f - f)) * (1 / 1.5 - 1 / 4.0) * 40 / 0.036
    expected = lensblur.render(lensblur.read_image(photo), disparity, Lens(0.35, blur))
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_the_camera_comes_from_the_photos_exif(files, capsys):
    """A phone photo (EXIF: 5.7 mm, 26 mm equivalent, like the iPhone sample) at --f-number 1.4 is rendered
    with its own small sensor, not a 50 mm lens on 36 mm: the CoC follows the thin-lens formula with the
    sensor's width from the 35 mm equivalent by diagonal."""
    import math

    from PIL import Image

    from lensblur.io.camera import FULL_FRAME_DIAGONAL, read_camera

    tmp, photo, disp, _ = files
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x920A: 5.7, 0xA405: 26, 0x829D: 1.8})
    phone = tmp / "phone.jpg"
    Image.open(photo).save(phone, exif=exif, quality=95)
    camera = read_camera(phone)
    assert (camera.focal_length, camera.focal_length_35mm, camera.f_number) == (5.7, 26.0, 1.8)
    sensor = camera.sensor_width(40, 32)
    assert sensor == pytest.approx(FULL_FRAME_DIAGONAL * 5.7 / 26 * 40 / math.hypot(40, 32))
    args = ["render", phone, "--disparity", disp, "--depth-range", "1,4", "--focus-disparity", "0.5",
            "--f-number", "1.4", "--focus-distance", "2", "-o", tmp / "out.png"]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0 and "camera: 5.7 mm, sensor" in err and "focal length EXIF, sensor EXIF 35 mm equivalent" in err
    f, n, s_f = 0.0057, 1.4, 2.0
    per_disparity = 0.5 * f * f * s_f / (n * (s_f - f)) * (1 / 1.0 - 1 / 4.0) * 40 / (sensor / 1000)
    assert f"blur {per_disparity:.1f} px" in stdout
    # The focal plane where --focus-disparity puts it (1 / z = 1/4 + 0.5 (1 - 1/4): 1.6 m), the scale from 2 m.
    assert "1.6 m in the map; blur scale from the focus distance 2 m" in stdout
    code, stdout, err = run_cli(args[:-2] + ["--focal-length", "50", "-o", tmp / "o2.png"], capsys)
    assert "focal length given, sensor default" in err       # a lens given without a sensor: full frame
    assert read_camera(photo).focal_length is None          # no EXIF: nothing made up
