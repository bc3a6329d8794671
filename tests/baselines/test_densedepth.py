"""DenseDepth: exact parameter counts and shapes from the fact sheet, the encoder's ImageNet weights, the
depth encoding and each loss term against hand computations, and the method's prediction and scores."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from lensblur.baselines import DenseDepth, DenseDepthConfig, DenseDepthNet, DepthTargets, depth_loss
from lensblur.baselines.densedepth import (
    ASSUMED_RANGE,
    DENSENET169_FILE,
    UpProject,
    gradient_loss,
    inverse_depth_target,
    load_encoder_weights,
    normalized_depth,
)
from lensblur.errors import InputError, ModelNotFoundError, ShapeError

TINY = DenseDepthConfig(decoder_width=16, pretrained_encoder=None)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def tiny_net() -> DenseDepthNet:
    torch.manual_seed(0)
    return DenseDepthNet(16).eval()


# --- parameter counts and shapes -------------------------------------------------------------------------
# Expected values: shared/research/baselines.md section 2.1 ("Parameter counts", "Decoder breakdown, F=1664"),
# repeated in its section 7 table; worked out there from the Keras create_model and torchvision's DenseNet.
def test_parameter_counts_match_the_fact_sheet():
    with torch.device("meta"):
        wide, keras = DenseDepthNet(1664), DenseDepthNet(832)
    assert n_params(wide.encoder) == 12_484_480           # + classifier 1,665,000 = torchvision's 14,149,480
    assert n_params(wide) == 42_657_689 and n_params(keras) == 21_365_405
    assert n_params(wide) - n_params(wide.encoder) == 30_173_209
    assert n_params(keras) - n_params(keras.encoder) == 8_880_925
    parts = {name: n_params(getattr(wide, name)) for name in ("conv2", "up1", "up2", "up3", "up4", "conv3")}
    assert parts == {"conv2": 2_770_560, "up1": 20_608_640, "up2": 5_152_576, "up3": 1_288_352, "up4": 352_144,
                     "conv3": 937}


def test_skips_and_output_at_640x480_on_the_meta_device():
    """The sheet's section 7: (1, 3, 480, 640) -> (1, 1, 240, 320), skips 64@240x320, 64@120x160, 128@60x80,
    256@30x40, 1664@15x20 (shapes only: nothing is computed on the meta device)."""
    with torch.device("meta"):
        net = DenseDepthNet(1664).eval()
        x = torch.empty(1, 3, 480, 640)
        skips = [tuple(s.shape[1:]) for s in net.encode(x)]
        out = net(x)
    assert skips == [(64, 240, 320), (64, 120, 160), (128, 60, 80), (256, 30, 40), (1664, 15, 20)]
    assert tuple(out.shape) == (1, 1, 240, 320)


def test_output_is_at_half_resolution_on_small_inputs(tiny_net):
    with torch.no_grad():
        assert tuple(tiny_net(torch.rand(2, 3, 64, 64)).shape) == (2, 1, 32, 32)
        assert tuple(tiny_net(torch.rand(1, 3, 40, 48)).shape) == (1, 1, 20, 24)   # not multiples of 32


def test_every_decoder_convolution_is_followed_by_leaky_relu():
    """Keras' upproject: convA -> LeakyReLU(0.2) -> convB -> LeakyReLU(0.2) (the PyTorch port drops the first).
    convA gives -1 everywhere; convB passes its centre tap: both activations give 0.2 * 0.2 * -1 = -0.04; one
    alone would give -0.2."""
    up = UpProject(2, 1)
    with torch.no_grad():
        up.conv_a.weight.zero_()
        up.conv_a.bias.fill_(-1.0)
        up.conv_b.weight.zero_()
        up.conv_b.weight[0, 0, 1, 1] = 1.0
        up.conv_b.bias.zero_()
        out = up(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 4, 4))
    torch.testing.assert_close(out, torch.full((1, 1, 4, 4), -0.04))


def test_decoder_width_is_checked():
    with pytest.raises(InputError, match="^decoder_width: expected an integer >= 16"):
        DenseDepthConfig(decoder_width=8)


# --- the encoder's ImageNet weights ----------------------------------------------------------------------
def _torchvision_layout(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's tensors as torchvision's densenet169-b2777c0a.pth names them: the whole model's keys
    (``features.``), the old ``denselayerN.norm.1`` spelling, a classifier, and no num_batches_tracked."""
    import re

    out = {}
    for key, value in encoder.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        out["features." + re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)] = value.clone()
    out["classifier.weight"], out["classifier.bias"] = torch.zeros(1000, 1664), torch.zeros(1000)
    return out


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if not k.endswith("num_batches_tracked"))


