"""Disparity and depth maps: files -> ``H x W`` float32 disparity in [0, 1], 1 = nearest.

Ranges are never guessed: 16-bit integers are divided by 65535, 8-bit by 255, floats are taken as they
are; ``normalize=True`` asks for a min-max rescale instead. Depth (larger = farther) is converted only when
the caller says it is depth, with :func:`depth_to_disparity`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._convert import check_disparity, decode_srgb, encode_srgb, quantize
from .._optional import cv2 as require_cv2
from ..errors import InputError, ShapeError
from ..geometry import DepthRange
from .files import atomic_path
from .image import read_raw
from .pfm import write_pfm

__all__ = [
    "DISPARITY_SUFFIXES",
    "DepthRange",
    "check_disparity_output",
    "check_map",
    "depth_to_disparity",
    "preview_image",
    "read_depth",
    "read_depth_as_disparity",
    "read_disparity",
    "resize_map",
    "write_disparity",
]

_MAP_HINT = "pass a single-channel 8/16-bit PNG, JPEG, float TIFF, NPY or PFM map"


def _single_channel(arr: np.ndarray, argument: str, path) -> np.ndarray:
    if Path(path).suffix.lower() == ".npy" and arr.ndim == 3 and arr.shape[2] != 1:
        # an array file has no alpha or grey-RGB convention: which channel is the map is the writer's choice
        raise ShapeError(argument, expected="an H x W array (a single-channel map)", got=f"shape {arr.shape} in {path}",
                         fix="save the one channel that holds the map, e.g. numpy.save(path, arr[..., 0])")
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., :-1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 3:
        spread = float(np.abs(arr.astype(np.float32) - arr[..., :1].astype(np.float32)).max())
        full = 255.0 if arr.dtype == np.uint8 else 65535.0 if arr.dtype == np.uint16 else 1.0
        if spread > 0.05 * full:
            raise InputError(argument, expected="a grey-scale map", got=f"a colour image ({path})",
                             fix=_MAP_HINT + " (a colour-mapped preview cannot be read back)")
        arr = arr.astype(np.float32).mean(axis=2)
    if arr.ndim != 2:
        raise ShapeError(argument, expected="a single-channel map", got=f"shape {arr.shape}", fix=_MAP_HINT)
    return arr


def _read_values(path, argument: str) -> np.ndarray:
    arr, full_scale = read_raw(path, argument=argument)
    arr = _single_channel(arr, argument, path).astype(np.float32)
    if full_scale is not None:
        arr = arr / np.float32(full_scale)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(argument, expected="finite values", got=f"{bad} NaN/inf values in {path}",
                         fix="fill the holes of the map first")
    return arr


check_map = check_disparity


def _normalize(arr: np.ndarray, argument: str) -> np.ndarray:
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo <= 0:
        raise InputError(argument, expected="a map with more than one value to normalise",
                         got=f"a constant map ({lo:g})", fix="pass normalize=False, or pass a real map")
    return ((arr - lo) / (hi - lo)).astype(np.float32)


def resize_map(disparity: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a map with bilinear interpolation (area averaging when shrinking both sides).

    Args:
        disparity: ``H x W`` map.
        size: ``(height, width)`` wanted.

    Returns:
        ``height x width`` float32.
    """
    t = torch.from_numpy(np.ascontiguousarray(disparity, dtype=np.float32))[None, None]
    shrinking = size[0] < t.shape[2] and size[1] < t.shape[3]
    mode = "area" if shrinking else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return torch.nn.functional.interpolate(t, size=size, mode=mode, **kwargs)[0, 0].numpy()


def _fit(arr: np.ndarray, shape, resize: bool, argument: str, path) -> np.ndarray:
    if shape is None or tuple(arr.shape) == tuple(shape):
        return arr
    if not resize:
        raise ShapeError(argument, expected=f"the image's size {shape[1]}x{shape[0]} (width x height)",
                         got=f"{arr.shape[1]}x{arr.shape[0]} in {path}",
                         fix="pass resize=True to resample the map to the image")
    return resize_map(arr, (int(shape[0]), int(shape[1])))


