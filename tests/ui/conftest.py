"""The live ``lensblur ui`` server on a free port, in a thread of the test process."""

from __future__ import annotations

import pytest
from _ui import serving


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from lensblur.ui.session import Workspace

    root = tmp_path_factory.mktemp("ui-server")
    workspace = Workspace(max_upload_bytes=8 * 2**20, max_pixels=4_000_000, preview_pixels=120_000, root=root)
    with serving(workspace) as running:
        yield running


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tokenizer_dir):
    """A tiny randomly initialised Stable Diffusion (``tests/diffusion_dummies.py``) saved as a diffusers folder,
    as a downloaded model is."""
    pytest.importorskip("diffusers", reason="the 'diffusion' extra is not installed")
    from diffusers import StableDiffusionPipeline

    import diffusion_dummies

    path = tmp_path_factory.mktemp("tiny-sd") / "tiny-sd"
    StableDiffusionPipeline(**diffusion_dummies.sd_components(tokenizer_dir),
                            requires_safety_checker=False).save_pretrained(path)
    return path
