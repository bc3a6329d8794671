"""Depth stored inside the photo: HEIC/HEIF auxiliary depth, iPhone portrait JPEGs (MPF frames with ``apdi``
XMP), Dynamic Depth and GDepth JPEGs.

The map is read at its own (usually lower) resolution as a :class:`~lensblur.depth.stored.StoredDepth`,
turned upright with the photo's EXIF orientation (the transform the photo itself gets; maps, mattes and an
original image are stored in the sensor's orientation like the primary), and brought to the photo's size
edge-aware with :func:`lensblur.depth.refine.upsample` (its unsure values, by the file's confidence map where
there is one, re-decided from the sure ones). What else the file holds travels with it: the metric
range (or, without units, the range as written), the focus and blur the camera stored, and the sharp
original image a Google Lens Blur or Dynamic Depth file keeps beside its already-blurred primary, which
then becomes the photo to render (``DepthResult.photo``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._convert import decode_srgb
from ..errors import InputError
from ..io.image import orient, read_orientation
from ._base import DepthResult
from .heif import HEIF_SUFFIXES, has_heif_depth, has_heif_matte, is_heif, read_heif_depth, read_heif_matte
from .jpeg import NS_DD, NS_GDEPTH, read_jpeg_depth
from .mpf import NS_APDI, decode_image, mpf_frames, read_apple_depth, read_portrait_matte
from .refine import upsample
from .stored import StoredDepth

__all__ = ["EmbeddedDepth", "PortraitMatte", "has_embedded_depth", "has_portrait_matte", "orient_point",
           "read_stored_depth", "stored_original"]

_NO_DEPTH_FIX = ("get depth another way: source=model, source=stereo or source=subject, or disparity_path=FILE")


def _kind(path: Path) -> str | None:
    if path.suffix.lower() in HEIF_SUFFIXES or is_heif(path):
        return "heif"
    with open(path, "rb") as fh:
        if fh.read(2) == b"\xff\xd8":
            return "jpeg"
    return None


def has_embedded_depth(path: str | os.PathLike) -> bool:
    """Whether the photo at ``path`` carries a depth map lensblur can read (cheap check of the metadata).

    Args:
        path: the photo; a missing or unreadable file has none.

    Returns:
        True for a HEIF with a depth image, a JPEG with Dynamic Depth or GDepth metadata, or an iPhone
        portrait JPEG with a depth frame.
    """
    path = Path(path)
    if not path.is_file():
        return False
    kind = _kind(path)
    if kind == "heif":
        return has_heif_depth(path)
    if kind == "jpeg":
        data = path.read_bytes()
        if NS_GDEPTH.encode() in data or NS_DD.encode() in data:
            return True
        return NS_APDI.encode() in data and any(f.role == "depth" for f in mpf_frames(path)[1:])
    return False


def read_stored_depth(path: str | os.PathLike) -> StoredDepth:
    """The depth map a photo file holds, as stored (its own size and orientation).

    Args:
        path: a HEIC/HEIF or JPEG photo.

    Returns:
        The :class:`~lensblur.depth.stored.StoredDepth`. In a JPEG, Dynamic Depth is preferred to GDepth,
        and both to an Apple depth frame.

    Raises:
        InputError: a missing file, another format, no depth inside, or damaged depth metadata.
        MissingDependencyError: a HEIF file and pillow-heif is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("image_path", expected="an existing photo file", got=str(path), fix="check the path")
    kind = _kind(path)
    if kind == "heif":
        return read_heif_depth(path).stored()
    if kind != "jpeg":
        raise InputError("image_path", expected="a HEIC/HEIF or JPEG photo with embedded depth",
                         got=f"{path} ({path.suffix or 'no suffix'})",
                         fix="embedded depth exists only in phone HEIC/JPEG photos; use source=model, "
                             "source=stereo or source=subject, or disparity_path=FILE")
    data = path.read_bytes()
    if NS_GDEPTH.encode() in data or NS_DD.encode() in data:
        return read_jpeg_depth(path)
    found = read_apple_depth(path) if NS_APDI.encode() in data else None
    if found is None:
        raise InputError("image_path", expected="a JPEG with embedded depth (an iPhone portrait JPEG's depth "
                         "frame, Dynamic Depth or GDepth XMP)", got=f"{path} (no depth metadata)", fix=_NO_DEPTH_FIX)
    return found


