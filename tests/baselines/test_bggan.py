"""BGGAN: Glass-Net's residual convention, shapes and parameter counts, the discriminator's receptive fields,
each loss term against a hand computation, the VGG weights (loaded, refused, never needed to render), and
the method on the shared loop (a step, checkpoints, exact resume, the command line)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lensblur.baselines import (
    BGGAN,
    BGGANConfig,
    GlassNet,
    MultiReceptiveFieldDiscriminator,
    VGGFeatures,
    critic_generator_loss,
    hinge_discriminator_loss,
    hybrid_loss,
    perceptual_loss,
    reconstruction_terms,
)
from lensblur.baselines.networks import init_weights
from lensblur.baselines.trained import load_trained
from lensblur.errors import InputError, ModelNotFoundError, ShapeError
from lensblur.metrics import ssim, ssim_tensor
from lensblur.train import RandomCrops, TrainConfig, read_metadata, train

TINY = BGGANConfig(num_downs=5, ngf=4, refine_num_downs=5, refine_ngf=4, ndf=4, d_layers=(1, 2), use_vgg=False,
                   pretrain_steps=3, lr_constant_steps=3, lr_decay_steps=3)
# torchvision's ImageNet normalisation, written out here independently of the library's constants.
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def tiny(**changes) -> BGGANConfig:
    return BGGANConfig(**{**TINY.__dict__, **changes})


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def vgg_state():
    """A random VGG-19 state dict up to features[2] (conv1_1, ReLU, conv1_2), as torchvision names it."""
    g = torch.Generator().manual_seed(0)
    return {"features.0.weight": torch.randn(64, 3, 3, 3, generator=g) * 0.1, "features.0.bias": torch.randn(64, generator=g),
            "features.2.weight": torch.randn(64, 64, 3, 3, generator=g) * 0.05, "features.2.bias": torch.randn(64, generator=g)}


@pytest.fixture(scope="module")
def vgg_file(vgg_state, tmp_path_factory):
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("vgg") / "vgg19-tiny.safetensors"
    save_file(vgg_state, str(path))
    return path


@pytest.fixture
def no_hub_weights(tmp_path, monkeypatch):
    """An empty torch hub cache, and no download allowed."""
    def no_download(*args, **kwargs):
        raise AssertionError("must not try to download")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    return tmp_path / "torch-home" / "hub" / "checkpoints" / "vgg19-dcbba9e9.pth"


def _config(steps, **kw):
    return TrainConfig(steps=steps, batch_size=2, checkpoint_every=3, log_every=1, progress=False, seed=1, **kw)


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


# --- the networks ------------------------------------------------------------------------------------------
def test_shapes_on_tiny_inputs():
    net = GlassNet(num_downs=5, ngf=4, refine_num_downs=6, refine_ngf=2)
    x = torch.randn(2, 3, 64, 128)
    rough, out = net(x, stages=True)
    assert rough.shape == out.shape == x.shape and net.unit == 64
    assert torch.equal(net(x), out)
    with pytest.raises(ShapeError, match="multiples of 64"):
        net(torch.zeros(1, 3, 32, 32))
    d = MultiReceptiveFieldDiscriminator(ndf=2, n_layers=(2, 3, 4))
    # An input side s gives floor(s / 2**n) - 2 scores per branch: 64 x 96 -> 14 x 22, 6 x 10, 2 x 4.
    assert [tuple(s.shape) for s in d(torch.zeros(2, 3, 64, 96))] == [(2, 1, 14, 22), (2, 1, 6, 10), (2, 1, 2, 4)]
    assert d.min_size == 48
    with pytest.raises(ShapeError, match="at least 48 px"):
        d(torch.zeros(1, 3, 47, 64))
    assert MultiReceptiveFieldDiscriminator(6, ndf=2)(torch.zeros(1, 6, 48, 48))[0].shape == (1, 1, 10, 10)


def test_parameter_counts_of_the_default_config():
    """Stage one at the defaults is the fact sheet's unet_256 with instance norm (baselines.md section 3:
    54,409,603); stage two's first convolution takes 6 channels, 3 * 64 * 16 = 3,072 weights more. The
    discriminator's branches count in * out * 16 (+ out bias) per 4x4 convolution, no norm parameters:
    n_layers=2: 3,136 + 131,200 + 524,544 + 4,097 = 662,977; n_layers=3 is the sheet's 3-channel instance
    PatchGAN, 2,764,737; n_layers=4: 3,136 + 131,200 + 524,544 + 2,097,664 + 4,194,816 + 8,193 = 6,959,553.
    BGGAN's own counts are not published (section 5: "Record parameter counts of whatever is built")."""
    with torch.device("meta"):
        g, d = GlassNet(), MultiReceptiveFieldDiscriminator()
        rough_only = GlassNet(refine_input="rough")
    assert n_params(g.coarse) == 54_409_603
    assert n_params(g.refine) == 54_409_603 + 3 * 64 * 16 == 54_412_675
    assert n_params(g) == 108_822_278
    assert n_params(rough_only.refine) == 54_409_603
    assert [n_params(b) for b in d.branches] == [662_977, 2_764_737, 6_959_553]
    assert n_params(d) == 10_387_267
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 0
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in g.modules()) == 2 * 13   # 6 down + 7 up norms per U-Net
    assert not any(isinstance(m, nn.Tanh) for m in g.modules())


