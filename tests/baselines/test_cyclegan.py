"""CycleGAN: its networks and their counts, each loss term by hand, the image pool, a step's wiring, checkpoints,
exact resume with a filled pool, and the command line (train, render, eval)."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lensblur.baselines import (
    CycleGAN,
    CycleGANConfig,
    ImagePool,
    Pix2Pix,
    Pix2PixConfig,
    cyclegan_generator_loss,
    discriminator_loss,
)
from lensblur.baselines.pix2pix import to_display
from lensblur.errors import InputError, ShapeError
from lensblur.train import RandomCrops, TrainConfig, Unpaired, load_weights, read_metadata, train

TINY = CycleGANConfig(num_downs=5, ngf=4, ndf=4, n_layers=2, pool_size=4, lr_constant_steps=3, lr_decay_steps=3)


@pytest.fixture(scope="module")
def accelerator():
    import accelerate

    return accelerate.Accelerator()


def _config(steps, **kw):
    return TrainConfig(steps=steps, batch_size=2, checkpoint_every=3, log_every=1, progress=False, seed=1, **kw)


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _batch(seed=0, size=32):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(2, 3, size, size, generator=g), "target": torch.rand(2, 3, size, size, generator=g)}


# --- networks ----------------------------------------------------------------------------------------------
def test_default_networks_have_the_fact_sheets_counts():
    """baselines.md section 3/7: unet_256 with instance norm 54,409,603; PatchGAN on 3 channels with instance
    norm 2,764,737; section 4: resnet_9blocks 11,378,179."""
    def count(module):
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        unet, resnet = CycleGAN(), CycleGAN(CycleGANConfig(architecture="resnet"))
    for method in (unet, resnet):
        assert count(method.discriminator_a) == count(method.discriminator_b) == 2_764_737
        assert not any(isinstance(m, torch.nn.Dropout) for m in method.generator_ab.modules())
    assert count(unet.generator_ab) == count(unet.generator_ba) == 54_409_603
    assert count(resnet.generator_ab) == count(resnet.generator_ba) == 11_378_179
    assert set(unet.modules()) == {"generator_ab", "generator_ba", "discriminator_a", "discriminator_b"}


@pytest.mark.parametrize("config", [TINY, CycleGANConfig(architecture="resnet", n_blocks=1, ngf=4, ndf=4, n_layers=2)])
def test_output_shapes(config):
    method = CycleGAN(config, seed=1)
    image = torch.rand(1, 3, 40, 46)                  # not a multiple of 32 (U-Net) nor of 4 (ResNet): padded
    out = method.predict(image)
    assert out.shape == image.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    x = torch.zeros(2, 3, 32, 32)
    assert method.generator_ba(x).shape == x.shape
    assert method.discriminator_a(x).shape == method.discriminator_b(x).shape == (2, 1, 6, 6)


def test_bad_settings_are_named():
    with pytest.raises(InputError, match="^architecture: expected unet or resnet"):
        CycleGANConfig(architecture="vit")
    with pytest.raises(InputError, match="^pool_size: expected an integer >= 0"):
        CycleGANConfig(pool_size=-1)
    with pytest.raises(InputError, match="^identity_weight: expected a number >= 0"):
        CycleGANConfig(identity_weight=-0.5)
    with pytest.raises(InputError, match="^num_downs: expected an integer >= 5"):
        CycleGANConfig(num_downs=4)


@pytest.mark.parametrize("lr", [-1.0, 0.0, float("nan"), float("inf")])
def test_every_trainer_refuses_a_learning_rate_that_is_not_positive(lr):
    from lensblur.baselines.bggan import BGGANConfig
    from lensblur.baselines.densedepth import DenseDepthConfig
    from lensblur.baselines.pix2pix import Pix2PixConfig

    for config in (Pix2PixConfig, CycleGANConfig, BGGANConfig, DenseDepthConfig):
        with pytest.raises(InputError, match="^lr: expected a finite number > 0"):
            config(lr=lr)


def test_the_learning_rate_is_constant_then_decays_linearly():
    """baselines.md section 7: with 100 + 100 epochs (epoch_count 1) the rate is constant through epoch 100
    and reaches 2e-4 / 101 at the last; here counted in steps, for both optimisers."""
    from lensblur.baselines.pix2pix import linear_decay

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2e-4)
    schedule, rates = linear_decay(optimizer, 100, 100), []
    for _ in range(200):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[:100] == [2e-4] * 100
    assert rates[100] == pytest.approx(2e-4 * 100 / 101) and rates[-1] == pytest.approx(2e-4 / 101)
    method = CycleGAN(TINY)
    seen = []
    for _ in range(6):
        seen += [o.param_groups[0]["lr"] / 2e-4 for o in method.optimizers().values()]
        for o, s in zip(method.optimizers().values(), method.schedulers().values()):
            o.step()
            s.step()
    assert seen == pytest.approx([f for f in (1, 1, 1, 3 / 4, 2 / 4, 1 / 4) for _ in range(2)])


# --- losses by hand ----------------------------------------------------------------------------------------
def test_lsgan_terms_at_a_known_output():
    # baselines.md section 7: D output 0 everywhere: L_D = 0.5 * ((0 - 1)^2 + (0 - 0)^2) = 0.5, L_G = 1.
    zeros = torch.zeros(1, 1, 3, 3)
    assert float(discriminator_loss(zeros, zeros, "lsgan")) == pytest.approx(0.5)
    x = torch.zeros(1, 3, 4, 4)
    _, parts = cyclegan_generator_loss(zeros, torch.full((1, 1, 3, 3), 0.5), x, x, x, x, x, x)
    assert float(parts["gan_ab"]) == pytest.approx(1.0)
    assert float(parts["gan_ba"]) == pytest.approx(0.25)       # (0.5 - 1)^2


def test_cycle_and_identity_terms_by_hand():
    # baselines.md section 7: rec = real + 0.1 gives 10 * 0.1 = 1.0 per direction; |G(B) - B| = 0.1 gives
    # 0.5 * 10 * 0.1 = 0.5 per direction. With D outputs of 1 (no GAN loss) the total is 2 * 1.0 + 2 * 0.5.
    g = torch.Generator().manual_seed(0)
    real_a, real_b = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    ones = torch.ones(2, 1, 2, 2)
    total, parts = cyclegan_generator_loss(ones, ones, real_a, real_b, real_a + 0.1, real_b - 0.1,
                                           real_a - 0.1, real_b + 0.1)
    for name in ("cycle_a", "cycle_b", "identity_a", "identity_b"):
        assert float(parts[name]) == pytest.approx(0.1)
    assert float(parts["gan_ab"]) == float(parts["gan_ba"]) == 0.0
    assert float(total) == pytest.approx(3.0)
    # Only one direction off by 0.2: 10 * 0.2 = 2; no identity term.
    total, parts = cyclegan_generator_loss(ones, ones, real_a, real_b, real_a, real_b + 0.2, identity_weight=0.0)
    assert set(parts) == {"gan_ab", "gan_ba", "cycle_a", "cycle_b"} and float(total) == pytest.approx(2.0)
    with pytest.raises(InputError, match="^same_a: expected F"):
        cyclegan_generator_loss(ones, ones, real_a, real_b, real_a, real_b)
    with pytest.raises(ShapeError, match="^rec_b"):
        cyclegan_generator_loss(ones, ones, real_a, real_b, real_a, real_b[..., :2], identity_weight=0.0)
    with pytest.raises(InputError, match="^cycle_weight"):
        cyclegan_generator_loss(ones, ones, real_a, real_b, real_a, real_b, cycle_weight=-1.0, identity_weight=0.0)


def test_a_step_computes_each_term_with_the_right_networks(accelerator):
    """The logged terms equal a computation by hand with copies of the networks from before the step: G's
    cycle is F(G(a)), G's identity is G(b), D_B judges G's outputs, and each discriminator's loss is halved."""
    method = CycleGAN(CycleGANConfig(num_downs=5, ngf=4, ndf=4, n_layers=2, pool_size=0), seed=2)
    method.prepare(accelerator)
    g, f, d_a, d_b = (copy.deepcopy(m) for m in method.modules().values())
    batch = _batch(1)
    losses = method.training_step(batch, accelerator)
    a, b = to_display(batch["image"]), to_display(batch["target"])
    with torch.no_grad():
        expected = {"cycle_a": F.l1_loss(f(g(a)), a), "cycle_b": F.l1_loss(g(f(b)), b),
                    "identity_a": F.l1_loss(f(a), a), "identity_b": F.l1_loss(g(b), b),
                    "gan_ab": ((d_b(g(a)) - 1) ** 2).mean(), "gan_ba": ((d_a(f(b)) - 1) ** 2).mean(),
                    "loss_d_b": 0.5 * (((d_b(b) - 1) ** 2).mean() + (d_b(g(a)) ** 2).mean()),
                    "loss_d_a": 0.5 * (((d_a(a) - 1) ** 2).mean() + (d_a(f(b)) ** 2).mean())}
    for name, value in expected.items():
        assert losses[name] == pytest.approx(float(value), rel=1e-5), name
    weighted = (losses["gan_ab"] + losses["gan_ba"] + 10 * (losses["cycle_a"] + losses["cycle_b"])
                + 5 * (losses["identity_a"] + losses["identity_b"]))
    assert losses["loss_g"] == pytest.approx(weighted, rel=1e-5)


