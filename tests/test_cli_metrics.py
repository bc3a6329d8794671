"""``lensblur metrics`` and ``lensblur focus`` end to end on tiny files.

Expected scores come from scikit-image and OpenCV on the same pixel values; bad input must exit with
code 1 and a one-line message naming the argument, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lensblur import cli
from lensblur.io import write_image


@pytest.fixture
def run(monkeypatch, capsys):
    """Run ``lensblur ARGS`` in-process: (exit code, stdout, stderr).

    Only the two commands under test are built, so these tests do not depend on the imports of the
    other commands (the real parser is exercised by the subprocess test below).
    """
    monkeypatch.setattr(cli, "COMMANDS", {"metrics": "metrics", "focus": "focus"})

    def _run(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def files(tmp_path, textured, rng):
    """reference.png, out.png (blurred + noise), small.png (other size), cut.png (truncated), mask.png."""
    ref = np.round(textured * 255).astype(np.uint8)
    out = np.clip(cv2.GaussianBlur(ref, (5, 5), 1.0).astype(int) + rng.integers(-6, 7, ref.shape), 0, 255)
    out = out.astype(np.uint8)
    paths = {name: tmp_path / f"{name}.png" for name in ("reference", "out", "small", "cut", "mask")}
    Image.fromarray(ref).save(paths["reference"])
    Image.fromarray(out).save(paths["out"])
    Image.fromarray(ref[:40, :50]).save(paths["small"])
    data = paths["out"].read_bytes()
    paths["cut"].write_bytes(data[: len(data) // 2])
    mask = np.zeros(ref.shape[:2], np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(paths["mask"])
    return paths, ref / 255.0, out / 255.0, mask > 0


def _clean_error(err: str, command: str, argument: str) -> None:
    assert err.startswith(f"lensblur {command}: error: {argument}: expected"), err
    assert "Traceback" not in err and "Fix:" in err
    assert len(err.strip().splitlines()) == 1


# --- metrics -----------------------------------------------------------------------------------------


def test_metrics_text(run, files):
    paths, ref, out, _ = files
    code, stdout, err = run("metrics", paths["out"], paths["reference"])
    assert code == 0 and err == ""
    psnr_line = next(line for line in stdout.splitlines() if line.startswith("PSNR"))
    assert float(psnr_line.split()[1]) == pytest.approx(peak_signal_noise_ratio(ref, out, data_range=1.0),
                                                        abs=1e-4)


def test_metrics_json_matches_skimage(run, files):
    paths, ref, out, _ = files
    code, stdout, _ = run("metrics", paths["out"], paths["reference"], "--format", "json")
    result = json.loads(stdout)
    assert code == 0 and (result["width"], result["height"], result["box"]) == (64, 48, None)
    assert result["psnr_db"] == pytest.approx(peak_signal_noise_ratio(ref, out, data_range=1.0), abs=1e-9)
    expected = structural_similarity(ref, out, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    assert abs(result["ssim"] - expected) < 1e-4


def test_metrics_box(run, files):
    paths, ref, out, _ = files
    code, stdout, _ = run("metrics", paths["out"], paths["reference"], "--box", "4,6,40,30", "--format", "json")
    result = json.loads(stdout)
    assert code == 0 and result["box"] == [4, 6, 40, 30]
    crop = np.s_[6:30, 4:40]
    assert result["psnr_db"] == pytest.approx(peak_signal_noise_ratio(ref[crop], out[crop], data_range=1.0))


def test_metrics_identical_and_linear_float_file(run, files, tmp_path):
    """A PFM (linear light) of the reference is sRGB-encoded before scoring: it matches the 8-bit file."""
    paths, ref, _, _ = files
    linear = ((ref + 0.055) / 1.055) ** 2.4
    linear = np.where(ref <= 0.04045, ref / 12.92, linear)
    pfm = write_image(tmp_path / "reference.pfm", linear.astype(np.float32))
    code, stdout, _ = run("metrics", pfm, paths["reference"], "--format", "json")
    result = json.loads(stdout)
    assert code == 0 and result["psnr_db"] > 100 and result["ssim"] == pytest.approx(1.0, abs=1e-9)
    code, stdout, _ = run("metrics", paths["reference"], paths["reference"], "--format", "json")
    assert code == 0 and json.loads(stdout)["psnr_db"] is None  # infinite PSNR is null in JSON
    code, stdout, _ = run("metrics", paths["reference"], paths["reference"])
    assert "PSNR  inf dB" in stdout


@pytest.mark.parametrize(("args", "argument"), [
    (("missing.png", "reference"), "OUT"),
    (("out", "missing.png"), "REFERENCE"),
    (("cut", "reference"), "OUT"),
    (("out", "small"), "REFERENCE"),
    (("out", "reference", "--box", "0,0,65,10"), "--box"),
    (("out", "reference", "--box", "30,10,20,40"), "--box"),
])
def test_metrics_bad_input(run, files, tmp_path, args, argument):
    paths = files[0]
    argv = [paths.get(a, tmp_path / a if a.endswith(".png") else a) for a in args]
    code, stdout, err = run("metrics", *argv)
    assert code == 1 and stdout == ""
    _clean_error(err, "metrics", argument)


def test_metrics_size_mismatch_message(run, files):
    paths = files[0]
    _, _, err = run("metrics", paths["out"], paths["small"])
    assert "the size of OUT, 64x48" in err and "got 50x40" in err


def test_metrics_too_small_for_ssim(run, tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    code, _, err = run("metrics", tmp_path / "a.png", tmp_path / "a.png")
    assert code == 1
    _clean_error(err, "metrics", "OUT")


# --- focus -------------------------------------------------------------------------------------------


def _grey(image):
    return (image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114) * 255.0


def test_focus_json_whole_boxes_and_mask(run, files):
    paths, _, out, mask = files
    code, stdout, err = run("focus", paths["out"], "--box", "0,0,32,24", "--box", "30,10,64,48",
                            "--mask", paths["mask"], "--format", "json")
    assert code == 0 and err == ""
    result = json.loads(stdout)
    grey = _grey(out)
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    regions = result["regions"]
    assert [r["region"] for r in regions] == ["box 0,0,32,24", "box 30,10,64,48", f"mask {paths['mask']}"]
    assert regions[0]["variance_of_laplacian"] == pytest.approx(lap[0:24, 0:32].var(), rel=1e-9)
    assert regions[1]["variance_of_laplacian"] == pytest.approx(lap[10:48, 30:64].var(), rel=1e-9)
    assert regions[2]["variance_of_laplacian"] == pytest.approx(lap[mask].var(), rel=1e-9)
    pairs = (grey[:, 2:] - grey[:, :-2]) ** 2  # pair (x, x + 2), counted where x is in the region
    assert regions[0]["brenner"] == pytest.approx(pairs[0:24, 0:32].sum(), rel=1e-9)
    assert regions[1]["brenner"] == pytest.approx(pairs[10:48, 30:62].sum(), rel=1e-9)
    assert regions[2]["brenner"] == pytest.approx(pairs[mask[:, :-2]].sum(), rel=1e-9)
    assert regions[2]["pixels"] == int(mask.sum())
    assert regions[0]["brenner_per_pixel"] == pytest.approx(regions[0]["brenner"] / (32 * 24), rel=1e-12)
    code, stdout, _ = run("focus", paths["out"], "--box", "0,0,32,24", "--brenner", "pertuz", "--format", "json")
    pertuz = json.loads(stdout)["regions"][0]
    assert code == 0 and pertuz["brenner_per_pixel"] == pertuz["brenner"]     # Pertuz's measure is a mean


def test_focus_mask_with_alpha_selects_the_cut_out(run, files, tmp_path):
    """An RGBA cut-out selects its opaque pixels (lensblur.io.read_mask), as render --focus-mask and the
    subject source read it, not the mean of its colour channels."""
    paths, _, _, mask = files
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[..., :3] = 255                       # white everywhere: a colour mean would select every pixel
    rgba[..., 3] = mask * 255
    Image.fromarray(rgba).save(tmp_path / "cutout.png")
    code, stdout, _ = run("focus", paths["out"], "--mask", tmp_path / "cutout.png", "--format", "json")
    assert code == 0 and json.loads(stdout)["regions"][0]["pixels"] == int(mask.sum())


def test_focus_text_whole_image_ranks_sharpness(run, files):
    paths = files[0]
    code, stdout, _ = run("focus", paths["reference"])
    sharp = float(stdout.splitlines()[-1].split()[-3])
    code2, stdout2, _ = run("focus", paths["out"])
    blurred = float(stdout2.splitlines()[-1].split()[-3])
    assert code == code2 == 0 and "whole image" in stdout
    assert sharp == pytest.approx(cv2.Laplacian(_grey(files[1]), cv2.CV_64F).var(), rel=1e-6)
    assert blurred < sharp


@pytest.mark.parametrize(("args", "argument"), [
    (("missing.png",), "IMAGE"),
    (("cut",), "IMAGE"),
    (("out", "--box", "0,0,10,49"), "--box"),
    (("out", "--box=-5,0,10,10"), "--box"),
    (("out", "--mask", "small"), "--mask"),
    (("out", "--mask", "missing.png"), "--mask"),
])
def test_focus_bad_input(run, files, tmp_path, args, argument):
    paths = files[0]
    argv = [paths.get(a, tmp_path / a if a.endswith(".png") else a) for a in args]
    code, stdout, err = run("focus", *argv)
    assert code == 1 and stdout == ""
    _clean_error(err, "focus", argument)


def test_focus_empty_mask(run, files, tmp_path):
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp_path / "empty.png")
    code, _, err = run("focus", files[0]["out"], "--mask", tmp_path / "empty.png")
    assert code == 1
    _clean_error(err, "focus", "--mask")


def test_malformed_box_is_a_usage_error(run, files):
    with pytest.raises(SystemExit) as exc:
        run("focus", files[0]["out"], "--box", "1,2,3")
    assert exc.value.code == 2  # argparse: usage error before any work


# --- the installed command --------------------------------------------------------------------------


def test_command_in_a_fresh_process(files):
    """The real ``lensblur`` entry point, every command built, in its own interpreter: a bad input exits
    with 1 and one clean line (one process only: starting torch takes seconds)."""
    paths = files[0]
    entry = "import sys; from lensblur.cli import main; sys.exit(main())"
    bad = subprocess.run([sys.executable, "-c", entry, "metrics", str(paths["out"]), str(paths["small"])],
                         check=False, capture_output=True, text=True, timeout=180)
    assert bad.returncode == 1 and bad.stdout == "", bad.stderr
    _clean_error(bad.stderr, "metrics", "REFERENCE")


def test_a_second_box_is_refused_not_silently_taken(run, files):
    paths, *_ = files
    with pytest.raises(SystemExit) as exit_info:
        run("metrics", paths["out"], paths["reference"], "--box", "0,0,32,24", "--box", "1,1,9,9")
    assert exit_info.value.code == 2