def _receptive_field(branch: nn.Module) -> int:
    """r <- (r - 1) * stride + kernel, from the output back to the input (baselines.md section 9)."""
    r = 1
    for conv in reversed([m for m in branch.modules() if isinstance(m, nn.Conv2d)]):
        r = (r - 1) * conv.stride[0] + conv.kernel_size[0]
    return r


def test_receptive_fields_by_layer_arithmetic_and_by_gradient():
    d = MultiReceptiveFieldDiscriminator(ndf=2, n_layers=(2, 3, 4), norm="none")
    assert [_receptive_field(b) for b in d.branches] == [34, 70, 142]       # the sheet's 34 / 70 / 142
    # One interior score's gradient reaches exactly its receptive field (no norm: instance norm's statistics
    # would spread it over the whole image).
    for branch, side, field in ((d.branches[0], 64, 34), (d.branches[1], 128, 70)):
        x = torch.randn(1, 3, side, side, requires_grad=True)
        branch(x)[0, 0, 7, 7].backward()
        rows, cols = torch.nonzero(x.grad[0].abs().sum(0), as_tuple=True)
        assert (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1) == (field, field)


def test_the_default_discriminator_is_spectrally_normalised_and_seeded():
    d, e = (MultiReceptiveFieldDiscriminator(ndf=4, n_layers=(2, 3)) for _ in range(2))
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in d.modules())
    init_weights(d, generator=torch.Generator().manual_seed(0))
    # The weights and the power iteration's vectors come from the generator, not the global one.
    state = torch.random.get_rng_state()
    init_weights(e, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(v, e.state_dict()[k]) for k, v in d.state_dict().items())
    # Each convolution's effective weight, as a (out, in * k * k) matrix, has largest singular value 1
    # (computed here with an SVD, not the power iteration the layer uses).
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == (2 + 2) + (3 + 2)              # n_layers + 2 convolutions per branch
    for conv in convs:
        sigma = torch.linalg.svdvals(conv.weight.detach().flatten(1))[0]
        assert float(sigma) == pytest.approx(1.0, rel=5e-2)        # after 15 power iterations


def test_a_new_critic_does_not_swamp_the_reconstruction_terms():
    """At the phase switch the generator gets ``adv_weight * -mean D`` beside ``l1_weight * L1``. With instance
    norm in the critic, a fresh critic's gradient on the output is ~50x the L1 term's (norm layers rescale the
    small initial activations to unit size), which is what undid phase 1 in the first fine-tuning steps; with
    spectral normalisation it is of the L1 term's order."""
    def ratio(d_norm):
        method = BGGAN(tiny(ndf=8, d_layers=(2, 3, 4), d_norm=d_norm), seed=0)
        g = torch.Generator().manual_seed(1)
        target = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
        fake = (target + 0.1 * torch.randn(2, 3, 64, 64, generator=g)).requires_grad_(True)
        adv, = torch.autograd.grad(method.settings.adv_weight * critic_generator_loss(method.discriminator(fake)), fake)
        l1, = torch.autograd.grad(method.settings.l1_weight * F.l1_loss((fake + 1) / 2, (target + 1) / 2), fake)
        return float(adv.norm() / l1.norm())

    assert BGGANConfig().d_norm == "spectral"
    assert ratio("spectral") < 10
    assert ratio("instance") > 30          # the old default, kept as an option


