"""Loading BokehDiff's weights as published (a tiny stand-in written to disk, see tiny_release.py): folders, the
Hugging Face cache, the LoRA's three key layouts, the pickle VAE encoder, and one clear message per mistake."""

from __future__ import annotations

import datetime
import re

import numpy as np
import pytest
import torch

import diffusion_dummies
from lensblur.bokehdiff import BokehDiffPipeline
from lensblur.bokehdiff.loading import (
    apply_vae_encoder,
    find_lora,
    find_vae_encoder,
    load_lora,
    read_vae_encoder,
    resolve_device,
    resolve_dtype,
)
from lensblur.errors import InputError, ModelNotFoundError
from lensblur.lens import Lens
from lensblur.methods import get_method

LENS = Lens(focus_disparity=0.5, blur=300.0)


def scene():
    rng = np.random.default_rng(0)
    _y, x = np.mgrid[0:32, 0:32]
    return rng.random((32, 32, 3)).astype(np.float32), (0.5 + 0.4 * np.sin(x / 4.0)).astype(np.float32)


@pytest.fixture(scope="module")
def loaded(release):
    return BokehDiffPipeline.from_pretrained(release.base, lora=release.lora, device="cpu")


@pytest.fixture
def fresh(tokenizer_dir):
    """diffusers' SDXL pipeline on fresh tiny components (no LoRA yet)."""
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(**diffusion_dummies.sdxl_components(tokenizer_dir, transformer_layers_per_block=(1, 2)))


def adapted(unet, state, adapter):
    """Whether every tensor of the peft-named ``state`` sits in ``unet`` under ``adapter``."""
    modules = dict(unet.named_modules())
    for key, value in state.items():
        name, kind = re.match(r"(.+)\.(lora_[AB])\.weight$", key).groups()
        layer = getattr(modules[name], kind, {})
        if adapter not in layer or not torch.equal(layer[adapter].weight, value):
            return False
    return True


def test_the_released_layout_loads_from_folders(loaded, release):
    assert find_lora(release.lora) == release.lora_file                  # small/pytorch_lora_weights.safetensors
    assert find_vae_encoder("auto", release.lora_file) == release.ckpt    # small/vae.ckpt beside it
    assert adapted(loaded.unet, release.lora_state, "default_0")
    vae = loaded.vae.state_dict()
    assert all(torch.equal(vae[k], v) for k, v in release.encoder.items())
    assert loaded.pisa_layers == ["down_blocks.1.attentions.0.transformer_blocks.0.attn1",
                                  "down_blocks.1.attentions.0.transformer_blocks.1.attn1"]


def test_the_lora_and_the_encoder_change_the_render(loaded, release):
    from lensblur.generate.loading import load_text_to_image

    image, disparity = scene()
    plain = BokehDiffPipeline.from_pipe(load_text_to_image(release.base))
    assert np.abs(loaded(image, disparity, LENS).images - plain(image, disparity, LENS).images).max() > 1e-3


@pytest.mark.parametrize("layout", ["bare", "old_names"])
def test_every_key_layout_loads_the_whole_lora(fresh, release, layout):
    """Bare UNet keys (the release's diffusers 0.32 save) and the older lora.down/up names load every layer,
    where diffusers 0.42 alone loads none (bare) or drops the attention layers (old names)."""
    path = getattr(release, layout)
    assert load_lora(fresh, path) == len(release.lora_state) // 2
    assert adapted(fresh.unet, release.lora_state, "default_0")


def test_diffusers_alone_would_lose_the_bare_lora(fresh, release):
    fresh.load_lora_weights(str(release.bare.parent), weight_name=release.bare.name)
    assert not getattr(fresh.unet, "peft_config", None)


