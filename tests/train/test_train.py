"""The shared training loop on a tiny pix2pix: checkpoints round trip, resume is exact, mistakes are named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lensblur.baselines import Pix2Pix, Pix2PixConfig
from lensblur.errors import InputError, ModelNotFoundError
from lensblur.train import RandomCrops, TrainConfig, load_weights, read_metadata, train

TINY = Pix2PixConfig(num_downs=5, ngf=4, ndf=4, n_layers=2, lr_constant_steps=3, lr_decay_steps=3)


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _config(steps, **kw):
    return TrainConfig(steps=steps, batch_size=2, checkpoint_every=3, log_every=1, progress=False, seed=1, **kw)


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(pairs, tmp_path):
    torch.manual_seed(0)
    train(Pix2Pix(TINY, seed=3), RandomCrops(pairs, 32), tmp_path / "a", _config(6))
    torch.manual_seed(0)
    train(Pix2Pix(TINY, seed=3), RandomCrops(pairs, 32), tmp_path / "b", _config(3))
    torch.manual_seed(123)          # whatever happens between the two processes
    result = train(Pix2Pix(TINY, seed=3), RandomCrops(pairs, 32), tmp_path / "b", _config(6), resume=True)
    a, b = _weights(tmp_path / "a" / "last.safetensors"), _weights(tmp_path / "b" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert result.steps == 6 and set(result.losses) >= {"loss_d", "loss_g", "l1"}
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in (tmp_path / "a").glob("step-*")) == ["step-00000003", "step-00000006"]


def test_loading_processes_do_not_change_the_run(pairs, tmp_path):
    """Each item's crop is drawn under its own seed, so two loading processes give the weights of none."""
    for name, workers in (("main", 0), ("workers", 2)):
        torch.manual_seed(0)
        train(Pix2Pix(TINY, seed=3), RandomCrops(pairs, 32), tmp_path / name, _config(2, num_workers=workers))
    a, b = _weights(tmp_path / "main" / "last.safetensors"), _weights(tmp_path / "workers" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_round_trip_and_its_metadata(pairs, tmp_path):
    method = Pix2Pix(TINY, seed=3)
    train(method, RandomCrops(pairs, 32), tmp_path / "run", _config(2), val_dataset=pairs)
    meta = read_metadata(tmp_path / "run" / "last.safetensors")
    assert meta["method"] == "pix2pix" and meta["config"]["num_downs"] == 5 and meta["step"] == 2
    fresh = Pix2Pix(TINY, seed=99)
    load_weights(fresh, tmp_path / "run")
    image = pairs[0]["image"][None]
    torch.testing.assert_close(fresh.predict(image), method.predict(image))
    assert fresh.predict(image).shape == image.shape      # 48x40 is padded to the U-Net's grid and cropped back
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "val_psnr" in record and "val_ssim" in record
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    assert {"loss_g", "val_psnr"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss_g")] == [1, 2]
    from PIL import Image

    with Image.open(tmp_path / "run" / "samples" / "step-00000002.png") as sheet:   # input | prediction | target
        assert sheet.width > 3 * 48 and sheet.height > 3 * 40


def test_mistakes_are_named(pairs, tmp_path):
    with pytest.raises(InputError, match="^crop: expected items at least 64 px on each side"):
        train(Pix2Pix(TINY), RandomCrops(pairs, 64), tmp_path / "run", _config(1))
    assert not (tmp_path / "run").exists()          # refused before the run folder was made
    with pytest.raises(InputError, match="^crop: expected training items whose sides are multiples of 32"):
        train(Pix2Pix(TINY), RandomCrops(pairs, 40), tmp_path / "run", _config(1))
    assert not (tmp_path / "run").exists()          # a new run that failed leaves no folder behind
    train(Pix2Pix(TINY), RandomCrops(pairs, 32), tmp_path / "run", _config(1))
    with pytest.raises(InputError, match="^out: expected a new run folder, or resume=True"):
        train(Pix2Pix(TINY), RandomCrops(pairs, 32), tmp_path / "run", _config(1))
    other = Pix2PixConfig(num_downs=5, ngf=8, ndf=4, n_layers=2)
    with pytest.raises(InputError, match="^out: expected the run's own settings to resume it"):
        train(Pix2Pix(other), RandomCrops(pairs, 32), tmp_path / "run", _config(2), resume=True)
    with pytest.raises(InputError, match=r"^checkpoint: expected weights that fit this pix2pix"):
        load_weights(Pix2Pix(other), tmp_path / "run" / "last.safetensors")
    with pytest.raises(ModelNotFoundError, match="checkpoint not found"):
        load_weights(Pix2Pix(TINY), tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"), metadata={"method": "bggan"})
    with pytest.raises(InputError, match="^checkpoint: expected a checkpoint of method pix2pix.*a bggan checkpoint"):
        load_weights(Pix2Pix(TINY), tmp_path / "plain.safetensors")
    with pytest.raises(InputError, match="^dataset: expected at least one training item"):
        train(Pix2Pix(TINY), [], tmp_path / "empty", _config(1))
    with pytest.raises(InputError, match="^crop: expected items at least 64 px"):
        RandomCrops(pairs, 64)[0]
    with pytest.raises(InputError, match="^steps: expected an integer >= 1"):
        TrainConfig(steps=0)


def test_cli_train(pairs, tmp_path, capsys):
    from lensblur.cli import main

    root = str(pairs.root)
    argv = ["train", "pix2pix", "--dataset", "synth", "--root", root, "-o", str(tmp_path / "run"), "--crop", "32",
            "--num-downs", "5", "--checkpoint-every", "1", "-q"]
    assert main(argv + ["--steps", "2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    assert main(argv + ["--steps", "2"]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(argv + ["--steps", "3", "--resume"]) == 0
    assert read_metadata(tmp_path / "run")["step"] == 3
    inside = [*argv[:6], "-o", str(pairs.root / "run"), *argv[8:], "--steps", "1", "--lr", "-1"]
    assert main(inside) == 1                        # a run folder inside the dataset: refused, nothing written
    assert "--output: expected a run folder outside the dataset" in capsys.readouterr().err
    assert not (pairs.root / "run").exists()
    assert main(argv[:6] + ["-o", str(tmp_path / "lr"), *argv[8:], "--steps", "1", "--lr", "-1"]) == 1
    assert "--lr: expected a finite number > 0, got -1.0" in capsys.readouterr().err
    assert main(argv[:6] + ["-o", str(tmp_path / "v"), *argv[8:], "--steps", "1", "--val-root", str(tmp_path / "no")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lensblur train: error: --val-root: expected") and "Fix: pass --val-root FOLDER" in err
    crop = [*argv[:6], "-o", str(tmp_path / "c"), "--crop", "40", *argv[10:], "--steps", "1"]
    assert main(crop) == 1 and not (tmp_path / "c").exists()
    assert ("--crop: expected training items whose sides are multiples of 32 (2**num_downs, num_downs=5), got 40x40. "
            "Fix: --crop 32") in capsys.readouterr().err


def test_trained_pix2pix_is_an_eval_method(pairs, tmp_path, capsys):
    """lensblur eval --method pix2pix --checkpoint RUN/last.safetensors scores the trained generator."""
    from lensblur.cli import main
    from lensblur.eval import get_method

    method = Pix2Pix(TINY, seed=3)
    train(method, RandomCrops(pairs, 32), tmp_path / "run", _config(1))
    evaluated = get_method("pix2pix", checkpoint=tmp_path / "run" / "last.safetensors")
    image = pairs[0]["image"].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(evaluated.predict(image), method.predict(pairs[0]["image"][None])[0].permute(1, 2, 0),
                               atol=1e-6)
    with pytest.raises(InputError, match="^checkpoint: expected a pix2pix checkpoint to evaluate"):
        get_method("pix2pix")
    assert main(["eval", "--method", "pix2pix", "--checkpoint", str(tmp_path / "run" / "last.safetensors"),
                 "--dataset", "synth", "--root", str(pairs.root), "-o", str(tmp_path / "results"), "-q"]) == 0
    assert "| synth | pix2pix | 3 |" in capsys.readouterr().out
    assert main(["eval", "--method", "pix2pix", "--dataset", "synth", "--root", str(pairs.root), "-o",
                 str(tmp_path / "r2"), "-q"]) == 1
    assert "--checkpoint" in capsys.readouterr().err


def test_trained_pix2pix_renders_a_photo_without_depth(pairs, tmp_path, capsys, caplog):
    """lensblur render --method pix2pix --checkpoint RUN/last.safetensors: no depth and no lens are read; the
    file holds the generator's output; a flag the method does not read is named; mistakes come before writing."""
    from lensblur.cli import main
    from lensblur.io import read_image, write_image

    method = Pix2Pix(TINY, seed=3)
    train(method, RandomCrops(pairs, 32), tmp_path / "run", _config(1))
    photo, out = tmp_path / "photo.png", tmp_path / "out.png"
    write_image(photo, pairs[0]["image"].permute(1, 2, 0).numpy())
    checkpoint = str(tmp_path / "run" / "last.safetensors")
    assert main(["render", str(photo), "--method", "pix2pix", "--checkpoint", checkpoint, "--blur", "9",
                 "-o", str(out)]) == 0
    assert "pix2pix" in capsys.readouterr().out and "does not read --blur: ignored" in caplog.text
    expected = method.predict(torch.from_numpy(read_image(photo)).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    np.testing.assert_allclose(read_image(out), expected.numpy(), atol=1 / 255 + 1e-6)
    for argv, message in ((["--method", "pix2pix"], "--checkpoint: expected a pix2pix checkpoint"),
                          (["--method", "pix2pix", "--checkpoint", checkpoint, "--highlights", "0.5"], "--highlights"),
                          (["--method", "layered", "--checkpoint", checkpoint], "--checkpoint: expected an option that method layered takes"),
                          (["--method", "nope"], "--method: expected one of")):
        assert main(["render", str(photo), *argv, "-o", str(tmp_path / "bad.png")]) == 1
        assert message in capsys.readouterr().err and not (tmp_path / "bad.png").exists()


def test_scoring_on_val294_a_model_trained_on_it_warns(tmp_path, rng, caplog):
    """A checkpoint records its training data; evaluating it on Val294 after training on EBB!'s train split
    (which holds Val294) says the score is not held out."""
    from lensblur.data import EBB, EBBVal294
    from lensblur.data.ebb import VAL294_FIRST, holds_val294
    from lensblur.eval import EvalOptions, evaluate, get_method
    from lensblur.io import write_image

    for sub in ("original", "bokeh"):
        for i in (3, VAL294_FIRST):
            (tmp_path / "ebb" / "Training" / sub).mkdir(parents=True, exist_ok=True)
            write_image(tmp_path / "ebb" / "Training" / sub / f"{i}.png", rng.uniform(0, 1, (40, 48, 3)).astype("f4"))
    train(Pix2Pix(TINY), RandomCrops(EBB(tmp_path / "ebb", "train"), 32), tmp_path / "run", _config(1),
          data_info={"dataset": "ebb", "split": "train"})
    method = get_method("pix2pix", checkpoint=tmp_path / "run")
    assert method.training_data == {"dataset": "ebb", "split": "train"}
    with caplog.at_level("WARNING", logger="lensblur.eval.runner"):
        evaluate(EBBVal294(tmp_path / "ebb"), method, tmp_path / "scores", dataset_name="ebb-val294",
                 options=EvalOptions(progress=False),
                 perceptual={"lpips": "n/a (test)", "dists": "n/a (test)"})
    assert "not a held-out measure" in caplog.text
    assert holds_val294("ebb", "train") and not holds_val294("ebb", "train294") and holds_val294("ebb-val294", None)