def test_stage_one_predicts_the_residual_i_minus_o():
    net = GlassNet(num_downs=5, ngf=4, refine_num_downs=5, refine_ngf=4).zero_residuals_()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    rough, out = net(x, stages=True)
    assert torch.equal(rough, x) and torch.equal(out, x)               # zero residuals: O = I
    with torch.no_grad():
        net.coarse.output_layer.bias.copy_(torch.tensor([0.25, -0.5, 0.0]))   # stage one's R is now this constant
    rough, out = net(x, stages=True)
    torch.testing.assert_close(rough, x - torch.tensor([0.25, -0.5, 0.0]).view(1, 3, 1, 1))   # I - R, not I + R
    assert torch.equal(out, rough)                                     # stage two still adds nothing


def test_a_new_bggan_renders_the_identity_and_pads_any_size():
    image = torch.rand(1, 3, 40, 48)
    torch.testing.assert_close(BGGAN(TINY).predict(image), image, atol=1e-5, rtol=0)
    assert BGGAN(TINY).predict(torch.rand(2, 3, 20, 17)).shape == (2, 3, 20, 17)
    assert (BGGAN(tiny(identity_init=False)).predict(image) - image).abs().max() > 1e-3


# --- the losses --------------------------------------------------------------------------------------------
def test_reconstruction_terms_by_hand():
    a, b = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64), torch.full((1, 3, 16, 16), 0.6, dtype=torch.float64)
    terms = reconstruction_terms(a, b)
    assert float(terms["l1"]) == pytest.approx(0.1, abs=1e-12)
    # Flat images: SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1), C1 = 0.01^2 (the contrast term is C2/C2).
    by_hand = 1 - (2 * 0.5 * 0.6 + 1e-4) / (0.25 + 0.36 + 1e-4)
    assert float(terms["ssim"]) == pytest.approx(by_hand, abs=1e-12)
    # In float32, as training computes it, E[x^2] - E[x]^2 leaves ~1e-7 of variance against C2 = 9e-4.
    assert float(reconstruction_terms(a.float(), b.float())["ssim"]) == pytest.approx(by_hand, abs=5e-4)
    x = torch.rand(2, 3, 24, 24)
    same = reconstruction_terms(x, x.clone())
    assert float(same["l1"]) == 0 and abs(float(same["ssim"])) < 1e-6


def test_ssim_tensor_is_the_metric_and_differentiable():
    a = torch.rand(2, 3, 20, 24, dtype=torch.float64)
    b = (a + 0.2 * torch.rand_like(a)).clamp(0, 1)
    values = ssim_tensor(a, b, data_range=1.0)
    assert values.shape == (2,)
    for i in range(2):
        assert float(values[i]) == pytest.approx(ssim(a[i:i + 1], b[i:i + 1], data_range=1.0), abs=1e-12)
    small = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    other = torch.rand(1, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda y: ssim_tensor(small, y, data_range=1.0), (other,))
    with pytest.raises(ShapeError, match="image_test"):
        ssim_tensor(a, b[..., :20], data_range=1.0)


def test_hybrid_loss_is_eq_4():
    """baselines.md section 7: L1 = 0.1, SSIM = 0.8 (1 - SSIM = 0.2), VGG = 2.0, mean D(fake) = 0.5 gives
    0.05 + 0.01 + 0.2 - 0.5 = -0.24."""
    terms = {"l1": torch.tensor(0.1), "ssim": torch.tensor(0.2), "vgg": torch.tensor(2.0),
             "adv": critic_generator_loss(torch.full((1, 1, 3, 3), 0.5))}
    assert float(hybrid_loss(terms)) == pytest.approx(-0.24, abs=1e-6)
    assert float(hybrid_loss({"l1": torch.tensor(0.1), "ssim": torch.tensor(0.2)})) == pytest.approx(0.06)
    with pytest.raises(InputError, match="^terms"):
        hybrid_loss({"perceptual": torch.tensor(1.0)})