def test_a_training_step_changes_all_four_networks(accelerator):
    method = CycleGAN(TINY, seed=1)
    method.prepare(accelerator)
    before = {name: copy.deepcopy(m.state_dict()) for name, m in method.modules().items()}
    method.training_step(_batch(), accelerator)
    for name, module in method.modules().items():
        changed = [k for k, v in module.state_dict().items() if not torch.equal(v, before[name][k])]
        assert changed, name
    assert len(method.pool_a) == len(method.pool_b) == 2


# --- the image pool ----------------------------------------------------------------------------------------
def _numbered(k):
    return torch.full((1, 1, 1, 1), float(k))


def test_a_pool_of_size_0_passes_images_through():
    pool = ImagePool(0)
    images = torch.rand(3, 3, 4, 4, requires_grad=True)
    out = pool.query(images)
    assert torch.equal(out, images) and not out.requires_grad and len(pool) == 0


def test_the_pool_fills_first_then_swaps_half_of_the_time():
    pool = ImagePool(3, generator=torch.Generator().manual_seed(0))
    assert [float(pool.query(_numbered(k))) for k in range(3)] == [0.0, 1.0, 2.0]
    held, swaps, positions = {0.0, 1.0, 2.0}, 0, 1000
    for k in range(3, 3 + positions):
        got = float(pool.query(_numbered(k)))
        if got != k:                         # a swap: an image it held comes back, the new one takes its place
            assert got in held
            held = (held - {got}) | {float(k)}
            swaps += 1
        assert {float(x) for x in pool.images} == held
    # 1000 draws with probability 1/2: the standard deviation of the fraction is 0.016.
    assert abs(swaps / positions - 0.5) < 0.06
    # A batch is queried image by image; the same seed gives the same answers.
    a, b = (ImagePool(2, generator=torch.Generator().manual_seed(7)) for _ in range(2))
    batches = [torch.arange(4.0).view(4, 1, 1, 1) + 10 * i for i in range(3)]
    assert all(torch.equal(a.query(x), b.query(x)) for x in batches)
    with pytest.raises(InputError, match="^pool_size"):
        ImagePool(-1)


