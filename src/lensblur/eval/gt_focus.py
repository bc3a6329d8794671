"""BokehDiff's release picks the focus of an EBB! pair from its *ground truth*: a scoring aid, not a renderer's
input.

EBB! records no lens. The released inference code (``dataset.py``, ``TestDataset``, EBB organisation, no
subject mask) takes the focus disparity where the all-in-focus photo and the ground-truth bokeh photo share
edges, since what is in focus is sharp in both:

1. Canny edges (low threshold 20) of both 8-bit sRGB images, kept where both have one; the high threshold
   is 170, or 120 when fewer than 2 pixels are shared, or 40 when none are;
2. the search window: the central 20 % x 20 % box if it holds at least 2 shared edge pixels, else the central
   40 % box if it does, else the whole image;
3. the shared edges dilated by a 5 x 5 square, within the window; of the disparities there, those at most
   ``mean + 0.05`` (the mean disparity of all shared edge pixels) are kept, or at most ``mean + 0.1`` when 5
   or fewer pass; the focus is their median.

Where the release would produce NaN (no shared edge at all, or nothing under the ceiling), lensblur falls back
to the median disparity of the window's dilated edges, and with no edge at all to that of the central 20 %
box (the release's own fallback for an empty subject mask).

Because it reads the target, a score computed with it is not that of a blind renderer; it exists to reproduce
the release's EBB! numbers (``EvalOptions(focus="ground-truth-edges")``), and lensblur uses it nowhere else.
"""

from __future__ import annotations

import numpy as np

from .._convert import to_srgb8
from .._optional import cv2 as _optional_cv2
from ..choices import FOCUS_HEURISTICS
from ..errors import InputError

__all__ = ["GT_FOCUS", "ground_truth_edge_focus"]

GT_FOCUS = FOCUS_HEURISTICS[0]
"""The name of the heuristic in :class:`~lensblur.eval.runner.EvalOptions` (``focus=``)."""
CANNY_LOW = 20
CANNY_HIGH = ((170, 2), (120, 1), (40, 0))
"""High thresholds in order, each with the shared-edge count below which the next is tried."""
WINDOWS = ((0.4, 0.6), (0.3, 0.7))
"""Central search boxes (fractions of each side), tried before the whole image."""
CEILINGS = (0.05, 0.1)
ENOUGH = 5
"""More than this many disparities under the first ceiling, or the second is used."""


def _cv2():
    return _optional_cv2("the ground-truth focus heuristic", extra="io")


def _shared_edges(image8: np.ndarray, target8: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    for high, need in CANNY_HIGH:
        shared = (cv2.Canny(image8, CANNY_LOW, high) > 0) & (cv2.Canny(target8, CANNY_LOW, high) > 0)
        if shared.sum() >= need:
            break
    return shared


def ground_truth_edge_focus(image, target, disparity) -> float:
    """The focus disparity of an EBB!-style pair by the release's ground-truth edge heuristic (module doc).

    Args:
        image: ``(H, W, 3)`` linear RGB, the all-in-focus photo.
        target: ``(H, W, 3)`` linear RGB, its ground-truth bokeh photo.
        disparity: ``(H, W)`` in [0, 1], 1 = nearest (resized bilinearly to the image when it differs, as the
            release does).

    Returns:
        The focus disparity in [0, 1].

    Raises:
        InputError: images of different sizes, or not ``(H, W, 3)``; a disparity that is not 2-D.
        MissingDependencyError: OpenCV is not installed.
    """
    cv2 = _cv2()

    image, target = np.asarray(image), np.asarray(target)
    disparity = np.asarray(disparity, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] != 3 or image.shape != target.shape:
        raise InputError("target", expected=f"an (H, W, 3) image the size of the input {image.shape}",
                         got=f"shape {target.shape}", fix="pass the pair's ground truth at the input's size")
    if disparity.ndim != 2:
        raise InputError("disparity", expected="an (H, W) map", got=f"shape {disparity.shape}",
                         fix="pass the disparity's single channel")
    h, w = image.shape[:2]
    if disparity.shape != (h, w):
        disparity = cv2.resize(disparity, (w, h), interpolation=cv2.INTER_LINEAR)
    shared = _shared_edges(to_srgb8(image), to_srgb8(target))
    rows, cols = slice(None), slice(None)
    for low, high in WINDOWS:
        box = slice(int(low * h), int(high * h)), slice(int(low * w), int(high * w))
        if shared[box].sum() >= 2:
            rows, cols = box
            break
    if not shared.any():
        centre = disparity[int(0.4 * h): int(0.6 * h), int(0.4 * w): int(0.6 * w)]
        return float(np.median(centre if centre.size else disparity))
    near = cv2.dilate(shared.astype(np.uint8), np.ones((5, 5), np.uint8))[rows, cols] > 0
    candidates = disparity[rows, cols][near]
    mean = float(disparity[shared].mean())
    for ceiling in CEILINGS:
        kept = candidates[candidates <= mean + ceiling]
        if kept.size > ENOUGH or (ceiling == CEILINGS[-1] and kept.size):
            return float(np.median(kept))
    return float(np.median(candidates))
