"""Training views of a dataset: random crops (and flips) of its (image, target) pairs.

The crop positions come from torch's global generator, which the training loop seeds for each item from
``(seed, step, slot)``, so a resumed run, or one with several loading processes, sees the crops an
uninterrupted one in a single process would.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import InputError

__all__ = ["RandomCrops"]


class RandomCrops(Dataset):
    """Random ``size x size`` crops of a dataset's items, the same window for every tensor of an item.

    Args:
        dataset: items with ``(C, H, W)`` tensors (``image``, ``target``, ``disparity``...), at least ``size``
            on each side.
        size: the crop side in pixels, >= 1.
        flip: also mirror left-right with probability 1/2.

    Raises:
        InputError: ``size`` < 1, or an item smaller than the crop (when it is read).
    """

    def __init__(self, dataset, size: int, *, flip: bool = True):
        if not isinstance(size, int) or size < 1:
            raise InputError("crop", expected="a crop side in pixels >= 1", got=size, fix="crop=256")
        self.dataset, self.size, self.flip = dataset, size, flip

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        h, w = item["image"].shape[-2:]
        if h < self.size or w < self.size:
            raise InputError("crop", expected=f"items at least {self.size} px on each side",
                             got=f"{w}x{h} (item {item.get('meta', {}).get('id')})", fix=f"crop={min(h, w)}")
        y = int(torch.randint(0, h - self.size + 1, (1,)))
        x = int(torch.randint(0, w - self.size + 1, (1,)))
        mirror = self.flip and bool(torch.rand(()) < 0.5)
        out = dict(item)
        for key, value in item.items():
            if isinstance(value, torch.Tensor) and value.shape[-2:] == (h, w):
                crop = value[..., y: y + self.size, x: x + self.size]
                out[key] = crop.flip(-1) if mirror else crop
        return out
