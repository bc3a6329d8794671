"""The aperture-sampling ray tracer: layers with transparency at known disparities -> exact lens blur.

A thin lens seen from the image: a scene point whose signed CoC radius is ``c = blur * (d - focus_disparity)``
reaches the sensor through aperture position ``u`` (unit aperture, :mod:`lensblur.synth.aperture`) at its
in-focus position plus ``c * u``. For one aperture sample the picture is therefore every layer displaced by
``c * u`` (a backward map: the output pixel ``x`` shows the layer at the ``p`` that solves
``p = x - c(p) * u``) and composited front to back with "over" in linear light; the lens-blurred image is the
average over the aperture. Occlusion is resolved per sample, which is what makes partial occlusion (seeing
behind a blurred foreground edge) come out right: the average of composites is not the composite of averages.

How the integral is computed:

- The aperture is cut into a grid of square cells (:func:`~lensblur.synth.aperture.aperture_samples`); each
  cell is one sample, weighted by its area inside the aperture.
- Within a cell, each layer on its own is averaged exactly over the cell: a flat layer seen through cell
  ``k`` is its mean over a box of side ``|c| * h`` pixels (``h`` the cell side) centred ``-c * u_k`` away,
  pixels taken as piecewise constant. The boxes of neighbouring cells share their edges, so they tile and a
  single layer is its exact convolution with the aperture (antialiased at the scale of one cell), with no
  sampling pattern: an HDR point becomes a flat disk. The only approximation is the correlation between two
  layers inside one cell, which vanishes as the grid gets finer; ``bench/synth_convergence.py`` shows the
  S vs 4S difference.
- The box is separable: a flat layer is filtered along x once per aperture column and each cell of the
  column then costs a few multiply-adds per pixel and layer (its y taps and the "over").
- Tilted layers (a disparity map that varies) solve the backward map per pixel by fixed-point iteration
  ``p <- x - c(p) * u``, which converges because ``|blur * grad(d)| < 0.9`` (checked), and are resampled
  bilinearly after a box filter that follows the local CoC (at least one pixel wide).

Layers carry premultiplied linear RGB (HDR lights above 1 allowed) and alpha, far to near. Samples that
fall outside the canvas repeat its border; give the layers a margin of at least the largest CoC radius
(``margin``) to trace what lies beyond the frame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, ShapeError
from ..lens import Aperture
from .aperture import ApertureSamples, aperture_samples, grid_size

__all__ = ["Layer", "TraceResult", "auto_samples", "trace", "trace_tensor"]

log = logging.getLogger(__name__)

# Largest cell displacement, in pixels, between two layers when the sample count is chosen automatically.
_AUTO_CELL_PX = 3.0
_AUTO_MIN, _AUTO_MAX = 64, 2048


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of a scene, ``H x W`` canvas.

    - ``color``: ``H x W x 3`` float32 **premultiplied** linear RGB (colour times alpha; HDR above 1 allowed).
    - ``alpha``: ``H x W`` float32 coverage in [0, 1].
    - ``disparity``: a number (a flat layer, parallel to the sensor) or an ``H x W`` map defined over the
      whole canvas, also where ``alpha`` is 0 (a tilted plane or any smooth surface); 1 = nearest.
    - ``name``: free text kept in the parameters (``"background"``, ``"hair"``...).

    Use :meth:`from_straight` to build one from straight (unpremultiplied) colour.
    """

    color: np.ndarray
    alpha: np.ndarray
    disparity: float | np.ndarray
    name: str = ""
    info: dict = field(default_factory=dict)

    @classmethod
    def from_straight(cls, rgb: np.ndarray, alpha: np.ndarray, disparity, name: str = "", **info) -> Layer:
        """Layer from straight linear RGB ``rgb`` and ``alpha`` (premultiplies)."""
        rgb = np.asarray(rgb, dtype=np.float32)
        alpha = np.asarray(alpha, dtype=np.float32)
        return cls(color=rgb * alpha[..., None], alpha=alpha, disparity=disparity, name=name, info=dict(info))

    @property
    def is_flat(self) -> bool:
        d = self.disparity
        return np.ndim(d) == 0 or float(np.max(d)) == float(np.min(d))

    def disparity_map(self) -> np.ndarray:
        if np.ndim(self.disparity) == 0:
            return np.full(self.alpha.shape, float(self.disparity), dtype=np.float32)
        return np.asarray(self.disparity, dtype=np.float32)