def test_the_pool_draws_from_torchs_global_generator_by_default():
    def run():
        pool = ImagePool(1)
        return [float(pool.query(_numbered(k))) for k in range(20)]

    torch.manual_seed(3)
    first = run()
    torch.manual_seed(3)
    assert run() == first and first != list(range(20))


# --- checkpoints, resume -----------------------------------------------------------------------------------
def test_checkpoint_round_trip(pairs, tmp_path):
    from lensblur.baselines.trained import load_trained

    method = CycleGAN(TINY, seed=3)
    train(method, Unpaired(RandomCrops(pairs, 32)), tmp_path / "run", _config(2))
    meta = read_metadata(tmp_path / "run" / "last.safetensors")
    assert meta["method"] == "cyclegan" and meta["config"] == asdict(TINY)
    image = pairs[0]["image"][None]
    fresh = CycleGAN(TINY, seed=99)
    assert not torch.equal(fresh.predict(image), method.predict(image))
    load_weights(fresh, tmp_path / "run")
    torch.testing.assert_close(fresh.predict(image), method.predict(image))
    torch.testing.assert_close(load_trained(tmp_path / "run").predict(image), method.predict(image))
    state = torch.load(tmp_path / "run" / "step-00000002" / "state.pt", weights_only=True)
    assert len(state["method"]["pool_a"]) == len(state["method"]["pool_b"]) == 4


