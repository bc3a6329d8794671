"""``lensblur eval``: scores against independent references, the depth-edge band, resume, errors, perceptual
plumbing (a tiny random network) and the n/a path when backbone weights are missing."""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lensblur.data import EBB, SynthDataset
from lensblur.errors import InputError, ModelNotFoundError
from lensblur.eval import (
    EvalOptions,
    Identity,
    depth_edge_band,
    evaluate,
    get_method,
    load_perceptual,
    markdown_table,
    register_method,
)
from lensblur.eval.runner import display_8bit
from lensblur.io import read_raw, write_image
from lensblur.methods import METHODS as EVAL_METHODS
from lensblur.metrics.perceptual import PerceptualMetric, backbone_path, load_dists, load_lpips

NO_PERCEPTUAL = {"lpips": "n/a (test)", "dists": "n/a (test)"}
QUIET = EvalOptions(progress=False)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------- pieces
def test_depth_edge_band_is_the_disk_around_jumps():
    d = np.zeros((20, 30), np.float32)
    d[:, 15:] = 0.5
    band = depth_edge_band(d, radius=3)
    cols = np.where(band.any(axis=0))[0]
    # the jump lies between columns 14 and 15: both are edge pixels, widened by 3 px each side
    assert cols.tolist() == list(range(11, 19))
    assert band[:, 11:19].all()
    assert depth_edge_band(d, radius=0).sum() == 2 * 20
    # jumps at or below the threshold (0.02) and smooth ramps are not edges
    assert not depth_edge_band(np.tile(np.linspace(0, 1, 100, dtype=np.float32), (5, 1)), radius=3).any()
    small = np.zeros((10, 10), np.float32)
    small[:, 5:] = 0.019
    assert not depth_edge_band(small).any()


def test_display_8bit_is_quantised_srgb():
    mid = ((128 / 255 + 0.055) / 1.055) ** 2.4  # IEC 61966-2-1: the linear value that encodes to 128
    x = np.array([[[0.0, mid, 1.0], [2.0, -1.0, 0.0031308]]], np.float32)
    out = display_8bit(x)
    # values above 1 / below 0 are clipped first; 0.0031308 (the curve's knee) encodes to 0.04045
    np.testing.assert_allclose(out[0, 0], [0.0, 128 / 255, 1.0])
    np.testing.assert_allclose(out[0, 1], [1.0, 0.0, round(0.04045 * 255) / 255])
    np.testing.assert_array_equal(display_8bit(torch.from_numpy(x)), out)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("limit", 0, "^limit: expected an integer >= 1"),
    ("workers", -1, "^workers: expected an integer >= 0"),
    ("edge_band", 2.5, "^edge_band: expected an integer >= 0"),
    ("blur", -3.0, "^blur: expected a CoC scale in pixels > 0"),
    ("focus_disparity", 1.5, r"^focus_disparity: expected a disparity in \[0, 1\]"),
    ("blades", 2, "^blades: expected 0 \\(a circle\\) or at least 3"),
])
def test_eval_options_refuse_bad_values_when_made(field, value, message):
    """Python callers get the same checks as the command line, before any run starts."""
    with pytest.raises(InputError, match=message):
        EvalOptions(**{field: value})


