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
- Tilted layers (a disparity map that varies) follow the backward map: in closed form for a plane, by
  fixed-point iteration ``p <- x - c(p) * u`` per pixel for any other surface, which converges because
  ``|blur * grad(d)| < 0.9`` (checked); they are resampled bilinearly after a box filter that follows the
  local CoC (at least one pixel wide).

Layers carry premultiplied linear RGB (HDR lights above 1 allowed) and alpha, far to near. Samples that
fall outside the canvas repeat its border; give the layers a margin of at least the largest CoC radius
(``margin``) to trace what lies beyond the frame.

This module holds the public API (:class:`Layer`, :func:`trace`, :func:`trace_tensor`), the input checks and
the composite over the aperture; the layers' filters are in :mod:`._box` (box means), :mod:`._flat` (flat
layers) and :mod:`._tilted` (tilted layers).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from ..errors import InputError, ShapeError
from ..lens import Aperture
from ._flat import FlatLayer
from ._tilted import TiltedLayer, prepare_tilted
from .aperture import ApertureSamples, aperture_samples, grid_size

__all__ = ["Layer", "TraceResult", "auto_samples", "trace", "trace_tensor"]

log = logging.getLogger(__name__)

# Largest cell displacement, in pixels, between two layers when the sample count is chosen automatically.
_AUTO_CELL_PX = 3.0
_AUTO_MIN, _AUTO_MAX = 64, 2048


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of a scene on an ``H x W`` canvas.

    Use :meth:`from_straight` to build one from straight (unpremultiplied) colour. :func:`trace` checks the
    fields.

    Args:
        color: ``H x W x 3`` float32 **premultiplied** linear RGB (colour times alpha), >= 0, HDR above 1
            allowed.
        alpha: ``H x W`` float32 coverage in [0, 1].
        disparity: a number in [0, 1] (a flat layer, parallel to the sensor) or an ``H x W`` map in [0, 1]
            defined over the whole canvas, also where ``alpha`` is 0 (a tilted plane or any smooth surface);
            1 = nearest.
        name: free text kept in the parameters (``"background"``, ``"hair"``...).
        info: free parameters of the layer (what was drawn), kept with it.
    """

    color: np.ndarray
    alpha: np.ndarray
    disparity: float | np.ndarray
    name: str = ""
    info: dict = field(default_factory=dict)

    @classmethod
    def from_straight(cls, rgb: np.ndarray, alpha: np.ndarray, disparity, name: str = "", **info) -> Layer:
        """A layer from straight colour: premultiplies ``rgb`` by ``alpha``.

        Args:
            rgb: ``H x W x 3`` straight linear RGB (any float; converted to float32).
            alpha: ``H x W`` coverage in [0, 1].
            disparity: a number or an ``H x W`` map in [0, 1], as in :class:`Layer`.
            name: as in :class:`Layer`.
            **info: kept in :attr:`info`.

        Returns:
            The :class:`Layer`, ``color = rgb * alpha``.
        """
        rgb = np.asarray(rgb, dtype=np.float32)
        alpha = np.asarray(alpha, dtype=np.float32)
        return cls(color=rgb * alpha[..., None], alpha=alpha, disparity=disparity, name=name, info=dict(info))

    @property
    def is_flat(self) -> bool:
        """Whether the disparity is the same everywhere (a number, or a constant map)."""
        d = self.disparity
        return np.ndim(d) == 0 or float(np.max(d)) == float(np.min(d))

    def disparity_map(self) -> np.ndarray:
        """The disparity as an ``H x W`` float32 map (a number filled over the canvas)."""
        if np.ndim(self.disparity) == 0:
            return np.full(self.alpha.shape, float(self.disparity), dtype=np.float32)
        return np.asarray(self.disparity, dtype=np.float32)


class TraceResult(NamedTuple):
    """What :func:`trace` returns: numpy float32 arrays cropped to the frame (``h x w``).

    Args:
        image: ``h x w x 3`` all-in-focus linear RGB (the ``u = 0`` composite; HDR above 1 kept).
        disparity: ``h x w`` disparity in [0, 1] of the front-most surface with alpha >= 0.5.
        target: ``h x w x 3`` the lens-blurred linear RGB.
    """

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
    """A sample count for which no two layers move apart by more than 3 px within one aperture cell (up to 2048).

    The cell side is ``2 / n`` of the aperture diameter; two layers with CoC radii ``c_i`` and ``c_j`` move
    ``|c_i - c_j| * 2 / n`` pixels apart within a cell. ``bench/synth_convergence.py`` measures that this is
    well converged (8-bit PSNR between S and 4S samples above 45 dB, so an estimated 39 dB or better against
    the exact integral). The bound holds up to a span of about 76 px between the layers' CoC radii; beyond it the
    count stops at 2048 and the displacement per cell grows.

    Args:
        layers: the scene's layers (not checked here; :func:`trace` checks them).
        blur: CoC radius per unit disparity, pixels, >= 0.
        focus_disparity: the in-focus disparity in [0, 1] (the span between layers does not depend on it).

    Returns:
        The number of aperture samples, clamped to [64, 2048].
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