def test_resumed_run_with_a_filled_pool_ends_with_the_weights_of_an_uninterrupted_one(pairs, tmp_path, monkeypatch):
    """6 steps of 2 images into pools of 4: full after step 2, swapping after. A run stopped after 3 steps and
    resumed ends bit for bit where the uninterrupted one does; one that forgets its pools does not."""
    def run(folder, steps, resume=False, seed=0):
        torch.manual_seed(seed)
        return train(CycleGAN(TINY, seed=3), Unpaired(RandomCrops(pairs, 32)), folder, _config(steps), resume=resume)

    run(tmp_path / "a", 6)
    run(tmp_path / "b", 3)
    result = run(tmp_path / "b", 6, resume=True, seed=123)      # whatever happens between the two processes
    a, b = _weights(tmp_path / "a" / "last.safetensors"), _weights(tmp_path / "b" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert result.steps == 6 and {"loss_g", "loss_d_a", "loss_d_b", "cycle_a", "identity_b"} <= set(result.losses)

    run(tmp_path / "c", 3)
    monkeypatch.setattr(CycleGAN, "load_extra_state", lambda self, state: None)
    run(tmp_path / "c", 6, resume=True)
    c = _weights(tmp_path / "c" / "last.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)


# --- as a method: the command line -------------------------------------------------------------------------
def test_cli_train_render_eval(pairs, tmp_path, capsys):
    from lensblur.baselines.trained import load_trained
    from lensblur.cli import main
    from lensblur.io import read_image, write_image

    run = tmp_path / "run"
    argv = ["train", "cyclegan", "--dataset", "synth", "--root", str(pairs.root), "-o", str(run), "--crop", "32",
            "--num-downs", "5", "--pool-size", "3", "--identity-weight", "0", "-q"]
    assert main(argv + ["--steps", "2", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and "cycle_a" in summary and "identity_a" not in summary
    meta = read_metadata(run)
    assert meta["config"]["pool_size"] == 3 and meta["config"]["lr_constant_steps"] == 1
    assert meta["config"]["architecture"] == "unet" and meta["config"]["norm"] == "instance"

    checkpoint = str(run / "last.safetensors")
    photo, out = tmp_path / "photo.png", tmp_path / "out.png"
    write_image(photo, pairs[0]["image"].permute(1, 2, 0).numpy())
    assert main(["render", str(photo), "--method", "cyclegan", "--checkpoint", checkpoint, "-o", str(out)]) == 0
    expected = load_trained(checkpoint).predict(torch.from_numpy(read_image(photo)).permute(2, 0, 1)[None])
    np.testing.assert_allclose(read_image(out), expected[0].permute(1, 2, 0).numpy(), atol=1 / 255 + 1e-6)
    capsys.readouterr()
    assert main(["eval", "--method", "cyclegan", "--checkpoint", checkpoint, "--dataset", "synth", "--root",
                 str(pairs.root), "-o", str(tmp_path / "results"), "-q"]) == 0
    assert "| synth | cyclegan | 3 |" in capsys.readouterr().out


def test_cli_trains_on_unpaired_crops_under_its_seed(pairs, tmp_path, monkeypatch, capsys):
    """What lensblur train cyclegan hands the loop: unpaired random crops, the flags' config, and torch's
    global generator seeded with --seed (the image pools draw from it)."""
    import lensblur.train
    from lensblur.cli import main
    from lensblur.train import TrainResult

    calls = []

    def fake_train(method, data, out, config, **kw):
        calls.append((method, data, config, torch.initial_seed()))
        return TrainResult(run=out, steps=config.steps, losses={}, validation={})

    monkeypatch.setattr(lensblur.train, "train", fake_train)
    assert main(["train", "cyclegan", "--dataset", "synth", "--root", str(pairs.root), "-o", str(tmp_path / "r"),
                 "--crop", "32", "--steps", "10", "--seed", "4", "--architecture", "resnet", "--norm", "batch",
                 "--cycle-weight", "5", "-q"]) == 0
    ((method, data, config, seed),) = calls
    assert seed == 4 and config.seed == 4 and isinstance(data, Unpaired) and data[0]["image"].shape == (3, 32, 32)
    assert (method.settings.architecture, method.settings.norm, method.settings.cycle_weight) == ("resnet", "batch", 5)
    assert (method.settings.lr_constant_steps, method.settings.lr_decay_steps, method.settings.pool_size) == (5, 5, 50)


def test_cli_mistakes_are_named(pairs, tmp_path, capsys):
    from lensblur.cli import main

    base = ["--dataset", "synth", "--root", str(pairs.root), "--crop", "32", "--steps", "1", "-q"]
    assert main(["train", "cyclegan", *base, "-o", str(tmp_path / "r1"), "--architecture", "resnet",
                 "--num-downs", "5"]) == 1
    assert "--num-downs: expected the U-Net's depth, with --architecture unet only" in capsys.readouterr().err
    assert main(["train", "cyclegan", *base, "-o", str(tmp_path / "r1"), "--identity-weight", "-1"]) == 1
    assert "--identity-weight: expected a number >= 0, got -1.0. Fix: --identity-weight 0.5" in capsys.readouterr().err
    assert main(["train", "pix2pix", *base, "-o", str(tmp_path / "r2"), "--pool-size", "5"]) == 1
    assert "--pool-size: expected a setting of pix2pix (it is one of cyclegan)" in capsys.readouterr().err
    for architecture, crop, multiple in (("unet", "40", "32 (2**num_downs, num_downs=5)"),
                                         ("resnet", "30", "4 (the ResNet generator's)")):
        unet = ["--num-downs", "5"] if architecture == "unet" else []
        assert main(["train", "cyclegan", *base, "-o", str(tmp_path / "r1"), "--architecture", architecture,
                     *unet, "--crop", crop]) == 1                  # a crop its generators cannot take
        assert f"--crop: expected training items whose sides are multiples of {multiple}" in capsys.readouterr().err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_a_pix2pix_checkpoint_given_as_cyclegan_is_refused(pairs, tmp_path, capsys):
    from lensblur.cli import main
    from lensblur.methods import get_method

    p2p = Pix2PixConfig(num_downs=5, ngf=4, ndf=4, n_layers=2)
    train(Pix2Pix(p2p), RandomCrops(pairs, 32), tmp_path / "p2p", _config(1))
    checkpoint = str(tmp_path / "p2p" / "last.safetensors")
    with pytest.raises(InputError, match="^checkpoint: expected a checkpoint of method cyclegan, got a pix2pix "
                                         "checkpoint. Fix: use method=pix2pix"):
        get_method("cyclegan", checkpoint=checkpoint)
    with pytest.raises(InputError, match="^checkpoint: expected a checkpoint of method cyclegan"):
        load_weights(CycleGAN(TINY), checkpoint)
    photo = tmp_path / "photo.png"
    from lensblur.io import write_image

    write_image(photo, pairs[0]["image"].permute(1, 2, 0).numpy())
    assert main(["render", str(photo), "--method", "cyclegan", "--checkpoint", checkpoint, "-o",
                 str(tmp_path / "out.png")]) == 1
    err = capsys.readouterr().err
    assert "--checkpoint: expected a checkpoint of method cyclegan, got a pix2pix checkpoint" in err
    assert "--method pix2pix" in err and not (tmp_path / "out.png").exists()
