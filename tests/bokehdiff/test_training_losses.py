"""BokehDiff's training losses against hand computations on tiny tensors (numpy loops written from the
equations, not from the code), the discriminator's frozen backbone, the LoRA merge, the refusals without
weights, and the trained parameter counts of the full-size model against the fact sheet."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lensblur.bokehdiff.losses import (
    adversarial_d_loss,
    adversarial_g_loss,
    edge_loss,
    edge_loss_difference,
    edge_loss_sobel,
    sobel_kernels,
    weighted_sum,
)
from lensblur.bokehdiff.training import BokehDiffTrainConfig, loss_weights, pixel_losses
from lensblur.errors import InputError, ModelNotFoundError

# OpenCV's getDerivKernels (ksize 3, 5, 7): smoothing and derivative taps, and their normalisers (the sum of
# the smoothing taps, and the derivative's response to f(x) = x).
SOBEL = {3: ([1, 2, 1], [-1, 0, 1], 4, 2), 5: ([1, 4, 6, 4, 1], [-1, -2, 0, 2, 1], 16, 8),
         7: ([1, 6, 15, 20, 15, 6, 1], [-1, -4, -5, 0, 5, 4, 1], 64, 32)}


def _images(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1 for _ in range(3)]


def _correlate_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    k = kernel.shape[0]
    h, w = image.shape
    out = np.zeros((h - k + 1, w - k + 1))
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = (image[y:y + k, x:x + k] * kernel).sum()
    return out


# ------------------------------------------------------------------------------------------ edge loss
def test_sobel_kernels_are_opencvs_scaled_to_a_unit_slope():
    kx, ky = sobel_kernels(3, dtype=torch.float64)
    assert torch.allclose(kx, torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64) / 8)
    assert torch.equal(ky, kx.T)
    for size, (smooth, deriv, s_sum, d_ramp) in SOBEL.items():
        kx, _ = sobel_kernels(size, dtype=torch.float64)
        expected = np.outer(smooth, deriv) / (s_sum * d_ramp)
        assert np.allclose(kx.numpy(), expected)
        ramp = np.add.outer(np.zeros(size + 4), 0.7 * np.arange(size + 4))   # slope 0.7 along x
        assert np.allclose(_correlate_valid(ramp, kx.numpy()), 0.7)
    with pytest.raises(InputError, match="odd kernel side"):
        sobel_kernels(4)


def test_the_papers_edge_loss_by_hand():
    """Eq. 10 on a 1 x 2 x 9 x 9 triple: scales l = 1..3 with the 3-, 5- and 7-tap Sobel pairs, weight
    max(|grad gt|, |grad aif|), 1 / l^2, each direction a mean over its valid pixels."""
    pred, gt, aif = _images((1, 2, 9, 9))
    total = 0.0
    for level, size in ((1, 3), (2, 5), (3, 7)):
        smooth, deriv, s_sum, d_ramp = SOBEL[size]
        kx = np.outer(smooth, deriv) / (s_sum * d_ramp)
        for kernel in (kx, kx.T):
            values = []
            for c in range(2):
                gp, gg, ga = (_correlate_valid(x[0, c].numpy(), kernel) for x in (pred, gt, aif))
                values.append(np.abs(gp - gg) * np.maximum(np.abs(gg), np.abs(ga)))
            total += np.mean(values) / level ** 2
    assert float(edge_loss_sobel(pred, gt, aif)) == pytest.approx(total, rel=1e-10)
    assert float(edge_loss(pred, gt, aif, form="sobel")) == pytest.approx(total, rel=1e-10)


def test_the_released_edge_loss_by_hand():
    """The release's form on a 1 x 2 x 6 x 6 triple: area means over s x s blocks, forward differences,
    weight (1/s)(1 + max(|grad gt|, |grad aif|)), means."""
    pred, gt, aif = _images((1, 2, 6, 6), seed=1)
    total = 0.0
    for s in (1, 2, 3):
        pooled = [x[0].numpy().reshape(2, 6 // s, s, 6 // s, s).mean(axis=(2, 4)) for x in (pred, gt, aif)]
        for axis in (2, 1):                                   # x, then y
            dp, dg, da = (-np.diff(x, axis=axis) for x in pooled)    # I[i] - I[i + 1]
            total += np.mean(np.abs(dp - dg) * (1 + np.maximum(np.abs(dg), np.abs(da)))) / s
    assert float(edge_loss_difference(pred, gt, aif)) == pytest.approx(total, rel=1e-10)


@pytest.mark.parametrize("form", ["sobel", "difference"])
def test_the_edge_loss_is_zero_at_the_target_and_differentiable(form):
    pred, gt, aif = _images((2, 3, 12, 12), seed=2)
    assert float(edge_loss(gt, gt, aif, form=form)) == 0.0
    pred.requires_grad_(True)
    edge_loss(pred, gt, aif, form=form).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_edge_loss_refusals():
    pred, gt, aif = _images((1, 3, 12, 12))
    with pytest.raises(InputError, match="edge_loss: expected one of sobel, difference"):
        edge_loss(pred, gt, aif, form="laplace")
    with pytest.raises(InputError, match="target: expected the shape of pred"):
        edge_loss(pred, gt[..., :10], aif)
    with pytest.raises(InputError, match="at least 7 px"):
        edge_loss_sobel(*_images((1, 3, 6, 6)))


# ------------------------------------------------------------------------------------------ adversarial, MSE, sum
def _bce(logit: float, label: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def test_bce_with_a_real_label_of_0_8_by_hand():
    real = torch.tensor([[[[0.0, 2.0], [-1.0, 0.5]]]])
    fake = torch.tensor([[[[1.5, -3.0], [0.25, -0.5]]]])
    d_loss = np.mean([_bce(v, 0.8) for v in real.flatten().tolist()]) + np.mean([_bce(v, 0.0) for v in fake.flatten().tolist()])
    g_loss = np.mean([_bce(v, 0.8) for v in fake.flatten().tolist()])
    assert float(adversarial_d_loss(real, fake)) == pytest.approx(d_loss, rel=1e-6)
    assert float(adversarial_g_loss(fake)) == pytest.approx(g_loss, rel=1e-6)
    # the minimum of BCE against 0.8 is at sigma(logit) = 0.8, not at a certain "real"
    logits = torch.linspace(-4, 6, 1001)
    best = logits[torch.stack([adversarial_g_loss(v.view(1, 1, 1, 1)) for v in logits]).argmin()]
    assert float(torch.sigmoid(best)) == pytest.approx(0.8, abs=0.01)


def test_the_pixel_losses_mse_reads_the_unclamped_prediction_and_the_rest_the_clamped_one():
    pred = torch.tensor([1.5, -2.0, 0.25, 0.5, 0.0, -0.75] * 16, dtype=torch.float64).reshape(1, 1, 8, 12)
    target = torch.full_like(pred, 0.5)
    aif = torch.zeros_like(pred)
    settings = BokehDiffTrainConfig(lpips_weight=0.0, discriminator="none")
    terms = pixel_losses(pred, target, aif, settings=settings)
    assert set(terms) == {"mse", "edge"}
    assert float(terms["mse"]) == pytest.approx(float(np.mean((pred.numpy() - 0.5) ** 2)))
    assert float(terms["edge"]) == pytest.approx(float(edge_loss_difference(pred.clamp(-1, 1), target, aif)))
    assert float(terms["edge"]) != pytest.approx(float(edge_loss_difference(pred, target, aif)))
    total = weighted_sum({**terms, "adv": torch.tensor(2.0)}, loss_weights(BokehDiffTrainConfig(recipe="paper")))
    assert float(total) == pytest.approx(float(terms["mse"]) + float(terms["edge"]) + 0.5 * 2.0)
    with pytest.raises(InputError, match="terms"):
        weighted_sum({"l1": torch.tensor(1.0)}, loss_weights(settings))


# ------------------------------------------------------------------------------------------ discriminator
def tiny_convnext():
    """A two-stage torchvision ConvNeXt (stride 8, 16 channels): the architecture, at test size."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    torch.manual_seed(3)
    return ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], stochastic_depth_prob=0.5).features


