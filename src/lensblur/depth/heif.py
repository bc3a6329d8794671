"""HEIC/HEIF photos: their auxiliary depth image (the photo itself opens through :mod:`lensblur.io.image`).

iPhones (and other HEIF writers) store depth as an auxiliary grey image with a *depth representation
info* record (ISO/IEC 23008-12, the H.265 depth representation SEI): a representation type, and
``z_near``/``z_far`` (depths) or ``d_min``/``d_max`` (disparities). pillow-heif exposes it as
``info["depth_images"][i].info["metadata"]``. Each stored sample ``s`` of ``bits`` bits is first
normalised to ``v = s / (2**bits - 1)``, then:

====  ======================  =======================================================  ======================
type  name                    meaning of ``v``                                         lensblur disparity
====  ======================  =======================================================  ======================
0     uniform inverse Z       ``1/Z = 1/z_far + v (1/z_near - 1/z_far)``               ``v``
1     uniform disparity       ``D = d_min + v (d_max - d_min)``, ``D`` ~ ``1/Z``       ``v``
2     uniform Z               ``Z = z_near + v (z_far - z_near)``                      ``(1/Z - 1/z_far) /
                                                                                       (1/z_near - 1/z_far)``
3     non-uniform disparity   a piecewise-linear model pillow-heif does not expose     (refused)
====  ======================  =======================================================  ======================

Types 0 and 1 are already affine in inverse depth, which is what lensblur's disparity is, so the
normalised sample is the disparity exactly. The metric range comes from ``z_near``/``z_far`` when present;
for uniform disparity without them, ``d_min``/``d_max`` are taken in inverse metres (Apple's unit for
disparity, the writer of these files in practice): near = ``1/d_max``, far = ``1/d_min``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from .._optional import require
from ..errors import InputError
from ..io import DepthRange, read_image_info
from ..io.image import HEIF_SUFFIXES, is_heif, register_heif
from .stored import StoredDepth

__all__ = [
    "HEIF_SUFFIXES",
    "HeifDepth",
    "is_heif",
    "read_heif_depth",
    "read_photo",
    "read_photo_info",
    "register_heif",
    "representation_to_disparity",
]

logger = logging.getLogger(__name__)

REPRESENTATIONS = {0: "uniform inverse Z", 1: "uniform disparity", 2: "uniform Z", 3: "non-uniform disparity"}


def _pillow_heif(feature: str):
    return require("pillow_heif", extra="depth", feature=feature, package="pillow-heif")


def read_photo_info(path: str | os.PathLike, *, argument: str = "photo"):
    """:func:`lensblur.io.read_image_info` (which opens HEIC/HEIF too, through
    :func:`lensblur.io.image.open_pillow`): the photo and what its file holds (profile, bits, alpha, metadata).

    Args:
        path: the photo.
        argument: the name error messages give the file.

    Returns:
        ``(image, info)``: ``H x W x 3`` float32 linear RGB and its :class:`~lensblur.io.ImageInfo`.

    Raises:
        InputError: the file cannot be read, or has more pixels than :func:`lensblur.io.image.max_pixels`.
        MissingDependencyError: a HEIF file and pillow-heif is not installed.
    """
    return read_image_info(path, argument=argument)


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """:func:`lensblur.read_image` that also opens HEIC/HEIF/AVIF photos (:func:`read_photo_info`'s image).

    Args:
        path: the photo.

    Returns:
        ``H x W x 3`` float32 linear RGB.

    Raises:
        InputError: the file cannot be read (as :func:`lensblur.read_image`).
        MissingDependencyError: a HEIF file and pillow-heif is not installed.
    """
    return read_photo_info(path, argument="image")[0]


@dataclass(frozen=True)
class HeifDepth:
    """The depth image of a HEIF photo converted to lensblur disparity (at its own, usually lower, size).

    Args:
        disparity: ``h x w`` float32 in [0, 1].
        depth_range: the metric range, or None when the file does not record one.
        representation: the HEIF depth representation type (0 uniform inverse Z, 1 uniform disparity,
            2 uniform Z).
        metadata: pillow-heif's depth metadata.
    """

    disparity: np.ndarray
    depth_range: DepthRange | None
    representation: int
    metadata: dict

    def describe(self) -> str:
        h, w = self.disparity.shape
        parts = [f"embedded HEIC depth ({w}x{h}", REPRESENTATIONS.get(self.representation, "?")]
        if self.depth_range is not None:
            parts.append(f"near {self.depth_range.near:.3f} m, far {self.depth_range.far:.3f} m")
        for key in ("d_min", "d_max", "z_near", "z_far"):
            if key in self.metadata:
                parts.append(f"{key} {float(self.metadata[key]):.4g}")
        return ", ".join(parts) + ")"

    def stored(self) -> StoredDepth:
        """The same map as a :class:`~lensblur.depth.stored.StoredDepth` (kind ``"HEIC"``)."""
        meta = self.metadata
        if "z_near" in meta and "z_far" in meta:
            units, file_range = "metres", (float(meta["z_near"]), float(meta["z_far"]))
        elif "d_min" in meta and "d_max" in meta:
            units, file_range = "inverse metres", (float(meta["d_max"]), float(meta["d_min"]))
        else:
            units, file_range = "none", None
        return StoredDepth(disparity=self.disparity, kind="HEIC", format=REPRESENTATIONS.get(self.representation, "?"),
                           units=units, depth_range=self.depth_range, file_range=file_range)


def representation_to_disparity(values: np.ndarray, metadata: dict) -> tuple[np.ndarray, DepthRange | None]:
    """Convert normalised samples ``values`` (in [0, 1]) of a HEIF depth image to lensblur disparity.

    ``metadata`` is pillow-heif's depth ``info["metadata"]`` (``representation_type`` and any of
    ``z_near``, ``z_far``, ``d_min``, ``d_max``); see the module docstring for the formulas.

    Args:
        values: ``h x w`` normalised samples in [0, 1].
        metadata: the depth metadata.

    Returns:
        ``(disparity, depth_range)``: ``h x w`` float32 in [0, 1] and the :class:`DepthRange`, or None.

    Raises:
        InputError: a representation lensblur cannot convert, or a damaged range.
    """
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    kind = metadata.get("representation_type")
    z_near, z_far = metadata.get("z_near"), metadata.get("z_far")
    d_min, d_max = metadata.get("d_min"), metadata.get("d_max")
    z_range = None
    if z_near is not None and z_far is not None:
        if not (0 < float(z_near) < float(z_far)):
            raise InputError("image_path", expected="depth metadata with 0 < z_near < z_far",
                             got=f"z_near={z_near}, z_far={z_far}", fix="the file's depth record is damaged")
        z_range = DepthRange(near=float(z_near), far=float(z_far))
    if kind == 0:
        return v.astype(np.float32), z_range
    if kind == 1:
        if z_range is None and d_min is not None and d_max is not None:
            if not (0 < float(d_min) < float(d_max)):
                raise InputError("image_path", expected="disparity metadata with 0 < d_min < d_max",
                                 got=f"d_min={d_min}, d_max={d_max}", fix="the file's depth record is damaged")
            z_range = DepthRange(near=1.0 / float(d_max), far=1.0 / float(d_min))
        return v.astype(np.float32), z_range
    if kind == 2:
        if z_range is None:
            raise InputError("image_path", expected="a uniform-Z depth image with z_near and z_far",
                             got="no z_near/z_far in its metadata",
                             fix="without the range, Z cannot be turned into disparity; pass a disparity file")
        z = z_range.near + v * (z_range.far - z_range.near)
        d = (1.0 / z - 1.0 / z_range.far) / (1.0 / z_range.near - 1.0 / z_range.far)
        return np.clip(d, 0.0, 1.0).astype(np.float32), z_range
    raise InputError("image_path", expected="a depth representation lensblur can convert (types 0, 1, 2)",
                     got=f"type {kind} ({REPRESENTATIONS.get(kind, 'unknown')})",
                     fix="export the depth as a 16-bit disparity PNG and pass it as disparity_path=FILE")


def read_heif_depth(path: str | os.PathLike) -> HeifDepth:
    """Read the first depth image of a HEIF photo as lensblur disparity (its own size) with its range.

    Args:
        path: the HEIC/HEIF photo.

    Returns:
        The :class:`HeifDepth`.

    Raises:
        InputError: unreadable, no depth image inside, or a depth image lensblur cannot convert.
        MissingDependencyError: pillow-heif is not installed.
    """
    heif = _pillow_heif("reading depth from HEIC/HEIF photos")
    try:
        container = heif.open_heif(str(path), convert_hdr_to_8bit=False)
        depth_images = container.info.get("depth_images") or []
    except Exception as exc:
        raise InputError("image_path", expected="a readable HEIC/HEIF file", got=f"{path} ({exc})",
                         fix="check that the file opens in a photo viewer") from exc
    if not depth_images:
        raise InputError("image_path", expected="a HEIC/HEIF photo with an embedded depth image",
                         got=f"{path} (no depth image inside)",
                         fix="take the photo in Portrait mode, or get depth another way "
                             "(source=model, source=stereo or source=subject, or disparity_path=FILE)")
    depth = depth_images[0]
    metadata = dict(depth.info.get("metadata") or {})
    try:
        samples = np.asarray(depth.to_pillow() if hasattr(depth, "to_pillow") else depth)
    except Exception as exc:
        raise InputError("image_path", expected="a decodable depth image", got=f"{path} ({exc})",
                         fix="the depth image inside the file is damaged") from exc
    if samples.ndim == 3:
        samples = samples[..., 0]
    full = 65535.0 if samples.dtype == np.uint16 else 255.0 if samples.dtype == np.uint8 else None
    if full is None:
        raise InputError("image_path", expected="an 8- or 16-bit depth image", got=f"dtype {samples.dtype}",
                         fix="export the depth as a disparity PNG and pass it as disparity_path=FILE")
    disparity, depth_range = representation_to_disparity(samples.astype(np.float64) / full, metadata)
    result = HeifDepth(disparity=disparity, depth_range=depth_range,
                       representation=int(metadata.get("representation_type", -1)), metadata=metadata)
    logger.info("read %s", result.describe())
    return result
