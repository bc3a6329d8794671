"""Tilted layers (a disparity that varies): the backward map per aperture sample, then bilinear resampling.

Through aperture position ``u`` the output pixel ``x`` shows the layer at the ``p`` that solves
``p = x - c(p) * u``, ``c`` the signed CoC radius on the canvas. For a plane, ``c(p) = c0 + g . p``, the map
is affine and has a closed form (Sherman–Morrison): ``p = A x + b`` with ``A = I - u g^T / (1 + g . u)`` and
``b = -c0 u / (1 + g . u)``; it is handed to ``affine_grid``. Any other surface solves it per pixel by
fixed-point iteration ``p <- x - c(p) * u`` with bilinear ``c(p)``, a contraction because
``|grad c| * |u| < 0.9`` (checked in :func:`prepare_tilted`: a steeper surface would fold over itself). The
layer is box-filtered once beforehand with a box that follows the local ``|c| * h`` (at least one pixel,
``h`` the aperture cell side), so that one sample stands for its whole aperture cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError
from ._box import reach_region, variable_box

__all__ = ["TiltedLayer", "fit_plane", "plane_affine", "prepare_tilted"]

# Largest per-pixel change of the CoC radius times the aperture reach: beyond it the lens folds the layer.
_MAX_FOLD = 0.9
# The per-pixel iteration stops when no pixel moves by more than this (pixels), or after this many steps.
_ITER_TOL_PX, _ITER_MAX = 1e-3, 100
# A disparity map is a plane when a plane fits it to within this.
_PLANE_TOL = 1e-5


def fit_plane(disparity: torch.Tensor) -> tuple[float, float, float] | None:
    """The plane through a disparity map, if it is one.

    Args:
        disparity: ``(H, W)`` disparity on the canvas.

    Returns:
        ``(d0, gx, gy)`` with ``d = d0 + gx * col + gy * row`` (pixel indices) to within 1e-5 everywhere, or
        ``None`` when the map is not a plane.
    """
    h, w = disparity.shape
    d = disparity.to(torch.float64)
    gx = float((d[:, -1] - d[:, 0]).mean()) / max(w - 1, 1)
    gy = float((d[-1] - d[0]).mean()) / max(h - 1, 1)
    d0 = float(d[0, 0])
    rows = torch.arange(h, dtype=torch.float64, device=d.device)[:, None]
    cols = torch.arange(w, dtype=torch.float64, device=d.device)[None]
    if float((d0 + gx * cols + gy * rows - d).abs().max()) > _PLANE_TOL:
        return None
    return d0, gx, gy


def plane_affine(plane: tuple[float, float, float], offsets: torch.Tensor) -> torch.Tensor:
    """The exact backward map of a plane for each aperture position.

    Args:
        plane: ``(c0, cx, cy)``, the CoC radius ``c0 + cx * col + cy * row`` in pixels (pixel indices).
        offsets: ``(n, 2)`` aperture positions ``u = (x, y)``, unit aperture, with ``1 + g . u > 0`` (the
            plane does not fold; :func:`prepare_tilted` checks a stronger bound).

    Returns:
        ``(n, 2, 3)`` float64 ``[A | b]`` with ``p = A x + b`` solving ``p = x - c(p) u``, ``x`` and ``p`` in
        canvas pixel-edge coordinates (pixel ``j`` covers ``[j, j + 1)``).
    """
    c0, cx, cy = plane
    # Pixel-edge coordinates (x, y): c = c0 + cx * (x - 0.5) + cy * (y - 0.5) = c0' + g . p.
    c0 = c0 - 0.5 * (cx + cy)
    g = torch.tensor([cx, cy], dtype=torch.float64)
    u = offsets.to(device="cpu", dtype=torch.float64)
    denom = 1.0 + u @ g  # (n,)
    a = torch.eye(2, dtype=torch.float64) - u[:, :, None] * g[None, None, :] / denom[:, None, None]
    b = -c0 * u / denom[:, None]
    return torch.cat([a, b[:, :, None]], dim=2)


@dataclass
class TiltedLayer:
    """A layer whose disparity varies: pre-filtered once, resampled per sample along its backward map.

    Built by :func:`prepare_tilted`.

    Args:
        coc: ``(H, W)`` signed CoC radius on the canvas, pixels.
        filtered: ``(4, H, W)`` the box-filtered layer (premultiplied colour and transmittance).
        plane: ``(c0, cx, cy)``, the CoC as ``c0 + cx * col + cy * row`` when it is a plane, else ``None``.
        region: ``(y0, y1, x0, x1)``, the frame rows and columns it can reach.
    """

    coc: torch.Tensor
    filtered: torch.Tensor
    plane: tuple[float, float, float] | None
    region: tuple[int, int, int, int]

    def sample(self, offsets: torch.Tensor, margin: int) -> torch.Tensor:
        """The layer over :attr:`region` seen through aperture positions ``offsets``.

        Args:
            offsets: ``(n, 2)`` aperture positions ``(x, y)``, unit aperture.
            margin: canvas pixels beyond each side of the frame.

        Returns:
            ``(n, 4, y1 - y0, x1 - x0)``: :attr:`filtered` resampled bilinearly along the backward map (in
            closed form for a plane, iterated per pixel otherwise), the canvas border repeated beyond it.
        """
        grid = self._plane_grid(offsets, margin) if self.plane is not None else self._iterated_grid(offsets, margin)
        src = self.filtered[None].expand(offsets.shape[0], -1, -1, -1)
        return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _plane_grid(self, offsets: torch.Tensor, margin: int) -> torch.Tensor:
        """``affine_grid`` of the plane's backward map over the region, ``(n, h, w, 2)``."""
        # p = A X + b on canvas pixel-edge coordinates X; affine_grid's output coordinates are normalised
        # over the region: X = S x_n + T. In grid_sample's normalised input coordinates s = D p - 1, so
        # s = (D A S) x_n + D (A T + b) - 1.
        hc, wc = self.coc.shape
        y0, y1, x0, x1 = self.region
        maps = plane_affine(self.plane, offsets)
        rw, rh = x1 - x0, y1 - y0
        scale = torch.tensor([rw / 2, rh / 2], dtype=torch.float64)
        shift = torch.tensor([x0 + margin + rw / 2, y0 + margin + rh / 2], dtype=torch.float64)
        norm = torch.tensor([2.0 / wc, 2.0 / hc], dtype=torch.float64)
        a, b = maps[:, :, :2], maps[:, :, 2]
        theta = torch.cat([norm[None, :, None] * a * scale[None, None, :],
                           (norm[None] * ((a @ shift) + b) - 1.0)[:, :, None]], dim=2)
        return F.affine_grid(theta.to(torch.float32).to(self.coc.device), [offsets.shape[0], 4, rh, rw],
                             align_corners=False)

    def _iterated_grid(self, offsets: torch.Tensor, margin: int) -> torch.Tensor:
        """``grid_sample`` grid of the per-pixel backward map over the region, ``(n, h, w, 2)``."""
        hc, wc = self.coc.shape
        y0, y1, x0, x1 = self.region
        dev = self.coc.device
        ys = torch.arange(y0, y1, device=dev, dtype=torch.float32) + margin + 0.5
        xs = torch.arange(x0, x1, device=dev, dtype=torch.float32) + margin + 0.5
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        scale = torch.tensor([2.0 / wc, 2.0 / hc], device=dev)
        px, py = self.iterate(offsets, gx, gy, scale)
        return torch.stack([px, py], dim=-1) * scale - 1.0

    def iterate(self, offsets: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor,
                scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed-point iteration ``p <- x - c(p) u`` per pixel, ``c(p)`` interpolated bilinearly.

        Args:
            offsets: ``(n, 2)`` aperture positions ``u``, unit aperture.
            gx: ``(h, w)`` output x, canvas pixel-edge coordinates.
            gy: ``(h, w)`` output y, likewise.
            scale: ``(2,)`` ``(2 / W, 2 / H)``, canvas pixel-edge to ``grid_sample`` coordinates (minus 1).

        Returns:
            ``(px, py)``, each ``(n, h, w)``: the source positions, to 1e-3 px (at most 100 steps).
        """
        hc, wc = self.coc.shape
        n = offsets.shape[0]
        ux = offsets[:, 0].to(torch.float32).view(n, 1, 1)
        uy = offsets[:, 1].to(torch.float32).view(n, 1, 1)
        coc_map = self.coc[None, None].expand(n, 1, hc, wc)

        def coc_at(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
            grid = torch.stack([px, py], dim=-1) * scale - 1.0
            return F.grid_sample(coc_map, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]

        c = coc_at(gx.expand(n, -1, -1), gy.expand(n, -1, -1))
        px, py = gx - c * ux, gy - c * uy
        for _ in range(_ITER_MAX):
            c = coc_at(px, py)
            nx, ny = gx - c * ux, gy - c * uy
            step = float(torch.maximum((nx - px).abs().max(), (ny - py).abs().max()))
            px, py = nx, ny
            if step < _ITER_TOL_PX:
                break
        return px, py

    def taps(self, values: torch.Tensor, uy: float) -> list[tuple[torch.Tensor, float]]:
        """``values`` (one sample of :meth:`sample`) as a single tap of weight 1, as :class:`FlatLayer` gives."""
        return [(values, 1.0)]


def prepare_tilted(layer: torch.Tensor, disparity: torch.Tensor, blur: float, focus: float, cell: float,
                   reach: float, index: int, margin: int, size: tuple[int, int]) -> TiltedLayer:
    """Check a tilted layer, fit its plane and box-filter it once.

    Args:
        layer: ``(4, H, W)`` the layer on its canvas: premultiplied linear RGB and transmittance ``1 - alpha``.
        disparity: ``(H, W)`` its disparity in [0, 1].
        blur: CoC radius per unit disparity, pixels, ``>= 0``.
        focus: the in-focus disparity in [0, 1].
        cell: the aperture cell side ``h`` (unit aperture).
        reach: the largest aperture coordinate ``max |u_x|, |u_y|`` of the samples.
        index: the layer's position far to near (0 starts the composite and covers the whole frame); names
            it in errors.
        margin: canvas pixels beyond each side of the frame.
        size: ``(h, w)`` of the frame.

    Returns:
        The :class:`TiltedLayer`.

    Raises:
        InputError: the CoC radius changes by 0.9 px per pixel or more (times ``reach``): the lens would fold
            the layer over itself.
    """
    coc = blur * (disparity.to(torch.float32) - focus)
    gy = (coc[1:] - coc[:-1]).abs().max() if coc.shape[0] > 1 else torch.tensor(0.0)
    gx = (coc[:, 1:] - coc[:, :-1]).abs().max() if coc.shape[1] > 1 else torch.tensor(0.0)
    slope = float(torch.hypot(gx, gy))
    if slope * reach >= _MAX_FOLD:
        raise InputError(f"layers[{index}].disparity", expected="a surface whose CoC radius changes by less than "
                         "0.9 px per pixel (blur * slope < 0.9, or the lens would fold the layer over itself)",
                         got=f"{slope:.3g} px per pixel at blur {blur:g}",
                         fix="tilt the layer less or use a smaller blur")
    plane = fit_plane(disparity)
    if plane is not None:
        d0, pgx, pgy = plane
        plane = (blur * (d0 - focus), blur * pgx, blur * pgy)
    width = (coc.abs() * cell).clamp_min(1.0)
    c_max = float(coc.abs().max())
    region = (0, size[0], 0, size[1]) if index == 0 else reach_region(layer, c_max * reach + float(width.max()),
                                                                       margin, size)
    return TiltedLayer(coc=coc, filtered=variable_box(layer, width), plane=plane, region=region)
