"""Shared fixtures: a seeded random generator and a smooth, textured test image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

# The tests work on small tensors, where a second thread only adds overhead, and under load from other
# processes two threads can be many times slower than one. Benchmarks (bench/) use the machine's cores.
torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def textured(rng) -> np.ndarray:
    """A 48 x 64 x 3 float64 image in [0, 1]: smooth gradients plus fine noise (edges and flat parts)."""
    y, x = np.mgrid[0:48, 0:64] / 64.0
    base = np.stack([0.5 + 0.4 * np.sin(6 * x), 0.5 + 0.4 * np.cos(5 * y), 0.3 + 0.5 * x * y], axis=-1)
    base[10:30, 20:40] = [0.9, 0.1, 0.2]
    return np.clip(base + rng.normal(0.0, 0.03, base.shape), 0.0, 1.0)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """vocab.json + merges.txt of the CLIP ViT-L/14 tokenizer (49408 tokens), from open-clip's BPE file (for the
    tiny diffusion pipelines of tests/generate and tests/bokehdiff)."""
    open_clip = pytest.importorskip("open_clip")
    import diffusion_dummies

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    return diffusion_dummies.write_clip_tokenizer(tmp_path_factory.mktemp("clip_tokenizer"), bpe)


@pytest.fixture(scope="session")
def pairs(tmp_path_factory):
    """Three tiny synthetic pairs (48 x 40, seed 5) for the training tests, read-only."""
    from lensblur.data import SynthDataset
    from lensblur.synth.dataset import synthesize

    root = tmp_path_factory.mktemp("synth-pairs")
    synthesize(root, 3, size=(48, 40), seed=5, samples=32, progress=False)
    return SynthDataset(root)
