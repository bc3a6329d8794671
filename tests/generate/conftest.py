"""Fixtures of tiny randomly initialised Stable Diffusion components (built by ``diffusion_dummies``, shared
with the other diffusers-based tests) and an offline CLIP tokenizer built from the BPE merges file that ships
inside the open-clip-torch wheel.

Nothing here reads weights from disk or the network: every model is seeded and random, so the tests check the
mechanics of stage diffusion (what reaches the UNet, when, and the equality with diffusers' own pipelines), not
image quality.
"""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers", reason="the 'diffusion' extra is not installed")
torch = pytest.importorskip("torch")

import diffusion_dummies  # tests/ is on sys.path: its conftest.py is the root one


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models run ~100x faster on one thread than with threads fighting other processes for 2 cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def sd_components(tokenizer_dir):
    """Components of a tiny Stable Diffusion 1.x (32 x 32 images, 16 x 16 latents, 4-channel UNet)."""
    return diffusion_dummies.sd_components(tokenizer_dir)


@pytest.fixture
def sd_pipe(sd_components):
    """diffusers' own StableDiffusionPipeline on the tiny components (progress bar off)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**sd_components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def sdxl_components(tokenizer_dir):
    """Components of a tiny Stable Diffusion XL: two text encoders, pooled embeddings and time ids."""
    return diffusion_dummies.sdxl_components(tokenizer_dir)


class UNetInputs:
    """Records what the UNet receives at every call (a forward pre-hook, so nothing in the model changes)."""

    def __init__(self, unet):
        self.hidden: list[torch.Tensor] = []
        self.text_embeds: list[torch.Tensor] = []
        self.handle = unet.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        self.hidden.append(kwargs["encoder_hidden_states"].detach().clone())
        added = kwargs.get("added_cond_kwargs") or {}
        if "text_embeds" in added:
            self.text_embeds.append(added["text_embeds"].detach().clone())

    def remove(self):
        self.handle.remove()


@pytest.fixture
def unet_inputs():
    hooks = []

    def attach(unet):
        hooks.append(UNetInputs(unet))
        return hooks[-1]

    yield attach
    for h in hooks:
        h.remove()
