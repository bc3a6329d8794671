"""The third paper's first method: depth, then a Gaussian blur of what lies beyond a threshold.

"Gaussian blur is applied on the obtained depth map based on threshold values 0.2, 0.25 and 0.3", and "a
lower threshold ... is making most of the part of the image blurred" (Singh & Gothe, section 4.1): a pixel
whose normalised depth ``d`` (DenseDepth's ``predict``, depth over 10 m, in [0.01, 1]) exceeds the threshold
``t`` is replaced by the pixel of a Gaussian-blurred copy of the image; the rest stays as it is.

What the paper does not say, and what is chosen here (each an option):

* the blur: one Gaussian for the whole background, ``sigma`` pixels (default 8 px per 1024 px of image height,
  so 8 px on EBB!'s 1024-px photos), its kernel cut at 3 sigma (``6 sigma + 1`` taps, fewer on images smaller
  than that), borders reflected; the blurred copy is of the whole image, in linear light;
* the mask: hard (``feather=0``, the default), or its edge softened by a Gaussian of ``feather`` pixels;
* the depth map: predicted at the network's half resolution and taken to the image's size bilinearly;
* a disparity map given instead of a network (the oracle ceiling, or any depth source) is read as inverse
  depth over its metric range when known (``meta["depth_range"]``), else over 1 m (disparity 1) to 10 m
  (disparity 0), :data:`~lensblur.baselines.densedepth.ASSUMED_RANGE`; its normalised depth is then depth
  over 10 m, clipped to [0.01, 1], as DenseDepth's.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch

from .._convert import disparity_to_tensor, image_to_tensor, tensor_to_image
from .._filters import gaussian_kernel1d, separable_filter
from ..errors import InputError, ShapeError
from ..geometry import DepthRange
from .densedepth import (
    ASSUMED_RANGE,
    MAX_DEPTH_M,
    _item_range,
    disparity_to_depth,
    inverse_depth_target,
    normalized_depth,
)

__all__ = ["DEFAULT_THRESHOLD", "PAPER_THRESHOLDS", "DepthThreshold", "default_sigma", "disparity_to_normalized_depth",
           "gaussian_blur", "threshold_blur", "threshold_mask"]

PAPER_THRESHOLDS = (0.2, 0.25, 0.3)
"""The thresholds of the paper's Table 1."""
DEFAULT_THRESHOLD = 0.3
"""The paper's visually best threshold (sections 4.1 and 5)."""
SIGMA_PER_PIXEL_HEIGHT = 8.0 / 1024.0
KERNEL_SIGMAS = 3.0


