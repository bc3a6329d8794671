"""Tiny random diffusers components for BokehDiff's tests (built by ``diffusion_dummies``, as in
``tests/generate``) and BokehDiff-specific pieces: an SDXL UNet whose ``down_blocks.1.attentions.0`` holds two
transformer blocks, as RealVisXL's does, so that PISA runs on exactly two layers."""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers", reason="the 'diffusion' extra is not installed")
torch = pytest.importorskip("torch")

import diffusion_dummies  # tests/ is on sys.path: its conftest.py is the root one


@pytest.fixture
def xl_unet():
    """A tiny SDXL UNet with two transformer blocks in down_blocks.1.attentions.0 (8 x 8 tokens there for
    32 x 32 images)."""
    return diffusion_dummies.sdxl_unet(transformer_layers_per_block=(1, 2))


@pytest.fixture
def xl_components(tokenizer_dir):
    return diffusion_dummies.sdxl_components(tokenizer_dir, transformer_layers_per_block=(1, 2))


@pytest.fixture
def sd_components(tokenizer_dir):
    return diffusion_dummies.sd_components(tokenizer_dir)


@pytest.fixture(scope="session")
def release(tmp_path_factory, tokenizer_dir):
    """The tiny stand-in for the released files (see tiny_release.py), written once."""
    from tiny_release import write_release

    return write_release(tmp_path_factory.mktemp("release"), tokenizer_dir)