class TraceResult(NamedTuple):
    """``image``: all-in-focus linear RGB (the ``u = 0`` composite); ``disparity``: the front-most surface
    with alpha >= 0.5; ``target``: the lens-blurred linear RGB. Numpy, cropped to the frame."""

    image: np.ndarray
    disparity: np.ndarray
    target: np.ndarray


def _check_layers(layers: Sequence[Layer]) -> tuple[int, int]:
    if not isinstance(layers, (list, tuple)) or not layers:
        raise InputError("layers", expected="a non-empty list of lensblur.synth.Layer, far to near",
                         got=type(layers).__name__ if not isinstance(layers, (list, tuple)) else "an empty list",
                         fix="build layers with Layer.from_straight(rgb, alpha, disparity)")
    shape = None
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise InputError(f"layers[{i}]", expected="a lensblur.synth.Layer", got=type(layer).__name__,
                             fix="build it with Layer.from_straight(rgb, alpha, disparity)")
        color, alpha = np.asarray(layer.color), np.asarray(layer.alpha)
        if alpha.ndim != 2 or color.shape != (*alpha.shape, 3):
            raise ShapeError(f"layers[{i}]", expected="color H x W x 3 and alpha H x W",
                             got=f"color {color.shape}, alpha {alpha.shape}", fix="give both the canvas size")
        if shape is None:
            shape = alpha.shape
        elif alpha.shape != shape:
            raise ShapeError(f"layers[{i}]", expected=f"the canvas size of layer 0 {shape}", got=f"{alpha.shape}",
                             fix="give every layer the same canvas size")
        if not (np.isfinite(color).all() and np.isfinite(alpha).all()):
            raise InputError(f"layers[{i}]", expected="finite colour and alpha", got="NaN or inf",
                             fix="clean the layer")
        if alpha.min() < 0 or alpha.max() > 1:
            raise InputError(f"layers[{i}].alpha", expected="values in [0, 1]",
                             got=f"range [{alpha.min():g}, {alpha.max():g}]", fix="clip the matte")
        d = np.asarray(layer.disparity, dtype=np.float32)
        if d.ndim not in (0, 2) or (d.ndim == 2 and d.shape != shape):
            raise ShapeError(f"layers[{i}].disparity", expected=f"a number or an H x W map {shape}",
                             got=f"shape {d.shape}", fix="pass a float for a flat layer or a map for a tilted one")
        if not np.isfinite(d).all() or d.min() < 0 or d.max() > 1:
            raise InputError(f"layers[{i}].disparity", expected="finite values in [0, 1] (1 = nearest)",
                             got=f"range [{float(d.min()):g}, {float(d.max()):g}]", fix="rescale the disparity")
    return shape


def auto_samples(layers: Sequence[Layer], *, blur: float, focus_disparity: float) -> int:
    """A sample count for which no two layers move apart by more than 3 px within one aperture cell.

    The cell side is ``2 / n`` of the aperture diameter; two layers with CoC radii ``c_i`` and ``c_j`` move
    ``|c_i - c_j| * 2 / n`` pixels apart within a cell. Clamped to [64, 2048]. ``bench/synth_convergence.py``
    measures that this is well converged (8-bit PSNR between S and 4S samples above 45 dB).
    """
    lo, hi = [], []
    for layer in layers:
        d = layer.disparity_map() if not layer.is_flat else np.float32(layer.disparity_map().flat[0])
        lo.append(float(np.min(d)))
        hi.append(float(np.max(d)))
    span = blur * (max(hi) - min(lo))
    n = math.ceil(2.0 * span / _AUTO_CELL_PX)
    count = math.ceil(n * n * math.pi / 4)
    return int(min(max(count, _AUTO_MIN), _AUTO_MAX))


