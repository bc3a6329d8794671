"""The pix2pix / CycleGAN networks and losses: shapes, exact parameter counts, hand-computed losses, init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lensblur.baselines import (
    GANLoss,
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    discriminator_loss,
    gan_loss,
    init_weights,
    pix2pix_generator_loss,
)
from lensblur.errors import InputError, ShapeError


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def on_meta(factory):
    """Build a network without allocating its weights (only the count is needed)."""
    with torch.device("meta"):
        return factory()


# --- parameter counts --------------------------------------------------------------------------------------
# Expected values: shared/research/baselines.md, section 3 (pix2pix, "Parameter counts", worked out from the
# layer definitions of junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py) and section 4 (CycleGAN,
# "ResNet-9 generator" table), repeated in its section 7 table.
@pytest.mark.parametrize(
    ("name", "factory", "expected"),
    [
        ("unet_256 batch", lambda: UnetGenerator(), 54_413_955),
        ("unet_256 instance", lambda: UnetGenerator(norm="instance"), 54_409_603),
        ("unet_128 batch", lambda: UnetGenerator(num_downs=7), 41_828_995),
        ("unet_128 instance", lambda: UnetGenerator(num_downs=7, norm="instance"), 41_825_667),
        ("PatchGAN pix2pix (6 ch, batch)", lambda: NLayerDiscriminator(in_channels=6), 2_768_705),
        ("PatchGAN CycleGAN (3 ch, instance)", lambda: NLayerDiscriminator(3, norm="instance"), 2_764_737),
        ("PatchGAN 3 ch, batch", lambda: NLayerDiscriminator(3), 2_765_633),
        ("resnet_9blocks instance", lambda: ResnetGenerator(), 11_378_179),
        ("resnet_9blocks batch", lambda: ResnetGenerator(norm="batch"), 11_383_427),
        ("resnet_6blocks instance", lambda: ResnetGenerator(n_blocks=6), 7_837_699),
    ],
)
def test_parameter_counts_match_the_fact_sheet(name, factory, expected):
    assert n_params(on_meta(factory)) == expected, name


def test_unet_256_parameter_count_on_cpu():
    # The headline figure, on real CPU tensors too: 54,413,955 (baselines.md section 3, unet_256, norm=batch).
    assert n_params(UnetGenerator()) == 54_413_955


# --- architecture details ----------------------------------------------------------------------------------
def test_unet_dropout_sits_in_the_intermediate_levels_only():
    def count(net: nn.Module) -> int:
        return sum(isinstance(m, nn.Dropout) for m in net.modules())

    assert count(on_meta(UnetGenerator)) == 3  # num_downs - 5
    assert count(on_meta(lambda: UnetGenerator(num_downs=7))) == 2
    assert count(on_meta(lambda: UnetGenerator(dropout=False))) == 0
    assert all(isinstance(m, nn.Dropout) is False for m in UnetGenerator(num_downs=5, ngf=2).modules())


def test_bias_only_where_there_is_no_batchnorm():
    convs = [m for m in UnetGenerator(num_downs=5, ngf=2).modules() if isinstance(m, nn.modules.conv._ConvNd)]
    # 5 down + 5 up convolutions; only the outermost up-convolution (followed by Tanh) has a bias.
    assert len(convs) == 10
    assert [m.bias is not None for m in convs] == [False] * 9 + [True]
    inst = [
        m for m in UnetGenerator(num_downs=5, ngf=2, norm="instance").modules() if isinstance(m, nn.Conv2d)
    ]
    assert all(m.bias is not None for m in inst)
    d = [m for m in NLayerDiscriminator(ndf=2).modules() if isinstance(m, nn.Conv2d)]
    assert [m.bias is not None for m in d] == [True, False, False, False, True]
    assert [m.stride for m in d] == [(2, 2), (2, 2), (2, 2), (1, 1), (1, 1)]


# --- shapes ------------------------------------------------------------------------------------------------
def test_unet_shapes_and_range():
    torch.manual_seed(0)
    net = UnetGenerator(num_downs=5, ngf=4)
    with torch.no_grad():
        y = net(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 3, 32, 32)
    assert float(y.abs().max()) <= 1.0
    assert UnetGenerator(in_channels=4, out_channels=1, num_downs=5, ngf=2)(
        torch.zeros(1, 4, 32, 64)
    ).shape == (
        1,
        1,
        32,
        64,
    )


def test_unet_rejects_inputs_not_divisible_by_its_depth():
    with pytest.raises(ShapeError, match="multiples of 256"):
        UnetGenerator(num_downs=8, ngf=1)(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ShapeError, match=r"\(B, 3, H, W\)"):
        UnetGenerator(num_downs=5, ngf=2)(torch.zeros(1, 1, 32, 32))
    # unet_128 accepts 128 px.
    assert UnetGenerator(num_downs=7, ngf=1).eval()(torch.zeros(1, 3, 128, 128)).shape == (1, 3, 128, 128)


def test_unet_dropout_is_stochastic_in_training_and_off_in_eval():
    torch.manual_seed(0)
    net = UnetGenerator(num_downs=6, ngf=2, norm="instance")
    x = torch.randn(1, 3, 64, 64)
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


@pytest.mark.parametrize(("channels", "size", "side"), [(6, 256, 30), (6, 128, 14), (3, 64, 6)])
def test_patchgan_output_map(channels, size, side):
    d = NLayerDiscriminator(in_channels=channels, ndf=2)
    assert d(torch.zeros(1, channels, size, size)).shape == (1, 1, side, side)


def test_patchgan_receptive_field_is_70_pixels():
    torch.manual_seed(0)
    d = NLayerDiscriminator(in_channels=3, ndf=2).eval()
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    d(x)[0, 0, 7, 7].backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = support.any(dim=1).nonzero().flatten(), support.any(dim=0).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70


def test_patchgan_rejects_wrong_channels():
    with pytest.raises(ShapeError):
        NLayerDiscriminator(in_channels=6, ndf=2)(torch.zeros(1, 3, 64, 64))


def test_resnet_shapes_and_padding():
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=4, n_blocks=2)
    with torch.no_grad():
        y = net(torch.randn(1, 3, 32, 48))
    assert y.shape == (1, 3, 32, 48)
    assert float(y.abs().max()) <= 1.0
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in net.modules()) == 2 + 2 * 2
    assert not any(isinstance(m, nn.Dropout) for m in net.modules())
    with pytest.raises(ShapeError, match="multiples of 4"):
        net(torch.zeros(1, 3, 30, 32))


def test_bad_arguments_are_refused():
    with pytest.raises(InputError, match="norm"):
        UnetGenerator(norm="group")
    with pytest.raises(InputError, match="num_downs"):
        UnetGenerator(num_downs=4)
    with pytest.raises(InputError, match="padding"):
        ResnetGenerator(padding="circular")
    with pytest.raises(InputError, match="mode"):
        GANLoss("wgan")
    with pytest.raises(InputError, match="gain"):
        init_weights(nn.Conv2d(1, 1, 1), gain=-1.0)


# --- losses against hand computations ----------------------------------------------------------------------
def test_vanilla_discriminator_at_logit_zero_is_ln2():
    zeros = torch.zeros(1, 1, 3, 3)
    # BCE(sigmoid(0) = 0.5, 1) = BCE(0.5, 0) = ln 2; 0.5 * (ln 2 + ln 2) = ln 2.
    assert float(gan_loss(zeros, True)) == pytest.approx(math.log(2))
    assert float(gan_loss(zeros, False)) == pytest.approx(math.log(2))
    assert float(discriminator_loss(zeros, zeros, "vanilla")) == pytest.approx(math.log(2))


def test_lsgan_discriminator_by_hand():
    zeros = torch.zeros(2, 1, 2, 2)
    # (0 - 1)^2 = 1 for real, (0 - 0)^2 = 0 for fake: 0.5 * (1 + 0) = 0.5.
    assert float(discriminator_loss(zeros, zeros, "lsgan")) == pytest.approx(0.5)
    # A perfect least-squares discriminator: 0.
    assert float(discriminator_loss(torch.ones(1, 1, 2, 2), zeros, "lsgan")) == 0.0
    # real logits (2, 0): ((2-1)^2 + (0-1)^2) / 2 = 1; fake logits (1, -1): (1 + 1) / 2 = 1 -> 0.5 * 2 = 1.
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([1.0, -1.0])
    assert float(discriminator_loss(real, fake, "lsgan")) == pytest.approx(1.0)
    assert float(GANLoss("lsgan")(fake, True)) == pytest.approx((0.0 + 4.0) / 2)


def test_vanilla_loss_by_hand():
    logits = torch.tensor([0.0, 2.0, -1.0])
    # -log(sigmoid(z)) = log(1 + e^-z) against 1; -log(1 - sigmoid(z)) = log(1 + e^z) against 0.
    real = sum(math.log1p(math.exp(-z)) for z in (0.0, 2.0, -1.0)) / 3
    fake = sum(math.log1p(math.exp(z)) for z in (0.0, 2.0, -1.0)) / 3
    assert float(GANLoss("vanilla")(logits, True)) == pytest.approx(real)
    assert float(GANLoss("vanilla")(logits, False)) == pytest.approx(fake)
    assert float(discriminator_loss(logits, logits)) == pytest.approx(0.5 * (real + fake))


def test_pix2pix_generator_loss_by_hand():
    fake_logits = torch.tensor([[[[0.0, 2.0]]]])
    fake = torch.tensor([[[[0.5, -0.5], [0.25, 0.0]]]])
    target = torch.zeros_like(fake)
    total, parts = pix2pix_generator_loss(fake_logits, fake, target)
    gan = (math.log(2) + math.log1p(math.exp(-2.0))) / 2
    l1 = (0.5 + 0.5 + 0.25 + 0.0) / 4
    assert float(parts["gan"]) == pytest.approx(gan)
    assert float(parts["l1"]) == pytest.approx(l1)
    assert float(total) == pytest.approx(gan + 100.0 * l1)
    total10, _ = pix2pix_generator_loss(fake_logits, fake, target, l1_weight=10.0, mode="lsgan")
    assert float(total10) == pytest.approx((1.0 + 1.0) / 2 + 10.0 * l1)
    with pytest.raises(ShapeError):
        pix2pix_generator_loss(fake_logits, fake, target[..., :1])


def test_generator_loss_gradient_reaches_the_generator_output():
    fake = torch.zeros(1, 3, 4, 4, requires_grad=True)
    total, _ = pix2pix_generator_loss(torch.zeros(1, 1, 2, 2), fake + 0.1, torch.zeros(1, 3, 4, 4))
    total.backward()
    # d(100 * mean|f + 0.1|)/df = 100 / 48 everywhere.
    assert torch.allclose(fake.grad, torch.full_like(fake, 100.0 / 48))


# --- initialisation ----------------------------------------------------------------------------------------
def test_init_weights_statistics():
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(256, 256, 3)  # 589,824 weights
    bn = nn.BatchNorm2d(8192)
    net = init_weights(
        nn.Sequential(conv, bn, nn.ConvTranspose2d(256, 8, 4), nn.Linear(64, 64)), generator=gen
    )
    w, g = conv.weight.detach(), bn.weight.detach()
    assert float(w.std()) == pytest.approx(0.02, rel=0.01)
    assert abs(float(w.mean())) < 1e-4
    assert float(g.mean()) == pytest.approx(1.0, abs=1e-3)
    assert float(g.std()) == pytest.approx(0.02, rel=0.05)
    for m in net:
        assert m.bias is not None and float(m.bias.detach().abs().max()) == 0.0
    assert float(net[2].weight.detach().std()) == pytest.approx(0.02, rel=0.05)


def test_init_weights_is_reproducible_and_skips_norms_without_weights():
    a = init_weights(
        NLayerDiscriminator(3, ndf=4, norm="instance"), generator=torch.Generator().manual_seed(1)
    )
    b = init_weights(
        NLayerDiscriminator(3, ndf=4, norm="instance"), generator=torch.Generator().manual_seed(1)
    )
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
