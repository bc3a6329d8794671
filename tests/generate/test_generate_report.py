"""Focus scores in the report against independent implementations: OpenCV's Laplacian variance and Brenner's
gradient written out in numpy, on the same grey region of the same file."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lensblur.errors import InputError
from lensblur.generate import global_step_count, mix_embeddings
from lensblur.generate.report import Region, focus_report, format_markdown, report_files


def grey(rgb_uint8: np.ndarray) -> np.ndarray:
    rgb = rgb_uint8.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def numpy_brenner(g: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    total = 0.0
    for y in range(y0, y1):
        for x in range(x0, x1):
            if x + 2 < g.shape[1]:
                total += (g[y, x + 2] - g[y, x]) ** 2
    return total


def test_report_scores_equal_opencv_and_numpy_brenner(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    sharp = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(base).save(tmp_path / "base.png")
    Image.fromarray(sharp).save(tmp_path / "sharp.png")
    box = (5, 7, 49, 33)  # touches the right edge: Brenner pairs past the image are not counted
    scores = report_files([tmp_path / "base.png", tmp_path / "sharp.png"], [Region("obj", box)])
    x0, y0, x1, y1 = box
    for score, pixels in zip(scores, (base, sharp)):
        lap = cv2.Laplacian(grey(pixels), cv2.CV_64F)
        assert score.vol == pytest.approx(lap[y0:y1, x0:x1].var(), rel=1e-9)
        assert score.brenner == pytest.approx(numpy_brenner(grey(pixels), box), rel=1e-9)
    assert scores[0].vol_ratio is None
    assert scores[1].vol_ratio == pytest.approx(scores[1].vol / scores[0].vol)
    assert scores[1].brenner_ratio == pytest.approx(scores[1].brenner / scores[0].brenner)


def test_focus_report_cli_variants_and_blur_maps(tmp_path, capsys):
    """--grey uint8 and --brenner pertuz reach the scores; --blur-maps writes the normalised Laplacian."""
    cv2 = pytest.importorskip("cv2")
    from lensblur.cli import main
    from lensblur.io import read_raw

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    (tmp_path / "maps").mkdir()
    assert main(["focus-report", str(tmp_path / "a.png"), "--grey", "uint8", "--brenner", "pertuz",
                 "--blur-maps", str(tmp_path / "maps"), "--format", "json"]) == 0
    import json

    score = json.loads(capsys.readouterr().out)["scores"][0]
    g8 = np.round(grey(pixels))
    assert score["vol"] == pytest.approx(cv2.Laplacian(g8, cv2.CV_64F).var(), rel=1e-9)
    dh, dv = np.zeros_like(g8), np.zeros_like(g8)
    dh[:, :-2], dv[:-2, :] = g8[:, 2:] - g8[:, :-2], g8[2:, :] - g8[:-2, :]
    assert score["brenner"] == pytest.approx((np.maximum(dh, dv) ** 2).mean(), rel=1e-9)
    written, _ = read_raw(tmp_path / "maps" / "a_blurmap.png")
    lap = np.abs(cv2.Laplacian(g8, cv2.CV_64F))
    np.testing.assert_array_equal(written, np.round(lap / lap.max() * 255).astype(np.uint8))
    assert main(["focus-report", str(tmp_path / "a.png"), "--blur-maps", str(tmp_path / "nope")]) == 1


def test_blur_maps_never_overwrite_an_image_or_each_other(tmp_path, capsys):
    from lensblur.cli import main

    rng = np.random.default_rng(2)
    for folder in ("base", "gbsd"):
        (tmp_path / folder).mkdir()
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / folder / "0001.png")
    (tmp_path / "maps").mkdir()
    assert main(["focus-report", str(tmp_path / "base" / "0001.png"), str(tmp_path / "gbsd" / "0001.png"),
                 "--blur-maps", str(tmp_path / "maps")]) == 1
    assert "--blur-maps" not in (err := capsys.readouterr().err) and "both give 0001_blurmap.png" in err, err
    assert not any((tmp_path / "maps").iterdir())                 # nothing written
    victim = tmp_path / "base" / "0001_blurmap.png"               # an image named as a map would be
    victim.write_bytes((tmp_path / "base" / "0001.png").read_bytes())
    before = victim.read_bytes()
    assert main(["focus-report", str(tmp_path / "base" / "0001.png"), str(victim),
                 "--blur-maps", str(tmp_path / "base")]) == 1
    assert "--blur-maps: expected a path different from the input" in capsys.readouterr().err
    assert victim.read_bytes() == before


def test_report_table_shape_and_errors():
    flat = np.full((20, 20, 3), 0.5)
    noisy = np.random.default_rng(1).random((20, 20, 3))
    scores = focus_report([("flat", flat), ("noisy", noisy)], [Region("a", (0, 0, 10, 10)), Region("b")])
    assert [(s.image, s.region) for s in scores] == [("flat", "a"), ("flat", "b"), ("noisy", "a"), ("noisy", "b")]
    assert math.isinf(scores[2].vol_ratio)  # a flat baseline has zero VoL
    assert "| noisy | a (0,0,10,10) |" in format_markdown(scores)
    with pytest.raises(InputError, match="^regions: expected x0 < x1 <= 20.* for region 'a'"):
        focus_report([("flat", flat)], [Region("a", (0, 0, 21, 5))])
    with pytest.raises(InputError, match="images: expected images of the baseline's size 20x20"):
        focus_report([("flat", flat), ("small", flat[:10])])
    # two boxes of one name would divide by the wrong baseline: refused, with the CLI's flag in the message
    with pytest.raises(InputError, match="^regions: expected regions with different names.*'a' 2 times"):
        focus_report([("flat", flat), ("noisy", noisy)], [Region("a", (0, 0, 10, 10)), Region("a", (5, 5, 20, 20))])


def test_focus_report_cli_refuses_repeated_box_names(tmp_path, capsys):
    from lensblur.cli import main

    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / name)
    assert main(["focus-report", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--box", "x=0,0,9,9",
                 "--box", "x=5,5,19,19"]) == 1
    assert "--box: expected regions with different names" in capsys.readouterr().err


@pytest.mark.parametrize("steps, sigma, expected", [
    (50, 0.8, 40), (50, 0.9, 45), (50, 0.5, 25), (25, 0.8, 20), (25, 0.82, 21), (3, 0.5, 2), (4, 0.01, 1),
    (50, 1.0, 50),
])
def test_global_step_count_rounds_half_up(steps, sigma, expected):
    assert global_step_count(steps, sigma=sigma) == expected


@pytest.mark.parametrize("run, total, sigma, expected", [
    (25, 50, 0.8, 15),   # strength 0.5: the switch at step 40 of 50, 25 of them skipped
    (50, 50, 0.8, 40),   # text-to-image: both readings agree
    (10, 50, 0.5, 1),    # the switch falls among the skipped steps: still one global step
    (40, 50, 0.9, 35),
])
def test_sigma_of_the_whole_schedule(run, total, sigma, expected):
    assert global_step_count(run, sigma=sigma, num_inference_steps=total, sigma_of="schedule") == expected
    assert global_step_count(run, sigma=sigma, num_inference_steps=total) == global_step_count(run, sigma=sigma)
    with pytest.raises(InputError, match="^sigma_of: expected one of steps-run, schedule"):
        global_step_count(run, sigma=sigma, sigma_of="absolute")


def test_mix_embeddings_formula():
    local, glob = torch.randn(2, 77, 8), torch.randn(2, 77, 8)
    torch.testing.assert_close(mix_embeddings(local, glob, 0.0), local)
    torch.testing.assert_close(mix_embeddings(local, glob, 3.0), (local + 3 * glob) / 4)
    assert mix_embeddings(local, glob, float("inf")) is glob
    with pytest.raises(InputError, match="^alpha"):
        mix_embeddings(local, glob, -0.5)


def test_import_stays_light():
    code = ("import sys, lensblur, lensblur.generate, lensblur.cli.generate, lensblur.cli.focus_report; "
            "print(sorted(m for m in ('diffusers', 'transformers', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
