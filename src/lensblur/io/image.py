"""Reading and writing images: sRGB files <-> linear float32 ``H x W x 3`` arrays.

Readers apply the EXIF (TIFF) orientation tag and decode 8- and 16-bit sRGB with the exact IEC 61966-2-1 curve; linear
float formats (PFM, EXR, float TIFF) pass through unchanged. Writers encode back to sRGB (8 or 16 bit) or
write linear floats, always atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._convert import decode_srgb, encode_srgb, quantize
from .._optional import cv2, require
from ..errors import InputError
from .files import atomic_path
from .pfm import read_pfm, write_pfm

__all__ = ["IMAGE_SUFFIXES", "LINEAR_SUFFIXES", "MAX_PIXELS_ENV", "max_pixels", "open_pillow", "orient", "read_display", "read_image", "read_orientation", "read_raw",
           "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".pfm", ".exr")
LINEAR_SUFFIXES = (".pfm", ".exr")
_READ_HINT = "pass a PNG, JPEG, TIFF, WebP, PFM or EXR file that opens in an image viewer"
MAX_PIXELS_ENV = "LENSBLUR_MAX_PIXELS"
"""Environment variable: the largest photo (in pixels) lensblur opens, instead of the one set from memory."""
_BYTES_PER_PIXEL = 16        # the decoded 8-bit RGB (3) and its linear float32 copy (12), with a little slack
_PILLOW_DEFAULT = 1024 * 1024 * 1024 // 4 // 3      # Pillow's own MAX_IMAGE_PIXELS (about 89.5 MP)


def _memory_bytes() -> int | None:
    """This process's memory: the machine's physical memory, capped by a cgroup limit; None when unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            total = int(text) if total is None else min(total, int(text))
    return total