def test_encoder_weights_load_from_a_torchvision_file_and_a_safetensors_file(tmp_path, tiny_net):
    from safetensors.torch import save_file

    source = tiny_net.encoder
    with torch.no_grad():                   # running statistics too, so that nothing matches by chance
        for m in source.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
    pth = tmp_path / DENSENET169_FILE
    torch.save(_torchvision_layout(source), pth)
    target = DenseDepthNet(16)
    assert not _same(source, target.encoder)
    load_encoder_weights(target.encoder, pth)
    assert _same(source, target.encoder)

    st = tmp_path / "features.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(st))
    method = DenseDepth(DenseDepthConfig(decoder_width=16, pretrained_encoder=str(st)))
    assert _same(source, method.network.encoder) and method.encoder_weights == str(st)
    assert method.config()["pretrained_encoder"] is None          # checkpoints rebuild without the file


def test_a_file_of_other_weights_or_no_file_is_refused(tmp_path, tiny_net):
    state = _torchvision_layout(tiny_net.encoder)
    truncated = {k: v for k, v in state.items() if "denseblock4" not in k}
    torch.save(truncated, tmp_path / "truncated.pth")
    with pytest.raises(InputError, match=r"^pretrained_encoder: expected DenseNet-169 ImageNet weights.*"
                                         r"missing tensors \(e.g. denseblock4"):
        load_encoder_weights(tiny_net.encoder, tmp_path / "truncated.pth")
    state["features.conv0.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(state, tmp_path / "misshapen.pth")
    with pytest.raises(InputError, match=r"1 of other shapes \(e.g. conv0.weight\)"):
        load_encoder_weights(tiny_net.encoder, tmp_path / "misshapen.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(InputError, match="^pretrained_encoder: expected a safetensors file or a torch state dict"):
        load_encoder_weights(tiny_net.encoder, tmp_path / "junk.pth")
    with pytest.raises(ModelNotFoundError, match="DenseNet-169 encoder weights not found"):
        DenseDepth(DenseDepthConfig(decoder_width=16, pretrained_encoder=str(tmp_path / "missing.pth")))


def test_auto_reads_the_torch_hub_cache_or_warns_where_it_looked(tmp_path, monkeypatch, caplog, tiny_net):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    auto = DenseDepthConfig(decoder_width=16)
    with caplog.at_level(logging.WARNING, logger="lensblur.baselines.densedepth"):
        method = DenseDepth(auto)
    cached = tmp_path / "hub" / "checkpoints" / DENSENET169_FILE
    assert method.encoder_weights is None
    assert str(cached) in caplog.text and "random weights" in caplog.text and "densenet169(weights=" in caplog.text
    cached.parent.mkdir(parents=True)
    torch.save(_torchvision_layout(tiny_net.encoder), cached)
    method = DenseDepth(auto)
    assert method.encoder_weights == str(cached) and _same(tiny_net.encoder, method.network.encoder)


# --- depth encoding and the loss ---------------------------------------------------------------------------
def test_depth_encoding_follows_densedepth():
    """The sheet's section 7: 10 cm -> target 100, 1000 cm -> 1, nearer and farther clip; predict's
    normalised depth clip(1000 / y, 10, 1000) / 1000 lies in [0.01, 1]."""
    depth = torch.tensor([0.1, 10.0, 0.05, 20.0, 2.0])
    torch.testing.assert_close(inverse_depth_target(depth), torch.tensor([100.0, 1.0, 100.0, 1.0, 5.0]))
    torch.testing.assert_close(normalized_depth(torch.tensor([100.0, 1.0, 200.0, 0.5, 5.0, -3.0])),
                               torch.tensor([0.01, 1.0, 0.01, 1.0, 0.2, 1.0]))


def test_training_targets_from_synth_and_nyu_disparity():
    """Synth (no metric range) spans 1 m .. 10 m: target 10 * (0.1 + 0.9 d) = 1 + 9 d. NYU's range 0.5 .. 10 m:
    disparity 1 is 0.5 m -> 20, 0 is 10 m -> 1."""
    d = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 3)
    items = [{"image": torch.rand(3, 1, 3), "disparity": d, "meta": {}},
             {"image": torch.rand(3, 1, 3), "disparity": d, "meta": {"depth_range": (0.5, 10.0)}}]
    view = DepthTargets(items, swap=0.0)
    assert ASSUMED_RANGE.near == 1.0 and ASSUMED_RANGE.far == 10.0
    torch.testing.assert_close(view[0]["depth_target"], (1.0 + 9.0 * d))
    torch.testing.assert_close(view[1]["depth_target"], torch.tensor([1.0, 10 * (0.1 + 0.5 * 1.9), 20.0])
                               .view(1, 1, 3))
    assert torch.equal(view[0]["image"], items[0]["image"])
    swapped = DepthTargets(items, swap=1.0, flip=True)
    torch.manual_seed(3)
    out = [swapped[0] for _ in range(8)]
    assert all(sorted(o["image"].flatten().tolist()) == sorted(items[0]["image"].flatten().tolist()) for o in out)
    assert any(not torch.equal(o["depth_target"], view[0]["depth_target"]) for o in out)   # some mirrored
    with pytest.raises(InputError, match="^dataset: expected items with a disparity map"):
        DepthTargets([{"image": torch.rand(3, 2, 2), "meta": {"id": "x"}}])[0]


def test_loss_terms_by_hand():
    """The sheet's section 7 figures. SSIM needs maps wider than its 11-tap window, so the constant test is
    on 16 x 16 maps (SSIM of constants does not depend on the size): y_hat = 10, y = 20, L = 100 gives
    SSIM (2*10*20 + 1) / (10^2 + 20^2 + 1) = 401/501, L_SSIM 0.0998004, 0.1 L1 = 1, L_grad 0: 1.0998004."""
    pred, target = torch.full((1, 1, 16, 16), 10.0), torch.full((1, 1, 16, 16), 20.0)
    total, parts = depth_loss(pred, target)
    assert float(parts["depth_ssim"]) == pytest.approx((1 - 401 / 501) / 2, abs=1e-6)
    assert float(parts["depth_l1"]) == pytest.approx(10.0) and float(parts["depth_grad"]) == 0.0
    assert float(total) == pytest.approx(1.0998004, abs=1e-6)
    ramp = torch.arange(4.0).repeat(4, 1).view(1, 1, 4, 4)            # y[i, j] = j
    assert float(gradient_loss(torch.zeros_like(ramp), ramp)) == pytest.approx(0.75)
    same = torch.rand(2, 1, 16, 16) * 99 + 1
    assert float(depth_loss(same, same.clone())[0]) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ShapeError, match="^prediction: expected the target's shape"):
        depth_loss(same, same[..., :8])


