"""``--dtype`` end to end: one flag for the precision of ``lensblur render`` and ``lensblur eval``, the layered
renderer's as well as bokehdiff's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import lensblur
from lensblur.cli import main
from lensblur.metrics import psnr


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(7)
    photo = tmp_path / "photo.png"
    Image.fromarray((rng.random((48, 64, 3)) * 230).astype(np.uint8)).save(photo)
    disparity = np.repeat(np.linspace(0.0, 0.6, 48, dtype=np.float32)[:, None], 64, 1)
    disparity[12:36, 20:44] = 1.0
    disp = tmp_path / "disp.png"
    Image.fromarray(np.round(disparity * 65535).astype(np.uint16)).save(disp)
    return tmp_path, photo, disp


def render_cli(tmp, photo, disp, *extra):
    out = tmp / f"out{'-'.join(extra)}.png"
    code = main([str(a) for a in ["render", photo, "--disparity", disp, "--focus-disparity", "0.4", "--blur", "20",
                                  "-q", "-o", out, *extra]])
    return code, out


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_render_dtype_renders_the_classical_renderer_in_half(files, dtype):
    tmp, photo, disp = files
    assert render_cli(tmp, photo, disp)[0] == 0
    code, out = render_cli(tmp, photo, disp, "--dtype", dtype)
    assert code == 0
    full, half = (np.asarray(Image.open(p), np.float64) / 255 for p in (tmp / "out.png", out))
    # What the library gives in that precision, written as 8 bits (the same file the command writes).
    lens = lensblur.Lens(0.4, 20.0)
    expected = lensblur.render(lensblur.read_image(photo), lensblur.read_disparity(disp), lens, dtype=dtype)
    encoded = np.round(lensblur.color.linear_to_srgb(torch.from_numpy(np.clip(expected, 0, 1))).numpy() * 255) / 255
    assert np.abs(half - encoded).max() <= 1 / 255
    assert not np.array_equal(full, half)          # the flag reached the renderer ...
    assert psnr(full, half, data_range=1.0) > 45   # ... and it is the same render within half's rounding


def test_render_dtype_is_refused_for_a_renderer_without_it_before_anything_is_written(files, capsys):
    tmp, photo, disp = files
    code, out = render_cli(tmp, photo, disp, "--method", "scatter", "--dtype", "float16")
    assert code != 0 and not out.exists()
    err = capsys.readouterr().err
    assert "--dtype: expected float32 for method scatter" in err and "--method layered" in err


def test_dtype_help_is_the_precision_of_the_work_not_of_the_unet(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--dtype {float32,float16,bfloat16} precision of the work" in text and "layered renderer" in text


def test_eval_dtype_reaches_the_renderer_and_is_recorded(tmp_path, monkeypatch, capsys):
    from lensblur.eval import runner
    from lensblur.synth.dataset import synthesize

    none = {"lpips": "n/a (test)", "dists": "n/a (test)"}
    monkeypatch.setattr(runner, "load_perceptual", lambda **k: dict(none))
    monkeypatch.setattr("lensblur.eval.load_perceptual", lambda **k: dict(none))
    root = tmp_path / "synth"
    synthesize(root, 2, size=(48, 32), seed=5, samples=16, progress=False)
    scores = {}
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / dtype
        assert main(["eval", "--method", "layered", "--dataset", "synth", "--root", str(root), "-o", str(out),
                     "-q", "--format", "json", "--dtype", dtype]) == 0
        summary = json.loads(capsys.readouterr().out)
        scores[dtype] = summary["metrics"]["psnr"]
        assert json.loads(next(out.glob("*/run.json")).read_text())["diffusion_dtype"] == dtype
    assert scores["bfloat16"] != scores["float32"] and abs(scores["bfloat16"] - scores["float32"]) < 0.3
    assert main(["eval", "--method", "gaussian", "--dataset", "synth", "--root", str(root), "-o",
                 str(tmp_path / "g"), "-q", "--dtype", "float16"]) != 0
    assert "--dtype: expected float32 for method gaussian" in capsys.readouterr().err
