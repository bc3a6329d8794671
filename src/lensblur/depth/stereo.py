"""Depth from a rectified stereo pair: OpenCV semi-global matching, left-right check, hole filling, WLS.

:func:`stereo_disparity` returns the left view's disparity in pixels (``NaN`` where unknown when
``fill=False``):

1. SGBM (``cv2.StereoSGBM``, 3-way mode) matches left -> right, and the right matcher of
   ``cv2.ximgproc`` right -> left;
2. left-right consistency: a left pixel keeps its disparity ``d`` only if the right view's pixel at
   ``x - d`` points back within ``lr_tolerance`` pixels; occlusions and mismatches are dropped;
3. holes are filled along each row with the smaller (farther) of the nearest valid values on either side,
   since holes next to depth edges are almost always occluded background;
4. where OpenCV's contrib modules are installed and ``wls=True``, the fast weighted-least-squares filter
   (``cv2.ximgproc.createDisparityWLSFilterGeneric``) smooths the filled map along the left image's edges.

Pixel disparity is proportional to inverse depth, so the min-max rescale to [0, 1] is exact up to the
metric range, which is known only with ``focal_length_px`` and ``baseline`` (``z = f B / d``).
"""

from __future__ import annotations

import logging

import numpy as np

from .._convert import to_srgb8
from ..errors import InputError, ShapeError
from ..io import DepthRange
from ._base import DepthResult
from ._base import cv2 as _cv2

__all__ = ["StereoDepth", "fill_holes", "left_right_check", "search_range", "stereo_disparity"]

logger = logging.getLogger(__name__)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    return to_srgb8(arr)


def left_right_check(left: np.ndarray, right: np.ndarray, *, tolerance: float = 1.0) -> np.ndarray:
    """Mask of left-view disparities confirmed by the right view's (both positive, in pixels).

    ``left[y, x] = d`` is kept when ``|d - right[y, round(x - d)]| <= tolerance``; non-finite or
    non-positive values are never kept.

    Args:
        left: ``H x W`` left-view disparity in pixels.
        right: ``H x W`` right-view disparity in pixels.
        tolerance: the largest disagreement kept, in pixels.

    Returns:
        ``H x W`` bool mask.
    """
    h, w = left.shape
    xs = np.arange(w)[None, :].repeat(h, 0)
    target = np.round(xs - np.nan_to_num(left, nan=-1e6)).astype(np.int64)
    inside = (target >= 0) & (target < w) & np.isfinite(left) & (left > 0)
    back = np.full_like(left, np.nan)
    rows = np.arange(h)[:, None].repeat(w, 1)
    back[inside] = right[rows[inside], target[inside]]
    return inside & np.isfinite(back) & (np.abs(left - back) <= tolerance)