def test_ssim_term_matches_scikit_image_and_has_gradients():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 1, 24, 20, generator=g, dtype=torch.float64) * 99 + 1
    pred = (target + torch.randn(1, 1, 24, 20, generator=g, dtype=torch.float64) * 10).requires_grad_()
    _, parts = depth_loss(pred, target)
    reference = structural_similarity(target[0, 0].numpy(), pred[0, 0].detach().numpy(), data_range=100,
                                      gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert float(parts["depth_ssim"].detach()) == pytest.approx((1 - reference) / 2, abs=1e-9)
    parts["depth_ssim"].backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


# --- the method --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def method() -> DenseDepth:
    """A random tiny DenseDepth whose output is moved into the target's range [1, 100] (an untrained output
    lies around 0, where the normalised depth clips to 1 everywhere)."""
    dd = DenseDepth(TINY, seed=1)
    with torch.no_grad():
        dd.network.conv3.bias.fill_(5.0)
    return dd


def test_prediction_is_mirror_averaged_at_full_resolution(method):
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    depth = method.predict(image)
    assert tuple(depth.shape) == (1, 1, 64, 96) and float(depth.min()) >= 0.01 and float(depth.max()) <= 1.0
    torch.testing.assert_close(method.predict(image.flip(-1)), depth.flip(-1))   # a random net is not symmetric
    single = torch.nn.functional.interpolate(normalized_depth(method.output(image)), size=(64, 96), mode="bilinear")
    assert not torch.allclose(single, depth)
    disparity = method.predict_disparity(image)
    assert float(disparity.min()) == 0.0 and float(disparity.max()) == pytest.approx(1.0)
    torch.testing.assert_close(method.predict_disparity(image.flip(-1)), disparity.flip(-1))
    nearness = np.corrcoef(disparity.flatten().numpy(), (1 / depth).flatten().numpy())[0, 1]
    assert nearness > 0.99                                                       # 1 = nearest
    with pytest.raises(ShapeError, match="^image: expected sides of at least 32 px"):
        method.predict(torch.rand(1, 3, 16, 64))


def test_validation_scores_by_hand(method, monkeypatch):
    """Ground truth 10 m everywhere (disparity 0), prediction 5 m (0.5 of 10 m): abs rel 0.5, RMSE 5 m,
    delta1 0 (ratio 2)."""
    item = {"image": torch.rand(3, 32, 32), "disparity": torch.zeros(1, 32, 32), "meta": {}}
    monkeypatch.setattr(method, "predict", lambda image: torch.full((1, 1, 32, 32), 0.5))
    scores = method.validate([item, item])
    assert scores["val_abs_rel"] == pytest.approx(0.5) and scores["val_rmse"] == pytest.approx(5.0)
    assert scores["val_delta1"] == 0.0 and np.isfinite(scores["val_loss"])


def test_a_batch_too_small_for_batch_norm_is_named(method):
    batch = {"image": torch.rand(1, 3, 32, 32), "depth_target": torch.ones(1, 1, 32, 32)}
    with pytest.raises(InputError, match="^crop: expected more than one bottleneck value"):
        method.training_step(batch, accelerator=None)
