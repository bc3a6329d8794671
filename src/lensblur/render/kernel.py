"""Point-spread functions: the aperture's image for a given signed CoC radius, rasterised to pixels.

``psf(aperture, radius)`` returns a ``(k, k)`` tensor with unit sum: the fraction of a point's light that
lands on each pixel offset (row = +y down, column = +x right, centre at ``k // 2``). Pixels on the
boundary get their covered fraction (supersampled), so the kernel changes continuously with the radius.
A negative radius (behind the focal plane) gives the shape turned by 180 degrees.

Optical vignetting (cat-eye) clips the aperture by a unit circle shifted by ``-2 cat_eye p``, ``p`` the
frame position relative to the half-diagonal (:func:`cat_eye_offset`). The kernel then changes across the
frame; renderers that convolve make kernels for a grid of anchor positions and blend them bilinearly
between the anchors (:func:`cat_eye_grid`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..lens import Aperture

__all__ = ["CAT_EYE_ANCHORS", "CatEyeGrid", "aperture_mask", "cat_eye_grid", "cat_eye_offset", "kernel_half_size",
           "psf"]

# Anchors across and down the frame at which cat-eye kernels are made (see :func:`cat_eye_grid`).
CAT_EYE_ANCHORS = 5


def kernel_half_size(radius: float) -> int:
    """Half width of the kernel for a signed CoC ``radius`` (pixels): pixels whose square the disk can
    touch. The kernel is ``2 half + 1`` pixels square."""
    return max(0, math.ceil(abs(radius) - 0.5 + 1e-6))


def aperture_mask(aperture: Aperture, u: torch.Tensor, v: torch.Tensor,
                  offset: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """Transmission of the aperture at unit coordinates.

    Args:
        aperture: the aperture's shape (blades, curvature, rotation, a custom kernel, cat-eye).
        u: positions, +u right, in units of the CoC radius: a float tensor of any shape.
        v: positions, +v down, the shape of ``u``.
        offset: the shift ``(u, v)`` of the clipping circle of optical vignetting (:func:`cat_eye_offset`);
            without cat-eye it is ignored.

    Returns:
        The transmission in [0, 1], the shape and dtype of ``u``.
    """
    if aperture.kernel is not None:
        k = torch.as_tensor(aperture.kernel, dtype=torch.float32)
        side = max(k.shape)
        pad = ((side - k.shape[1]) // 2, side - k.shape[1] - (side - k.shape[1]) // 2,
               (side - k.shape[0]) // 2, side - k.shape[0] - (side - k.shape[0]) // 2)
        k = F.pad(k, pad)[None, None]
        grid = torch.stack([u, v], dim=-1).to(torch.float32).reshape(1, -1, 1, 2)
        values = F.grid_sample(k, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        inside = values.reshape(u.shape).to(u.dtype)
    else:
        inside = aperture.contains(u, v).to(u.dtype)
    if aperture.cat_eye > 0 and (offset[0] or offset[1]):
        inside = inside * (((u - offset[0]) ** 2 + (v - offset[1]) ** 2) <= 1.0).to(u.dtype)
    return inside


def psf(aperture: Aperture, radius: float, *, offset: tuple[float, float] = (0.0, 0.0),
        supersample: int | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The point-spread function of an aperture at a signed CoC radius.

    Args:
        aperture: the aperture's shape.
        radius: signed CoC radius, pixels (negative behind the focal plane: the shape turned by 180 degrees).
            Rounded to 4 decimals, under which kernels are cached.
        offset: the cat-eye shift of the clipping circle (:func:`cat_eye_offset`).
        supersample: sub-samples per pixel side; ``None`` for 4 to 16 by the kernel's size.
        dtype: the dtype of the result.

    Returns:
        ``(k, k)`` with ``k = 2 kernel_half_size(radius) + 1``, sum 1, centre at ``k // 2`` (row = +y down,
        column = +x right); a ``(1, 1)`` one where the shape is thinner than the sampling.
    """
    return _psf_cached(aperture, round(float(radius), 4), offset, supersample).to(dtype).clone()