def test_from_the_hugging_face_cache(release, tmp_path, monkeypatch):
    import huggingface_hub

    snapshot = tmp_path / "models--zcx65535--bokehdiff" / "snapshots" / "0123abcd"
    (snapshot / "small").mkdir(parents=True)
    (tmp_path / "models--zcx65535--bokehdiff" / "refs").mkdir()
    (tmp_path / "models--zcx65535--bokehdiff" / "refs" / "main").write_text("0123abcd")
    for f in (release.lora_file, release.ckpt):
        (snapshot / "small" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    lora = find_lora()
    assert lora == snapshot / "small" / "pytorch_lora_weights.safetensors"
    assert find_vae_encoder("auto", lora) == snapshot / "small" / "vae.ckpt"


def test_a_missing_base_model_says_how_to_get_it(release, tmp_path):
    missing = tmp_path / "RealVisXL_V5.0"
    with pytest.raises(ModelNotFoundError) as info:
        BokehDiffPipeline.from_pretrained(missing, lora=release.lora, device="cpu")
    text = str(info.value)
    assert str(missing) in text and "hf download SG161222/RealVisXL_V5.0" in text and "CompVis" not in text


def test_a_missing_lora_says_where_it_looked(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelNotFoundError) as info:
        find_lora()
    text = str(info.value)
    assert "zcx65535/bokehdiff" in text and "Hugging Face cache" in text and "hf download zcx65535/bokehdiff" in text
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError) as info:
        find_lora(tmp_path / "empty")
    assert str(tmp_path / "empty" / "small" / "pytorch_lora_weights.safetensors") in str(info.value)


def test_a_lora_for_another_base_is_refused_before_it_loads(fresh, release):
    with pytest.raises(InputError, match=r"lora: expected a LoRA for this base model's UNet .* fit no layer"):
        load_lora(fresh, release.other_lora)
    assert not getattr(fresh.unet, "peft_config", None)


def test_the_vae_encoder_checks(release, tmp_path, fresh):
    with pytest.raises(ModelNotFoundError, match="vae_encoder=none"):
        find_vae_encoder("auto", tmp_path / "lora.safetensors")
    assert find_vae_encoder("none", release.lora_file) is None
    wrong = {k: torch.zeros(3, 3) for k in list(release.encoder)[:2]}
    with pytest.raises(InputError, match="vae_encoder: expected tensors of this base model's VAE"):
        apply_vae_encoder(fresh.vae, wrong)
    unsafe = tmp_path / "vae.ckpt"
    torch.save({"encoder.conv_in.weight": torch.zeros(1), "made": datetime.date(2025, 7, 23)}, unsafe)
    with pytest.raises(ModelNotFoundError, match="could not be read"):
        read_vae_encoder(unsafe)                                      # weights_only refuses the pickled date
    safetensors = pytest.importorskip("safetensors.torch")
    converted = tmp_path / "vae.safetensors"
    safetensors.save_file(release.encoder, str(converted))
    assert apply_vae_encoder(fresh.vae, read_vae_encoder(converted)) == len(release.encoder)


def test_device_and_dtype():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device: expected a device that exists"):
            resolve_device("cuda")
    with pytest.raises(InputError, match="device"):
        resolve_device("toaster")
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(InputError, match="dtype: expected float32 or bfloat16 on the CPU"):
        resolve_dtype("float16", torch.device("cpu"))
    with pytest.raises(InputError, match="dtype"):
        resolve_dtype("int8", torch.device("cpu"))


def test_the_registered_method(release):
    with pytest.raises(InputError, match="tile"):
        get_method("bokehdiff", model=str(release.base), lora=str(release.lora), tile="sometimes")
    method = get_method("bokehdiff", model=str(release.base), lora=str(release.lora), device="cpu", tile="never")
    assert (method.name, method.needs_disparity, method.needs_lens) == ("bokehdiff", True, True)
    image, disparity = scene()
    out = method.predict(image, disparity=disparity, lens=LENS, meta={})
    assert out.shape == image.shape and out.dtype == np.float32


def test_the_default_weights_missing_from_the_cache_is_a_model_error_in_a_fresh_process(tmp_path):
    """The Hugging Face cache lookup works before diffusers is imported (a fresh ``lensblur render``), where
    huggingface_hub's submodules are not loaded yet: the user gets where it looked, not an AttributeError."""
    import os
    import subprocess
    import sys

    probe = ("from lensblur.bokehdiff.loading import find_lora\n"
             "from lensblur.errors import ModelNotFoundError\n"
             "try:\n    find_lora('zcx65535/bokehdiff')\nexcept ModelNotFoundError as exc:\n    print(exc)\n")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "not found. Looked in:" in result.stdout and str(tmp_path / "hub") in result.stdout
