"""The unpaired view: an image and a target of different items, each with its own crop, seeded by torch."""

from __future__ import annotations

import pytest
import torch

from lensblur.errors import InputError
from lensblur.train import RandomCrops, Unpaired


def _numbered(n, size=(8, 8)):
    """Items whose every pixel says which item and which column it is: image k + x / 100, target 100 + k + x / 100."""
    x = torch.arange(size[1], dtype=torch.float32).expand(1, *size) / 100
    return [{"image": k + x, "target": 100 + k + x, "meta": {"id": f"p{k}"}} for k in range(n)]


def test_image_and_target_come_from_different_items():
    data = Unpaired(_numbered(4))
    partners = {i: set() for i in range(4)}
    torch.manual_seed(0)
    for _ in range(60):
        for i in range(4):
            item = data[i]
            assert float(item["image"][0, 0, 0]) == i
            j = int(item["target"][0, 0, 0]) - 100
            assert j != i and item["meta"] == {"image_id": f"p{i}", "target_id": f"p{j}"}
            partners[i].add(j)
    assert partners == {i: set(range(4)) - {i} for i in range(4)}      # every other item is drawn
    with pytest.raises(InputError, match="^dataset: expected at least two items"):
        Unpaired(_numbered(1))


def test_it_is_deterministic_under_a_seed():
    data = Unpaired(RandomCrops(_numbered(5, (8, 12)), 4))

    def reads(seed):
        torch.manual_seed(seed)
        return [torch.cat([data[i]["image"], data[i]["target"]]) for i in range(5)]

    first = reads(1)
    assert all(torch.equal(a, b) for a, b in zip(first, reads(1)))
    assert not all(torch.equal(a, b) for a, b in zip(first, reads(2)))


def test_image_and_target_get_their_own_crops():
    data = Unpaired(RandomCrops(_numbered(3, (6, 20)), 4, flip=False))
    torch.manual_seed(0)
    offsets = []
    for _ in range(20):
        item = data[0]
        assert item["image"].shape == item["target"].shape == (1, 4, 4)
        offsets.append((round(float(item["image"][0, 0, 0] % 1) * 100), round(float(item["target"][0, 0, 0] % 1) * 100)))
    assert any(a != b for a, b in offsets)


def test_it_composes_with_the_crop_size_check():
    data = Unpaired(RandomCrops(_numbered(2, (8, 8)), 16))
    with pytest.raises(InputError, match="^crop: expected items at least 16 px on each side"):
        data[0]
