"""BokehDiff's tiled noise prediction: overlapping latent tiles, each predicted on its own, blended with a
fixed Gaussian window (the release's scheme, so any image runs in the memory of one tile).

Tile origins along a side of ``L`` latent pixels, for tiles of ``T``: ``linspace(0, L - T, 1 + (L - T // 4) //
(3 T // 4))`` truncated to integers (stride <= 3T/4, overlap >= T/4), repeated origins dropped. A side
shorter than ``T`` gets one tile of its length. Each tile's prediction is weighted by
``exp(-(x^2 + y^2))`` on ``x, y = linspace(-2, 2, T)`` and the weighted sum divided by the summed weights,
a partition of unity (a constant prediction blends to the same constant).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["Tile", "blend", "gaussian_window", "tile_origins", "tiles"]

Tile = tuple[int, int, int, int]
"""``(top, left, height, width)`` in latent pixels."""


def tile_origins(length: int, tile: int) -> list[int]:
    """Where the tiles along one side start.

    Args:
        length: the side in latent pixels, >= 1.
        tile: the tile side, >= 1.

    Returns:
        Increasing origins, the first 0 and the last ``length - min(tile, length)``.
    """
    tile = min(tile, length)
    count = 1 + (length - tile // 4) // max(1, tile * 3 // 4)
    return sorted({int(v) for v in np.linspace(0, length - tile, count).astype(np.int64)})


def tiles(height: int, width: int, tile: int) -> list[Tile]:
    """The tiles covering a ``height x width`` latent, in the release's order (columns outer, rows inner).

    Args:
        height: latent rows; ``width`` latent columns.
        tile: the tile side.

    Returns:
        The tiles as ``(top, left, height, width)``.
    """
    th, tw = min(tile, height), min(tile, width)
    return [(y, x, th, tw) for x in tile_origins(width, tile) for y in tile_origins(height, tile)]


def gaussian_window(height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """``exp(-(y^2 + x^2))`` on ``linspace(-2, 2, height) x linspace(-2, 2, width)``: ``(height, width)``."""
    y = torch.linspace(-2.0, 2.0, height, device=device, dtype=dtype)
    x = torch.linspace(-2.0, 2.0, width, device=device, dtype=dtype)
    return torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2))


def blend(predict: Callable[[Tile], torch.Tensor], layout: list[Tile], shape: tuple[int, ...], *,
          device=None, dtype=torch.float32) -> torch.Tensor:
    """The Gaussian-weighted average of per-tile predictions.

    Args:
        predict: a tile -> its prediction, ``(..., tile height, tile width)``.
        layout: the tiles (from :func:`tiles`).
        shape: the result's shape, ``(..., height, width)``.
        device: where the result is accumulated; ``dtype`` its dtype.

    Returns:
        The blended prediction, ``shape``.
    """
    total = torch.zeros(shape, device=device, dtype=dtype)
    weight = torch.zeros(shape[-2:], device=device, dtype=dtype)
    for tile in layout:
        y, x, h, w = tile
        window = gaussian_window(h, w, device=device, dtype=dtype)
        total[..., y:y + h, x:x + w] += predict(tile).to(dtype) * window
        weight[y:y + h, x:x + w] += window
    return total / weight