def test_adversarial_terms_by_hand():
    ones = torch.ones(1, 1, 2, 3)
    assert float(critic_generator_loss(0.5 * ones)) == pytest.approx(-0.5)
    assert float(critic_generator_loss([0.5 * ones, 1.5 * torch.ones(1, 1, 1, 1)])) == pytest.approx(-1.0)  # mean of branches
    # hinge: relu(1 - 0.5) + relu(1 + 0.5) = 2; zeros give 1 + 1; real 2 and fake -2 are past the margin.
    assert float(hinge_discriminator_loss(0.5 * ones, 0.5 * ones)) == pytest.approx(2.0)
    assert float(hinge_discriminator_loss(0 * ones, 0 * ones)) == pytest.approx(2.0)
    assert float(hinge_discriminator_loss([0 * ones, 2 * ones], [0 * ones, -2 * ones])) == pytest.approx(1.0)
    with pytest.raises(InputError, match="^fake_scores"):
        hinge_discriminator_loss([ones, ones], [ones])


# --- the VGG term ------------------------------------------------------------------------------------------
def _normalised(x):
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_vgg_term_against_a_direct_computation(vgg_state, vgg_file, tmp_path):
    features = VGGFeatures(2, weights=vgg_file)
    assert not any(p.requires_grad for p in features.parameters())
    a, b = torch.rand(2, 3, 20, 20, requires_grad=True), torch.rand(2, 3, 20, 20)

    def direct(x):                                   # conv1_1, ReLU, conv1_2 on ImageNet-normalised values
        s = vgg_state
        h = F.relu(F.conv2d(_normalised(x), s["features.0.weight"], s["features.0.bias"], padding=1))
        return F.conv2d(h, s["features.2.weight"], s["features.2.bias"], padding=1)

    torch.testing.assert_close(features(a), direct(a))
    loss = perceptual_loss(features, a, b)
    torch.testing.assert_close(loss, (direct(a) - direct(b)).abs().mean())
    loss.backward()
    assert a.grad.abs().sum() > 0                    # the gradient reaches the image, not the frozen network
    # The same weights from a torchvision-style .pth (read with weights_only=True), keys without "features."
    torch.save({k.removeprefix("features."): v for k, v in vgg_state.items()}, tmp_path / "vgg.pth")
    torch.testing.assert_close(VGGFeatures(2, weights=tmp_path / "vgg.pth")(a), features(a))
    with pytest.raises(InputError, match="^vgg_weights: expected vgg19 weights up to features\\[5\\]"):
        VGGFeatures(5, weights=vgg_file)


def test_vgg_term_by_hand(tmp_path):
    """conv1_1 passing the three channels through (centre tap 1, bias 0), 61 zero channels: flat images 0.5
    and 0.25 differ by 0.25 / std_c in channel c, so the mean over 64 channels is (0.25 / 64) sum_c 1 / std_c."""
    weight = torch.zeros(64, 3, 3, 3)
    for c in range(3):
        weight[c, c, 1, 1] = 1.0
    torch.save({"features.0.weight": weight, "features.0.bias": torch.zeros(64)}, tmp_path / "vgg.pth")
    features = VGGFeatures(0, weights=tmp_path / "vgg.pth")
    loss = perceptual_loss(features, torch.full((1, 3, 8, 8), 0.5), torch.full((1, 3, 8, 8), 0.25))
    assert float(loss) == pytest.approx(0.25 / 64 * (1 / 0.229 + 1 / 0.224 + 1 / 0.225), rel=1e-6)


