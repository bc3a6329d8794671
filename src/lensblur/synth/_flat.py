"""Flat layers (parallel to the sensor) through square aperture cells: exact box means, separable.

A flat layer moves rigidly: through aperture cell ``k`` (centre ``u_k``, side ``h``) it shows its mean over a
box of side ``|c| * h`` pixels centred ``-c * u_k`` away, ``c`` its signed CoC radius, with the pixels taken
as piecewise constant. Cells of one grid row are spaced by exactly the box width, so their boxes tile: a
single layer comes out as its exact convolution with the aperture (antialiased at the scale of one cell) and
no sampling pattern appears, whatever the sub-pixel positions. The box is separable: the layer is filtered
along x once per aperture column (:meth:`FlatLayer.column`), and each cell of the column then takes a few y
taps of that (:meth:`FlatLayer.taps`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._box import box_weights, reach_region
from .aperture import ApertureSamples

__all__ = ["FlatLayer"]


class FlatLayer:
    """A rigidly moving layer, filtered only over :attr:`region` (the output rows and columns it can reach).

    Args:
        layer: ``(4, H, W)`` the layer on its canvas: premultiplied linear RGB and transmittance ``1 - alpha``.
        coc: its signed CoC radius in pixels, ``blur * (d - focus_disparity)``.
        points: the aperture samples (cell centres ``u_k`` and side ``h``).
        margin: canvas pixels beyond each side of the frame.
        size: ``(h, w)`` of the frame, ``H - 2 * margin`` by ``W - 2 * margin``.
        full: take the whole frame as the region (the farthest layer, which starts the composite).
    """

    def __init__(self, layer: torch.Tensor, coc: float, points: ApertureSamples, margin: int,
                 size: tuple[int, int], full: bool):
        self.coc = coc
        self.width = abs(coc) * points.cell
        reach = float(points.offsets.abs().max()) if len(points) else 0.0
        self.pad = math.ceil(abs(coc) * reach + self.width / 2) + 2
        self.region = (0, size[0], 0, size[1]) if full else reach_region(layer, abs(coc) * reach + self.width,
                                                                          margin, size)
        self.padded = F.pad(layer[None], (self.pad,) * 4, mode="replicate")[0]
        self.margin = margin

    def _taps(self, u: float, first: int) -> tuple[int, list[float]]:
        lo = 0.5 - self.coc * u - self.width / 2
        k0, weights = box_weights(lo, lo + self.width)
        return self.margin + self.pad + k0 + first, weights

    def column(self, ux: float) -> torch.Tensor:
        """The layer filtered along x for aperture column ``ux``.

        Args:
            ux: the column's aperture x, unit aperture (about ``[-1, 1]``).

        Returns:
            ``(4, H + 2 * pad, x1 - x0)``: the region's columns, all canvas rows (still padded).
        """
        x0, x1 = self.region[2:]
        start, weights = self._taps(ux, x0)
        w = x1 - x0
        src = self.padded
        out = src[:, :, start: start + w] * weights[0]
        for t, wt in enumerate(weights[1:], 1):
            out.add_(src[:, :, start + t: start + t + w], alpha=wt)
        return out

    def taps(self, column: torch.Tensor, uy: float) -> list[tuple[torch.Tensor, float]]:
        """The layer over the region for the aperture cell at row ``uy`` of ``column``'s aperture column.

        Args:
            column: what :meth:`column` returned for the cell's aperture column.
            uy: the cell's aperture y, unit aperture.

        Returns:
            ``(values, weight)`` pairs, ``values`` ``(4, y1 - y0, x1 - x0)`` views of ``column``, whose
            weighted sum is the layer's mean over the cell.
        """
        y0, y1 = self.region[:2]
        r0, weights = self._taps(uy, y0)
        n = y1 - y0
        return [(column[:, r0 + t: r0 + t + n], wt) for t, wt in enumerate(weights)]
