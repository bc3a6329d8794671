"""The camera a photo was taken with, from its EXIF: focal length, 35 mm-equivalent focal length, f-number.

The 35 mm equivalent says how much smaller than a full-frame sensor (36 x 24 mm, diagonal 43.27 mm) the
camera's sensor is: its diagonal is ``43.27 * focal_length / focal_length_35mm``. The sensor's side along the
image's width then follows from the picture's own aspect ratio: ``diagonal * W / sqrt(W^2 + H^2)``, so a
portrait photo gets its short side. This is the crop factor by diagonal, as the EXIF standard defines the
equivalent.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["FULL_FRAME_DIAGONAL", "Camera", "read_camera"]

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