def trace(layers: Sequence[Layer], *, blur: float, focus_disparity: float, aperture: Aperture | None = None,
          samples: int | None = None, margin: int = 0, generator: torch.Generator | None = None,
          device: str | torch.device | None = None, chunk: int = 8) -> TraceResult:
    """Ray-trace ``layers`` (far to near) through a thin lens; returns ``(image, disparity, target)``.

    ``blur`` and ``focus_disparity`` as in :class:`lensblur.Lens` (signed CoC radius
    ``blur * (d - focus_disparity)`` pixels); ``aperture`` a :class:`lensblur.Aperture` (circle by default;
    blades, rotation, curvature and custom kernels are honoured); ``samples`` the approximate number of
    aperture samples (``None``: :func:`auto_samples`); ``margin`` pixels cropped from every side of the
    canvas for the outputs; ``generator`` jitters the sample grid (``None``: centred grid, deterministic).
    """
    shape = _check_layers(layers)
    if not (isinstance(blur, (int, float)) and math.isfinite(blur) and blur >= 0):
        raise InputError("blur", expected="a finite number of pixels >= 0", got=blur, fix="e.g. blur=30")
    if not (isinstance(focus_disparity, (int, float)) and 0 <= focus_disparity <= 1):
        raise InputError("focus_disparity", expected="a disparity in [0, 1]", got=focus_disparity,
                         fix="e.g. the mean disparity of the subject")
    if not isinstance(margin, int) or margin < 0 or 2 * margin >= min(shape):
        raise InputError("margin", expected=f"an integer >= 0 smaller than half the canvas {shape[1]}x{shape[0]}",
                         got=margin, fix="pass the margin the layers were drawn with")
    aperture = aperture if aperture is not None else Aperture()
    if not isinstance(aperture, Aperture):
        raise InputError("aperture", expected="a lensblur.Aperture", got=type(aperture).__name__,
                         fix="e.g. Aperture(blades=6)")
    if samples is None:
        samples = auto_samples(layers, blur=blur, focus_disparity=focus_disparity)
    jitter = None if generator is None else torch.rand(2, generator=generator, dtype=torch.float64) - 0.5
    points = aperture_samples(aperture, grid_size(samples), jitter=jitter)
    colors = torch.stack([torch.from_numpy(np.ascontiguousarray(layer.color, dtype=np.float32)).permute(2, 0, 1)
                          for layer in layers]).to(device)
    alphas = torch.stack([torch.from_numpy(np.ascontiguousarray(layer.alpha, dtype=np.float32))
                          for layer in layers])[:, None].to(device)
    disps = [float(np.asarray(layer.disparity_map()).flat[0]) if layer.is_flat else
             torch.from_numpy(layer.disparity_map()).to(device) for layer in layers]
    with torch.inference_mode():
        image, disparity, target = trace_tensor(colors, alphas, disps, blur=float(blur),
                                                focus_disparity=float(focus_disparity), points=points,
                                                margin=margin, chunk=chunk)
    return TraceResult(image.permute(1, 2, 0).cpu().numpy(), disparity.cpu().numpy(),
                       target.permute(1, 2, 0).cpu().numpy())


# --------------------------------------------------------------------------------------------------------------
# Tensor implementation


def _box_weights(lo: float, hi: float) -> tuple[int, list[float]]:
    """Weights ``w_t`` and first offset ``k0`` such that ``sum_t w_t f[y + k0 + t]`` is the mean of the
    piecewise-constant signal ``f`` (pixel ``j`` covers ``[j, j + 1)``) over ``[y + lo, y + hi]``; a point
    sample (one weight) when ``hi <= lo``."""
    if hi - lo <= 1e-9:
        return math.floor(lo), [1.0]
    k0, k1 = math.floor(lo), math.ceil(hi) - 1
    weights = [(min(k + 1, hi) - max(k, lo)) / (hi - lo) for k in range(k0, k1 + 1)]
    while len(weights) > 1 and weights[-1] <= 1e-12:
        weights.pop()
    while len(weights) > 1 and weights[0] <= 1e-12:
        weights.pop(0)
        k0 += 1
    return k0, weights


