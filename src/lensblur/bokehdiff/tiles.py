"""BokehDiff's tiled noise prediction: overlapping latent tiles, each predicted on its own, blended with a
fixed Gaussian window (the release's scheme, so any image runs in the memory of one tile).

Tile origins along a side of ``L`` latent pixels, for tiles of ``T``: ``linspace(0, L - T, 1 + (L - T // 4) //
(3 T // 4))`` truncated to integers (stride <= 3T/4, overlap >= T/4), repeated origins dropped. A side
shorter than ``T`` gets one tile of its length. Each tile's prediction is weighted by
``exp(-(x^2 + y^2))`` on ``x, y = linspace(-2, 2, T)`` and the weighted sum divided by the summed weights,
a partition of unity (a constant prediction blends to the same constant).

The release's tiles see nothing beyond their own edges: light from a source outside a tile cannot reach the
tile's pixels, so near a tile edge each prediction lacks the blur that crosses it, and only the blend with
the neighbouring tile hides it. ``margin`` (lensblur's option, 0 = the release) keeps the UNet's window the
tile's size, so memory stays that of one tile, but uses only its *core*, the window less ``margin`` on each
side that faces into the image: the cores are laid out by the release's rule for tiles of ``T - 2 margin``,
each window is its core grown by ``margin`` (shifted inwards at the image's edges), and the cores are blended
with the Gaussian window of the core's size. Each blended pixel then comes from predictions that saw at least
``margin`` latent pixels around it; it costs more tiles (about ``(T / (T - 2 margin))^2`` as many).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import InputError

__all__ = ["CROP_COORDS", "Tile", "blend", "check_crop_coords", "check_margin", "context_tiles", "crop_top_left", "gaussian_window",
           "tile_origins", "tiles", "time_ids"]

Tile = tuple[int, int, int, int]
"""``(top, left, height, width)`` in latent pixels."""
CROP_COORDS = ("latent", "pixels")
"""The units of a tile's SDXL crop time ids: latent pixels (the release's inference) or image pixels (its
training's)."""


def check_crop_coords(units) -> None:
    """Refuse ``units`` that are not one of :data:`CROP_COORDS`.

    Raises:
        InputError: naming ``crop_coords``.
    """
    if units not in CROP_COORDS:
        raise InputError("crop_coords", expected=f"one of {', '.join(CROP_COORDS)}", got=units,
                         fix="crop_coords=latent (the release)")


def crop_top_left(window: Tile, factor: int, units: str = "latent") -> tuple[int, int]:
    """SDXL's crop time ids ``(top, left)`` of a tile: its origin in latent pixels (``"latent"``, the release) or
    in image pixels, ``factor`` per latent pixel (``"pixels"``, the unit of the release's training crops).

    Args:
        window: the tile, ``(top, left, height, width)`` in latent pixels.
        factor: image pixels per latent pixel (the VAE's factor).
        units: one of :data:`CROP_COORDS`.

    Returns:
        ``(top, left)``.

    Raises:
        InputError: ``units`` not one of :data:`CROP_COORDS`.
    """
    check_crop_coords(units)
    y, x = int(window[0]), int(window[1])
    return (y, x) if units == "latent" else (y * factor, x * factor)


def time_ids(image_size: tuple[int, int], crop: tuple[int, int]) -> list[int]:
    """SDXL's six time ids as the release's inference gives every tile: original size, crop top-left, target
    size, with original and target the whole image's ``(height, width)`` in pixels (its training used the
    render's size and the crop's).

    Args:
        image_size: ``(height, width)`` in pixels.
        crop: ``(top, left)``, from :func:`crop_top_left`.

    Returns:
        ``[height, width, top, left, height, width]``.
    """
    return [int(image_size[0]), int(image_size[1]), int(crop[0]), int(crop[1]), int(image_size[0]),
            int(image_size[1])]


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


def check_margin(margin, tile: int) -> None:
    """Refuse a ``margin`` that is not an integer in ``[0, (tile - 1) // 2]``.

    Raises:
        InputError: naming ``tile_margin``.
    """
    if not (isinstance(margin, int) and not isinstance(margin, bool) and 0 <= margin and 2 * margin < tile):
        raise InputError("tile_margin", expected=f"latent pixels, an integer in [0, {(tile - 1) // 2}] "
                         f"(less than half the {tile}-latent tile)", got=margin, fix="tile_margin=0 (the release)")


def _windows_along(length: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """``(core start, core length, window start, window length)`` along one side."""
    if length <= tile or margin == 0:
        return [(o, min(tile, length), o, min(tile, length)) for o in tile_origins(length, tile)]
    core = tile - 2 * margin
    return [(o, core, min(max(o - margin, 0), length - tile), tile) for o in tile_origins(length, core)]


def context_tiles(height: int, width: int, tile: int, margin: int = 0) -> list[tuple[Tile, Tile]]:
    """The UNet windows of a ``height x width`` latent and the core kept of each (see the module doc).

    Args:
        height: latent rows; ``width`` latent columns.
        tile: the window side (the UNet's input, as :func:`tiles`).
        margin: latent pixels of context kept around each core, ``0 <= 2 margin < tile``; 0 gives :func:`tiles`'
            layout with each core its whole window.

    Returns:
        ``(window, core)`` pairs, each ``(top, left, height, width)`` in the latent; every core lies inside its
        window, at least ``margin`` from each window edge that is not the image's.

    Raises:
        InputError: ``margin`` out of range.
    """
    check_margin(margin, tile)
    rows, cols = _windows_along(height, tile, margin), _windows_along(width, tile, margin)
    return [((wy, wx, wh, ww), (cy, cx, ch, cw)) for cx, cw, wx, ww in cols for cy, ch, wy, wh in rows]


def gaussian_window(height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """``exp(-(y^2 + x^2))`` on ``linspace(-2, 2, height) x linspace(-2, 2, width)``: ``(height, width)``."""
    y = torch.linspace(-2.0, 2.0, height, device=device, dtype=dtype)
    x = torch.linspace(-2.0, 2.0, width, device=device, dtype=dtype)
    return torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2))


def blend(predict: Callable[[Tile], torch.Tensor], layout: list, shape: tuple[int, ...], *,
          device=None, dtype=torch.float32) -> torch.Tensor:
    """The Gaussian-weighted average of per-tile predictions.

    Args:
        predict: a window -> its prediction, ``(..., window height, window width)``.
        layout: the tiles (from :func:`tiles`), or ``(window, core)`` pairs (from :func:`context_tiles`),
            of which each core's part of its window's prediction is kept.
        shape: the result's shape, ``(..., height, width)``.
        device: where the result is accumulated; ``dtype`` its dtype.

    Returns:
        The blended prediction, ``shape``.
    """
    total = torch.zeros(shape, device=device, dtype=dtype)
    weight = torch.zeros(shape[-2:], device=device, dtype=dtype)
    for entry in layout:
        window, core = (entry, entry) if isinstance(entry[0], int) else entry
        y, x, h, w = core
        top, left = y - window[0], x - window[1]
        part = predict(window)[..., top:top + h, left:left + w].to(device=device, dtype=dtype)
        gauss = gaussian_window(h, w, device=device, dtype=dtype)
        total[..., y:y + h, x:x + w] += part * gauss
        weight[y:y + h, x:x + w] += gauss
    return total / weight
