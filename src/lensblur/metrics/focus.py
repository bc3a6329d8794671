"""Focus (sharpness) scores on image regions: variance of Laplacian and Brenner's gradient, and blur maps.

Both scores work on display values (the sRGB-encoded pixels of a file) turned to grey on 0..255 with
``0.299 R + 0.587 G + 0.114 B``, as the GBSD paper's focus report does. ``grey="float"`` (the default) keeps
that grey in float; ``grey="uint8"`` rounds it to whole grey levels first, from the image's 8-bit codes, as
the paper's cited reference does (pyimagesearch: ``cv2.cvtColor`` to 8-bit grey, then
``cv2.Laplacian(gray, cv2.CV_64F).var()``); it raises the variance of smooth regions, where the
quantisation noise is a large part of it. OpenCV's own fixed-point grey conversion, which has changed
between its versions, differs from the rounded weights by one level on some pixels.

The paper writes its VoL as a sum of squared deviations, but the numbers it reports are a variance (a mean):
:func:`variance_of_laplacian` is the variance. Brenner's gradient comes in two variants: ``"brenner1976"``
(the default), Brenner et al.'s horizontal sum of ``(I(x+2, y) - I(x, y))^2``, and ``"pertuz"``, the mean of
``max(DH, DV)^2`` with the horizontal and vertical 2-pixel differences of Pertuz et al.'s focus-measure study
(the paper cites it; signed differences, as its code takes the maximum).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..choices import BRENNER_VARIANTS, GREYS
from ..errors import InputError
from ._regions import grey_255, region_mask, to_display_tensor

__all__ = ["BRENNER_VARIANTS", "GREYS", "blur_map", "brenner", "variance_of_laplacian"]

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)


def _grey(image, data_range, grey: str = "float") -> torch.Tensor:
    """``(1, 1, H, W)`` float64 grey on 0..255 (see the module doc for ``grey``)."""
    if grey not in GREYS:
        raise InputError("grey", expected=f"one of {', '.join(GREYS)}", got=grey, fix="grey=float")
    display = to_display_tensor(image)
    if grey == "float":
        return grey_255(display, data_range=data_range)
    codes = torch.round(display * (255.0 / data_range)).clamp(0, 255)
    return torch.round(grey_255(codes, data_range=255.0))


def _laplacian(grey: torch.Tensor) -> torch.Tensor:
    """The 4-neighbour Laplacian with reflect-101 borders (OpenCV's ``BORDER_DEFAULT``)."""
    return F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="reflect"), _LAPLACIAN.view(1, 1, 3, 3))


def variance_of_laplacian(image, *, data_range: float = 1.0, box=None, mask=None, grey: str = "float") -> float:
    """Variance of the 4-neighbour Laplacian of the grey image over a region.

    The Laplacian is taken on the whole image with reflect-101 borders (OpenCV's ``BORDER_DEFAULT``) and
    then restricted to the region, so it equals ``cv2.Laplacian(grey, cv2.CV_64F)[region].var()``.
    Args:
        image: display values, ``H x W x 3`` / ``H x W`` array or ``(1, C, H, W)`` tensor.
        data_range: the value of white in ``image`` (1.0 for floats in [0, 1], 255 for 8-bit).
        box: ``(x0, y0, x1, y1)`` region, or None.
        mask: ``H x W`` region mask (above 0.5 selected), or None; at most one of ``box`` and ``mask``.
        grey: ``"float"`` or ``"uint8"`` (see the module doc).

    Returns:
        The variance (grey levels on 0..255, squared).

    Raises:
        ShapeError: not an image, or a mask of another size.
        InputError: a bad region (see :func:`~lensblur.metrics._regions.region_mask`).
    """
    values = _grey(image, data_range, grey)
    lap = _laplacian(values)
    region = region_mask(tuple(values.shape[-2:]), box=box, mask=mask)
    lap = lap[0, 0] if region is None else lap[0, 0][region]
    return float(lap.var(unbiased=False))


def brenner(image, *, data_range: float = 1.0, box=None, mask=None, grey: str = "float",
            variant: str = "brenner1976") -> float:
    """Brenner's gradient over a region (see the module doc for the variants).

    ``"brenner1976"``: the sum of ``(I(x+2, y) - I(x, y))^2`` over the pairs whose left pixel lies in the
    region and whose right pixel is inside the image. ``"pertuz"``: the mean over the region of
    ``max(DH, DV)^2``, ``DH = I(x+2, y) - I(x, y)`` and ``DV = I(x, y+2) - I(x, y)`` (0 where the partner
    pixel is outside the image). Grey values are on 0..255.

    Args:
        image, data_range, box, mask, grey: as :func:`variance_of_laplacian`.
        variant: one of :data:`BRENNER_VARIANTS`.

    Returns:
        The sum (``brenner1976``) or the mean (``pertuz``), grey levels on 0..255 squared.

    Raises:
        ShapeError, InputError: as :func:`variance_of_laplacian`; an unknown ``variant``.
    """
    if variant not in BRENNER_VARIANTS:
        raise InputError("variant", expected=f"one of {', '.join(BRENNER_VARIANTS)}", got=variant,
                         fix="variant=brenner1976")
    values = _grey(image, data_range, grey)[0, 0]
    region = region_mask(tuple(values.shape), box=box, mask=mask)
    if variant == "pertuz":
        dh, dv = torch.zeros_like(values), torch.zeros_like(values)
        dh[:, :-2] = values[:, 2:] - values[:, :-2]
        dv[:-2, :] = values[2:, :] - values[:-2, :]
        measure = torch.maximum(dh, dv) ** 2
        return float(measure.mean() if region is None else measure[region].mean())
    diff = (values[:, 2:] - values[:, :-2]) ** 2
    if region is None:
        return float(diff.sum())
    return float(diff[region[:, :-2]].sum())


def blur_map(image, *, data_range: float = 1.0, grey: str = "float") -> np.ndarray:
    """The GBSD paper's "blur map" (its Figure 5): the magnitude of the Laplacian, normalised to [0, 1] by
    its maximum, so sharp detail is bright and blurred regions dark.

    Args:
        image, data_range, grey: as :func:`variance_of_laplacian`.

    Returns:
        ``H x W`` float32 in [0, 1] (all 0 for a flat image).
    """
    lap = _laplacian(_grey(image, data_range, grey))[0, 0].abs()
    peak = float(lap.max())
    return (lap / peak if peak > 0 else lap).to(torch.float32).numpy()
