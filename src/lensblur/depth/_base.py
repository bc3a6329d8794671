"""What every depth source returns, and the one small protocol they all follow.

A source is built from what the user gave (a file, a photo, a model name, a right view, a mask) and turns
the photo's linear RGB ``H x W x 3`` array into a :class:`DepthResult` with ``estimate(image)``. Sources
never guess a range: a map whose metric range is unknown carries ``depth_range=None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from .. import _optional
from ..errors import InputError, ShapeError
from ..io import DepthRange

__all__ = ["DepthResult", "DepthSource", "cv2", "normalize_inverse_depth"]


@dataclass(frozen=True)
class DepthResult:
    """A disparity map for one photo.

    Args:
        disparity: ``H x W`` float32 in [0, 1], 1 = nearest, the photo's size.
        depth_range: the metric depths (metres) that disparity 1 and 0 stand for, or None when the source
            does not know them.
        source: a short human description of what was used.
        focus: the disparity to focus at when the user names none, where the source knows what matters
            (the subject, in portrait mode; the focus a phone stored in the file), else None.
        photo: the sharp photo to render from when the file holds one besides its primary image (a Google
            Lens Blur original, a Dynamic Depth ``Original`` item): ``H x W x 3`` linear RGB, the map's size,
            else None (render the photo that was passed in).
        blur: the CoC scale K (pixels) the file implies (Lens Blur's stored blur at infinity), else None.
        relative_range: ``(near, far)`` as the file wrote them when their unit is unknown (GDepth without
            ``Units``): a scale (metres per unit, ``--depth-scale``) turns them into ``depth_range``.
        details: what the source used, for reports and ``--format json`` (format, map size, units, range,
            focus, original image), JSON-serialisable; empty when the source has nothing more to say.

    Raises:
        ShapeError: ``disparity`` is not an ``H x W`` float32 array.
        InputError: ``disparity`` has NaN/inf or values outside [0, 1].
    """

    disparity: np.ndarray
    depth_range: DepthRange | None
    source: str
    focus: float | None = None
    photo: np.ndarray | None = None
    blur: float | None = None
    relative_range: tuple[float, float] | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        d = self.disparity
        if not isinstance(d, np.ndarray) or d.ndim != 2 or d.dtype != np.float32:
            raise ShapeError("disparity", expected="an H x W float32 array", got=f"{type(d).__name__} "
                             f"{getattr(d, 'shape', '')} {getattr(d, 'dtype', '')}", fix="convert with astype")
        if not np.isfinite(d).all() or float(d.min()) < 0.0 or float(d.max()) > 1.0:
            raise InputError("disparity", expected="finite values in [0, 1]",
                             got=f"range [{np.nanmin(d):g}, {np.nanmax(d):g}]", fix="clip or normalise the map")
        p = self.photo
        if p is not None and (not isinstance(p, np.ndarray) or p.shape != (*d.shape, 3)):
            raise ShapeError("photo", expected=f"an {d.shape[0]} x {d.shape[1]} x 3 photo beside the map",
                             got=f"{getattr(p, 'shape', type(p).__name__)}", fix="report this: a source's photo "
                             "must match its map")


@runtime_checkable
class DepthSource(Protocol):
    """A way of getting depth: built from its inputs, then ``estimate(image) -> DepthResult``.

    Attributes:
        name: the source's name (one of :data:`lensblur.depth.SOURCES` for the built-in ones).

    ``estimate(image)`` takes the photo as linear RGB ``H x W x 3`` float32 and returns a
    :class:`DepthResult` of the same ``H x W``; it raises :class:`~lensblur.errors.InputError` (or a subclass)
    when its inputs give no usable depth.
    """

    name: str

    def estimate(self, image: np.ndarray) -> DepthResult: ...


def cv2(feature: str):
    """OpenCV (with its contrib modules), imported on first use.

    Args:
        feature: what needs it, for the error message.

    Returns:
        The ``cv2`` module.

    Raises:
        MissingDependencyError: OpenCV is not installed (naming ``lensblur[depth]``).
    """
    return _optional.cv2(feature, extra="depth")


def normalize_inverse_depth(values: np.ndarray, *, argument: str) -> np.ndarray:
    """Map a relative inverse depth (larger = nearer, unknown scale and shift) onto [0, 1].

    Disparity in lensblur is any affine function of inverse depth, so the min-max rescale is exact up to
    the unknown metric range: 1 at the nearest pixel, 0 at the farthest.

    Args:
        values: relative inverse depth, any shape; NaN/inf pixels become 0.
        argument: the name error messages give the map.

    Returns:
        float32 disparity in [0, 1], same shape.

    Raises:
        InputError: no finite value, or a constant map.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise InputError(argument, expected="a map with finite values", got="only NaN/inf",
                         fix="check the model or input that produced it")
    lo, hi = float(values[finite].min()), float(values[finite].max())
    if hi - lo <= 0:
        raise InputError(argument, expected="a map with more than one value", got=f"a constant map ({lo:g})",
                         fix="this input carries no depth differences; supply depth another way")
    out = np.where(finite, (values - lo) / (hi - lo), 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