def read_disparity(
    path: str | os.PathLike, *, normalize: bool = False, shape: tuple[int, int] | None = None,
    resize: bool = False,
) -> np.ndarray:
    """Read a disparity map (larger = nearer) as ``H x W`` float32 in [0, 1].

    16-bit files are divided by 65535, 8-bit by 255, floats are taken as they are.

    Args:
        path: a single-channel map (PNG, JPEG, TIFF, PFM, NPY, EXR); grey RGB is accepted.
        normalize: min-max rescale the values to [0, 1] instead of requiring them there.
        shape: ``(H, W)`` of the image the map belongs to, or None for any size.
        resize: resample a map of another size to ``shape`` instead of raising.

    Returns:
        ``H x W`` float32 disparity in [0, 1], 1 = nearest.

    Raises:
        InputError: the file cannot be read, is colour, holds NaN/inf, values outside [0, 1] (without
            ``normalize``) or one value only (with ``normalize``).
        ShapeError: not a single-channel map, or not of ``shape`` and ``resize`` is False.
    """
    arr = _read_values(path, "disparity")
    arr = _normalize(arr, "disparity") if normalize else check_map(arr, argument="disparity")
    return _fit(arr, shape, resize, "disparity", path)


def read_depth(path: str | os.PathLike, *, scale: float = 1.0) -> np.ndarray:
    """Read a depth map (larger = farther) as stored, times ``scale`` (e.g. metres per stored unit).

    Integer files are first divided by their full scale (255 or 65535) like every other map; pass
    ``scale`` to turn the result into metres.

    Args:
        path: a single-channel map (see :func:`read_disparity`).
        scale: factor applied to the stored values.

    Returns:
        ``H x W`` float32 depth, all > 0.

    Raises:
        InputError: the file cannot be read, holds NaN/inf, or depths <= 0.
        ShapeError: not a single-channel map.
    """
    arr = _read_values(path, "depth") * np.float32(scale)
    if float(arr.min()) <= 0.0:
        raise InputError("depth", expected="depths > 0 (larger = farther)",
                         got=f"minimum {float(arr.min()):g} in {path}",
                         fix="fill zero/invalid pixels first, or read the map with read_disparity if larger = nearer")
    return arr


def depth_to_disparity(depth: np.ndarray, *, near: float | None = None,
                       far: float | None = None) -> tuple[np.ndarray, DepthRange]:
    """Convert depth to disparity in [0, 1]: ``(1/z - 1/far) / (1/near - 1/far)``.

    Args:
        depth: ``H x W`` depth, > 0 (larger = farther).
        near: the depth of disparity 1; the map's minimum when None. Nearer depths are clipped.
        far: the depth of disparity 0; the map's maximum when None. Farther depths are clipped.

    Returns:
        ``H x W`` float32 disparity in [0, 1], and the :class:`DepthRange` it stands for (for the physical
        camera mapping).

    Raises:
        InputError: not ``0 < near < far`` (e.g. a constant map and no range given).
    """
    depth = np.asarray(depth, dtype=np.float32)
    near = float(depth.min()) if near is None else float(near)
    far = float(depth.max()) if far is None else float(far)
    if not (0 < near < far):
        raise InputError("near" if near <= 0 else "far", expected="0 < near < far", got=f"near={near:g}, far={far:g}",
                         fix="pass a depth map that is not constant, or give the range explicitly, e.g. near=0.5 "
                             "and far=20")
    inv = 1.0 / np.clip(depth, near, far)
    disparity = (inv - 1.0 / far) / (1.0 / near - 1.0 / far)
    return np.clip(disparity, 0.0, 1.0).astype(np.float32), DepthRange(near=near, far=far)


