"""Tiny randomly initialised Stable Diffusion components in diffusers' dummy-component style, and an offline
CLIP tokenizer built from the BPE merges file that ships inside the open-clip-torch wheel.

Shared by the tests of every part of lensblur that runs on diffusers (``tests/generate``, ``tests/bokehdiff``).
Nothing here reads weights from disk or the network: every model is seeded and random, so the tests check
mechanics, not image quality. Import it only after ``pytest.importorskip("diffusers")``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch

TOKENS = 77


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode table (the standard byte-level BPE alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(keep, (chr(c) for c in codes)))


def write_clip_tokenizer(out: Path, bpe: Path) -> Path:
    """Write vocab.json + merges.txt of the CLIP ViT-L/14 tokenizer (49408 tokens) from open-clip's BPE file
    ``bpe`` into the folder ``out``; returns ``out``."""
    with gzip.open(bpe) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    alphabet = list(_bytes_to_unicode().values())
    vocab = alphabet + [a + "</w>" for a in alphabet] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (out / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return out


def make_tokenizer(tokenizer_dir: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer(str(tokenizer_dir / "vocab.json"), str(tokenizer_dir / "merges.txt"),
                         model_max_length=TOKENS)


def text_encoder(with_projection: bool = False, seed: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_size=32,
                            intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2,
                            vocab_size=49408, max_position_embeddings=TOKENS, projection_dim=32,
                            hidden_act="gelu")
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config).eval()


def vae(seed: int = 0):
    """A tiny random VAE given the two properties of a trained one that image-to-image relies on: a posterior
    whose variance is negligible (log-variance at diffusers' floor of -30) and a ``scaling_factor`` of about
    1 / std of its latents (0.16 on these test images), the rule SD's 0.18215 came from. One down-sampling
    step: latents are half the image's size."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    model = AutoencoderKL(block_out_channels=[4, 8], in_channels=3, out_channels=3,
                          down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                          latent_channels=4, norm_num_groups=2, sample_size=32, scaling_factor=6.0).eval()
    with torch.no_grad():
        model.quant_conv.weight[4:] = 0.0
        model.quant_conv.bias[4:] = -30.0
    return model


def ddim(**extra):
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, **extra)


def sd_unet(seed: int = 0):
    """A tiny Stable Diffusion 1.x UNet (4 latent channels, one cross-attention block)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=2).eval()


def sdxl_unet(seed: int = 0, transformer_layers_per_block=(1, 1)):
    """A tiny Stable Diffusion XL UNet: pooled text embeddings and time ids as added conditions."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=transformer_layers_per_block,
                                projection_class_embeddings_input_dim=80, cross_attention_dim=64,
                                norm_num_groups=1).eval()


def sd_components(tokenizer_dir: Path, scheduler=None) -> dict:
    """Components of a tiny Stable Diffusion 1.x (32 x 32 images, 16 x 16 latents, 4-channel UNet)."""
    return {"unet": sd_unet(), "scheduler": scheduler or ddim(), "vae": vae(), "text_encoder": text_encoder(),
            "tokenizer": make_tokenizer(tokenizer_dir), "safety_checker": None, "feature_extractor": None,
            "image_encoder": None}


def sdxl_components(tokenizer_dir: Path, scheduler=None, transformer_layers_per_block=(1, 1)) -> dict:
    """Components of a tiny Stable Diffusion XL: two text encoders, pooled embeddings and time ids."""
    return {"unet": sdxl_unet(transformer_layers_per_block=transformer_layers_per_block),
            "scheduler": scheduler or ddim(), "vae": vae(), "text_encoder": text_encoder(seed=1),
            "text_encoder_2": text_encoder(with_projection=True, seed=2), "tokenizer": make_tokenizer(tokenizer_dir),
            "tokenizer_2": make_tokenizer(tokenizer_dir), "image_encoder": None, "feature_extractor": None}


def sdxl_embed(tokenizers, text_encoders, text: str):
    """SDXL conditioning of ``text`` computed by hand: the penultimate hidden states of both encoders,
    concatenated, and the second encoder's projected pooled output."""
    import torch

    hidden, pooled = [], None
    for tokenizer, encoder in zip(tokenizers, text_encoders):
        ids = tokenizer(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            out = encoder(ids, output_hidden_states=True)
        hidden.append(out.hidden_states[-2])
        pooled = out[0]
    return torch.cat(hidden, dim=-1), pooled