def stored_original(path: str | os.PathLike) -> tuple[bytes, str] | None:
    """The sharp original image a phone photo holds, as stored: ``(encoded bytes, mime)``, or None.

    Args:
        path: the photo.

    Returns:
        The bytes exactly as in the file (not turned upright) and their mime type, or None without one.

    Raises:
        InputError: as :func:`read_stored_depth`.
    """
    found = read_stored_depth(path)
    return (found.original, found.original_mime or "image/jpeg") if found.original is not None else None


_POINT_TURNS = {
    2: lambda x, y: (1 - x, y),
    3: lambda x, y: (1 - x, 1 - y),
    4: lambda x, y: (x, 1 - y),
    5: lambda x, y: (y, x),
    6: lambda x, y: (1 - y, x),
    7: lambda x, y: (1 - y, 1 - x),
    8: lambda x, y: (y, 1 - x),
}


def orient_point(point: tuple[float, float], orientation) -> tuple[float, float]:
    """A point ``(x, y)`` in [0, 1] of the stored image, where it lands in the upright one (the transform of
    :func:`lensblur.io.image.orient`).

    Args:
        point: normalised ``(x, y)`` in the stored image.
        orientation: the EXIF orientation, 1-8 or None.

    Returns:
        The normalised ``(x, y)`` upright.
    """
    try:
        turn = _POINT_TURNS.get(int(orientation))
    except (TypeError, ValueError):
        turn = None
    x, y = float(point[0]), float(point[1])
    return (x, y) if turn is None else tuple(float(v) for v in turn(x, y))


def _orientation(path: Path, kind: str) -> int | None:
    """The transform stored maps need: the JPEG's EXIF orientation. For HEIF none: the file's own transforms
    (``irot``/``imir``) are applied when its maps are read (:mod:`~lensblur.depth.heif`), and HEIF ignores EXIF
    orientation."""
    return read_orientation(path) if kind == "jpeg" else None


def _original(found: StoredDepth, orientation) -> np.ndarray | None:
    """The stored original image, upright, as linear RGB (its own orientation tag wins over the photo's)."""
    if found.original is None:
        return None
    pixels, own = decode_image(found.original)
    pixels = orient(pixels, own if own is not None else orientation)
    full = 65535.0 if pixels.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(decode_srgb(pixels, full))