@lru_cache(maxsize=512)
def _psf_cached(aperture: Aperture, radius: float, offset, supersample) -> torch.Tensor:
    half = kernel_half_size(radius)
    if half == 0 or abs(radius) < 1e-3:
        return torch.ones(1, 1, dtype=torch.float64)
    size = 2 * half + 1
    ss = supersample or max(4, min(16, int(64 / size) + 1))
    # Sub-sample centres of every pixel, in pixels relative to the kernel centre.
    steps = (torch.arange(size * ss, dtype=torch.float64) + 0.5) / ss - 0.5 - half
    y, x = torch.meshgrid(steps, steps, indexing="ij")
    scale = 1.0 / radius  # a negative radius turns the shape by 180 degrees
    fine = aperture_mask(aperture, x * scale, y * scale, offset)
    kernel = fine.reshape(size, ss, size, ss).mean(dim=(1, 3))
    total = kernel.sum()
    if total <= 0:  # a shape thinner than the sampling: fall back to the centre pixel
        return torch.ones(1, 1, dtype=torch.float64)
    return kernel / total


def cat_eye_offset(cat_eye: float, y, x, frame: tuple[int, int]):
    """Shift ``(u, v)`` of the vignetting circle seen from a frame position.

    Args:
        cat_eye: the strength of optical vignetting, :attr:`Aperture.cat_eye`, in [0, 1].
        y: rows from the frame's centre (pixels, +y down): a float or a tensor of any shape.
        x: columns from the frame's centre (pixels, +x right), like ``y``.
        frame: the frame's ``(height, width)`` in pixels.

    Returns:
        ``(u, v) = -2 cat_eye (x, y) / half-diagonal``, in the aperture's unit coordinates, the types of
        ``x`` and ``y``: the ``offset`` of :func:`psf` and :func:`aperture_mask`.
    """
    half_diag = 0.5 * math.hypot(frame[1], frame[0])
    return -2 * cat_eye * x / half_diag, -2 * cat_eye * y / half_diag


@dataclass(frozen=True, slots=True)
class CatEyeGrid:
    """Cat-eye kernels at ``n x n`` anchors spread evenly over the frame (its corners included), and the
    bilinear ("hat") weight of each anchor row and column at the positions of some pixels.

    ``rows[i]``: the weight of anchor row ``i`` at each pixel row, in [0, 1] (the weights of a pixel sum to
    1); ``cols[j]`` likewise for anchor column ``j``. ``offsets[i][j]``: the :func:`cat_eye_offset` of
    anchor ``(i, j)``, the ``offset`` of its kernel.
    """

    rows: list[torch.Tensor]
    cols: list[torch.Tensor]
    offsets: list[list[tuple[float, float]]]


def cat_eye_grid(cat_eye: float, ys: torch.Tensor, xs: torch.Tensor, frame: tuple[int, int],
                 n: int = CAT_EYE_ANCHORS) -> CatEyeGrid:
    """The anchor grid of cat-eye kernels, and its weights at pixel rows ``ys`` and columns ``xs``.

    Args:
        cat_eye: the strength of optical vignetting, :attr:`Aperture.cat_eye`, in [0, 1].
        ys: the frame rows of pixel centres (``row + 0.5`` for full-resolution pixels), any shape, float.
        xs: the frame columns of pixel centres, like ``ys``.
        frame: the frame's ``(height, width)`` in pixels.
        n: anchors across and down the frame, at least 2.

    Returns:
        The :class:`CatEyeGrid`; its weights have the shapes of ``ys`` and ``xs``. Beyond the frame a
        pixel takes the weights of the nearest border.
    """
    fh, fw = frame
    gy = (((ys - fh / 2) / (fh / 2)).clamp(-1, 1) + 1) * (n - 1) / 2      # places on the anchor grid
    gx = (((xs - fw / 2) / (fw / 2)).clamp(-1, 1) + 1) * (n - 1) / 2
    rows = [(1 - (gy - i).abs()).clamp(min=0) for i in range(n)]
    cols = [(1 - (gx - j).abs()).clamp(min=0) for j in range(n)]
    offsets = [[cat_eye_offset(cat_eye, (i / (n - 1) * 2 - 1) * fh / 2, (j / (n - 1) * 2 - 1) * fw / 2, frame)
                for j in range(n)] for i in range(n)]
    return CatEyeGrid(rows, cols, offsets)