def test_the_vgg_term_is_refused_without_weights(no_hub_weights, tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        BGGAN(tiny(use_vgg=True))
    text = str(info.value)
    assert str(no_hub_weights) in text and "vgg19(weights='IMAGENET1K_V1')" in text
    assert "use_vgg=False" in text and "--no-vgg" in text
    with pytest.raises(ModelNotFoundError, match="elsewhere.pth"):
        BGGAN(tiny(use_vgg=True), vgg_weights=tmp_path / "elsewhere.pth")
    assert BGGAN(TINY).vgg is None                                      # use_vgg=False needs no weights
    with pytest.raises(InputError, match="^vgg_weights: expected no VGG weights when use_vgg=False"):
        BGGAN(TINY, vgg_weights=tmp_path / "elsewhere.pth")
    with pytest.raises(InputError, match="^vgg_layer"):
        BGGANConfig(vgg_layer=37)


# --- the method on the loop --------------------------------------------------------------------------------
def _step(method, pairs):
    import accelerate

    accelerator = accelerate.Accelerator()
    method.prepare(accelerator)
    torch.manual_seed(0)
    crops = RandomCrops(pairs, 32)
    batch = {k: torch.stack([crops[i][k] for i in (0, 1)]) for k in ("image", "target")}
    before = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in method.modules().items()}
    logs = method.training_step(batch, accelerator)
    changed = {name: any(not torch.equal(v, m.state_dict()[k]) for k, v in before[name].items())
               for name, m in method.modules().items()}
    return logs, changed


def test_a_training_step_changes_what_its_phase_trains(pairs, vgg_file):
    logs, changed = _step(BGGAN(tiny(pretrain_steps=1), seed=2), pairs)            # phase 1: Glass-Net only
    assert changed == {"generator": True, "discriminator": False}
    assert logs["phase"] == 1 and {"l1", "ssim", "rough_l1", "loss_g"} <= set(logs) and "adv" not in logs
    method = BGGAN(tiny(pretrain_steps=0, use_vgg=True, vgg_layer=2), seed=2, vgg_weights=vgg_file)
    logs, changed = _step(method, pairs)                                           # phase 2: both, hybrid loss
    assert changed == {"generator": True, "discriminator": True}
    assert logs["phase"] == 2 and logs["vgg"] > 0 and {"adv", "loss_d"} <= set(logs)
    assert method.updates == 1 and method.opt_d.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_the_critic_warms_up_before_the_generator_sees_it(pairs):
    import accelerate

    method = BGGAN(tiny(pretrain_steps=1, d_warmup_steps=1), seed=2)
    accelerator = accelerate.Accelerator()
    method.prepare(accelerator)
    crops = RandomCrops(pairs, 32)
    batch = {k: torch.stack([crops[i][k] for i in (0, 1)]) for k in ("image", "target")}
    seen = [set(method.training_step(batch, accelerator)) for _ in range(3)]
    assert "loss_d" not in seen[0] and "adv" not in seen[0]         # phase 1
    assert "loss_d" in seen[1] and "adv" not in seen[1]             # phase 2, the critic's warm-up
    assert {"loss_d", "adv"} <= seen[2]                             # then eq. 4 in full


