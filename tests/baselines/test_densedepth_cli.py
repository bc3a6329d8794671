"""A tiny DenseDepth trained through ``lensblur train depth`` (synth and NYU), then used as a depth source
(``lensblur depth/render --depth-model RUN``) and inside depth-threshold (``--checkpoint RUN``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lensblur.cli import main
from lensblur.train import read_metadata

TRAIN = ["--steps", "1", "--crop", "32", "--batch-size", "2", "--decoder-width", "16", "--checkpoint-every", "1",
         "-q"]


@pytest.fixture(scope="module")
def synth_root(pairs):
    return pairs.root


@pytest.fixture(scope="module")
def run(synth_root, tmp_path_factory):
    """One step of lensblur train depth on the synth pairs, without ImageNet weights (an empty torch hub)."""
    out = tmp_path_factory.mktemp("runs") / "depth1"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
        assert main(["train", "depth", "--dataset", "synth", "--root", str(synth_root), "-o", str(out), *TRAIN]) == 0
    return out


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    rng = np.random.default_rng(4)
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.slow
def test_train_depth_on_synth_records_and_resumes(run, synth_root, capsys):
    meta = read_metadata(run)
    assert meta["method"] == "depth" and meta["step"] == 1 and meta["config"]["decoder_width"] == 16
    assert meta["config"]["pretrained_encoder"] is None and meta["data"] == {"dataset": "synth", "split": "train"}
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss", "depth_l1", "depth_grad", "depth_ssim"} <= set(line)
    capsys.readouterr()
    argv = ["train", "depth", "--dataset", "synth", "--root", str(synth_root), "-o", str(run), *TRAIN]
    argv[argv.index("--steps") + 1] = "2"
    assert main([*argv, "--resume", "--format", "json", "--val-root", str(synth_root)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and {"val_abs_rel", "val_rmse", "val_delta1"} <= set(summary)


@pytest.mark.slow
def test_train_depth_on_nyu_and_flag_mistakes(tmp_path, capsys, monkeypatch):
    """NYU items (a folder of NAME_colors.png + 16-bit NAME_depth.png in millimetres) train the same way; a
    flag of another method, or an encoder file that is not there, is named."""
    rng = np.random.default_rng(2)
    nyu = tmp_path / "nyu"
    nyu.mkdir()
    for name in ("a", "b"):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(nyu / f"{name}_colors.png")
        Image.fromarray(rng.integers(600, 9000, (40, 48)).astype(np.uint16)).save(nyu / f"{name}_depth.png")
    argv = ["train", "depth", "--dataset", "nyu", "--root", str(nyu), *TRAIN]
    assert main([*argv, "-o", str(tmp_path / "run"), "--pretrained-encoder", str(tmp_path / "no.pth")]) == 1
    err = capsys.readouterr().err
    assert "DenseNet-169 encoder weights not found" in err and str(tmp_path / "no.pth") in err
    assert main([*argv, "-o", str(tmp_path / "run2"), "--num-downs", "5"]) == 1
    assert "--num-downs: expected a setting of depth (it is one of pix2pix" in capsys.readouterr().err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    assert main([*argv, "-o", str(tmp_path / "run3")]) == 0
    assert read_metadata(tmp_path / "run3")["data"]["dataset"] == "nyu"


def test_depth_and_render_with_a_trained_depth_model(run, photo, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "d.png"
    assert main(["depth", str(photo), "--depth-model", str(run), "-o", str(out)]) == 0
    assert "lensblur depth network" in capsys.readouterr().out
    disparity = np.asarray(Image.open(out))
    assert disparity.shape == (48, 64) and disparity.dtype == np.uint16 and disparity.max() == 65535
    assert main(["depth", str(photo), "--depth-model", str(run / "last.safetensors"), "-o", str(tmp_path / "e.png")]) \
        == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "e.png")), disparity)
    assert main(["render", str(photo), "--depth-model", str(run), "--blur", "4", "-o", str(tmp_path / "r.png")]) == 0
    assert main(["render", str(photo), "--method", "depth-threshold", "--checkpoint", str(run), "--threshold", "0.5",
                 "-o", str(tmp_path / "t.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "t.png")).shape == (48, 64, 3)


def test_a_checkpoint_of_another_method_is_not_a_depth_model(photo, tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    other = tmp_path / "p2p.safetensors"
    save_file({"x": torch.zeros(1)}, str(other), metadata={"method": "pix2pix", "config": "{}"})
    assert main(["depth", str(photo), "--depth-model", str(other), "-o", str(tmp_path / "d.png")]) == 1
    assert "--depth-model: expected a depth model: a checkpoint of lensblur train depth" in capsys.readouterr().err


def test_eval_depth_threshold_with_the_trained_network(run, synth_root, tmp_path, capsys):
    from lensblur.methods import get_method

    method = get_method("depth-threshold", checkpoint=run / "last.safetensors")
    assert not method.needs_disparity and method.training_data["dataset"] == "synth"
    assert main(["eval", "--method", "depth-threshold", "--checkpoint", str(run / "last.safetensors"), "--dataset",
                 "synth", "--root", str(synth_root), "-o", str(tmp_path / "results"), "--format", "json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 3
