"""Stereo, subject masks, refinement, resolve() and the depth command."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from lensblur.depth import DepthResult, StereoDepth, SubjectDepth, refine, resolve
from lensblur.depth.refine import upsample
from lensblur.depth.stereo import fill_holes, left_right_check, stereo_disparity
from lensblur.depth.subject import extract_segmenter, segmenter_path, subject_disparity
from lensblur.errors import InputError, ModelNotFoundError, ShapeError

RNG = np.random.default_rng(2)


def _stereo_pair(h=96, w=160, d_back=6, d_front=18):
    """A random-dot pair with known disparities: background plane and a nearer square."""
    texture = RNG.random((h, w + 64, 3)).astype(np.float32)
    front = RNG.random((h, w + 64, 3)).astype(np.float32)
    truth = np.full((h, w), float(d_back), np.float32)
    truth[30:70, 60:110] = d_front
    left = np.empty((h, w, 3), np.float32)
    right = np.empty((h, w, 3), np.float32)
    xs = np.arange(w)
    for y in range(h):
        left[y] = texture[y, xs + 32]
        right[y] = texture[y, xs + 32 + d_back]
    left[30:70, 60:110] = front[30:70, 60:110]
    right[30:70, 60 - d_front:110 - d_front] = front[30:70, 60:110]
    return left, right, truth


def test_stereo_recovers_known_disparities():
    left, right, truth = _stereo_pair()
    est = stereo_disparity(left, right, max_disparity=32, wls=False)
    inner = np.zeros_like(truth, bool)
    inner[:, 40:] = True  # SGBM has no match for the leftmost columns
    bad = np.abs(est - truth)[inner] > 1
    assert bad.mean() < 0.05
    checked = stereo_disparity(left, right, max_disparity=32, fill=False)
    # background just left of the square (x 48..59) is hidden behind it in the right view: rejected
    assert np.isnan(checked[35:65, 50:58]).mean() > 0.5
    assert np.isnan(checked[35:65, 112:126]).mean() < 0.1


def test_stereo_source_normalises_and_rejects_size_mismatch():
    left, right, _truth = _stereo_pair()
    result = StereoDepth(right, max_disparity=32).estimate(left)
    assert result.disparity[50, 85] > 0.9 and result.disparity[10, 120] < 0.1
    with pytest.raises(ShapeError, match="right"):
        StereoDepth(right[:, :-8], max_disparity=32).estimate(left)


def test_left_right_check_and_fill():
    d_left = np.array([[2.0, 2.0, 5.0, 5.0, 2.0, 2.0]], np.float32)
    d_right = np.array([[2.0, 2.0, 5.0, 2.0, 2.0, 2.0]], np.float32)
    ok = left_right_check(d_left, d_right)
    # x=0..3 point outside the image; x=4 lands on right[2]=5 (mismatch); x=5 lands on right[3]=2 (match)
    assert ok.tolist() == [[False, False, False, False, False, True]]
    filled = fill_holes(np.array([[9, 1, 0, 0, 4, 3]], np.float32), np.array([[1, 1, 0, 0, 1, 1]], bool))
    assert filled.tolist() == [[9, 1, 1, 1, 4, 3]]  # holes take the farther (smaller) neighbour


def _step_scene(h=80, w=120):
    image = np.full((h, w, 3), 0.05, np.float32)
    image[20:60, 40:90] = 0.8
    truth = np.zeros((h, w), np.float32)
    truth[20:60, 40:90] = 1.0
    return image, truth


def test_refine_snaps_edges_of_a_dilated_map():
    import cv2

    image, truth = _step_scene()
    degraded = cv2.dilate(truth, np.ones((9, 9), np.uint8))
    refined = refine(image, degraded, radius=6)
    band = cv2.dilate(truth, np.ones((13, 13), np.uint8)) != cv2.erode(truth, np.ones((13, 13), np.uint8))
    before = np.abs(degraded - truth)[band].mean()
    after = np.abs(refined - truth)[band].mean()
    assert after < 0.3 * before
    # flat regions far from edges are untouched
    assert refined[70, 5] == degraded[70, 5] and refined[40, 65] == pytest.approx(1.0)


def test_upsample_from_quarter_size():
    image, truth = _step_scene()
    small = truth[::4, ::4]
    up = upsample(image, small)
    assert up.shape == truth.shape
    assert np.abs(up - truth).mean() < 0.02


def test_subject_from_mask_file_and_coarse_depth(tmp_path):
    image, truth = _step_scene()
    mask_path = tmp_path / "mask.png"
    Image.fromarray((truth * 255).astype(np.uint8)).save(mask_path)
    result = SubjectDepth(mask_path).estimate(image)
    np.testing.assert_array_equal(result.disparity, truth)
    coarse = np.full_like(truth, 0.3)
    coarse[truth > 0] = 0.6
    combined = subject_disparity(truth, coarse)
    assert combined[40, 60] == 1.0 and combined[5, 5] == pytest.approx(0.5)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(ShapeError, match="mask"):
        SubjectDepth(tmp_path / "small.png").estimate(image)


def test_segmenter_missing_and_extracted_from_a_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("LENSBLUR_SEGMENTER_MODEL", str(tmp_path / "none.tflite"))
    with pytest.raises(ModelNotFoundError, match="mediapipe==0.10.21"):
        segmenter_path()
    wheel = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite", b"TFL3model")
    out = extract_segmenter(tmp_path, tmp_path / "cache" / "selfie_segmentation.tflite")
    assert out.read_bytes() == b"TFL3model"
    assert segmenter_path(out) == out


def test_resolve_order_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("LENSBLUR_DEPTH_MODEL", raising=False)
    image, truth = _step_scene()
    photo = tmp_path / "photo.png"
    Image.fromarray((image * 255).astype(np.uint8)).save(photo)
    disp = tmp_path / "disp.png"
    Image.fromarray((truth * 255).astype(np.uint8)).save(disp)
    result = resolve(photo, image, disparity_path=disp)
    assert isinstance(result, DepthResult) and result.source == "disparity file disp.png"
    refined = resolve(photo, image, disparity_path=disp, refine=True)
    assert refined.source.endswith("edge-refined")
    with pytest.raises(InputError, match="^source: .*model=PATH_OR_ID"):
        resolve(photo, image)
    with pytest.raises(InputError, match="one of auto"):
        resolve(photo, image, source="magic")
    with pytest.raises(InputError, match="^right: .*right=RIGHT_IMAGE"):
        resolve(photo, image, source="stereo")
    monkeypatch.setenv("LENSBLUR_DEPTH_MODEL", str(tmp_path / "no-such-model"))
    with pytest.raises(ModelNotFoundError):
        resolve(photo, image)


def test_depth_command_writes_map_and_preview(tmp_path, capsys):
    import argparse

    from _jpeg import gdepth_jpeg

    from lensblur.cli import depth as command

    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    rgb = (RNG.random((48, 64, 3)) * 255).astype(np.uint8)
    samples = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))
    photo = tmp_path / "g.jpg"
    photo.write_bytes(gdepth_jpeg(rgb, samples, fmt="RangeInverse", near=1.0, far=4.0, units="m"))
    out, preview = tmp_path / "d.png", tmp_path / "p.png"
    args = parser.parse_args(["depth", str(photo), "-o", str(out), "--preview", str(preview), "--format", "json"])
    assert args.run(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["near_m"] == 1.0 and record["far_m"] == 4.0
    with Image.open(out) as im:
        stored = np.asarray(im).astype(np.float64) / 65535
    np.testing.assert_allclose(stored[:, 0], 1.0, atol=1e-4)  # sample 0 = near in RangeInverse
    with Image.open(preview) as im:
        assert im.size == (128, 48)
    # bad input: nothing is written
    bad = tmp_path / "bad.png"
    args = parser.parse_args(["depth", str(photo), "-o", str(bad), "--depth-from", "stereo"])
    with pytest.raises(InputError):
        args.run(args)
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "g.jpg", "p.png"]


def test_import_stays_light():
    import subprocess
    import sys

    code = ("import sys, lensblur.depth, lensblur.cli.depth; "
            "print(sorted(m for m in ('cv2', 'transformers', 'pillow_heif', 'mediapipe') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_source_name_builds_or_says_what_it_needs(tmp_path, monkeypatch):
    """SOURCES is the table build_source dispatches on: every name is accepted, and a name whose input is
    missing names the Python argument that supplies it."""
    from lensblur.depth import SOURCES, FileDepth, build_source

    monkeypatch.delenv("LENSBLUR_DEPTH_MODEL", raising=False)
    assert SOURCES == ("auto", "file", "embedded", "model", "stereo", "subject")
    disp = tmp_path / "disp.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(disp)
    assert isinstance(build_source(None, source="file", disparity_path=disp), FileDepth)
    assert isinstance(build_source(None, source="subject"), SubjectDepth)
    needs = {"file": "disparity_path", "embedded": "image_path", "model": "model", "stereo": "right"}
    for name, argument in needs.items():
        with pytest.raises(InputError, match=f"^{argument}: .*Fix: pass {argument}="):
            build_source(None, source=name)


def test_subject_masks_name_every_missing_piece_at_once(tmp_path, monkeypatch):
    """Without mediapipe and without the model, one message lists both and the one set-up command."""
    import importlib.util

    from lensblur.depth.subject import SETUP_COMMAND, SubjectSetupError, segment_subject

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))
    monkeypatch.setenv("LENSBLUR_SEGMENTER_MODEL", str(tmp_path / "none.tflite"))
    with pytest.raises(SubjectSetupError) as caught:
        segment_subject(np.zeros((4, 4, 3), np.float32))
    text = str(caught.value)
    assert "2 more things" in text and "'mediapipe' (not installed)" in text and "none.tflite" in text
    assert SETUP_COMMAND in text


def test_setup_command_puts_the_model_where_lensblur_looks(tmp_path, monkeypatch, capsys):
    from lensblur.depth.subject import main

    wheel = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite", b"TFL3model")
    target = tmp_path / "cache" / "selfie_segmentation.tflite"
    main(["--wheel", str(wheel), "--to", str(target)])
    assert target.read_bytes() == b"TFL3model" and f"segmenter model: {target}" in capsys.readouterr().out