def max_pixels() -> int:
    """The largest image, in pixels, lensblur opens: ``$LENSBLUR_MAX_PIXELS`` if set, else as many as this
    machine's memory holds decoded and in linear float (16 bytes a pixel), never below Pillow's own limit.
    With 4 GB free that is 268 MP, above the 200 MP of today's largest phone sensors; Pillow's default
    (89.5 MP, refusing above 179 MP) is a guard against decompression bombs that real photos now exceed.

    Returns:
        The limit in pixels.

    Raises:
        InputError: ``$LENSBLUR_MAX_PIXELS`` is not a positive whole number.
    """
    text = os.environ.get(MAX_PIXELS_ENV)
    if text:
        try:
            value = int(float(text))
            if value <= 0:
                raise ValueError
        except ValueError:
            raise InputError(MAX_PIXELS_ENV, expected="a positive number of pixels", got=text,
                             fix=f"e.g. {MAX_PIXELS_ENV}=250000000, or unset it") from None
        return value
    memory = _memory_bytes()
    return _PILLOW_DEFAULT if not memory else max(_PILLOW_DEFAULT, memory // _BYTES_PER_PIXEL)


def open_pillow(path: str | os.PathLike, *, argument: str = "image"):
    """``PIL.Image.open`` with lensblur's size limit (:func:`max_pixels`) instead of Pillow's.

    Args:
        path: the image file.
        argument: the name error messages give the file.

    Returns:
        The open (lazy) ``PIL.Image.Image``; close it, or use it as a context manager.

    Raises:
        InputError: the image has more pixels than the limit (the message gives the count, the limit and
            how to raise it).
        Exception: what ``PIL.Image.open`` raises for a file it cannot read.
    """
    from PIL import Image

    limit = max_pixels()
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None      # lensblur checks the size itself, below, with its own limit
    try:
        im = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    w, h = im.size
    if w * h > limit:
        im.close()
        raise InputError(argument, expected=f"an image of at most {limit:,} pixels (the limit set from this "
                         "machine's memory)", got=f"{path}: {w}x{h} = {w * h:,} pixels",
                         fix=f"set {MAX_PIXELS_ENV}={w * h} to open it anyway (it needs about "
                             f"{w * h * _BYTES_PER_PIXEL / 1e9:.1f} GB), or downscale the photo")
    return im


def _cv2(feature: str):
    return cv2(feature, extra="io")


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as fh:
        head = fh.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return None
    return head[24]


def read_raw(path: str | os.PathLike, *, argument: str = "image") -> tuple[np.ndarray, float | None]:
    """Read a file as stored: ``(array, full_scale)``.

    The orientation tag (EXIF ``0x0112``, the same number as TIFF's Orientation) is applied on every path
    that can carry one: files Pillow decodes, TIFF read by tifffile (the tag of the first page) and 16-bit
    PNG read by OpenCV (the PNG's ``eXIf`` chunk, read with Pillow). PFM, EXR and NPY have no orientation
    and are returned as stored.

    Args:
        path: an image file (PNG, JPEG, TIFF, WebP, PFM, EXR, NPY, or anything Pillow opens).
        argument: the name error messages give the file.

    Returns:
        ``array``, ``H x W`` or ``H x W x C`` (uint8, uint16, or float32), and ``full_scale``: 255 or 65535
        for integer data, ``None`` for floating-point data (PFM, EXR, float TIFF, NPY of floats) and other
        integer types (returned as float32).

    Raises:
        InputError: the file does not exist or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(argument, expected="an existing file", got=str(path), fix="check the path")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".pfm":
            arr = read_pfm(path)
        elif suffix == ".exr":
            arr = _read_exr(path)
        elif suffix in (".tif", ".tiff") and _has_tifffile():
            import tifffile

            with tifffile.TiffFile(path) as tif:
                arr = tif.asarray()
                tag = tif.pages[0].tags.get(_ORIENTATION)
            arr = _orient(arr, tag.value if tag is not None else None)
        elif suffix == ".png" and _png_bit_depth(path) == 16:
            cv2 = _cv2("reading 16-bit PNG files")
            arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise ValueError("OpenCV could not decode the 16-bit PNG")
            if arr.ndim == 3:
                arr = arr[..., ::-1][..., 1:] if arr.shape[2] == 4 else arr[..., ::-1]
            arr = _orient(arr, _pillow_orientation(path))
        else:
            arr = _read_pillow(path, argument)
    except InputError:
        raise
    except Exception as exc:  # every decoder failure becomes one clear message
        raise InputError(argument, expected="a readable image file", got=f"{path} ({exc})", fix=_READ_HINT) from exc
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.uint8:
        return arr, 255.0
    if arr.dtype == np.uint16:
        return arr, 65535.0
    if arr.dtype.kind in "iu":
        return arr.astype(np.float32), None
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255, 255.0
    return arr.astype(np.float32), None


def _read_exr(path: Path) -> np.ndarray:
    """An EXR file's colour (``RGB``/``RGBA`` or ``R``, ``G``, ``B``) or its single channel (``Z``, ``Y``...)."""
    exr = require("OpenEXR", extra="io", feature="reading EXR files")
    with exr.File(str(path)) as fh:
        channels = {name: np.asarray(ch.pixels) for name, ch in fh.channels().items()}
    for name in ("RGB", "RGBA"):
        if name in channels:
            return channels[name][..., :3].astype(np.float32)
    if all(c in channels for c in "RGB"):
        return np.stack([channels[c] for c in "RGB"], axis=-1).astype(np.float32)
    for name in ("Z", "depth", "Y", "A"):
        if name in channels:
            return channels[name].astype(np.float32)
    if len(channels) == 1:
        return next(iter(channels.values())).astype(np.float32)
    raise ValueError(f"no RGB or single channel among the EXR's channels {sorted(channels)}")


_ORIENTATION = 0x0112  # EXIF / TIFF Orientation tag


def _pillow_orientation(path: Path) -> int | None:
    """The orientation tag of a file Pillow can open (None when it cannot, or there is none)."""
    try:
        with open_pillow(path) as im:
            return im.getexif().get(_ORIENTATION)
    except Exception:  # noqa: BLE001 - a file Pillow cannot parse has no orientation we can read
        return None


def _orient(arr: np.ndarray, orientation) -> np.ndarray:
    """Turn stored pixels ``H x W [x C]`` upright for orientation tag value 1-8, as ``ImageOps.exif_transpose``
    does (6 = turn 90 degrees clockwise); other values leave the array as it is."""
    turns = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    try:
        turn = turns.get(int(orientation))
    except (TypeError, ValueError):
        return arr
    return arr if turn is None else turn(arr)


def orient(arr: np.ndarray, orientation) -> np.ndarray:
    """Turn stored pixels ``H x W [x C]`` upright for EXIF orientation ``orientation`` (1-8; anything else leaves
    them as they are), the transform the readers apply to photos: for maps and mattes stored beside a photo.

    Args:
        arr: the stored pixels.
        orientation: the tag's value, or None.

    Returns:
        The upright array (a view where possible).
    """
    return _orient(arr, orientation)


def read_orientation(path: str | os.PathLike) -> int | None:
    """The EXIF orientation tag of a file Pillow opens (None when there is none or it cannot be read).

    Args:
        path: the photo.

    Returns:
        The tag's value, 1-8, or None.
    """
    value = _pillow_orientation(Path(path))
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _has_tifffile() -> bool:
    try:
        import tifffile  # noqa: F401
    except ImportError:
        return False
    return True


def _read_pillow(path: Path, argument: str = "image") -> np.ndarray:
    from PIL import ImageOps

    with open_pillow(path, argument=argument) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(im, dtype=np.uint16)
        if im.mode in ("I", "F"):
            return np.asarray(im)
        if im.mode not in ("L", "RGB", "RGBA", "LA"):
            im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
        return np.asarray(im)


def _as_rgb(arr: np.ndarray, argument: str, path) -> np.ndarray:
    """``H x W x 3`` from a grey, grey+alpha, RGB or RGBA array (alpha dropped, grey repeated)."""
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., :-1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(argument, expected="a grey or RGB image", got=f"an array of shape {arr.shape} in {path}",
                         fix=_READ_HINT)
    return arr


def read_image(path: str | os.PathLike, *, argument: str = "image") -> np.ndarray:
    """Read an image file as linear RGB: ``H x W x 3`` float32.

    8/16-bit files are sRGB-decoded (exact IEC 61966-2-1 curve); PFM, EXR and float TIFF are taken as
    linear and passed through (values above 1 are kept). Grey images become three equal channels; an alpha
    channel is dropped.

    Args:
        path: an image file (see :func:`read_raw`).
        argument: the name error messages give the file.

    Returns:
        ``H x W x 3`` float32 linear RGB, in [0, 1] for integer files.

    Raises:
        InputError: the file cannot be read, is not a grey or RGB(A) image, or holds NaN/inf.
    """
    arr, full_scale = read_raw(path, argument=argument)
    arr = _as_rgb(arr, argument, path)
    if full_scale is None:
        if not np.isfinite(arr).all():
            raise InputError(argument, expected="finite pixel values", got=f"NaN/inf in {path}",
                             fix="clean the float image before rendering")
        return arr.astype(np.float32)
    return decode_srgb(arr, full_scale)


def read_display(path: str | os.PathLike, *, argument: str = "image") -> np.ndarray:
    """Read an image file as display values in [0, 1]: ``H x W x 3`` float64, the way a viewer shows it.

    Integer files are divided by their full scale (no curve); linear float files (PFM, EXR, float TIFF)
    are clipped to [0, 1] and sRGB-encoded. Metrics that score pictures as seen (PSNR/SSIM on 8-bit files,
    focus scores) read files with this.

    Args:
        path: an image file (see :func:`read_raw`).
        argument: the name error messages give the file.

    Returns:
        ``H x W x 3`` float64 display values in [0, 1].

    Raises:
        InputError: the file cannot be read, is not a grey or RGB(A) image, or holds NaN/inf.
    """
    arr, full_scale = read_raw(path, argument=argument)
    arr = _as_rgb(arr, argument, path)
    if full_scale is not None:
        return arr.astype(np.float64) / full_scale
    if not np.isfinite(arr).all():
        raise InputError(argument, expected="finite pixel values", got=f"NaN/inf in {path}",
                         fix="clean the float image first")
    return encode_srgb(arr).astype(np.float64)


def write_image(path: str | os.PathLike, image: np.ndarray, *, bits: int = 8, quality: int = 95) -> Path:
    """Write linear RGB ``image`` (``H x W x 3``) atomically.

    PNG and TIFF take ``bits`` 8 or 16; JPEG and WebP are 8-bit; PFM and EXR store the linear floats as
    they are (``bits`` ignored). Everything else is sRGB-encoded and clipped to [0, 1].

    Args:
        path: the file to write; the suffix picks the format (one of :data:`IMAGE_SUFFIXES`).
        image: ``H x W x 3`` (or ``H x W``, repeated to grey RGB) linear RGB.
        bits: 8 or 16 (16 only for PNG and TIFF).
        quality: JPEG/WebP quality, 1-100.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: the suffix is not an image suffix, or ``bits`` is not 8 or 16 or not possible for the format.
        MissingDependencyError: the format needs an optional package that is not installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError("path", expected=f"a file name ending in one of {', '.join(IMAGE_SUFFIXES)}",
                         got=str(path), fix="add a suffix such as .png or .jpg")
    if bits not in (8, 16):
        raise InputError("bits", expected="8 or 16", got=bits, fix="pass bits=8, or bits=16 for 16-bit PNG/TIFF")
    if bits == 16 and suffix not in (".png", ".tif", ".tiff"):
        raise InputError("bits", expected="16 only with PNG or TIFF output", got=f"16 with {suffix}",
                         fix="write a .png or .tif file, or pass bits=8")
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    with atomic_path(path) as tmp:
        if suffix == ".pfm":
            write_pfm(tmp, arr)
        elif suffix == ".exr":
            exr = require("OpenEXR", extra="io", feature="writing EXR files")
            header = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage}
            with exr.File(header, {"RGB": np.ascontiguousarray(arr[..., :3], dtype=np.float32)}) as fh:
                fh.write(str(tmp))
        else:
            encoded = encode_srgb(arr)
            _write_encoded(tmp, suffix, encoded, bits=bits, quality=quality)
    return path


def _write_encoded(tmp: Path, suffix: str, encoded: np.ndarray, *, bits: int, quality: int) -> None:
    if bits == 16:
        data = quantize(encoded, 16)
        if suffix in (".tif", ".tiff") and _has_tifffile():
            import tifffile

            tifffile.imwrite(tmp, data, photometric="rgb")
            return
        cv2 = _cv2("writing 16-bit images")
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(data[..., ::-1])):
            raise OSError(f"could not write {tmp}")
        return
    from PIL import Image

    data = quantize(encoded, 8)
    im = Image.fromarray(data, mode="RGB") if data.ndim == 3 else Image.fromarray(data)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}[suffix]
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    im.save(tmp, format=fmt, **options)