def _check_lens(blur: float, focus_disparity: float, aperture: Aperture | None, margin: int,
                shape: tuple[int, int]) -> Aperture:
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
    return aperture


def trace(layers: Sequence[Layer], *, blur: float, focus_disparity: float, aperture: Aperture | None = None,
          samples: int | None = None, margin: int = 0, generator: torch.Generator | None = None,
          device: str | torch.device | None = None, chunk: int = 8) -> TraceResult:
    """Ray-trace ``layers`` through a thin lens.

    Args:
        layers: the scene, far to near, all on one ``H x W`` canvas (see :class:`Layer`).
        blur: CoC radius per unit disparity, pixels, finite and >= 0: a point at disparity ``d`` has the signed
            CoC radius ``blur * (d - focus_disparity)``, as in :class:`lensblur.Lens`.
        focus_disparity: the in-focus disparity in [0, 1].
        aperture: a :class:`lensblur.Aperture` (circle by default); blades, rotation, curvature and custom
            kernels are honoured, ``cat_eye`` is refused (it varies over the frame).
        samples: the approximate number of aperture samples (``None``: :func:`auto_samples`).
        margin: pixels cropped from every side of the canvas for the outputs, >= 0 and less than half the
            canvas.
        generator: jitters the sample grid (``None``: centred grid, deterministic).
        device: where to compute (``None``: the CPU).
        chunk: aperture samples of a tilted layer resampled together (memory against speed).

    Returns:
        :class:`TraceResult` ``(image, disparity, target)``, each ``(H - 2 margin) x (W - 2 margin)``.

    Raises:
        InputError: a layer, ``blur``, ``focus_disparity``, ``margin`` or ``aperture`` is out of its range, or a
            tilted layer is so steep that the lens would fold it over itself.
        ShapeError: the layers' colour, alpha or disparity maps do not share one canvas size.
    """
    shape = _check_layers(layers)
    aperture = _check_lens(blur, focus_disparity, aperture, margin, shape)
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