def _variable_box(x: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (``(C, H, W)``) over a square of side ``width[y, x]`` pixels centred on every pixel
    (piecewise-constant pixels, border repeated)."""

    def along(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = t.shape[-1]
        t64 = t.to(torch.float64)
        csum = F.pad(torch.cumsum(t64, dim=-1), (1, 0))
        pos = torch.arange(n, dtype=torch.float64, device=t.device) + 0.5
        w64 = w.to(torch.float64)

        def at(edge: torch.Tensor) -> torch.Tensor:
            edge = edge.clamp(0, n)
            i0 = edge.floor().clamp(max=n - 1)
            frac = edge - i0
            i0 = i0.long().expand(t.shape[0], -1, -1)
            c0 = torch.gather(csum, -1, i0)
            c1 = torch.gather(csum, -1, i0 + 1)
            return c0 + (c1 - c0) * frac

        lo, hi = pos - w64 / 2, pos + w64 / 2
        inside = at(hi) - at(lo)
        below = (-lo).clamp_min(0) * t64[..., :1]
        above = (hi - n).clamp_min(0) * t64[..., -1:]
        return ((inside + below + above) / w64).to(t.dtype)

    out = along(x, width[None])
    return along(out.transpose(-1, -2), width[None].transpose(-1, -2)).transpose(-1, -2).contiguous()


def _region(stack: torch.Tensor, reach_px: float, margin: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Output rows/columns ``(y0, y1, x0, x1)`` a layer can touch: where it has colour or alpha, grown by
    ``reach_px`` (its largest displacement plus the box); elsewhere it is empty and fully transparent."""
    h, w = size
    busy = (stack[:3].abs().amax(0) > 0) | (stack[3] < 1)
    rows = torch.nonzero(busy.any(1)).flatten()
    cols = torch.nonzero(busy.any(0)).flatten()
    if rows.numel() == 0:
        return (0, 0, 0, 0)
    grow = math.ceil(reach_px) + 2
    y0 = max(0, int(rows[0]) - margin - grow)
    y1 = min(h, int(rows[-1]) + 1 - margin + grow)
    x0 = max(0, int(cols[0]) - margin - grow)
    x1 = min(w, int(cols[-1]) + 1 - margin + grow)
    return (y0, max(y0, y1), x0, max(x0, x1))


class _Flat:
    """A rigidly moving layer seen through square aperture cells.

    Aperture cell ``k`` (centre ``u_k``, side ``h``) shows the layer averaged over the box of side
    ``|c| * h`` pixels centred ``-c * u_k`` away: ``out(x) = mean of f over x - c * u_k +- |c| h / 2`` with
    the pixels taken as piecewise constant. Cells of one grid row are spaced by exactly the box width, so
    their boxes tile: a single layer comes out as its exact convolution with the aperture (antialiased at the
    scale of one cell) and no sampling pattern appears, whatever the sub-pixel positions. The box is
    separable: :meth:`column` filters along x once per grid column; :meth:`rows` gives the y taps per cell.
    Only the layer's :attr:`region` (output rows and columns it can reach) is computed.
    """

    def __init__(self, layer: torch.Tensor, coc: float, points: ApertureSamples, margin: int,
                 size: tuple[int, int], full: bool):
        self.coc = coc
        self.width = abs(coc) * points.cell
        reach = float(points.offsets.abs().max()) if len(points) else 0.0
        self.pad = math.ceil(abs(coc) * reach + self.width / 2) + 2
        self.region = (0, size[0], 0, size[1]) if full else _region(layer, abs(coc) * reach + self.width,
                                                                     margin, size)
        self.padded = F.pad(layer[None], (self.pad,) * 4, mode="replicate")[0]
        self.margin = margin

    def _taps(self, u: float, first: int) -> tuple[int, list[float]]:
        lo = 0.5 - self.coc * u - self.width / 2
        k0, weights = _box_weights(lo, lo + self.width)
        return self.margin + self.pad + k0 + first, weights

    def column(self, ux: float) -> torch.Tensor:
        """The layer filtered along x for aperture column ``ux``, region columns only (rows still padded)."""
        x0, x1 = self.region[2:]
        start, weights = self._taps(ux, x0)
        w = x1 - x0
        src = self.padded
        out = src[:, :, start: start + w] * weights[0]
        for t, wt in enumerate(weights[1:], 1):
            out.add_(src[:, :, start + t: start + t + w], alpha=wt)
        return out

    def taps(self, column: torch.Tensor, uy: float) -> list[tuple[torch.Tensor, float]]:
        """``(values, weight)`` pairs whose weighted sum is the layer over the region for aperture row ``uy``."""
        y0, y1 = self.region[:2]
        r0, weights = self._taps(uy, y0)
        n = y1 - y0
        return [(column[:, r0 + t: r0 + t + n], wt) for t, wt in enumerate(weights)]


def _fit_plane(disparity: torch.Tensor) -> tuple[float, float, float] | None:
    """``(d0, gx, gy)`` with ``d = d0 + gx * col + gy * row`` if the map is a plane (to 1e-5), else None."""
    h, w = disparity.shape
    d = disparity.to(torch.float64)
    gx = float((d[:, -1] - d[:, 0]).mean()) / max(w - 1, 1)
    gy = float((d[-1] - d[0]).mean()) / max(h - 1, 1)
    d0 = float(d[0, 0])
    rows = torch.arange(h, dtype=torch.float64)[:, None]
    cols = torch.arange(w, dtype=torch.float64)[None]
    if float((d0 + gx * cols + gy * rows - d).abs().max()) > 1e-5:
        return None
    return d0, gx, gy


@dataclass
class _Tilted:
    """A layer whose disparity varies: pre-filtered once, resampled per sample along its backward map."""

    coc: torch.Tensor  # (H, W) signed CoC radius on the canvas
    filtered: torch.Tensor  # (4, H, W)
    plane: tuple[float, float, float] | None  # the CoC as c0 + cx * col + cy * row, when it is a plane
    region: tuple[int, int, int, int]

    def sample(self, offsets: torch.Tensor, margin: int) -> torch.Tensor:
        """``(n, 4, h, w)`` layer values over :attr:`region` seen through aperture positions ``offsets``.

        Solves ``p = x - c(p) * u`` for every output pixel ``x`` by fixed-point iteration; each step is a
        contraction with factor ``max |grad c| * |u| < 0.9`` (checked when the layer is prepared). For a plane
        the iteration runs on the affine map (exact); for any other map per pixel, ``c(p)`` interpolated
        bilinearly, until no pixel moves by more than 1e-3 px.
        """
        hc, wc = self.coc.shape
        y0, y1, x0, x1 = self.region
        n = offsets.shape[0]
        dev = self.coc.device
        if self.plane is not None:
            # p = A X + b on canvas pixel-edge coordinates X; affine_grid's output coordinates are
            # normalised over the region: X = S x_n + T. In grid_sample's normalised input coordinates
            # s = D p - 1, so s = (D A S) x_n + D (A T + b) - 1.
            maps = self._plane_affine(offsets)  # (n, 2, 3) float64
            rw, rh = x1 - x0, y1 - y0
            scale = torch.tensor([rw / 2, rh / 2], dtype=torch.float64)
            shift = torch.tensor([x0 + margin + rw / 2, y0 + margin + rh / 2], dtype=torch.float64)
            norm = torch.tensor([2.0 / wc, 2.0 / hc], dtype=torch.float64)
            a, b = maps[:, :, :2], maps[:, :, 2]
            theta = torch.cat([norm[None, :, None] * a * scale[None, None, :],
                               (norm[None] * ((a @ shift) + b) - 1.0)[:, :, None]], dim=2)
            grid = F.affine_grid(theta.to(torch.float32).to(dev), [n, 4, rh, rw], align_corners=False)
        else:
            ys = torch.arange(y0, y1, device=dev, dtype=torch.float32) + margin + 0.5
            xs = torch.arange(x0, x1, device=dev, dtype=torch.float32) + margin + 0.5
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            scale = torch.tensor([2.0 / wc, 2.0 / hc], device=dev)
            px, py = self._iterate(offsets, gx, gy, scale)
            grid = torch.stack([px, py], dim=-1) * scale - 1.0
        src = self.filtered[None].expand(n, -1, -1, -1)
        return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _plane_map(self, offsets: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor):
        """Source positions ``p`` (canvas pixel-edge coordinates) of the pixels at ``(gx, gy)``."""
        m = self._plane_affine(offsets).to(torch.float32)
        px = m[:, 0, 0, None, None] * gx + m[:, 0, 1, None, None] * gy + m[:, 0, 2, None, None]
        py = m[:, 1, 0, None, None] * gx + m[:, 1, 1, None, None] * gy + m[:, 1, 2, None, None]
        return px, py

    def _plane_affine(self, offsets: torch.Tensor) -> torch.Tensor:
        """The fixed-point iteration carried out on the affine map itself: with ``c(p) = c0 + g . p`` and
        ``p_k = A_k x + b_k``, the step ``p <- x - c(p) u`` gives ``A_{k+1} = I - u g^T A_k`` and
        ``b_{k+1} = -(c0 + g . b_k) u``, iterated per sample to convergence. Returns ``(n, 2, 3)`` float64
        ``[A | b]``."""
        c0, gx_, gy_ = self.plane
        # Canvas pixel-edge coordinates (x, y) -> c = c0 + gx * (x - 0.5) + gy * (y - 0.5).
        c0 = c0 - 0.5 * (gx_ + gy_)
        maps = []
        for ux, uy in offsets.tolist():
            a = [[1.0, 0.0], [0.0, 1.0]]
            b = [0.0, 0.0]
            for _ in range(200):
                ga = [gx_ * a[0][0] + gy_ * a[1][0], gx_ * a[0][1] + gy_ * a[1][1]]  # g^T A
                a_next = [[1.0 - ux * ga[0], -ux * ga[1]], [-uy * ga[0], 1.0 - uy * ga[1]]]
                cb = c0 + gx_ * b[0] + gy_ * b[1]
                b_next = [-cb * ux, -cb * uy]
                change = max(abs(a_next[i][j] - a[i][j]) for i in range(2) for j in range(2)) * 4096
                change = max(change, abs(b_next[0] - b[0]), abs(b_next[1] - b[1]))
                a, b = a_next, b_next
                if change < 1e-9:
                    break
            maps.append([[a[0][0], a[0][1], b[0]], [a[1][0], a[1][1], b[1]]])
        return torch.tensor(maps, dtype=torch.float64)

    def _iterate(self, offsets: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor, scale: torch.Tensor):
        """Per-pixel fixed-point iteration for a disparity map that is not a plane (bilinear ``c(p)``)."""
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
        for _ in range(100):
            c = coc_at(px, py)
            nx, ny = gx - c * ux, gy - c * uy
            step = float(torch.maximum((nx - px).abs().max(), (ny - py).abs().max()))
            px, py = nx, ny
            if step < 1e-3:
                break
        return px, py

    def taps(self, values: torch.Tensor, uy: float) -> list[tuple[torch.Tensor, float]]:
        return [(values, 1.0)]


def _prepare_tilted(layer: torch.Tensor, disparity: torch.Tensor, blur: float, focus: float, cell: float,
                    reach: float, index: int, margin: int, size: tuple[int, int]) -> _Tilted:
    coc = blur * (disparity.to(torch.float32) - focus)
    gy = (coc[1:] - coc[:-1]).abs().max() if coc.shape[0] > 1 else torch.tensor(0.0)
    gx = (coc[:, 1:] - coc[:, :-1]).abs().max() if coc.shape[1] > 1 else torch.tensor(0.0)
    slope = float(torch.hypot(gx, gy))
    if slope * reach >= 0.9:
        raise InputError(f"layers[{index}].disparity", expected="a surface whose CoC radius changes by less than "
                         "0.9 px per pixel (blur * slope < 0.9, or the lens would fold the layer over itself)",
                         got=f"{slope:.3g} px per pixel at blur {blur:g}",
                         fix="tilt the layer less or use a smaller blur")
    plane = _fit_plane(disparity)
    if plane is not None:
        d0, pgx, pgy = plane
        plane = (blur * (d0 - focus), blur * pgx, blur * pgy)
    width = (coc.abs() * cell).clamp_min(1.0)
    full = index == 0
    c_max = float(coc.abs().max())
    region = (0, size[0], 0, size[1]) if full else _region(layer, c_max * reach + float(width.max()), margin, size)
    return _Tilted(coc=coc, filtered=_variable_box(layer, width), plane=plane, region=region)


def trace_tensor(colors: torch.Tensor, alphas: torch.Tensor, disparities: list, *, blur: float,
                 focus_disparity: float, points: ApertureSamples, margin: int = 0,
                 chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Trace on tensors: ``colors`` ``(L, 3, H, W)`` premultiplied, ``alphas`` ``(L, 1, H, W)``, ``disparities``
    a list of floats (flat) or ``(H, W)`` tensors (tilted), far to near.

    Returns ``(image (3, h, w), disparity (h, w), target (3, h, w))`` cropped by ``margin``.
    """
    n_layers, _, hc, wc = colors.shape
    size = (hc - 2 * margin, wc - 2 * margin)
    crop = (slice(None), slice(margin, hc - margin), slice(margin, wc - margin))
    # 1. The all-in-focus composite and the front-most disparity (u = 0).
    image = torch.zeros(3, *size, device=colors.device)
    disparity = None
    for i in range(n_layers):
        a = alphas[i][crop]
        image = colors[i][crop] + (1 - a) * image
        d = disparities[i]
        d = torch.full(size, d, device=colors.device) if isinstance(d, float) else d[crop[1:]]
        disparity = d.clone() if disparity is None else torch.where(a[0] >= 0.5, d, disparity)
    # 2. Per layer: colour and transmittance (1 - alpha), ready to be averaged over one aperture cell, and
    #    the part of the frame it can reach.
    reach = float(points.offsets.abs().max()) if len(points) else 0.0
    stacks = torch.cat([colors, 1 - alphas], dim=1)
    layers = []
    for i in range(n_layers):
        d = disparities[i]
        if not isinstance(d, float) and blur * float((d - focus_disparity).abs().max()) == 0.0:
            d = focus_disparity  # a surface that does not move at all (blur 0): exact as a flat layer
        if isinstance(d, float):
            layers.append(_Flat(stacks[i], blur * (d - focus_disparity), points, margin, size, full=i == 0))
        else:
            layers.append(_prepare_tilted(stacks[i], d, blur, focus_disparity, points.cell, reach, i, margin, size))
    active = [i for i in range(n_layers) if layers[i].region[1] > layers[i].region[0]
              and layers[i].region[3] > layers[i].region[2]]
    # 3. Aperture column by column, cell by cell: composite front to back, weighted by the cell's share.
    target = torch.zeros(3, *size, device=colors.device)
    cols = points.cells[:, 0]
    for col in torch.unique(cols).tolist():
        members = torch.nonzero(cols == col).flatten()
        ux = float(points.offsets[members[0], 0])
        filtered = {i: layers[i].column(ux) for i in active if isinstance(layers[i], _Flat)}
        for start in range(0, len(members), chunk):
            block = members[start: start + chunk]
            tilted = {i: layers[i].sample(points.offsets[block], margin)
                      for i in active if isinstance(layers[i], _Tilted)}
            for j, k in enumerate(block.tolist()):
                weight = float(points.weights[k])
                uy = float(points.offsets[k, 1])
                trans = None
                for i in reversed(active):
                    layer = layers[i]
                    y0, y1, x0, x1 = layer.region
                    taps = layer.taps(tilted[i][j] if i in tilted else filtered[i], uy)
                    out = target[:, y0:y1, x0:x1]
                    if trans is None:
                        for v, wt in taps:
                            out.add_(v[:3], alpha=weight * wt)
                    else:
                        tr_region = trans[:, y0:y1, x0:x1]
                        for v, wt in taps:
                            out.addcmul_(tr_region, v[:3], value=wt)
                    if i == active[0]:
                        break
                    tr = taps[0][0][3:] * taps[0][1]
                    for v, wt in taps[1:]:
                        tr.add_(v[3:], alpha=wt)
                    if trans is None:
                        trans = torch.full((1, *size), weight, device=colors.device)
                        trans[:, y0:y1, x0:x1] = tr * weight
                    else:
                        trans[:, y0:y1, x0:x1].mul_(tr)
    return image, disparity, target