class EmbeddedDepth:
    """Depth embedded in the photo file (HEIC/HEIF, iPhone portrait JPEG, Dynamic Depth or GDepth JPEG).

    Args:
        path: the photo file.
        use_original: render from the sharp original the file holds beside its primary image (GImage, a
            Dynamic Depth ``Original`` item), when there is one.
        upsample_options: keywords for :func:`~lensblur.depth.upsample`, which brings a smaller map to the
            photo's size.

    ``estimate(image)`` takes the ``H x W x 3`` linear photo and returns a :class:`DepthResult` of its size
    (of the original's size, given as ``photo``, when that is used) with the metric range when the units
    give one, the range as written when they do not (``relative_range``), the stored focus as ``focus``,
    the camera's blur as ``blur``, and a report in ``details``. It raises :class:`InputError` (argument
    ``image_path``) when the file is missing, holds no depth lensblur can read, or its map does not have the
    photo's aspect ratio once upright.
    """

    name = "embedded"

    def __init__(self, path: str | os.PathLike, *, use_original: bool = True, upsample_options: dict | None = None):
        self.path = Path(path)
        self.use_original = use_original
        self.upsample_options = dict(upsample_options or {})

    def estimate(self, image: np.ndarray) -> DepthResult:
        found = read_stored_depth(self.path)
        kind = _kind(self.path)
        orientation = _orientation(self.path, kind)
        stored = orient(found.disparity, orientation)
        photo = _original(found, orientation) if self.use_original else None
        guide = photo if photo is not None else image
        h, w = guide.shape[:2]
        dh, dw = stored.shape
        if abs(dw / dh - w / h) > 0.02 * (w / h):
            raise InputError("image_path", expected=f"a depth map with the photo's aspect ratio ({w}x{h})",
                             got=f"a {dw}x{dh} depth map (orientation {orientation or 1} applied)",
                             fix="the photo was cropped after it was taken; pass a matching disparity file instead")
        if photo is not None and abs(photo.shape[1] / photo.shape[0] - image.shape[1] / image.shape[0]) > 0.02:
            photo, guide, (h, w) = None, image, image.shape[:2]
        stored = np.ascontiguousarray(stored)
        options = dict(self.upsample_options)
        if found.confidence is not None and "confidence" not in options:
            options["confidence"] = np.ascontiguousarray(orient(found.confidence, orientation))
        # a map of the photo's size is used as stored; a smaller one is upsampled, its unsure values
        # (the file's confidence) re-decided from the sure ones along the photo's edges
        disparity = stored if (dh, dw) == (h, w) else upsample(guide, stored, **options)
        focus, focus_from = self._focus(found, disparity, orientation)
        blur = found.blur((h, w))
        details = found.details()
        details.update({"orientation": orientation or 1, "focus_disparity": focus, "focus_from": focus_from,
                        "blur_px": blur, "rendered_from": ("the original image stored in the file" if photo is not None
                                                           else "the primary image")})
        source = found.describe()
        if focus is not None:
            source += f"; focus stored in the photo: {focus_from}"
        if photo is not None:
            source += f"; rendering from the sharp original image it holds ({found.original_mime})"
        relative = found.file_range if found.depth_range is None and found.units == "none" else None
        return DepthResult(disparity=disparity, depth_range=found.depth_range, source=source, focus=focus,
                           photo=photo, blur=blur, relative_range=relative, details=details)

    @staticmethod
    def _focus(found: StoredDepth, disparity: np.ndarray, orientation) -> tuple[float | None, str | None]:
        """The stored focus as a disparity, and a description of where it came from."""
        exact = found.focus_disparity()
        if exact is not None:
            unit = "in the file's units" if found.units == "none" else found.units
            return exact, f"distance {found.focus_distance:.4g} ({unit}) = disparity {exact:.3f}"
        if found.focus_point is not None:
            from ..lens import focus_at_point

            x, y = orient_point(found.focus_point, orientation)
            h, w = disparity.shape
            px, py = min(max(x * w, 0.0), w - 1.0), min(max(y * h, 0.0), h - 1.0)
            value = focus_at_point(disparity, (px, py))
            return value, f"point {px:.0f},{py:.0f} = disparity {value:.3f}"
        return None, None


def has_portrait_matte(path: str | os.PathLike) -> bool:
    """Whether the photo is an iPhone portrait with a portrait effects matte (JPEG or HEIC).

    Args:
        path: the photo; a missing or unreadable file has none.

    Returns:
        True when a frame of its Multi-Picture index is the matte (JPEG), or an auxiliary image of the
        primary is (HEIC, ``urn:com:apple:photo:2018:aux:portraiteffectsmatte``).
    """
    path = Path(path)
    if not path.is_file():
        return False
    kind = _kind(path)
    if kind == "heif":
        return has_heif_matte(path)
    return kind == "jpeg" and any(f.role == "matte" for f in mpf_frames(path)[1:])


class PortraitMatte:
    """The portrait effects matte stored in an iPhone portrait JPEG or HEIC, as a subject mask for
    :class:`~lensblur.depth.SubjectDepth`: called with the photo, it returns the matte upright at the
    photo's size (bilinear), 1 = person.

    Args:
        path: the photo.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = f"the portrait matte stored in {self.path.name}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from ..io import resize_map

        heif = _kind(self.path) == "heif"
        matte = read_heif_matte(self.path) if heif else read_portrait_matte(self.path)
        if matte is None:
            raise InputError("mask", expected="a photo with a portrait matte", got=f"{self.path} (none inside)",
                             fix="pass mask=MASK.png")
        # a HEIC's matte comes turned like the photo (read_heif_matte); a JPEG's takes the EXIF orientation
        matte = np.ascontiguousarray(matte if heif else orient(matte, read_orientation(self.path)))
        h, w = image.shape[:2]
        return matte if matte.shape == (h, w) else np.clip(resize_map(matte, (h, w)), 0.0, 1.0)