# ---------------------------------------------------------------------------------------------- scores
def test_identity_scores_match_scikit_image_on_the_8bit_files(synth_root, tmp_path):
    """Reference: the 16-bit files read as stored, rounded to 8 bits, scored by scikit-image."""
    summary = evaluate(SynthDataset(synth_root), Identity(), tmp_path / "run", dataset_name="synth",
                       options=QUIET, perceptual=NO_PERCEPTUAL)
    rows = _rows(tmp_path / "run" / "per_image.csv")
    assert [r["id"] for r in rows] == ["000000", "000001", "000002"]
    for row in rows:
        pair = synth_root / "pairs" / row["id"]
        a = np.round(read_raw(pair / "target16.png")[0] / 65535.0 * 255).astype(np.uint8)
        b = np.round(read_raw(pair / "image16.png")[0] / 65535.0 * 255).astype(np.uint8)
        assert float(row["psnr"]) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-4)
        ref_ssim = structural_similarity(a, b, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)
        assert float(row["ssim"]) == pytest.approx(ref_ssim, abs=1e-5)
        # the one vertical edge lies between columns 15 and 16; radius 5 -> columns 10..21, all 24 rows
        assert int(row["edge_pixels"]) == 24 * 12
        band = np.zeros(a.shape[:2], bool)
        band[:, 10:22] = True
        assert float(row["psnr_edge"]) == pytest.approx(
            peak_signal_noise_ratio(a[band], b[band], data_range=255), abs=1e-4)
        assert row["lpips"] == "n/a"
    assert summary["metrics"]["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in rows]))
    assert summary["metrics"]["lpips"] == "n/a (test)"
    assert "SSIM gaussian" in markdown_table([summary])


def test_ssim_variant_reaches_the_scores_and_the_table(synth_root, tmp_path):
    """skimage's defaults (7 x 7 uniform window, sample covariance) on the 8-bit files, as Val294's scripts do."""
    options = EvalOptions(progress=False, ssim="skimage-default")
    summary = evaluate(SynthDataset(synth_root), Identity(), tmp_path / "run", dataset_name="synth",
                       options=options, perceptual=NO_PERCEPTUAL)
    row = _rows(tmp_path / "run" / "per_image.csv")[0]
    pair = synth_root / "pairs" / row["id"]
    a = np.round(read_raw(pair / "target16.png")[0] / 65535.0 * 255).astype(np.uint8)
    b = np.round(read_raw(pair / "image16.png")[0] / 65535.0 * 255).astype(np.uint8)
    assert float(row["ssim"]) == pytest.approx(structural_similarity(a, b, data_range=255, channel_axis=-1), abs=1e-5)
    assert "SSIM skimage-default" in markdown_table([summary])


def test_gamma22_display_scores_the_float_values_as_bokehme_does(synth_root, tmp_path):
    """BLB as BokehMe and BokehDiff score it: clip(linear, 0, 1) ** (1 / 2.2), float, no quantisation."""
    summary = evaluate(SynthDataset(synth_root), Identity(), tmp_path / "run", dataset_name="synth",
                       options=EvalOptions(progress=False, display="gamma22"), perceptual=NO_PERCEPTUAL)
    row = _rows(tmp_path / "run" / "per_image.csv")[0]
    item = SynthDataset(synth_root)[0]
    a = np.clip(item["target"].permute(1, 2, 0).numpy().astype(np.float64), 0, 1) ** (1 / 2.2)
    b = np.clip(item["image"].permute(1, 2, 0).numpy().astype(np.float64), 0, 1) ** (1 / 2.2)
    assert float(row["psnr"]) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-4)
    assert "gamma22 values" in markdown_table([summary])
    with pytest.raises(InputError, match="^display: expected one of srgb8, gamma22"):
        EvalOptions(display="linear")
    table = (tmp_path / "run" / "table.md").read_text()
    assert "| synth | identity | 3 |" in table
    # a missing metric is one short mark per cell and one footnote per reason
    row = next(line for line in table.splitlines() if line.startswith("| synth"))
    assert row.count("n/a[^1]") == 2 and "(test)" not in row and table.count("[^1]: test") == 1


def test_perfect_method_gives_infinite_psnr_counted_apart(synth_root, tmp_path):
    class Oracle(Identity):
        name = "oracle"

        def predict(self, image, *, disparity=None, lens=None, meta=None):
            from lensblur.io import read_image

            return read_image(f"{meta['pair_dir']}/target16.png")

    summary = evaluate(SynthDataset(synth_root), Oracle(), tmp_path / "o", dataset_name="synth", options=QUIET,
                       perceptual=NO_PERCEPTUAL)
    assert summary["psnr_infinite"] == 3 and summary["metrics"]["psnr"] == "n/a"
    assert summary["metrics"]["ssim"] == pytest.approx(1.0)


