"""A tiny stand-in for BokehDiff's release on disk: an SDXL base saved with ``save_pretrained``, a LoRA in
diffusers' format (``save_lora_weights``: ``unet.``-prefixed peft names), the same LoRA with bare UNet keys (what
``unet.save_attn_procs`` wrote in diffusers 0.32, the release's) and with diffusers' older ``lora.down/up``
names, the partial VAE encoder as a pickle ``.ckpt``, and a LoRA of an SD 1.x UNet (for another base)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

import diffusion_dummies

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
                "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj"]
ENCODER_PARTS = ("encoder.conv_in.", "encoder.mid_block.", "encoder.conv_out.")


def _lora_state(unet, seed: int) -> dict[str, torch.Tensor]:
    """A rank-4 LoRA on the release's targets, with random (non-zero) B so that it changes the output."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    state = {k: v.detach().clone().contiguous() for k, v in get_peft_model_state_dict(unet).items()}
    unet.delete_adapters(unet.active_adapters())
    return state


def write_release(root: Path, tokenizer_dir: Path) -> SimpleNamespace:
    """Write the stand-in under ``root``; returns its paths and tensors."""
    import safetensors.torch
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers

    components = diffusion_dummies.sdxl_components(tokenizer_dir, transformer_layers_per_block=(1, 2))
    base = root / "base"
    StableDiffusionXLPipeline(**components).save_pretrained(base)
    lora = _lora_state(components["unet"], seed=0)
    folder = root / "bokehdiff" / "small"
    folder.mkdir(parents=True)
    StableDiffusionXLPipeline.save_lora_weights(folder, unet_lora_layers=lora)
    bare = root / "bare.safetensors"
    safetensors.torch.save_file(lora, str(bare))
    old = root / "old-names.safetensors"
    safetensors.torch.save_file({f"unet.{k}": v for k, v in convert_state_dict_to_diffusers(lora).items()}, str(old))
    g = torch.Generator().manual_seed(1)
    encoder = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in components["vae"].state_dict().items()
               if k.startswith(ENCODER_PARTS)}
    torch.save(encoder, folder / "vae.ckpt")
    other = root / "sd1-lora.safetensors"
    safetensors.torch.save_file({f"unet.{k}": v for k, v in _lora_state(diffusion_dummies.sd_unet(), 2).items()},
                                str(other))
    return SimpleNamespace(root=root, base=base, lora=root / "bokehdiff",
                           lora_file=folder / "pytorch_lora_weights.safetensors", bare=bare, old_names=old,
                           ckpt=folder / "vae.ckpt", lora_state=lora, encoder=encoder, other_lora=other)
