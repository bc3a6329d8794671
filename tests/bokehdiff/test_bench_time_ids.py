"""bench/train_bokehdiff.py --time-ids: each training crop carries the release's time ids (frame size, the
crop's top-left in pixels, crop size), and the miniature's noise prediction depends on them."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from train_bokehdiff import OneStepRenderer, TimeIdPairs


def frames(count=3, h=24, w=20):
    """Items whose disparity codes each pixel's place: ``(y w + x) / (h w)``, increasing along both axes."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    code = ((y * w + x).float() / (h * w))[None]
    return [{"image": torch.rand(3, h, w), "target": torch.rand(3, h, w), "disparity": code,
             "meta": {"lens": {"blur": 4.0, "focus_disparity": 0.5}}} for _ in range(count)]


def test_each_crop_carries_its_frames_size_its_top_left_and_its_size():
    items = frames()
    pairs = TimeIdPairs(items, 8)
    for i in range(len(items)):
        torch.manual_seed(i)
        item = pairs[i]
        ids, crop = item["time_ids"].tolist(), item["disparity"]
        h, w, y, x, th, tw = ids
        assert (h, w, th, tw) == (24.0, 20.0, 8.0, 8.0)
        # flips move the top-left pixel, but it keeps the smallest code of the crop
        assert abs(float(crop.min()) - (y * 20 + x) / (24 * 20)) < 1e-6


def test_the_miniatures_noise_prediction_reads_the_time_ids():
    model = OneStepRenderer("pisa", width=8, seed=0, hardness="inference", layers="release", time_ids=True)
    torch.nn.init.normal_(model.unet.conv_out.weight, std=0.1)   # the identity start hides every input
    z, disparity = torch.randn(1, 12, 8, 8), torch.rand(1, 1, 16, 16)
    coc = 4.0 * (disparity - 0.5)
    with torch.no_grad():
        a = model.noise(z, disparity, coc, time_ids=torch.tensor([32.0, 32.0, 0.0, 0.0, 16.0, 16.0]))
        b = model.noise(z, disparity, coc, time_ids=torch.tensor([32.0, 32.0, 16.0, 16.0, 16.0, 16.0]))
        c = model.noise(z, disparity, coc, time_ids=torch.tensor([32.0, 32.0, 0.0, 0.0, 16.0, 16.0]))
    assert float((a - b).abs().max()) > 1e-4
    torch.testing.assert_close(a, c, rtol=0, atol=0)
