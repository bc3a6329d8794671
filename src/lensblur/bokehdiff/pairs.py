"""BokehDiff's training view of a paired dataset: random crops, the released augmentation, and PISA's inputs.

Each item of the wrapped dataset needs ``image``, ``target`` (linear RGB), ``disparity`` and a lens (its
``meta["lens"]``: ``blur``, ``focus_disparity``, as ``lensblur synth`` pairs and BLB carry it; or one lens
for every item, ``lens=``). An item of the view is

``image``, ``target``
    a random ``crop x crop`` window, mirrored left-right and upside-down each with probability 1/2 and, with
    probability 3/4, both multiplied by ``s = clip(0.7 + U[0, 1), 0.5, 1.1)`` on display (sRGB) values and
    clipped to [0, 1], as the release's loader does (``s`` is 1.1 in 60% of the scaled items);
``disparity``, ``coc``
    ``(1, crop, crop)``: the window's disparity and its exact signed CoC in pixels, ``blur * (d - d_f)``;
``focus_disparity``, ``coc_ratio``
    ``(1,)``: the item's focus, and a draw ``U(2/3, 1)`` with which the trainer can under-condition PISA as the
    release does (its CoC channel is ``ratio * max(d_f, 1 - d_f)`` times the rendered radius; see
    :class:`~lensblur.bokehdiff.training.BokehDiffTrainConfig`'s ``coc_conditioning``).

The random choices come from torch's global generator, which :func:`lensblur.train.train` seeds per item.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..color import linear_to_srgb, srgb_to_linear
from ..errors import InputError
from ..train.data import RandomCrops

__all__ = ["EXPOSURE_CHANCE", "EXPOSURE_RANGE", "BokehDiffPairs", "exposure_scale"]

EXPOSURE_CHANCE = 0.75
"""The fraction of items whose exposure is rescaled."""
EXPOSURE_RANGE = (0.5, 1.1)
"""``s = clip(0.7 + U[0, 1), 0.5, 1.1)``."""
RATIO_RANGE = (2.0 / 3.0, 1.0)


def exposure_scale(draw: float) -> float:
    """The release's exposure factor for a uniform draw in [0, 1): ``clip(0.7 + draw, 0.5, 1.1)``."""
    return min(max(0.7 + draw, EXPOSURE_RANGE[0]), EXPOSURE_RANGE[1])


class BokehDiffPairs(Dataset):
    """The training view (see the module doc).

    Args:
        dataset: items with ``image``, ``target``, ``disparity`` and a ``meta["lens"]`` (or pass ``lens``).
        crop: the window's side in pixels, a multiple of ``multiple`` (the release: 512 of 768-px renders).
        flips: mirror left-right and upside-down at random.
        exposure: rescale the exposure at random.
        lens: ``{"blur": K, "focus_disparity": d_f}`` for items without a lens of their own.
        multiple: what the side must be a multiple of (8: the VAE's factor).

    Raises:
        InputError: a crop that is not a positive multiple of ``multiple``; an item without a target,
            disparity or lens (when it is read).
    """

    def __init__(self, dataset, crop: int = 512, *, flips: bool = True, exposure: bool = True,
                 lens: dict[str, float] | None = None, multiple: int = 8):
        if not (isinstance(crop, int) and crop >= multiple and crop % multiple == 0):
            fix = max(multiple, (crop // multiple) * multiple) if isinstance(crop, int) else 512
            raise InputError("crop", expected=f"a side in pixels, a multiple of {multiple} (the VAE's factor)",
                             got=crop, fix=f"crop={fix}")
        self.dataset = dataset
        self.crops = RandomCrops(dataset, crop, flip=False)
        self.crop, self.flips, self.exposure, self.lens = crop, flips, exposure, lens

    def __len__(self) -> int:
        return len(self.dataset)

    def _lens(self, item: dict[str, Any]) -> tuple[float, float]:
        lens = item.get("meta", {}).get("lens") or self.lens
        if not lens:
            raise InputError("dataset", expected="pairs with a lens (blur, focus_disparity), as lensblur synth "
                                                 "pairs and BLB carry", got=f"item {item.get('meta', {}).get('id')} "
                                                                            "without one",
                             fix="train on a synth or blb dataset, or pass lens={'blur': K, 'focus_disparity': d}")
        return float(lens["blur"]), float(lens["focus_disparity"])

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.crops[index]
        for key in ("target", "disparity"):
            if key not in item:
                raise InputError("dataset", expected=f"pairs with {key}", got=f"item "
                                 f"{item.get('meta', {}).get('id')} without it",
                                 fix="train on a synth or blb dataset (image, target, disparity and lens)")
        blur, focus = self._lens(item)
        image, target, disparity = item["image"], item["target"], item["disparity"]
        if self.flips:
            for dim in (-1, -2):
                if bool(torch.rand(()) < 0.5):
                    image, target, disparity = (x.flip(dim) for x in (image, target, disparity))
        if self.exposure and bool(torch.rand(()) < EXPOSURE_CHANCE):
            s = exposure_scale(float(torch.rand(())))
            image, target = (srgb_to_linear((linear_to_srgb(x) * s).clamp(0.0, 1.0)) for x in (image, target))
        ratio = RATIO_RANGE[0] + (RATIO_RANGE[1] - RATIO_RANGE[0]) * float(torch.rand(()))
        return {"image": image.contiguous(), "target": target.contiguous(), "disparity": disparity.contiguous(),
                "coc": (blur * (disparity - focus)).contiguous(),
                "focus_disparity": torch.tensor([focus], dtype=torch.float32),
                "coc_ratio": torch.tensor([ratio], dtype=torch.float32), "meta": item.get("meta", {})}
