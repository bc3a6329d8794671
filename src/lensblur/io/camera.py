"""The camera a photo was taken with, from its EXIF: focal length, 35 mm-equivalent focal length, f-number.

The 35 mm equivalent says how much smaller than a full-frame sensor (36 x 24 mm, diagonal 43.27 mm) the
camera's sensor is: its diagonal is ``43.27 * focal_length / focal_length_35mm``. The sensor's side along the
image's width then follows from the picture's own aspect ratio: ``diagonal * W / sqrt(W^2 + H^2)``, so a
portrait photo gets its short side. This is the crop factor by diagonal, as the EXIF standard defines the
equivalent.

A simulated full-frame lens (:func:`parse_lens`, ``--simulate "85mm f/1.4 full-frame"``) gives the photo's
framing: the plane in focus fills the same share of the frame, so a lens longer than the photo's 35 mm
equivalent stands farther back. With the thin lens's magnification ``m = f / (s - f)`` and a sensor ``f_35 / f``
times smaller than full frame, the same framing (``m / sensor`` unchanged) puts a full-frame lens of focal
length ``F`` at the focus distance ``s' = F + (F / f_35) * (s - f)`` (:func:`same_framing_distance`). Every
depth moves back by ``s' - s`` (:func:`reframe`: the disparity map and its metric range for the new camera),
and the blur follows :meth:`lensblur.Lens.from_camera` for the full-frame camera there. The picture's geometry
stays the photo's (no renderer can move the camera); the blur each depth gets is the one the moved camera
gives it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..geometry import DepthRange

__all__ = ["FULL_FRAME_DIAGONAL", "Camera", "full_frame", "parse_lens", "read_camera", "reframe",
           "same_framing_distance"]

FULL_FRAME_DIAGONAL = math.hypot(36.0, 24.0)
"""The diagonal of a 36 x 24 mm sensor, mm."""

_EXIF_IFD = 0x8769
_FOCAL_LENGTH, _FOCAL_35MM, _F_NUMBER = 0x920A, 0xA405, 0x829D


@dataclass(frozen=True)
class Camera:
    """What a photo's EXIF says about its camera (None where it says nothing).

    Attributes:
        focal_length: the lens's focal length, mm.
        focal_length_35mm: the focal length that gives the same field of view on a full-frame sensor, mm.
        f_number: the aperture the photo was taken at.
    """

    focal_length: float | None = None
    focal_length_35mm: float | None = None
    f_number: float | None = None

    def sensor_width(self, image_width: int, image_height: int) -> float | None:
        """The sensor's side along the image's width, mm, from the 35 mm equivalent (None without it).

        Args:
            image_width: the photo's width in pixels (after its orientation is applied).
            image_height: its height in pixels.
        """
        if not self.focal_length or not self.focal_length_35mm:
            return None
        diagonal = FULL_FRAME_DIAGONAL * self.focal_length / self.focal_length_35mm
        return diagonal * image_width / math.hypot(image_width, image_height)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def read_camera(path: str | os.PathLike) -> Camera:
    """The camera in ``path``'s EXIF (any format Pillow opens, HEIC with pillow-heif registered).

    Args:
        path: the photo.

    Returns:
        A :class:`Camera`; all None when the file has no EXIF or cannot be opened by Pillow.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            exif = image.getexif().get_ifd(_EXIF_IFD)
    except (OSError, ValueError, SyntaxError):
        return Camera()
    return Camera(focal_length=_number(exif.get(_FOCAL_LENGTH)), focal_length_35mm=_number(exif.get(_FOCAL_35MM)),
                  f_number=_number(exif.get(_F_NUMBER)))


def full_frame(equivalent_focal: float, f_number: float | None = None) -> Camera:
    """A full-frame camera with a lens of ``equivalent_focal`` mm (its own 35 mm equivalent).

    Args:
        equivalent_focal: the focal length in mm, > 0.
        f_number: the aperture, > 0 (or None).

    Returns:
        The :class:`Camera`; its :meth:`Camera.sensor_width` is the full-frame diagonal's side along the width.

    Raises:
        InputError: a value is not a positive number.
    """
    for name, value, example in (("equivalent_focal", equivalent_focal, 85), ("f_number", f_number, 1.4)):
        if value is None and name == "f_number":
            continue
        if _number(value) is None or isinstance(value, bool):
            raise InputError(name, expected="a positive number", got=value, fix=f"e.g. {name}={example}")
    return Camera(focal_length=float(equivalent_focal), focal_length_35mm=float(equivalent_focal),
                  f_number=None if f_number is None else float(f_number))


_LENS_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*mm\s*,?\s*f\s*/?\s*(\d+(?:\.\d+)?)"
                        r"(?:\s*,?\s*(full[- ]?frame|ff|35\s*mm))?\s*$", re.IGNORECASE)


def parse_lens(text: str) -> Camera:
    """A full-frame lens described as photographers write it: ``"85mm f/1.4 full-frame"``, ``"50 mm f2"``.

    Args:
        text: a focal length in mm and an f-number, optionally followed by ``full-frame`` (the only format).

    Returns:
        The :func:`full_frame` camera.

    Raises:
        InputError: the text does not read as a lens.
    """
    match = _LENS_TEXT.match(str(text))
    if match is None:
        raise InputError("simulate", expected='a full-frame lens such as "85mm f/1.4 full-frame"', got=text,
                         fix='write the focal length in mm and the f-number, e.g. simulate="50mm f/1.8"')
    return full_frame(float(match.group(1)), float(match.group(2)))


def same_framing_distance(focus_distance: float, *, focal_length: float, focal_length_35mm: float,
                          equivalent_focal: float) -> float:
    """Where a full-frame lens of ``equivalent_focal`` mm focuses to frame the focal plane as the photo does.

    Args:
        focus_distance: the photo's focus distance, metres.
        focal_length: the photo's lens, mm.
        focal_length_35mm: its 35 mm equivalent, mm.
        equivalent_focal: the full-frame lens, mm.

    Returns:
        The full-frame camera's focus distance, metres: ``F + (F / f_35) * (s - f)``.
    """
    f, big = focal_length / 1000.0, equivalent_focal / 1000.0
    return big + (equivalent_focal / focal_length_35mm) * (focus_distance - f)


def reframe(disparity: np.ndarray, depth_range: DepthRange, shift: float) -> tuple[np.ndarray, DepthRange]:
    """The disparity map and metric range seen from a camera ``shift`` metres farther back (every depth + shift).

    Args:
        disparity: ``H x W`` (or any shape) disparity in [0, 1] of ``depth_range``.
        depth_range: the metric range it stands for.
        shift: metres; negative moves the camera closer.

    Returns:
        ``(disparity, depth_range)`` for the moved camera (float32 in [0, 1]; the order of depths is kept).

    Raises:
        InputError: a negative shift would put the camera in front of the nearest depth.
    """
    if depth_range.near + shift <= 0:
        raise InputError("equivalent_focal", expected="a lens that frames the photo from in front of its nearest "
                         f"depth ({depth_range.near:.3g} m)", got=f"a camera {-shift:.3g} m closer",
                         fix="simulate a longer lens")
    moved = DepthRange(depth_range.near + shift, depth_range.far + shift)
    d = np.asarray(disparity, dtype=np.float64)
    depth = 1.0 / (1.0 / depth_range.far + d * (1.0 / depth_range.near - 1.0 / depth_range.far))   # > 0: far is finite
    new = moved.disparity(depth + shift)
    return np.clip(new, 0.0, 1.0).astype(np.float32), moved
