"""Training views of a dataset: random crops (and flips) of its (image, target) pairs, and unpaired items.

The crop positions and the unpaired partners come from torch's global generator, which the training loop
seeds for each item from ``(seed, step, slot)``, so a resumed run, or one with several loading processes, sees
the crops (and partners) an uninterrupted one in a single process would.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import InputError

__all__ = ["RandomCrops", "Unpaired"]


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


class Unpaired(Dataset):
    """Unpaired items of a paired dataset, for methods that learn from two separate sets of images (CycleGAN).

    Item ``i`` holds the ``image`` of item ``i`` and the ``target`` of another item ``j != i``, drawn uniformly
    at random at each read, so that no pair is ever shown together. The two are read separately: over
    :class:`RandomCrops`, each gets its own crop and flip::

        Unpaired(RandomCrops(dataset, 256))

    Args:
        dataset: items with ``image`` and ``target`` tensors (a dataset reader or a view of one), at least two.

    Raises:
        InputError: fewer than two items.
    """

    def __init__(self, dataset):
        if len(dataset) < 2:
            raise InputError("dataset", expected="at least two items to take images and targets from different "
                             "ones", got=f"{len(dataset)} item(s)", fix="point root at a dataset with more pairs")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        other = int(torch.randint(0, len(self.dataset) - 1, ()))
        if other >= index:      # uniform over the other items
            other += 1
        image, target = self.dataset[index], self.dataset[other]
        ids = (item.get("meta", {}).get("id") for item in (image, target))
        return {"image": image["image"], "target": target["target"],
                "meta": dict(zip(("image_id", "target_id"), ids))}