def default_sigma(height: int) -> float:
    """The default blur: 8 px per 1024 px of image height (at least 0.5 px).

    Args:
        height: the image's height in pixels.

    Returns:
        The Gaussian's standard deviation in pixels.
    """
    return max(0.5, SIGMA_PER_PIXEL_HEIGHT * height)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(B, C, H, W)`` blurred by a Gaussian of ``sigma`` pixels, cut at 3 sigma (or one pixel inside the
    image's shorter side, where that is smaller), borders reflected (:func:`lensblur._filters.separable_filter`)."""
    radius = min(math.ceil(KERNEL_SIGMAS * sigma), min(image.shape[-2:]) - 1)
    if radius < 1:
        return image
    kernel = gaussian_kernel1d(sigma, radius, dtype=image.dtype).to(image.device)
    return separable_filter(image, kernel)


def threshold_mask(depth: torch.Tensor, threshold: float, *, feather: float = 0.0) -> torch.Tensor:
    """Where the blurred copy is taken: 1 where ``depth > threshold``, 0 elsewhere; with ``feather`` > 0 that
    hard mask blurred by a Gaussian of ``feather`` pixels.

    Args:
        depth: ``(B, 1, H, W)`` normalised depth (larger = farther).
        threshold: the threshold ``t``.
        feather: the edge's softening in pixels (0: hard).

    Returns:
        ``(B, 1, H, W)`` weights in [0, 1].
    """
    mask = (depth > threshold).to(depth.dtype)
    return gaussian_blur(mask, feather) if feather > 0 else mask


def threshold_blur(image: torch.Tensor, depth: torch.Tensor, *, threshold: float = DEFAULT_THRESHOLD,
                   sigma: float | None = None, feather: float = 0.0) -> torch.Tensor:
    """The paper's bokeh: pixels beyond ``threshold`` replaced by a Gaussian-blurred copy of the image.

    Args:
        image: ``(B, 3, H, W)`` linear RGB.
        depth: ``(B, 1, H, W)`` normalised depth (depth over 10 m in [0.01, 1], larger = farther).
        threshold: pixels with ``depth > threshold`` are blurred, in [0, 1] (0: all, 1: none).
        sigma: the Gaussian's standard deviation in pixels (None: :func:`default_sigma` of the height).
        feather: the mask's edge softening in pixels (0: hard).

    Returns:
        ``(B, 3, H, W)``.

    Raises:
        ShapeError: a depth map of another size.
        InputError: a threshold outside [0, 1], ``sigma`` <= 0 or ``feather`` < 0.
    """
    _check_options(threshold, sigma, feather)
    if depth.shape[-2:] != image.shape[-2:] or depth.ndim != 4 or depth.shape[1] != 1:
        raise ShapeError("depth", expected=f"a (B, 1, H, W) map of the image's size {tuple(image.shape[-2:])}",
                         got=f"{tuple(depth.shape)}", fix="resize the depth map to the image")
    sigma = default_sigma(image.shape[-2]) if sigma is None else float(sigma)
    mask = threshold_mask(depth.to(image.device, image.dtype), threshold, feather=feather)
    return image + mask * (gaussian_blur(image, sigma) - image)


def disparity_to_normalized_depth(disparity: torch.Tensor, depth_range: DepthRange = ASSUMED_RANGE) -> torch.Tensor:
    """A lensblur disparity map as the paper's normalised depth: its metric depth over 10 m, in [0.01, 1].

    Args:
        disparity: values in [0, 1], 1 = nearest.
        depth_range: the depths (metres) of disparity 1 and 0.

    Returns:
        The normalised depth, same shape.
    """
    return normalized_depth(inverse_depth_target(disparity_to_depth(disparity, depth_range)))


def _check_options(threshold, sigma, feather) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise InputError("threshold", expected="a normalised depth in [0, 1] (the paper: 0.2, 0.25, 0.3)",
                         got=threshold, fix=f"threshold={DEFAULT_THRESHOLD}")
    if sigma is not None and not (isinstance(sigma, (int, float)) and sigma > 0):
        raise InputError("sigma", expected="a Gaussian standard deviation in pixels > 0 (or the default)", got=sigma,
                         fix="sigma=8")
    if not (isinstance(feather, (int, float)) and feather >= 0):
        raise InputError("feather", expected="a mask softening in pixels >= 0 (0: a hard mask)", got=feather,
                         fix="feather=0")


class DepthThreshold:
    """``depth-threshold`` for ``lensblur render`` and ``lensblur eval``: :func:`threshold_blur` on the depth
    of a trained DenseDepth (``checkpoint``) or on the disparity map it is given.

    Without ``checkpoint`` it needs a disparity map (in ``lensblur eval`` the dataset's own, the oracle-depth
    ceiling; in ``lensblur render`` any depth source); with one it predicts depth from the image alone. It
    never needs a lens.

    Args:
        threshold: the normalised depth beyond which pixels are blurred, in [0, 1] (0.3).
        sigma: the Gaussian's standard deviation in pixels (None: 8 px per 1024 px of height).
        feather: the mask's edge softening in pixels (0: hard).
        checkpoint: a ``lensblur train depth`` run folder or weights file, or None.
        near: the depth in metres of disparity 1 for maps without a metric range (disparity 0 is 10 m).

    Raises:
        InputError: an option out of range; a checkpoint of another method.
        ModelNotFoundError: no checkpoint at ``checkpoint``.
    """

    name = "depth-threshold"
    needs_lens = False

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, sigma: float | None = None, feather: float = 0.0,
                 checkpoint: str | os.PathLike | None = None, near: float = ASSUMED_RANGE.near):
        _check_options(threshold, sigma, feather)
        if not (isinstance(near, (int, float)) and 0 < near < MAX_DEPTH_M):
            raise InputError("near", expected=f"a depth in metres between 0 and {MAX_DEPTH_M:g}", got=near,
                             fix=f"near={ASSUMED_RANGE.near:g}")
        self.threshold, self.sigma, self.feather = float(threshold), sigma, float(feather)
        self.depth_range = DepthRange(near=float(near), far=MAX_DEPTH_M)
        self.model = None
        self.training_data: dict[str, Any] = {}
        if checkpoint is not None:
            from ..train import read_metadata
            from .trained import load_trained

            self.model = load_trained(checkpoint, expected="depth")
            self.training_data = read_metadata(checkpoint)["data"]
        self.needs_disparity = self.model is None

    def depth(self, image: torch.Tensor, disparity: np.ndarray | None, meta: dict[str, Any] | None) -> torch.Tensor:
        """The normalised depth the threshold reads, ``(1, 1, H, W)`` on ``image``'s device.

        Raises:
            InputError: no disparity and no checkpoint.
        """
        if self.model is not None:
            return self.model.predict(image).to(image.device)
        if disparity is None:
            raise InputError("disparity", expected="a disparity map (depth-threshold without a checkpoint blurs by "
                             "the depth it is given)", got="none",
                             fix="pass a disparity map, or checkpoint=RUN (a lensblur train depth run)")
        d = disparity_to_tensor(disparity, device=image.device)
        return disparity_to_normalized_depth(d, _item_range(meta, self.depth_range))

    def predict(self, image: np.ndarray, *, disparity: np.ndarray | None = None, lens=None,
                meta: dict[str, Any] | None = None) -> np.ndarray:
        """``H x W x 3`` linear RGB with what lies beyond the threshold blurred (see the class doc)."""
        x = image_to_tensor(image)
        with torch.inference_mode():
            out = threshold_blur(x, self.depth(x, disparity, meta), threshold=self.threshold, sigma=self.sigma,
                                 feather=self.feather)
        return tensor_to_image(out)
