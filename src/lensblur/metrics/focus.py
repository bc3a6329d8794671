"""Focus (sharpness) scores on image regions: variance of Laplacian and Brenner's gradient.

Both work on display values (the sRGB-encoded pixels of a file) turned to grey on 0..255 with
``0.299 R + 0.587 G + 0.114 B``, as the GBSD paper's focus report does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._regions import grey_255, region_mask, to_display_tensor

__all__ = ["brenner", "variance_of_laplacian"]

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)


def _grey(image, data_range):
    return grey_255(to_display_tensor(image), data_range=data_range)


def variance_of_laplacian(image, *, data_range: float = 1.0, box=None, mask=None) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image over a region.

    The Laplacian is taken on the whole image with reflect-101 borders (OpenCV's ``BORDER_DEFAULT``) and
    then restricted to the region, so it equals ``cv2.Laplacian(grey, cv2.CV_64F)[region].var()``.
    Args:
        image: display values, ``H x W x 3`` / ``H x W`` array or ``(1, C, H, W)`` tensor.
        data_range: the value of white in ``image`` (1.0 for floats in [0, 1], 255 for 8-bit).
        box: ``(x0, y0, x1, y1)`` region, or None.
        mask: ``H x W`` region mask (above 0.5 selected), or None; at most one of ``box`` and ``mask``.

    Returns:
        The variance (grey levels on 0..255, squared).

    Raises:
        ShapeError: not an image, or a mask of another size.
        InputError: a bad region (see :func:`~lensblur.metrics._regions.region_mask`).
    """
    grey = _grey(image, data_range)
    lap = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="reflect"), _LAPLACIAN.view(1, 1, 3, 3))
    region = region_mask(tuple(grey.shape[-2:]), box=box, mask=mask)
    values = lap[0, 0] if region is None else lap[0, 0][region]
    return float(values.var(unbiased=False))


def brenner(image, *, data_range: float = 1.0, box=None, mask=None) -> float:
    """Brenner's gradient, horizontal variant: the sum over the region of ``(I(x+2, y) - I(x, y))^2``.

    Pairs whose left pixel ``(x, y)`` lies in the region and whose right pixel ``x + 2`` is inside the image
    are counted; the grey values are on 0..255.

    Args:
        image, data_range, box, mask: as :func:`variance_of_laplacian`.

    Returns:
        The sum (grey levels on 0..255, squared).

    Raises:
        ShapeError, InputError: as :func:`variance_of_laplacian`.
    """
    grey = _grey(image, data_range)[0, 0]
    diff = (grey[:, 2:] - grey[:, :-2]) ** 2
    region = region_mask(tuple(grey.shape), box=box, mask=mask)
    if region is None:
        return float(diff.sum())
    return float(diff[region[:, :-2]].sum())
