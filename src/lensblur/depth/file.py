"""A disparity map the user already has, as a file (larger = nearer)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io import read_disparity
from ._base import DepthResult

__all__ = ["FileDepth"]


class FileDepth:
    """A disparity map file, read with :func:`lensblur.io.read_disparity` and checked (or resized) against
    the photo.

    Args:
        path: the map (larger = nearer).
        normalize: min-max rescale the values to [0, 1].
        resize: resample a map of another size to the photo's.

    ``estimate(image)`` returns a :class:`DepthResult` of the photo's size without a range; it raises what
    :func:`~lensblur.io.read_disparity` raises.
    """

    name = "file"

    def __init__(self, path: str | os.PathLike, *, normalize: bool = False, resize: bool = False):
        self.path = Path(path)
        self.normalize = normalize
        self.resize = resize

    def estimate(self, image: np.ndarray) -> DepthResult:
        h, w = image.shape[:2]
        disparity = read_disparity(self.path, normalize=self.normalize, shape=(h, w), resize=self.resize)
        return DepthResult(disparity=disparity, depth_range=None, source=f"disparity file {self.path.name}")