def trace_tensor(colors: torch.Tensor, alphas: torch.Tensor, disparities: list, *, blur: float,
                 focus_disparity: float, points: ApertureSamples, margin: int = 0,
                 chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Trace on tensors, far to near; :func:`trace` checks the inputs and calls it.

    Args:
        colors: ``(L, 3, H, W)`` float32 premultiplied linear RGB.
        alphas: ``(L, 1, H, W)`` float32 coverage in [0, 1].
        disparities: ``L`` entries, a Python float (flat layer) or an ``(H, W)`` tensor (tilted), in [0, 1].
        blur: CoC radius per unit disparity, pixels, >= 0.
        focus_disparity: the in-focus disparity in [0, 1].
        points: the aperture samples (:func:`~lensblur.synth.aperture.aperture_samples`).
        margin: pixels cropped from every side of the canvas, >= 0.
        chunk: aperture samples of a tilted layer resampled together.

    Returns:
        ``(image, disparity, target)``: ``(3, h, w)`` all-in-focus, ``(h, w)`` front-most disparity with
        alpha >= 0.5 and ``(3, h, w)`` lens blur, ``h, w = H - 2 margin, W - 2 margin``.

    Raises:
        InputError: a tilted layer is so steep that the lens would fold it over itself.
    """
    _, _, hc, wc = colors.shape
    size = (hc - 2 * margin, wc - 2 * margin)
    # 1. The all-in-focus composite and the front-most disparity (u = 0).
    image, disparity = _in_focus(colors, alphas, disparities, margin, size)
    # 2. Per layer: colour and transmittance (1 - alpha), ready to be averaged over one aperture cell, and
    #    the part of the frame it can reach; layers that reach nothing are left out.
    layers = _prepare_layers(colors, alphas, disparities, blur, float(focus_disparity), points, margin, size)
    layers = [layer for layer in layers if layer.region[1] > layer.region[0] and layer.region[3] > layer.region[2]]
    # 3. Aperture column by column, cell by cell: composite front to back, weighted by the cell's share.
    target = torch.zeros(3, *size, device=colors.device)
    cols = points.cells[:, 0]
    for col in torch.unique(cols).tolist():
        members = torch.nonzero(cols == col).flatten()
        ux = float(points.offsets[members[0], 0])
        columns = {i: layer.column(ux) for i, layer in enumerate(layers) if isinstance(layer, FlatLayer)}
        for start in range(0, len(members), chunk):
            block = members[start: start + chunk]
            resampled = {i: layer.sample(points.offsets[block], margin)
                         for i, layer in enumerate(layers) if isinstance(layer, TiltedLayer)}
            for j, k in enumerate(block.tolist()):
                values = [resampled[i][j] if i in resampled else columns[i] for i in range(len(layers))]
                _add_cell(target, layers, values, uy=float(points.offsets[k, 1]), weight=float(points.weights[k]))
    return image, disparity, target


def _in_focus(colors: torch.Tensor, alphas: torch.Tensor, disparities: list, margin: int,
              size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``u = 0`` composite ``(3, h, w)`` and the front-most disparity with alpha >= 0.5 ``(h, w)``."""
    hc, wc = colors.shape[2:]
    crop = (slice(None), slice(margin, hc - margin), slice(margin, wc - margin))
    image = torch.zeros(3, *size, device=colors.device)
    disparity = None
    for i, d in enumerate(disparities):
        a = alphas[i][crop]
        image = colors[i][crop] + (1 - a) * image
        d = torch.full(size, d, device=colors.device) if isinstance(d, float) else d[crop[1:]]
        disparity = d.clone() if disparity is None else torch.where(a[0] >= 0.5, d, disparity)
    return image, disparity


def _prepare_layers(colors: torch.Tensor, alphas: torch.Tensor, disparities: list, blur: float, focus: float,
                    points: ApertureSamples, margin: int, size: tuple[int, int]) -> list[FlatLayer | TiltedLayer]:
    """Each layer as a :class:`FlatLayer` or a :class:`TiltedLayer`, far to near."""
    reach = float(points.offsets.abs().max()) if len(points) else 0.0
    stacks = torch.cat([colors, 1 - alphas], dim=1)
    layers = []
    for i, d in enumerate(disparities):
        if not isinstance(d, float) and blur * float((d - focus).abs().max()) == 0.0:
            d = focus  # a surface that does not move at all (blur 0): exact as a flat layer
        if isinstance(d, float):
            layers.append(FlatLayer(stacks[i], blur * (d - focus), points, margin, size, full=i == 0))
        else:
            layers.append(prepare_tilted(stacks[i], d, blur, focus, points.cell, reach, i, margin, size))
    return layers


def _add_cell(target: torch.Tensor, layers: list[FlatLayer | TiltedLayer], values: list[torch.Tensor], *,
              uy: float, weight: float) -> None:
    """Adds one aperture cell's composite of ``layers`` (far to near), times ``weight``, into ``target``.

    ``values[i]`` is what layer ``i`` gives for the cell (:meth:`FlatLayer.column` of the cell's aperture
    column, or one sample of :meth:`TiltedLayer.sample`). Front to back: each layer adds its colour times the
    transmittance of the layers in front of it (``trans``, which holds ``weight`` times that product).
    """
    trans = None
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        y0, y1, x0, x1 = layer.region
        taps = layer.taps(values[i], uy)
        out = target[:, y0:y1, x0:x1]
        if trans is None:
            for v, wt in taps:
                out.add_(v[:3], alpha=weight * wt)
        else:
            tr_region = trans[:, y0:y1, x0:x1]
            for v, wt in taps:
                out.addcmul_(tr_region, v[:3], value=wt)
        if i == 0:
            break
        tr = taps[0][0][3:] * taps[0][1]
        for v, wt in taps[1:]:
            tr.add_(v[3:], alpha=wt)
        if trans is None:
            trans = torch.full((1, *target.shape[1:]), weight, device=target.device)
            trans[:, y0:y1, x0:x1] = tr * weight
        else:
            trans[:, y0:y1, x0:x1].mul_(tr)