def test_tiny_random_backbone_fills_the_perceptual_columns(synth_root, tmp_path):
    """Plumbing only: a tiny random conv net stands in for the pretrained backbone."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())

    def distance(x, y):
        return (net(x) - net(y)).pow(2).mean(dim=(1, 2, 3))

    calls = []

    def counted(x, y):
        calls.append((tuple(x.shape), float(x.min()), float(x.max())))
        return distance(x, y)

    perceptual = {"lpips": PerceptualMetric("tiny", counted), "dists": PerceptualMetric("tiny", distance)}
    evaluate(SynthDataset(synth_root), Identity(), tmp_path / "p", dataset_name="synth", options=QUIET,
             perceptual=perceptual)
    rows = _rows(tmp_path / "p" / "per_image.csv")
    assert len(calls) == 3 and calls[0][0] == (1, 3, 24, 32) and 0.0 <= calls[0][1] <= calls[0][2] <= 1.0
    assert all(float(r["lpips"]) > 0 for r in rows)
    same = PerceptualMetric("tiny", distance)
    img = np.random.default_rng(0).uniform(0, 1, (8, 8, 3))
    assert same(img, img) == 0.0


# ---------------------------------------------------------------------------------------------- resume
def test_resume_skips_done_images_and_drops_a_cut_row(synth_root, tmp_path):
    calls = []

    class Counting(Identity):
        name = "counting"

        def predict(self, image, **kwargs):
            calls.append(kwargs["meta"]["id"])
            return image

    out = tmp_path / "r"
    evaluate(SynthDataset(synth_root), Counting(), out, dataset_name="synth",
             options=EvalOptions(progress=False, limit=1), perceptual=NO_PERCEPTUAL)
    first = _rows(out / "per_image.csv")
    assert calls == ["000000"] and len(first) == 1
    with open(out / "per_image.csv", "a") as fh:  # an interruption in the middle of a row
        fh.write("000001,23.5,0.9")
    summary = evaluate(SynthDataset(synth_root), Counting(), out, dataset_name="synth", options=QUIET,
                       perceptual=NO_PERCEPTUAL)
    rows = _rows(out / "per_image.csv")
    assert calls == ["000000", "000001", "000002"]
    assert [r["id"] for r in rows] == ["000000", "000001", "000002"] and rows[0] == first[0]
    assert summary["images"] == 3
    evaluate(SynthDataset(synth_root), Counting(), out, dataset_name="synth", options=QUIET, perceptual=NO_PERCEPTUAL)
    assert len(calls) == 3  # nothing left to do
    with pytest.raises(InputError, match="same settings"):
        evaluate(SynthDataset(synth_root), Counting(), out, dataset_name="synth",
                 options=EvalOptions(progress=False, blur=3.0), perceptual=NO_PERCEPTUAL)


def test_workers_give_the_same_rows(synth_root, tmp_path):
    evaluate(SynthDataset(synth_root), Identity(), tmp_path / "a", dataset_name="synth", options=QUIET,
             perceptual=NO_PERCEPTUAL)
    evaluate(SynthDataset(synth_root), Identity(), tmp_path / "b", dataset_name="synth",
             options=EvalOptions(progress=False, workers=1), perceptual=NO_PERCEPTUAL)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in _rows(tmp_path / "a" / "per_image.csv")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in _rows(tmp_path / "b" / "per_image.csv")]


# ---------------------------------------------------------------------------------------------- methods
def test_classical_renderers_are_called_through_render_with_the_items_lens(synth_root, tmp_path, monkeypatch):
    render_module = importlib.import_module("lensblur.render")  # the package attribute is the function

    seen = []

    def fake_renderer(image, disparity, lens, **options):
        seen.append((tuple(image.shape), tuple(disparity.shape), lens.blur, lens.focus_disparity))
        return image * 0.5

    monkeypatch.setitem(render_module.METHODS, "halve", lambda: fake_renderer)
    method = get_method("halve")
    assert method.needs_disparity and method.needs_lens
    evaluate(SynthDataset(synth_root), method, tmp_path / "h", dataset_name="synth",
             options=EvalOptions(progress=False, limit=1), perceptual=NO_PERCEPTUAL)
    assert seen == [((1, 3, 24, 32), (1, 1, 24, 32), 2.0, 1.0)]
    evaluate(SynthDataset(synth_root), method, tmp_path / "h2", dataset_name="synth",
             options=EvalOptions(progress=False, limit=1, blur=4.0, focus_disparity=0.25), perceptual=NO_PERCEPTUAL)
    assert seen[-1][2:] == (4.0, 0.25)


def test_method_registry(monkeypatch):
    with pytest.raises(InputError, match="identity"):
        get_method("no-such-method")
    monkeypatch.setitem(EVAL_METHODS, "half", lambda: type("Half", (Identity,), {"name": "half"})())
    assert get_method("half").name == "half"
    register_method("bad", object)
    try:
        with pytest.raises(InputError, match="predict"):
            get_method("bad")
    finally:
        EVAL_METHODS.pop("bad")


def _ebb(tmp_path):
    """A one-pair EBB! tree (train/original/0.png, train/bokeh/0.png)."""
    rng = np.random.default_rng(1)
    for sub in ("original", "bokeh"):
        folder = tmp_path / "ebb" / "train" / sub
        folder.mkdir(parents=True)
        write_image(folder / "0.png", rng.uniform(0, 1, (16, 16, 3)).astype(np.float32))
    return tmp_path / "ebb"


def test_classical_method_on_ebb_needs_disparity_dir_and_lens(tmp_path, monkeypatch):
    render_module = importlib.import_module("lensblur.render")  # the package attribute is the function

    monkeypatch.setitem(render_module.METHODS, "halve", lambda: (lambda image, disparity, lens, **o: image * 0.5))
    root = _ebb(tmp_path)
    with pytest.raises(InputError, match="^disparity_dir: .*disparity_dir=DIR"):
        evaluate(EBB(root), get_method("halve"), tmp_path / "x", dataset_name="ebb", options=QUIET,
                 perceptual=NO_PERCEPTUAL)
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "0.npy", np.full((16, 16), 0.5, np.float32))
    with pytest.raises(InputError, match="^blur: .*no blur and no focus_disparity.*blur=30"):
        evaluate(EBB(root, disparity_dir=maps), get_method("halve"), tmp_path / "y", dataset_name="ebb",
                 options=QUIET, perceptual=NO_PERCEPTUAL)
    summary = evaluate(EBB(root, disparity_dir=maps), get_method("halve"), tmp_path / "z", dataset_name="ebb",
                       options=EvalOptions(progress=False, blur=2.0, focus_disparity=0.5), perceptual=NO_PERCEPTUAL)
    assert summary["images"] == 1 and summary["metrics"]["psnr_edge"] == "n/a"  # a flat map has no edges


def test_exposure_alignment_in_the_runner(tmp_path):
    root = _ebb(tmp_path)
    evaluate(EBB(root), Identity(), tmp_path / "al", dataset_name="ebb",
             options=EvalOptions(progress=False, align_exposure="linear-mean"), perceptual=NO_PERCEPTUAL)
    row = _rows(tmp_path / "al" / "per_image.csv")[0]
    item = EBB(root)[0]
    assert float(row["exposure_scale"]) == pytest.approx(float(item["target"].mean() / item["image"].mean()), rel=1e-4)
    # the default is BokehDiff's protocol: one factor per channel, recorded in run.json by name
    summary = evaluate(EBB(root), Identity(), tmp_path / "bd", dataset_name="ebb",
                       options=EvalOptions(progress=False, align_exposure=True), perceptual=NO_PERCEPTUAL)
    row = _rows(tmp_path / "bd" / "per_image.csv")[0]
    expected = EBB(root, align_exposure=True)[0]["meta"]["exposure_scale"]
    assert [float(v) for v in row["exposure_scale"].split()] == pytest.approx(expected, rel=1e-5)
    assert summary["config"]["options"]["align_exposure"] == "bokehdiff"
    assert "(exposure-aligned, bokehdiff)" in markdown_table([summary])


# ---------------------------------------------------------------------------------------------- weights
def test_missing_backbones_raise_and_become_na_columns(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("must not try to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    with pytest.raises(ModelNotFoundError) as info:
        load_lpips(hub_dir=tmp_path)
    assert str(backbone_path("alex", tmp_path)) in str(info.value)
    with pytest.raises(ModelNotFoundError, match="vgg16-397923af.pth"):
        load_dists(hub_dir=tmp_path)
    perceptual = load_perceptual(hub_dir=tmp_path)
    assert perceptual["lpips"] == f"n/a (backbone weights not found in {tmp_path / 'checkpoints' / 'alexnet-owt-7be5be79.pth'})"
    assert perceptual["dists"].startswith("n/a (backbone weights not found in ")


# ---------------------------------------------------------------------------------------------- CLI
def _cli(argv):
    from lensblur.cli import eval as eval_cli

    parser = argparse.ArgumentParser(prog="lensblur")
    eval_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", *argv])
    return args.run(args)


def test_cli_writes_run_folder_and_combined_table(synth_root, tmp_path, capsys, monkeypatch):
    from lensblur.eval import runner

    monkeypatch.setattr(runner, "load_perceptual", lambda **k: dict(NO_PERCEPTUAL))
    monkeypatch.setattr("lensblur.eval.load_perceptual", lambda **k: dict(NO_PERCEPTUAL))
    out = tmp_path / "results"
    assert _cli(["--method", "identity", "--dataset", "synth", "--root", str(synth_root), "-o", str(out),
                 "--limit", "2", "--no-progress"]) == 0
    run_dir = out / "synth-identity"
    assert len(_rows(run_dir / "per_image.csv")) == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["images"] == 2 and math.isfinite(summary["metrics"]["psnr"])
    assert "| synth | identity | 2 |" in capsys.readouterr().out
    assert "| synth | identity | 2 |" in (out / "table.md").read_text()
    assert _cli(["--method", "identity", "--dataset", "synth", "--root", str(synth_root), "--out", str(out),
                 "--limit", "2", "-q", "--format", "json"]) == 0       # the old --out still works, for now
    assert json.loads(capsys.readouterr().out) == summary
    assert _cli(["--method", "identity", "--dataset", "synth", "--root", str(synth_root), "-o", str(out),
                 "--limit", "1", "-q", "--ssim", "skimage-default", "--display", "gamma22"]) == 0
    variant = json.loads((out / "synth-identity-skimage-default-gamma22" / "summary.json").read_text())
    assert variant["config"]["options"]["ssim"] == "skimage-default"
    assert variant["config"]["options"]["display"] == "gamma22"
    with pytest.raises(InputError, match="limit"):
        _cli(["--method", "identity", "--dataset", "synth", "--root", str(synth_root), "-o", str(out),
              "--limit", "0"])
    with pytest.raises(InputError, match="manifest.json"):
        _cli(["--method", "identity", "--dataset", "synth", "--root", str(tmp_path), "-o", str(out)])
    inside = synth_root / "results"
    with pytest.raises(InputError, match="^out_dir: expected a folder outside the dataset"):
        _cli(["--method", "identity", "--dataset", "synth", "--root", str(synth_root), "-o", str(inside)])
    assert not inside.exists()


def test_cli_records_the_highlights_and_refuses_to_mix_them(synth_root, tmp_path, monkeypatch):
    # A run rendered with one highlight recovery must not be resumed with another: its scores would mix both.
    from lensblur.eval import runner

    monkeypatch.setattr(runner, "load_perceptual", lambda **k: dict(NO_PERCEPTUAL))
    monkeypatch.setattr("lensblur.eval.load_perceptual", lambda **k: dict(NO_PERCEPTUAL))
    out = tmp_path / "results"
    base = ["--method", "gaussian", "--dataset", "synth", "--root", str(synth_root), "-o", str(out), "--limit", "1",
            "-q"]
    assert _cli([*base, "--highlights", "off"]) == 0
    run = json.loads(next(out.glob("*/run.json")).read_text())
    assert run["highlights"] == "off"
    with pytest.raises(InputError, match="same settings"):
        _cli(base)      # the default, auto
    with pytest.raises(InputError, match="highlights"):
        _cli(["--method", "identity", "--dataset", "synth", "--root", str(synth_root), "-o", str(tmp_path / "x"),
              "--highlights", "off"])