def test_the_discriminator_trains_only_its_head_and_keeps_the_backbone_in_eval_mode():
    from lensblur.bokehdiff.discriminator import ConvNeXtDiscriminator

    d = ConvNeXtDiscriminator(tiny_convnext())
    d.train()
    assert not d.backbone.training and d.head.training
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    image.requires_grad_(True)
    logits = d(image)
    assert logits.shape == (2, 1, 4, 4)
    adversarial_d_loss(logits, d(image.detach())).backward()
    assert all(p.grad is None for p in d.backbone.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.head.parameters())
    assert image.grad is not None and image.grad.abs().sum() > 0     # the generator's gradient passes through
    # stochastic depth (p = 0.5 here) is off: the backbone is deterministic in "training"
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(d.backbone(x), d.backbone(x))


def test_the_convnext_is_refused_without_its_weights(tmp_path):
    from lensblur.bokehdiff.discriminator import convnext_features

    with pytest.raises(ModelNotFoundError) as info:
        convnext_features("convnext_base", hub_dir=tmp_path)
    message = str(info.value)
    assert "convnext_base-6075fbad.pth" in message and "--discriminator none" in message
    bad = tmp_path / "other.pth"
    torch.save({"features.0.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(InputError, match="discriminator_weights: expected convnext_tiny weights"):
        convnext_features("convnext_tiny", weights=bad)
    with pytest.raises(InputError, match="discriminator"):
        convnext_features("resnet50")


@pytest.mark.parametrize("missing", ["lpips", "convnext"])
def test_training_is_refused_without_loss_weights_before_the_base_model_loads(tmp_path, missing):
    from lensblur.bokehdiff.training import BokehDiffTrainer

    settings = BokehDiffTrainConfig(base_model=str(tmp_path / "no-base"),
                                    **({"discriminator": "none"} if missing == "lpips" else {"lpips_weight": 0.0}))
    with pytest.raises(ModelNotFoundError) as info:
        BokehDiffTrainer(settings, hub_dir=tmp_path / "hub")
    message = str(info.value)
    if missing == "lpips":
        assert "LPIPS-VGG" in message and "vgg16-397923af.pth" in message and "--no-lpips" in message
    else:
        assert "discriminator" in message and "--discriminator none" in message
    assert "no-base" not in message
    with pytest.raises(InputError, match="discriminator_backbone"):
        BokehDiffTrainer(BokehDiffTrainConfig(discriminator="custom", lpips_weight=0.0))


# ------------------------------------------------------------------------------------------ merging a LoRA
def test_a_merged_lora_equals_peft_s_adapted_layers():
    pytest.importorskip("peft")
    from peft import LoraConfig, inject_adapter_in_model

    from lensblur.bokehdiff.loading import run_vae_encoder

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.Conv2d(5, 4, 1))
    linear = torch.nn.Linear(6, 7)
    holder = torch.nn.ModuleDict({"encoder": torch.nn.ModuleDict({"conv": model, "fc": linear})})
    base = {k: v.clone() for k, v in holder.state_dict().items()}
    inject_adapter_in_model(LoraConfig(r=2, lora_alpha=2, init_lora_weights="gaussian",
                                       target_modules=["encoder.conv.0", "encoder.conv.1", "encoder.fc"]), holder)
    with torch.no_grad():
        for name, p in holder.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape))
    x, v = torch.rand(2, 3, 8, 8), torch.rand(4, 6)
    adapted = (holder["encoder"]["conv"](x), holder["encoder"]["fc"](v))
    tensors = {f"vae.{k}": t for k, t in holder.state_dict().items() if "lora_" in k}
    plain = torch.nn.ModuleDict({"encoder": torch.nn.ModuleDict({"conv": torch.nn.Sequential(
        torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.Conv2d(5, 4, 1)), "fc": torch.nn.Linear(6, 7)})})
    plain.load_state_dict(base)
    merged = run_vae_encoder(tensors, plain)
    assert set(merged) == {"encoder.conv.0.weight", "encoder.conv.1.weight", "encoder.fc.weight"}
    plain.load_state_dict(merged, strict=False)
    assert torch.allclose(plain["encoder"]["conv"](x), adapted[0], atol=1e-5)
    assert torch.allclose(plain["encoder"]["fc"](v), adapted[1], atol=1e-5)


