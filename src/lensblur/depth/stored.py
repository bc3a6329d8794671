"""What a phone stored in its photo, before it meets the photo: one type for every embedded format.

Each reader (:mod:`~lensblur.depth.jpeg` for GDepth and Dynamic Depth, :mod:`~lensblur.depth.apple` for
iPhone portrait JPEGs, :mod:`~lensblur.depth.heif` for HEIC) returns a :class:`StoredDepth`: the map as
lensblur disparity *in the stored pixel orientation*, what its numbers mean (format, units, the range as
written and, when the units allow, in metres), and whatever else the file says: where the camera focused,
the blur it rendered, its sharp original image, a confidence map. :mod:`~lensblur.depth.embedded` then
turns it upright (the photo's EXIF orientation) and brings it to the photo's size.

**Units and the range.** The range a file writes (``Near``/``Far``) converts to metres only when its unit
is known: metres, centimetres, millimetres, or diopters (1/m, a unit of inverse depth). A Google "Lens
Blur" file writes none (the camera app's own structure-from-motion scale), so the metric range is unknown:
``depth_range`` is None and ``file_range`` keeps the numbers, which a scale (metres per unit) can still
turn into metres. The map itself is exact either way: lensblur's disparity is inverse depth normalised
over the map's range, and the normalisation does not depend on the unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..io import DepthRange

__all__ = ["METRES_PER_UNIT", "StoredDepth", "range_to_disparity", "unit_of"]

METRES_PER_UNIT = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0, "cm": 1e-2,
                   "centimeters": 1e-2, "mm": 1e-3, "millimeters": 1e-3, "millimetres": 1e-3}
"""Depth units (lower case, as files spell them) and their size in metres."""

_DIOPTERS = ("diopters", "dioptres", "diopter", "dioptre")
_NONE = ("", "none")


def unit_of(text: str | None) -> tuple[str, float | None]:
    """A file's depth unit: ``(name, metres per unit)``; ``("diopters", None)`` for inverse metres and
    ``("none", None)`` when the file names none.

    Args:
        text: the unit as written (``m``, ``mm``, ``Meters``, ``Diopters``, ``None``...), or None.

    Returns:
        ``(name, scale)``.

    Raises:
        InputError: a unit lensblur does not know.
    """
    unit = (text or "").strip().lower()
    if unit in _NONE:
        return "none", None
    if unit in _DIOPTERS:
        return "diopters", None
    if unit in METRES_PER_UNIT:
        scale = METRES_PER_UNIT[unit]
        return {1.0: "metres", 1e-2: "centimetres", 1e-3: "millimetres"}[scale], scale
    raise InputError("image_path", expected="depth units of metres, centimetres, millimetres, diopters or none",
                     got=repr(text), fix="pass the depth as a disparity file instead")


def _inverse(q: np.ndarray | float, unit: str):
    """Inverse depth (per file unit) of values ``q`` in the file's unit."""
    return q if unit == "diopters" else 1.0 / np.asarray(q, dtype=np.float64)