def read_depth_as_disparity(path, *, scale: float = 1.0, near: float | None = None, far: float | None = None,
                            shape=None, resize: bool = False) -> tuple[np.ndarray, DepthRange]:
    """:func:`read_depth` then :func:`depth_to_disparity`, with the same size rules as :func:`read_disparity`.

    Args:
        path: a depth map file.
        scale: factor applied to the stored values.
        near: depth of disparity 1 (the map's minimum when None).
        far: depth of disparity 0 (the map's maximum when None).
        shape: ``(H, W)`` of the image, or None for any size.
        resize: resample a map of another size to ``shape`` instead of raising.

    Returns:
        ``H x W`` float32 disparity in [0, 1] and its :class:`DepthRange`.

    Raises:
        InputError: as :func:`read_depth` and :func:`depth_to_disparity`.
        ShapeError: not a single-channel map, or not of ``shape`` and ``resize`` is False.
    """
    disparity, rng = depth_to_disparity(read_depth(path, scale=scale), near=near, far=far)
    return _fit(disparity, shape, resize, "depth", path), rng



DISPARITY_SUFFIXES = (".png", ".pfm", ".npy")


def check_disparity_output(path: str | os.PathLike, *, argument: str = "output") -> Path:
    """Check, before any work, that ``path`` names a format :func:`write_disparity` writes.

    Args:
        path: the file to be written.
        argument: the name error messages give it.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: the suffix is not one of :data:`DISPARITY_SUFFIXES`.
    """
    path = Path(path)
    if path.suffix.lower() not in DISPARITY_SUFFIXES:
        raise InputError(argument, expected=f"a file name ending in {', '.join(DISPARITY_SUFFIXES)}",
                         got=str(path), fix="write disparity.png (16-bit) or disparity.pfm (float)")
    return path


def write_disparity(path: str | os.PathLike, disparity: np.ndarray) -> Path:
    """Write disparity whole or not at all: a 16-bit grey PNG, or float32 PFM or NPY.

    Args:
        path: the file, ending in ``.png``, ``.pfm`` or ``.npy``.
        disparity: ``H x W`` values in [0, 1] (1 = nearest); values outside are clipped.

    Returns:
        ``path``.

    Raises:
        InputError: another suffix (checked before anything is written).
    """
    path = check_disparity_output(path, argument="path")
    suffix = path.suffix.lower()
    arr = np.clip(np.asarray(disparity, dtype=np.float32), 0.0, 1.0)
    with atomic_path(path) as tmp:
        if suffix == ".png":
            from PIL import Image

            Image.fromarray(quantize(arr, 16)).save(tmp, format="PNG")
        elif suffix == ".pfm":
            write_pfm(tmp, arr)
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
    return path


def preview_image(image: np.ndarray, disparity: np.ndarray, *, max_width: int = 2048) -> np.ndarray:
    """The photo beside its colour-mapped disparity (OpenCV's turbo map, near = red), for a quick look.

    Args:
        image: ``H x W x 3`` linear RGB.
        disparity: ``H x W`` in [0, 1].
        max_width: the pair is shrunk (area averaging) to at most this many pixels across.

    Returns:
        ``h x w x 3`` float32 linear RGB, ready for :func:`~lensblur.io.write_image`.
    """
    cv2 = require_cv2("depth previews", extra="io")
    photo = encode_srgb(image)
    colours = cv2.applyColorMap(quantize(disparity, 8), cv2.COLORMAP_TURBO)[..., ::-1]
    pair = np.concatenate([photo, colours.astype(np.float32) / 255.0], axis=1)
    if pair.shape[1] > max_width:
        scale = max_width / pair.shape[1]
        size = (max_width, max(1, round(pair.shape[0] * scale)))
        pair = cv2.resize(pair, size, interpolation=cv2.INTER_AREA)
    return decode_srgb(pair, 1.0)