# ------------------------------------------------------------------------------------------ full-size counts
def test_the_trained_parameters_of_the_full_size_model_match_the_sheet():
    """Fact sheet 3.1 / 7: LoRA r = 8 on the release's targets over the whole SDXL UNet ~ 24.6 M parameters
    (conv LoRA counted as r C_in k^2 + r C_out); the encoder's conv_in + mid_block + conv_out ~ 10.5 M."""
    pytest.importorskip("diffusers")
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from lensblur.bokehdiff.training import VAE_PARTS, lora_target_names

    sdxl_unet = {"down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 "block_out_channels": (320, 640, 1280), "layers_per_block": 2,
                 "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20),
                 "cross_attention_dim": 2048, "use_linear_projection": True, "addition_embed_type": "text_time",
                 "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816}
    sdxl_vae = {"latent_channels": 4, "block_out_channels": (128, 256, 512, 512),
                "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
                "layers_per_block": 2}
    with torch.device("meta"):
        unet, vae = UNet2DConditionModel(**sdxl_unet), AutoencoderKL(**sdxl_vae)
    modules = dict(unet.named_modules())

    def lora_size(names, r=8):
        total = 0
        for name in names:
            m = modules[name]
            if isinstance(m, torch.nn.Conv2d):
                total += r * m.in_channels * m.kernel_size[0] * m.kernel_size[1] + r * m.out_channels
            else:
                total += r * (m.in_features + m.out_features)
        return total

    released, paper = lora_target_names(unet, "unet"), lora_target_names(unet, "down")
    assert lora_size(released) / 1e6 == pytest.approx(24.6, abs=0.05)
    assert set(paper) < set(released) and all(n.startswith("down_blocks.") for n in paper)
    encoder = sum(p.numel() for n, p in vae.named_parameters() if n.startswith(VAE_PARTS))
    assert encoder / 1e6 == pytest.approx(10.5, abs=0.05)