def range_to_disparity(values: np.ndarray, *, format: str, near: float, far: float,
                       unit: str = "none") -> np.ndarray:
    """Convert the normalised samples of a GDepth / Dynamic Depth map to lensblur disparity.

    The samples ``v`` decode (Google's depth map encoding) to a value in the file's unit:
    ``RangeLinear``: ``q = near + v (far - near)``; ``RangeInverse``: ``q = near far / (far - v (far - near))``.
    ``q`` is a depth, except in diopters where it is an inverse depth. Disparity is the inverse depth
    normalised over the map's two ends: ``(1/z - 1/z_far) / (1/z_near - 1/z_far)``, so ``RangeInverse``
    depths give ``1 - v`` and ``RangeLinear`` diopters give ``1 - v`` exactly.

    Args:
        values: samples in [0, 1], any shape.
        format: ``"RangeInverse"`` or ``"RangeLinear"`` (any case).
        near: the value of sample 0 (``Near``).
        far: the value of sample 1 (``Far``).
        unit: the unit's name from :func:`unit_of` (only ``"diopters"`` changes the formula).

    Returns:
        float32 disparity in [0, 1], same shape (1 at the nearer end).

    Raises:
        InputError: ends that are not positive and distinct depths (or non-negative, distinct diopters),
            or an unknown ``format``.
    """
    fmt = str(format).strip().lower()
    if fmt not in ("rangeinverse", "rangelinear"):
        raise InputError("image_path", expected="a depth Format of RangeInverse or RangeLinear", got=repr(format),
                         fix="pass the depth as a disparity file instead")
    ok = (min(near, far) >= 0 and near != far) if unit == "diopters" else (0 < near < far)
    if not (ok and math.isfinite(near) and math.isfinite(far)):
        raise InputError("image_path", expected="depth metadata with 0 < Near < Far (or two distinct diopters)",
                         got=f"Near={near}, Far={far} ({unit})",
                         fix="the photo's depth record is damaged; pass a disparity file instead")
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    if fmt == "rangelinear":
        q = near + v * (far - near)
    else:
        q = near * far / (far - v * (far - near))
    inv = _inverse(q, unit)
    lo, hi = sorted((float(_inverse(near, unit)), float(_inverse(far, unit))))
    return np.clip((inv - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class StoredDepth:
    """A depth map found inside a photo file, as lensblur disparity at its own size and stored orientation.

    Args:
        disparity: ``h x w`` float32 in [0, 1], 1 = nearest, in the file's stored pixel orientation.
        kind: the container: ``"GDepth XMP"``, ``"Dynamic Depth"``, ``"Apple MPF"``, ``"HEIC"``.
        format: how the samples encode depth (``RangeInverse``, ``RangeLinear``, ``disparity``, ...).
        units: the unit of ``file_range`` (``metres``, ``millimetres``, ``diopters``, ``inverse metres``,
            ``none`` when the file names none).
        depth_range: the metric range, or None when the units do not give one.
        file_range: ``(near, far)`` as written, in ``units``; None when the file writes none.
        focus_distance: the focus distance the file stores, in ``units`` (GFocus), else None.
        focus_point: the focus point the file stores, ``(x, y)`` in [0, 1] of the stored image, else None.
        blur_at_infinity: GFocus's blur at infinity, the CoC radius of a point at infinity as a fraction of
            the image's longer side (fitted against the camera's own render, see docs/depth.md), else None.
        original: the encoded sharp original image (GImage, a Dynamic Depth ``Original`` item), else None.
        original_mime: its mime type.
        confidence: ``h' x w'`` float32 confidence in [0, 1] (1 = sure), else None.
        extra: other facts worth reporting (JSON-serialisable).
    """

    disparity: np.ndarray
    kind: str
    format: str
    units: str
    depth_range: DepthRange | None
    file_range: tuple[float, float] | None = None
    focus_distance: float | None = None
    focus_point: tuple[float, float] | None = None
    blur_at_infinity: float | None = None
    original: bytes | None = None
    original_mime: str | None = None
    confidence: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def _inverse_range(self) -> tuple[float, float] | None:
        """``(lo, hi)``: inverse depth (per file unit) of disparity 0 and 1, when the file gives its range."""
        if self.file_range is None:
            return None
        unit = "diopters" if self.units in ("diopters", "inverse metres") else self.units
        ends = sorted(float(_inverse(x, unit)) for x in self.file_range)
        return ends[0], ends[1]

    def focus_disparity(self) -> float | None:
        """The disparity of the stored focus distance (exact, whatever the unit), or None without one."""
        ends = self._inverse_range()
        if ends is None or self.focus_distance is None or self.focus_distance <= 0:
            return None
        lo, hi = ends
        unit = "diopters" if self.units in ("diopters", "inverse metres") else self.units
        inv = float(_inverse(self.focus_distance, unit))
        return float(np.clip((inv - lo) / (hi - lo), 0.0, 1.0))

    def blur(self, image_size: tuple[int, int]) -> float | None:
        """The CoC scale K (pixels, ``radius = K |d - d_focus|``) of the camera's own render, from the stored
        blur at infinity: a thin lens blurs in proportion to ``|1/z - 1/z_focus|``, so the radius at
        infinity ``b L`` (``L`` the image's longer side) fixes ``K = b L z_focus (1/z_near - 1/z_far)``, in
        any unit. None without the focus distance, the range and the blur at infinity.

        Args:
            image_size: the photo's ``(height, width)`` in pixels.

        Returns:
            K in pixels, or None.
        """
        ends = self._inverse_range()
        if ends is None or not self.blur_at_infinity or not self.focus_distance or self.units == "diopters":
            return None
        lo, hi = ends
        return float(self.blur_at_infinity * max(image_size) * self.focus_distance * (hi - lo))

    def describe(self) -> str:
        """One line: kind, map size, format, range and units."""
        h, w = self.disparity.shape
        parts = [f"embedded {self.kind} depth ({w}x{h}", self.format]
        if self.depth_range is not None:
            parts.append(f"near {self.depth_range.near:.3f} m, far {self.depth_range.far:.3f} m")
        elif self.file_range is not None:
            parts.append(f"near {self.file_range[0]:.4g}, far {self.file_range[1]:.4g} in unknown units "
                         f"(metric range unknown)" if self.units == "none" else
                         f"near {self.file_range[0]:.4g}, far {self.file_range[1]:.4g} {self.units}")
        else:
            parts.append("metric range unknown")
        return ", ".join(parts) + ")"

    def details(self) -> dict:
        """What the file gave, JSON-serialisable (the map size is ``[width, height]`` as stored)."""
        h, w = self.disparity.shape
        record = {"format": self.kind, "encoding": self.format, "map_size": [w, h], "units": self.units,
                  "file_range": list(self.file_range) if self.file_range else None,
                  "near_m": self.depth_range.near if self.depth_range else None,
                  "far_m": self.depth_range.far if self.depth_range else None,
                  "stored_focus": {"distance": self.focus_distance,
                                   "point": list(self.focus_point) if self.focus_point else None,
                                   "blur_at_infinity": self.blur_at_infinity},
                  "original_image": self.original_mime if self.original is not None else None,
                  "confidence_size": ([int(self.confidence.shape[1]), int(self.confidence.shape[0])]
                                      if self.confidence is not None else None)}
        record.update(self.extra)
        return record
