"""Built-in examples that need no download: a real photo with ground-truth disparity.

``motorcycle()`` is the left view of the Middlebury 2014 "Motorcycle" stereo pair shipped with
scikit-image (``skimage.data.stereo_motorcycle``), with its ground-truth disparity. The few pixels the
ground truth leaves unknown (occlusions) are filled along their row with the farther of their nearest
known neighbours, and the map is scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np

from ._convert import decode_srgb
from ._optional import require

__all__ = ["motorcycle"]


def motorcycle() -> tuple[np.ndarray, np.ndarray]:
    """The Middlebury "Motorcycle" left view and its ground-truth disparity.

    Returns:
        ``(image, disparity)``: ``500 x 741 x 3`` float32 linear RGB and ``500 x 741`` float32 disparity in
        [0, 1] (1 = nearest).

    Raises:
        MissingDependencyError: scikit-image is not installed (``lensblur[demo]``).
    """
    data = require("skimage.data", extra="demo", feature="the built-in example", package="scikit-image")
    from .depth.stereo import fill_holes

    left, _, truth = data.stereo_motorcycle()
    valid = np.isfinite(truth)
    filled = fill_holes(np.where(valid, truth, 0.0).astype(np.float32), valid)
    lo, hi = float(filled.min()), float(filled.max())
    disparity = ((filled - lo) / (hi - lo)).astype(np.float32)
    image = decode_srgb(left, 255)
    return image, disparity