def fill_holes(disparity: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid pixels row by row with the smaller of the nearest valid values to their left and right.

    Args:
        disparity: ``H x W`` values.
        valid: ``H x W`` bool, True where ``disparity`` is kept.

    Returns:
        ``H x W`` float32; a row with no valid pixel takes the smallest valid value of the map (0 when
        there is none).
    """
    h, w = disparity.shape
    xs = np.arange(w)[None, :].repeat(h, 0)
    left_idx = np.maximum.accumulate(np.where(valid, xs, -1), axis=1)
    right_idx = np.minimum.accumulate(np.where(valid, xs, w)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(h)[:, None].repeat(w, 1)
    big = np.float32(np.inf)
    from_left = np.where(left_idx >= 0, disparity[rows, np.clip(left_idx, 0, w - 1)], big)
    from_right = np.where(right_idx < w, disparity[rows, np.clip(right_idx, 0, w - 1)], big)
    filled = np.where(valid, disparity, np.minimum(from_left, from_right))
    empty_rows = ~np.isfinite(filled)
    if empty_rows.any():
        fallback = float(np.nanmin(disparity[valid])) if valid.any() else 0.0
        filled = np.where(empty_rows, fallback, filled)
    return filled.astype(np.float32)


def search_range(left: np.ndarray, right: np.ndarray) -> int:
    """The disparity range worth searching for a pair (uint8 views), a multiple of 16.

    The pair is matched at quarter size over half its width; the range is the 99th percentile of the
    matches that survive OpenCV's uniqueness and speckle filters, scaled back, with a quarter more and 16 px
    of margin. With too few matches (a featureless pair), a quarter of the width.

    Args:
        left: ``H x W x 3`` uint8 left view.
        right: ``H x W x 3`` uint8 right view.

    Returns:
        The range in pixels, a multiple of 16, below the width.
    """
    cv2 = _cv2("stereo depth")
    h, w = left.shape[:2]
    fallback = int(np.ceil(w / 4 / 16) * 16)
    if min(h, w) < 64:
        return min(fallback, max(16, (w - 1) // 16 * 16))
    size = (w // 4, h // 4)
    small_l, small_r = (cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (left, right))
    num = max(16, int(np.ceil(size[0] / 2 / 16) * 16))
    if num >= size[0]:
        return fallback
    channels = 3 if left.ndim == 3 else 1
    matcher = cv2.StereoSGBM_create(minDisparity=0, numDisparities=num, blockSize=5,
                                    P1=8 * channels * 25, P2=32 * channels * 25, uniquenessRatio=15,
                                    speckleWindowSize=50, speckleRange=2)
    raw = matcher.compute(small_l, small_r)
    found = raw[raw > 0].astype(np.float32) / 16.0
    if found.size < 0.05 * raw.size:
        return fallback
    largest = 4 * float(np.percentile(found, 99)) * 1.25 + 16
    return int(min(np.ceil(largest / 16) * 16, (w - 1) // 16 * 16))


def stereo_disparity(left: np.ndarray, right: np.ndarray, *, max_disparity: int | None = None,
                     block_size: int = 5, lr_tolerance: float = 1.0, fill: bool = True,
                     wls: bool = True, wls_lambda: float = 500.0, wls_sigma: float = 0.8) -> np.ndarray:
    """Left-view disparity in pixels from a rectified pair (``H x W x 3``, uint8 sRGB or linear float).

    Args:
        left: ``H x W x 3`` left view, uint8 sRGB or linear float.
        right: ``H x W x 3`` right view, the same size and kind.
        max_disparity: the search range in pixels, ``16 <= max_disparity < W`` (rounded up to a multiple
            of 16); :func:`search_range` when None.
        block_size: SGBM's odd matching block size.
        lr_tolerance: see :func:`left_right_check`.
        fill: fill the holes the check leaves; False returns them as ``NaN`` (and skips WLS).
        wls: smooth with the WLS filter (step 4) when ``cv2.ximgproc`` exists.
        wls_lambda, wls_sigma: the WLS filter's strength and edge sensitivity.

    Returns:
        ``H x W`` float32 disparity in pixels (``NaN`` holes when ``fill`` is False).

    Raises:
        InputError: ``max_disparity`` or ``block_size`` out of range.
        MissingDependencyError: OpenCV is not installed.
    """
    cv2 = _cv2("stereo depth")
    left8, right8 = _to_uint8(left), _to_uint8(right)
    if left8.shape != right8.shape:
        raise ShapeError("right", expected=f"a right view of the left view's size {left8.shape[1]}x{left8.shape[0]}",
                         got=f"{right8.shape[1]}x{right8.shape[0]}",
                         fix="pass a rectified pair of the same size (crop or resize both the same way)")
    _h, w = left8.shape[:2]
    if max_disparity is None:
        max_disparity = search_range(left8, right8)
    num = int(np.ceil(max_disparity / 16) * 16)
    if num < 16 or num >= w:
        raise InputError("max_disparity", expected=f"16 <= max disparity < image width {w}",
                         got=max_disparity, fix="pass the largest expected disparity in pixels")
    if block_size < 1 or block_size % 2 == 0:
        raise InputError("block_size", expected="an odd number >= 1", got=block_size, fix="use 3, 5 or 7")
    channels = 3 if left8.ndim == 3 else 1
    matcher = cv2.StereoSGBM_create(
        minDisparity=0, numDisparities=num, blockSize=block_size,
        P1=8 * channels * block_size ** 2, P2=32 * channels * block_size ** 2,
        disp12MaxDiff=-1, uniquenessRatio=10, speckleWindowSize=100, speckleRange=2,
        mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
    raw_left = matcher.compute(left8, right8)
    have_contrib = hasattr(cv2, "ximgproc")
    if have_contrib:
        right_matcher = cv2.ximgproc.createRightMatcher(matcher)
        raw_right = right_matcher.compute(right8, left8)
    else:
        flip = matcher.compute(right8[:, ::-1].copy(), left8[:, ::-1].copy())[:, ::-1]
        raw_right = -flip
    d_left = raw_left.astype(np.float32) / 16.0
    d_right = -raw_right.astype(np.float32) / 16.0
    d_left[raw_left < 0] = np.nan
    d_right[raw_right > 0] = np.nan
    valid = left_right_check(d_left, d_right, tolerance=lr_tolerance)
    logger.info("stereo: SGBM (%d disparities), %.1f%% pass the left-right check", num, 100 * valid.mean())
    if not fill:
        return np.where(valid, d_left, np.nan).astype(np.float32)
    filled = fill_holes(np.nan_to_num(d_left, nan=0.0), valid)
    if wls and have_contrib:
        filt = cv2.ximgproc.createDisparityWLSFilterGeneric(False)
        filt.setLambda(wls_lambda)
        filt.setSigmaColor(wls_sigma)
        fixed = np.round(filled * 16.0).astype(np.int16)
        filled = filt.filter(fixed, left8).astype(np.float32) / 16.0
        logger.info("stereo: WLS filter (lambda %g, sigma %g)", wls_lambda, wls_sigma)
    return np.clip(filled, 0.0, None).astype(np.float32)


class StereoDepth:
    """Depth for the left view from its right partner.

    Args:
        right: the right view, a path, an ``H x W x 3`` linear array of the left view's size, or a callable
            returning that array (read only when the source runs).
        focal_length_px: focal length in pixels; with ``baseline``, gives the metric range.
        baseline: distance between the two cameras in metres.
        label: how the report names the right view (default: its file name).
        photo_is: ``"left"`` (the default: the photo is the left view and ``right`` its partner) or ``"right"``
            (the photo is the right view and ``right`` holds the left one: both are mirrored, which makes the
            right view a left view, matched, and the map mirrored back).
        **options: keywords of :func:`stereo_disparity`.

    ``estimate(image)`` takes the photo (``H x W x 3`` linear) and returns a :class:`DepthResult` of
    its size. It raises :class:`ShapeError` for a partner view of another size and :class:`InputError` for a
    pair without parallax.
    """

    name = "stereo"

    def __init__(self, right, *, focal_length_px: float | None = None, baseline: float | None = None,
                 label: str | None = None, photo_is: str = "left", details: dict | None = None, **options):
        if photo_is not in ("left", "right"):
            raise InputError("photo_is", expected="left or right", got=photo_is, fix="pass photo_is='left'")
        self.right = right
        self.photo_is = photo_is
        self.details = dict(details or {})
        self.label = label
        self.focal_length_px = focal_length_px
        self.baseline = baseline
        self.options = options

    def estimate(self, image: np.ndarray) -> DepthResult:
        right = self.right() if callable(self.right) else self.right
        name = self.label or "array"
        if not isinstance(right, np.ndarray):
            from ..io import read_image_info

            name = self.label or str(getattr(right, "name", right))
            right = read_image_info(right, argument="right")[0]
        if self.photo_is == "right":        # mirrored, the right view sees the scene as a left view does
            flipped = (np.ascontiguousarray(view[:, ::-1]) for view in (image, right))
            pixels = np.ascontiguousarray(stereo_disparity(*flipped, **self.options)[:, ::-1])
        else:
            pixels = stereo_disparity(image, right, **self.options)
        lo, hi = float(np.percentile(pixels, 0.5)), float(np.percentile(pixels, 99.5))
        lo = max(lo, 0.0)
        if hi - lo < 0.5:
            raise InputError("right", expected="a stereo partner with parallax",
                             got=f"disparities within {lo:.1f}..{hi:.1f} px",
                             fix="check that the left and right views differ by a horizontal shift")
        disparity = np.clip((pixels - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
        depth_range = None
        if self.focal_length_px and self.baseline and lo > 0:
            depth_range = DepthRange(near=self.focal_length_px * self.baseline / hi,
                                     far=self.focal_length_px * self.baseline / lo)
        h, w = disparity.shape
        details = {"format": "stereo pair", "map_size": [w, h], "photo_is": f"the {self.photo_is} view",
                   "partner": name, "units": "pixels of disparity between the views", "disparity_px": [lo, hi],
                   "near_m": depth_range.near if depth_range else None,
                   "far_m": depth_range.far if depth_range else None, **self.details}
        return DepthResult(disparity=disparity, depth_range=depth_range, details=details,
                           source=f"stereo SGBM with {name} ({w}x{h}, {lo:.1f}..{hi:.1f} px disparity)")