def test_checkpoint_round_trip_renders_without_the_vgg_weights(pairs, vgg_file, tmp_path, monkeypatch):
    method = BGGAN(tiny(use_vgg=True, vgg_layer=2, pretrain_steps=1), seed=3, vgg_weights=vgg_file)
    train(method, RandomCrops(pairs, 32), tmp_path / "run", _config(2), val_dataset=pairs)
    meta = read_metadata(tmp_path / "run" / "last.safetensors")
    assert meta["method"] == "bggan" and meta["config"]["use_vgg"] and meta["config"]["d_layers"] == [1, 2]
    assert {k.split(".")[0] for k in _weights(tmp_path / "run" / "last.safetensors")} == {"generator", "discriminator"}
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))      # no VGG anywhere: rendering must not need it
    loaded = load_trained(tmp_path / "run", expected="bggan")
    assert loaded.vgg is None and loaded.settings == method.settings
    image = pairs[0]["image"][None]
    torch.testing.assert_close(loaded.predict(image), method.predict(image))
    assert loaded.predict(image).shape == image.shape               # 48x40 padded to the 32 grid and cropped back
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["phase"] == 2 and "val_psnr" in record


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(pairs, vgg_file, tmp_path):
    """Six steps, phase 2 from step 4: a run stopped after step 3 and resumed ends bit for bit where an
    uninterrupted one does (the phase counter is resumed with the optimisers)."""
    config = tiny(use_vgg=True, vgg_layer=2, pretrain_steps=3)

    def method():
        return BGGAN(config, seed=3, vgg_weights=vgg_file)

    torch.manual_seed(0)
    train(method(), RandomCrops(pairs, 32), tmp_path / "a", _config(6))
    torch.manual_seed(0)
    train(method(), RandomCrops(pairs, 32), tmp_path / "b", _config(3))
    torch.manual_seed(123)
    result = train(method(), RandomCrops(pairs, 32), tmp_path / "b", _config(6), resume=True)
    a, b = _weights(tmp_path / "a" / "last.safetensors"), _weights(tmp_path / "b" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert result.steps == 6 and {"adv", "vgg", "loss_d"} <= set(result.losses)
    for run in ("a", "b"):
        lines = [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        assert [(x["step"], x["phase"]) for x in lines] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]


def test_phases_count_optimiser_steps_under_gradient_accumulation(pairs, tmp_path):
    """With two batches per optimiser step, pretrain_steps=1 covers the first two batches."""
    train(BGGAN(tiny(pretrain_steps=1)), RandomCrops(pairs, 32), tmp_path / "run", _config(4, grad_accumulation=2))
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["phase"] for x in lines] == [1, 1, 2, 2]


def test_cli_train_render_eval(pairs, tmp_path, capsys, no_hub_weights):
    from lensblur.cli import main
    from lensblur.io import read_image, write_image

    run = tmp_path / "run"
    argv = ["train", "bggan", "--dataset", "synth", "--root", str(pairs.root), "-o", str(run), "--crop", "32",
            "--num-downs", "5", "--ngf", "4", "--d-layers", "1,2", "--steps", "2", "--checkpoint-every", "1", "-q"]
    assert main(argv) == 1                                          # the VGG term without weights: refused
    err = capsys.readouterr().err
    assert "vgg19-dcbba9e9.pth" in err and "--no-vgg" in err and not run.exists()
    assert main([*argv, "--no-vgg", "--format", "json", "--d-warmup-steps", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["phase"] == 2          # --pretrain-steps defaults to half the steps
    meta = read_metadata(run)
    assert meta["config"]["num_downs"] == meta["config"]["refine_num_downs"] == 5
    assert meta["config"]["d_warmup_steps"] == 1
    assert meta["config"]["pretrain_steps"] == 1 and not meta["config"]["use_vgg"]
    assert main(["train", "pix2pix", "--dataset", "synth", "--root", str(pairs.root), "-o", str(tmp_path / "p"),
                 "--no-vgg", "-q"]) == 1
    assert "--no-vgg: expected a setting of pix2pix (it is one of bggan)" in capsys.readouterr().err
    bad = [a for a in argv if a not in ("--d-layers", "1,2")]          # the default branches 2, 3, 4
    assert main([*bad, "-o", str(tmp_path / "small"), "--no-vgg"]) == 1
    err = capsys.readouterr().err
    assert "--crop: expected training items whose sides are multiples of 32 (Glass-Net's" in err
    assert "of at least 48 px (the d_layers=4 branch), got 32x32. Fix: --crop 64" in err
    assert not (tmp_path / "small").exists()

    checkpoint = str(run / "last.safetensors")
    photo, out = tmp_path / "photo.png", tmp_path / "out.png"
    write_image(photo, pairs[0]["image"].permute(1, 2, 0).numpy())
    assert main(["render", str(photo), "--method", "bggan", "--checkpoint", checkpoint, "-o", str(out)]) == 0
    method = load_trained(checkpoint)
    expected = method.predict(torch.from_numpy(read_image(photo)).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    np.testing.assert_allclose(read_image(out), expected.numpy(), atol=1 / 255 + 1e-6)
    capsys.readouterr()
    assert main(["eval", "--method", "bggan", "--checkpoint", checkpoint, "--dataset", "synth", "--root",
                 str(pairs.root), "-o", str(tmp_path / "results"), "-q"]) == 0
    assert "| synth | bggan | 3 |" in capsys.readouterr().out
