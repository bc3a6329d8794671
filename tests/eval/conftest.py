"""A tiny synthetic tree in the ``lensblur synth`` layout (docs: SYNTH_LAYOUT), built here for the eval tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lensblur.io import write_image

H, W = 24, 32


def build_synth_tree(root: Path, count: int = 3, seed: int = 0) -> Path:
    import cv2

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({"generator": "lensblur.synth", "generator_version": "1",
                                                    "seed": seed, "size": [W, H], "count": count}))
    for k in range(count):
        pair = root / "pairs" / f"{k:06d}"
        pair.mkdir(parents=True)
        image = rng.uniform(0.05, 0.9, (H, W, 3)).astype(np.float32)
        target = np.clip(image * 0.8 + rng.normal(0, 0.02, image.shape), 0, 1).astype(np.float32)
        for stem, arr in (("image", image), ("target", target)):
            write_image(pair / f"{stem}.png", arr)
            write_image(pair / f"{stem}16.png", arr, bits=16)
            write_image(pair / f"{stem}.pfm", arr)
        disp = np.zeros((H, W), np.uint16)
        disp[:, W // 2:] = 65535  # one vertical depth edge
        cv2.imwrite(str(pair / "disparity.png"), disp)
        (pair / "params.json").write_text(json.dumps({
            "index": k, "seed": seed, "blur": 2.0, "focus_disparity": 1.0, "aperture": {"blades": 0, "rotation": 0.0},
            "layers": [], "lights": [], "samples": 16, "size": [W, H]}))
    return root


@pytest.fixture
def synth_root(tmp_path) -> Path:
    return build_synth_tree(tmp_path / "synth")
