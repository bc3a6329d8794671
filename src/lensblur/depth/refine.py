"""Edge-aware refinement: snap the edges of a disparity map to the photo's edges.

Depth maps from phones, models and stereo are soft and a few pixels off at object boundaries, which is
exactly where bokeh shows halos. :func:`refine` decides again the values in a band around the map's depth
edges from the values around them, letting them spread only along the photo (a confidence-weighted
normalised convolution with OpenCV's edge-aware domain transform, ``cv2.ximgproc.dtFilter``):

1. the band: pixels whose neighbourhood (``radius``) spans a disparity step larger than ``step``;
   their confidence drops to ~0, everywhere else it stays ~1;
2. ``filtered = DT(c * d) / DT(c)``, the domain transform guided by the sRGB photo, so that values from
   confident pixels flow into the band but stop at the photo's edges;
3. ``out = c * d + (1 - c) * filtered``: confident pixels keep their value.

:func:`upsample` is the same step after a bilinear resize of a low-resolution map (joint upsampling),
with the band widened to the scale factor.
"""

from __future__ import annotations

import logging

import numpy as np

from .._convert import to_srgb8
from ..errors import InputError
from ..io import check_map, resize_map
from ._base import cv2 as _cv2

__all__ = ["default_radius", "refine", "upsample"]

logger = logging.getLogger(__name__)


def default_radius(shape: tuple[int, int]) -> int:
    """Half-width of the band re-decided at edges: 0.5% of the longer side, at least 3 pixels.

    Args:
        shape: ``(H, W)`` of the photo.

    Returns:
        The radius in pixels.
    """
    return max(3, round(0.005 * max(shape[:2])))


def _guide(image: np.ndarray) -> np.ndarray:
    return to_srgb8(image)


def refine(image: np.ndarray, disparity: np.ndarray, *, radius: int | None = None, step: float = 0.04,
           sigma_spatial: float | None = None, sigma_color: float = 20.0,
           confidence: np.ndarray | None = None) -> np.ndarray:
    """Refine ``disparity`` (``H x W`` in [0, 1]) at depth edges, guided by ``image`` (linear ``H x W x 3``).

    A map of another size is first resized bilinearly (use :func:`upsample` for low-resolution maps).

    Args:
        image: ``H x W x 3`` float32 linear RGB, the guide.
        disparity: ``h x w`` in [0, 1].
        radius: half-width in pixels (>= 1) of the band around depth edges that is re-decided (default
            :func:`default_radius`).
        step: the disparity jump (> 0) that counts as an edge.
        sigma_spatial: how far values travel along the photo, in pixels (default ``4 * radius``).
        sigma_color: the photo contrast, in 8-bit sRGB levels, that stops them.
        confidence: how far to trust each value of the map, in [0, 1] (a phone's confidence map, any size,
            resized): multiplied into the band's confidence, so that unsure values are re-decided from
            sure ones along the photo too. None trusts the map everywhere but at its edges.

    Returns:
        ``H x W`` float32 disparity in [0, 1].

    Raises:
        InputError: ``radius`` or ``step`` out of range, ``confidence`` not a finite map, or OpenCV without its
            contrib modules.
        MissingDependencyError: OpenCV is not installed.
    """
    cv2 = _cv2("edge-aware depth refinement")
    if not hasattr(cv2, "ximgproc"):
        raise InputError("refine", expected="OpenCV with its contrib modules (cv2.ximgproc)",
                         got=f"opencv {cv2.__version__} without ximgproc",
                         fix="pip install opencv-contrib-python-headless (lensblur[depth])")
    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape[:2]
    d = check_map(disparity, argument="disparity")
    if d.shape != (h, w):
        d = resize_map(d, (h, w))
    radius = default_radius((h, w)) if radius is None else int(radius)
    if radius < 1:
        raise InputError("radius", expected="an integer >= 1 (pixels)", got=radius, fix="use the default")
    if not step > 0:
        raise InputError("step", expected="a disparity step > 0", got=step, fix="use the default 0.04")
    sigma_spatial = 4.0 * radius if sigma_spatial is None else float(sigma_spatial)

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    spread = cv2.dilate(d, kernel) - cv2.erode(d, kernel)
    trust = None
    if confidence is not None:
        trust = np.asarray(confidence, dtype=np.float32)
        if trust.ndim != 2 or not np.isfinite(trust).all():
            raise InputError("confidence", expected="an h x w map of finite values in [0, 1]",
                             got=f"shape {trust.shape}", fix="pass the confidence map as a 2-D array")
        trust = np.clip(resize_map(trust, (h, w)) if trust.shape != (h, w) else trust, 0.0, 1.0)
    confidence = np.exp(-((spread / step) ** 2)).astype(np.float32)
    if trust is not None:
        confidence = confidence * trust
    confidence = np.maximum(confidence, 1e-4, dtype=np.float32)
    guide = _guide(image)
    num = cv2.ximgproc.dtFilter(guide, confidence * d, sigma_spatial, sigma_color, mode=cv2.ximgproc.DTF_RF, numIters=3)
    den = cv2.ximgproc.dtFilter(guide, confidence, sigma_spatial, sigma_color, mode=cv2.ximgproc.DTF_RF, numIters=3)
    filtered = num / np.maximum(den, 1e-6)
    out = confidence * d + (1.0 - confidence) * filtered
    logger.info("refined %dx%d disparity: band radius %d px, %.1f%% of pixels re-decided", w, h, radius,
             100.0 * float((confidence < 0.5).mean()))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def upsample(image: np.ndarray, disparity: np.ndarray, **options) -> np.ndarray:
    """Bring a low-resolution map to the photo's size edge-aware (bilinear resize, then :func:`refine`).

    The band re-decided at edges is at least as wide as the scale factor.

    Args:
        image: ``H x W x 3`` float32 linear RGB.
        disparity: ``h x w`` in [0, 1], usually smaller.
        **options: keywords of :func:`refine`.

    Returns:
        ``H x W`` float32 disparity in [0, 1].

    Raises:
        InputError, MissingDependencyError: as :func:`refine`.
    """
    h, w = np.asarray(image).shape[:2]
    d = check_map(disparity, argument="disparity")
    factor = max(h / d.shape[0], w / d.shape[1])
    radius = options.pop("radius", None)
    if radius is None:
        radius = max(default_radius((h, w)), int(np.ceil(factor)))
    return refine(image, resize_map(d, (h, w)), radius=radius, **options)
