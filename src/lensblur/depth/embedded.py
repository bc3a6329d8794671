"""Depth stored inside the photo: HEIC/HEIF auxiliary depth, Dynamic Depth and GDepth JPEGs.

The map is read at its own (usually lower) resolution, converted exactly to lensblur disparity by its
representation (see :mod:`lensblur.depth.heif` and :mod:`lensblur.depth.jpeg`), and brought to the photo's
size edge-aware with :func:`lensblur.depth.refine.upsample`. The metric range travels with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._base import DepthResult
from .heif import HEIF_SUFFIXES, is_heif, read_heif_depth
from .jpeg import read_jpeg_depth
from .refine import upsample

__all__ = ["EmbeddedDepth", "has_embedded_depth"]


def _kind(path: Path) -> str | None:
    if path.suffix.lower() in HEIF_SUFFIXES or is_heif(path):
        return "heif"
    with open(path, "rb") as fh:
        if fh.read(2) == b"\xff\xd8":
            return "jpeg"
    return None


def has_embedded_depth(path: str | os.PathLike) -> bool:
    """Whether the photo at ``path`` carries a depth map lensblur can read (cheap check of the metadata).

    Args:
        path: the photo; a missing or unreadable file has none.

    Returns:
        True for a HEIF with a depth image, or a JPEG with Dynamic Depth or GDepth metadata.
    """
    path = Path(path)
    if not path.is_file():
        return False
    kind = _kind(path)
    if kind == "heif":
        from .heif import _pillow_heif

        try:
            return bool(_pillow_heif("reading depth from HEIC photos").open_heif(str(path)).info.get("depth_images"))
        except Exception:  # noqa: BLE001 - an unreadable file has no usable depth; reading it later says why
            return False
    if kind == "jpeg":
        data = path.read_bytes()
        return (b"http://ns.google.com/photos/1.0/depthmap/" in data
                or b"http://ns.google.com/photos/dd/1.0/" in data)
    return False


class EmbeddedDepth:
    """Depth embedded in the photo file (HEIC/HEIF, Dynamic Depth or GDepth JPEG).

    Args:
        path: the photo file.
        upsample_options: keywords for :func:`~lensblur.depth.upsample`, which brings a smaller map to the
            photo's size.

    ``estimate(image)`` takes the ``H x W x 3`` linear photo and returns a :class:`DepthResult` of its size
    with the metric range when the file records one. It raises :class:`InputError` (argument
    ``image_path``) when the file is missing, holds no depth lensblur can read, or its map does not have
    the photo's aspect ratio.
    """

    name = "embedded"

    def __init__(self, path: str | os.PathLike, *, upsample_options: dict | None = None):
        self.path = Path(path)
        self.upsample_options = dict(upsample_options or {})

    def estimate(self, image: np.ndarray) -> DepthResult:
        if not self.path.is_file():
            raise InputError("image_path", expected="an existing photo file", got=str(self.path), fix="check the path")
        kind = _kind(self.path)
        if kind == "heif":
            found = read_heif_depth(self.path)
        elif kind == "jpeg":
            found = read_jpeg_depth(self.path)
        else:
            raise InputError("image_path", expected="a HEIC/HEIF or JPEG photo with embedded depth",
                             got=f"{self.path} ({self.path.suffix or 'no suffix'})",
                             fix="embedded depth exists only in phone HEIC/JPEG photos; use source=model, "
                                 "source=stereo or source=subject, or disparity_path=FILE")
        h, w = image.shape[:2]
        dh, dw = found.disparity.shape
        if abs(dw / dh - w / h) > 0.02 * (w / h):
            raise InputError("image_path", expected=f"a depth map with the photo's aspect ratio ({w}x{h})",
                             got=f"a {dw}x{dh} depth map",
                             fix="the photo was cropped or rotated after it was taken; pass a matching "
                                 "disparity file instead")
        disparity = found.disparity if (dh, dw) == (h, w) else upsample(image, found.disparity,
                                                                         **self.upsample_options)
        return DepthResult(disparity=disparity, depth_range=found.depth_range, source=found.describe())
