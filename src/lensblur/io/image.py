"""Reading and writing images: files <-> linear float32 ``H x W x 3`` arrays.

Readers apply the EXIF (TIFF) orientation tag and decode 8- and 16-bit codes with the exact IEC 61966-2-1 curve in
the file's own primaries (its ICC profile; see :mod:`lensblur.io.icc`); linear float formats (PFM, EXR, float TIFF)
pass through unchanged. Writers encode back (8 or 16 bit) or write linear floats, always atomically.

:func:`read_image_info` also returns an :class:`ImageInfo` (profile, bit depth, alpha, grey, metadata) that
:func:`write_image` takes, so that a result is written like the photo it came from: tagged with its profile,
at its bit depth, with its alpha, its EXIF, XMP and comment (docs/io.md says which format keeps what).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass, field, replace
from io import BytesIO
from pathlib import Path

import numpy as np

from .._convert import decode_srgb, encode_srgb, quantize
from .._optional import cv2, require
from ..choices import IMAGE_SUFFIXES
from ..errors import InputError, MissingDependencyError
from . import icc
from .files import atomic_path
from .metadata import Metadata, read_metadata
from .pfm import read_pfm, write_pfm

__all__ = ["HEIF_SUFFIXES", "IMAGE_SUFFIXES", "LINEAR_SUFFIXES", "MAX_PIXELS_ENV", "ImageInfo", "check_write_options",
           "is_heif", "max_pixels", "open_heif", "open_pillow", "orient", "read_display", "read_image", "read_image_info",
           "read_orientation", "read_raw", "register_heif", "write_image"]

log = logging.getLogger(__name__)

LINEAR_SUFFIXES = (".pfm", ".exr")
HEIF_SUFFIXES = (".heic", ".heif", ".hif", ".avif")
_READ_HINT = "pass a PNG, JPEG, TIFF, WebP, HEIC, AVIF, PFM or EXR file that opens in an image viewer"
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


def register_heif() -> None:
    """Let Pillow open (and write) HEIC/HEIF files through pillow-heif (AVIF Pillow reads itself). Safe to call
    often.

    Raises:
        MissingDependencyError: pillow-heif is not installed.
    """
    require("pillow_heif", extra="io", feature="reading and writing HEIC/HEIF files",
            package="pillow-heif").register_heif_opener()


def is_heif(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ISO base media file of the HEIF family (by its ``ftyp`` box, not its name).

    Args:
        path: any file; an unreadable one is not HEIF.

    Returns:
        True for HEIC, HEIF and AVIF.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
    except (OSError, TypeError, ValueError):
        return False
    brands = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")
    return len(head) >= 12 and head[4:8] == b"ftyp" and any(b in head[8:32] for b in brands)


def _too_large(path, argument: str, w: int, h: int, limit: int) -> InputError:
    origin = f"{MAX_PIXELS_ENV}" if os.environ.get(MAX_PIXELS_ENV) else "the limit set from this machine's memory"
    return InputError(argument, expected=f"an image of at most {limit:,} pixels ({origin})",
                      got=f"{path}: {w}x{h} = {w * h:,} pixels",
                      fix=f"set {MAX_PIXELS_ENV}={w * h} to open it anyway (it needs about "
                          f"{w * h * _BYTES_PER_PIXEL / 1e9:.2g} GB), or downscale the photo")


class _DecoderLimits:
    """While open: Pillow's decompression-bomb guard and libheif's memory guards (which refuse 200 MP phone
    photos) lifted, since lensblur checks the size itself with :func:`max_pixels`; restored afterwards."""

    def __init__(self, heif_options=None):
        self.heif_options = heif_options

    def __enter__(self):
        from PIL import Image

        self.saved = Image.MAX_IMAGE_PIXELS, getattr(self.heif_options, "DISABLE_SECURITY_LIMITS", None)
        Image.MAX_IMAGE_PIXELS = None
        if self.heif_options is not None:
            self.heif_options.DISABLE_SECURITY_LIMITS = True
        return self

    def __exit__(self, *exc):
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = self.saved[0]
        if self.heif_options is not None:
            self.heif_options.DISABLE_SECURITY_LIMITS = self.saved[1]
        return False


def open_pillow(path: str | os.PathLike, *, argument: str = "image"):
    """``PIL.Image.open`` with lensblur's size limit (:func:`max_pixels`) instead of Pillow's (and libheif's).

    Args:
        path: the image file.
        argument: the name error messages give the file.

    Returns:
        The open (lazy) ``PIL.Image.Image``; close it, or use it as a context manager.

    Raises:
        InputError: the image has more pixels than the limit (the message gives the count, the limit and
            how to raise it).
        MissingDependencyError: a HEIC/HEIF file and pillow-heif is not installed.
        Exception: what ``PIL.Image.open`` raises for a file it cannot read.
    """
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels()
    missing = heif_options = None
    if is_heif(path):
        try:
            register_heif()            # HEIC/HEIF, which Pillow alone does not know (AVIF it does)
            from pillow_heif import options as heif_options
        except MissingDependencyError as exc:
            missing = exc
    try:
        with _DecoderLimits(heif_options):
            im = Image.open(path)
    except UnidentifiedImageError:
        if missing is not None:
            raise missing from None
        raise
    w, h = im.size
    if w * h > limit:
        im.close()
        raise _too_large(path, argument, w, h, limit)
    return im


def open_heif(path: str | os.PathLike, *, argument: str = "image", **options):
    """``pillow_heif.open_heif`` (the container: its images, depth and auxiliary images, lazily decoded) with
    lensblur's size limit on its primary image instead of libheif's guards, as :func:`open_pillow`.

    Args:
        path: the HEIC/HEIF file.
        argument: the name error messages give the file.
        **options: keywords of ``pillow_heif.open_heif`` (``convert_hdr_to_8bit``...).

    Returns:
        The ``pillow_heif.HeifFile``.

    Raises:
        InputError: the primary image has more pixels than the limit.
        MissingDependencyError: pillow-heif is not installed.
        Exception: what ``pillow_heif.open_heif`` raises for a file it cannot read.
    """
    heif = require("pillow_heif", extra="io", feature="reading HEIC/HEIF files", package="pillow-heif")
    limit = max_pixels()
    with _DecoderLimits(heif.options):
        container = heif.open_heif(str(path), **options)
    w, h = container.size
    if w * h > limit:
        raise _too_large(path, argument, w, h, limit)
    return container


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
            if arr.ndim == 3:   # OpenCV's BGR(A) -> RGB(A)
                arr = arr[..., [2, 1, 0, 3]] if arr.shape[2] == 4 else arr[..., ::-1]
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


@dataclass(frozen=True)
class ImageInfo:
    """What an image file holds beside its pixels, so that a result can be written like it.

    Attributes:
        bits: 8 or 16 for integer files, 32 for floating-point ones.
        profile: the ICC profile whose primaries the linear pixels are in (the working profile, see
            :mod:`lensblur.io.icc`); None for sRGB (an untagged file, or a linear float one).
        input_profile: the file's own ICC profile as stored, or None.
        grey: the file is greyscale (one channel, or grey and alpha).
        alpha: its alpha channel, ``H x W`` float32 in [0, 1], upright; or None.
        metadata: its EXIF, XMP and comment.
    """

    bits: int = 8
    profile: bytes | None = field(default=None, repr=False)
    input_profile: bytes | None = field(default=None, repr=False)
    grey: bool = False
    alpha: np.ndarray | None = field(default=None, repr=False, compare=False)
    metadata: Metadata = field(default_factory=Metadata, repr=False)

    def with_metadata(self, metadata: Metadata) -> ImageInfo:
        """A copy with other metadata."""
        return replace(self, metadata=metadata)


def _header(path: Path) -> tuple[bytes | None, Metadata]:
    """The ICC profile and metadata of a file Pillow opens (the pixels are not decoded)."""
    if path.suffix.lower() in (".npy", ".pfm", ".exr"):
        return None, Metadata()
    try:
        with open_pillow(path) as im:
            profile = im.info.get("icc_profile") or None
            try:
                metadata = read_metadata(im)
            except Exception as exc:  # noqa: BLE001 - damaged metadata is left behind, not fatal
                log.warning("%s: its metadata could not be read (%s); it is not carried", path, exc)
                metadata = Metadata()
    except Exception:  # noqa: BLE001 - read_raw has read the pixels; a file Pillow cannot open has no header
        return None, Metadata()
    return profile, metadata


def _usable_profile(profile: bytes | None, grey: bool, path) -> bytes | None:
    """``profile`` when LittleCMS reads it and it is of the image's kind (RGB or grey); else None, with a note."""
    if profile is None:
        return None
    try:
        from PIL import ImageCms

        space = ImageCms.ImageCmsProfile(BytesIO(profile)).profile.xcolor_space.strip()
    except Exception:  # noqa: BLE001 - a damaged profile is ignored, as viewers do
        log.warning("%s: its ICC profile cannot be read; the file is taken as sRGB", path)
        return None
    if space != ("GRAY" if grey else "RGB"):
        log.warning("%s: its ICC profile is for %s data, not %s; the file is taken as sRGB", path, space,
                    "grey" if grey else "RGB")
        return None
    return profile


def read_image_info(path: str | os.PathLike, *, argument: str = "image") -> tuple[np.ndarray, ImageInfo]:
    """Read an image file as linear RGB in its own primaries, with what it holds beside its pixels.

    Integer files are linearised as :mod:`lensblur.io.icc` says: with the exact sRGB curve when the file is
    untagged or its profile's tone curve is the sRGB curve (sRGB, Display P3), else converted by LittleCMS to
    the working profile first (8-bit). PFM, EXR and float TIFF are linear and passed through.

    Args:
        path: an image file (see :func:`read_raw`; HEIC/AVIF where pillow-heif or Pillow opens them).
        argument: the name error messages give the file.

    Returns:
        ``(image, info)``: ``H x W x 3`` float32 linear RGB (grey repeated, alpha in ``info``), and its
        :class:`ImageInfo`.

    Raises:
        InputError: the file cannot be read, is not a grey or RGB(A) image, or holds NaN/inf.
    """
    path = Path(path)
    arr, full_scale = read_raw(path, argument=argument)
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    grey = channels in (1, 2)
    alpha = None
    if arr.ndim == 3 and channels in (2, 4):
        alpha = arr[..., -1].astype(np.float32) / np.float32(full_scale or 1.0)
    rgb = _as_rgb(arr, argument, path)
    profile, metadata = _header(path)
    if full_scale is None:
        if not np.isfinite(rgb).all():
            raise InputError(argument, expected="finite pixel values", got=f"NaN/inf in {path}",
                             fix="clean the float image before rendering")
        return rgb.astype(np.float32), ImageInfo(bits=32, grey=grey, alpha=alpha, metadata=metadata)
    bits = 8 if full_scale == 255 else 16
    profile = _usable_profile(profile, grey, path)
    working = None
    if profile is not None and not grey:
        if icc.has_srgb_curve(profile):
            working = profile
        else:
            if bits == 16:
                log.warning("%s: a 16-bit file whose profile (%s) has another tone curve than sRGB's is converted "
                            "through 8 bits (Pillow's LittleCMS transforms 8-bit RGB only)", path,
                            icc.describe(profile))
                rgb = np.round(rgb.astype(np.float32) / 257.0).astype(np.uint8)
                full_scale = 255
            rgb, working = icc.to_working(rgb, profile)
    info = ImageInfo(bits=bits, profile=working, input_profile=profile, grey=grey, alpha=alpha, metadata=metadata)
    return decode_srgb(rgb, full_scale), info


def read_image(path: str | os.PathLike, *, argument: str = "image") -> np.ndarray:
    """Read an image file as linear RGB: ``H x W x 3`` float32.

    8/16-bit files are decoded with the exact IEC 61966-2-1 curve, in the file's own primaries (an untagged,
    sRGB or Display P3 file gives the same array as the plain sRGB curve; see :func:`read_image_info`);
    PFM, EXR and float TIFF are taken as linear and passed through (values above 1 are kept). Grey images
    become three equal channels; an alpha channel is dropped.

    Args:
        path: an image file (see :func:`read_raw`).
        argument: the name error messages give the file.

    Returns:
        ``H x W x 3`` float32 linear RGB, in [0, 1] for integer files.

    Raises:
        InputError: the file cannot be read, is not a grey or RGB(A) image, or holds NaN/inf.
    """
    return read_image_info(path, argument=argument)[0]


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


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
            ".heic": "HEIF", ".heif": "HEIF", ".avif": "AVIF"}
_MAX_BITS = {"PNG": 16, "TIFF": 32}          # the others hold 8 bits (PFM and EXR hold floats)
_HOLDS_ALPHA = ("PNG", "TIFF", "WEBP", "HEIF", "AVIF")
_LOSSY = ("JPEG", "WEBP", "HEIF", "AVIF")
_JPEG_XMP_LIMIT = 65502                      # the most one APP1 segment holds after the XMP header


def check_write_options(path: str | os.PathLike, *, bits: int | None = None, quality: int | None = None,
                        output_profile: str = "input", argument: str = "path") -> None:
    """Check :func:`write_image`'s options for ``path`` before any work is done (it checks them again).

    Args:
        path: the file to be written.
        bits: as :func:`write_image`.
        quality: as :func:`write_image`.
        output_profile: as :func:`write_image`.
        argument: the name error messages give ``path``.

    Raises:
        InputError: as :func:`write_image`.
        MissingDependencyError: the format needs an optional package that is not installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(argument, expected=f"a file name ending in one of {', '.join(IMAGE_SUFFIXES)}",
                         got=str(path), fix="add a suffix such as .png or .jpg")
    if bits is not None and bits not in (8, 16, 32):
        raise InputError("bits", expected="8, 16 or 32", got=bits,
                         fix="pass bits=8, bits=16 for 16-bit PNG/TIFF, or bits=32 for float TIFF")
    fmt = _FORMATS.get(suffix)
    if bits is not None and fmt is not None and bits > _MAX_BITS.get(fmt, 8):
        expected = "16 only with PNG or TIFF output" if bits == 16 else "32 only with TIFF, PFM or EXR output"
        raise InputError("bits", expected=expected, got=f"{bits} with {suffix}",
                         fix="write a .png or .tif file, or pass bits=8" if bits == 16 else
                         "write a .tif, .pfm or .exr file, or pass bits=8 or bits=16")
    if quality is not None and not (isinstance(quality, (int, np.integer)) and not isinstance(quality, bool)
                                    and 1 <= quality <= 100):
        raise InputError("quality", expected="an integer from 1 to 100", got=quality,
                         fix="e.g. quality=95 (JPEG, WebP, HEIC and AVIF use it)")
    if output_profile not in icc.OUTPUT_PROFILES:
        raise InputError("output_profile", expected=f"one of {', '.join(icc.OUTPUT_PROFILES)}", got=output_profile,
                         fix="e.g. output_profile='input' (the input's own profile) or output_profile='srgb'")
    if fmt in ("HEIF",):
        require("pillow_heif", extra="io", feature="writing HEIC files", package="pillow-heif")


def _output_bits(fmt: str | None, bits: int | None, info: ImageInfo, path: Path) -> int:
    """The bits to write: the asked ones, else the input's as far as the format holds them."""
    if bits is not None:
        return bits
    if fmt is None:                                  # PFM, EXR: floats
        return 32
    most = _MAX_BITS.get(fmt, 8)
    if info.bits > most:
        log.warning("%s holds at most %d bits per channel: writing %d, not the input's %d", path.name, most, most,
                    info.bits)
    return min(info.bits, most)


def write_image(path: str | os.PathLike, image: np.ndarray, *, bits: int | None = None, quality: int | None = None,
                info: ImageInfo | None = None, output_profile: str = "input") -> Path:
    """Write linear RGB ``image`` (``H x W x 3``) atomically, like the file ``info`` describes.

    PNG and TIFF take ``bits`` 8 or 16, TIFF also 32 (linear float); JPEG, WebP, HEIC and AVIF are 8-bit; PFM and
    EXR store the linear floats as they are. Integer formats are encoded with the sRGB curve in the output
    profile's primaries (see :mod:`lensblur.io.icc`) and clipped to [0, 1]; float files are written in linear
    sRGB primaries, untagged. Without ``info`` the file is written as before colour management: sRGB,
    untagged, 8-bit, no alpha and no metadata.

    Args:
        path: the file to write; the suffix picks the format (one of :data:`IMAGE_SUFFIXES`).
        image: ``H x W x 3`` (or ``H x W``, repeated to grey RGB) linear RGB, in ``info.profile``'s primaries.
        bits: 8, 16 or 32; None follows ``info.bits`` as far as the format holds it (8 without ``info``).
        quality: JPEG/WebP/HEIC/AVIF quality, 1-100 (default 95).
        info: what the input held (:func:`read_image_info`): profile, bit depth, alpha, grey, metadata.
        output_profile: ``input`` (the input's own profile; untagged for an untagged input), ``srgb`` or ``p3``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: the suffix is not an image suffix, ``bits`` is not 8, 16 or 32 or not possible for the
            format, ``quality`` is not 1-100, or ``output_profile`` is not one of
            :data:`lensblur.io.icc.OUTPUT_PROFILES`.
        MissingDependencyError: the format needs an optional package that is not installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    check_write_options(path, bits=bits, quality=quality, output_profile=output_profile)
    fmt = _FORMATS.get(suffix)
    info = info or ImageInfo()
    bits = _output_bits(fmt, bits, info, path)
    quality = 95 if quality is None else int(quality)
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    alpha = info.alpha if info.alpha is not None and info.alpha.shape == arr.shape[:2] else None
    if info.alpha is not None and alpha is None:
        log.warning("%s: the input's alpha channel does not match the %dx%d result: not written", path,
                    arr.shape[1], arr.shape[0])
    if alpha is not None and fmt not in _HOLDS_ALPHA:
        log.warning("%s: %s cannot hold an alpha channel: the input's alpha is dropped (write PNG, TIFF, WebP, "
                    "HEIC or AVIF to keep it)", path, suffix.lstrip(".").upper())
        alpha = None
    with atomic_path(path) as tmp:
        if fmt is None or bits == 32:
            linear = _linear_srgb(arr, info.profile)
            if suffix == ".pfm":
                write_pfm(tmp, linear)
            elif suffix == ".exr":
                exr = require("OpenEXR", extra="io", feature="writing EXR files")
                header = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage}
                with exr.File(header, {"RGB": np.ascontiguousarray(linear[..., :3], dtype=np.float32)}) as fh:
                    fh.write(str(tmp))
            else:
                _write_float_tiff(tmp, linear, alpha, info.metadata)
            return path
        encoded, profile = _encode(arr, info, output_profile, bits)
        grey = info.grey and output_profile == "input" and (profile is None or _is_grey_profile(profile))
        if grey:
            encoded = encoded.mean(axis=2, keepdims=True)
        elif info.grey and profile is not None and _is_grey_profile(profile):
            profile = None
        if alpha is not None:
            encoded = np.concatenate([encoded, np.clip(alpha, 0.0, 1.0)[..., None]], axis=2)
        extra = _Extra(profile=profile, metadata=info.metadata) if info.metadata != Metadata() or profile else None
        _write_encoded(tmp, suffix, encoded, bits=bits, quality=quality, extra=extra)
    return path


def _linear_srgb(arr: np.ndarray, profile: bytes | None) -> np.ndarray:
    """Linear values in ``profile``'s primaries to linear sRGB primaries (what PFM/EXR/float TIFF readers assume)."""
    matrix = icc.linear_matrix(profile, None) if profile is not None else None
    return arr if matrix is None else (arr @ matrix.T.astype(np.float32)).astype(np.float32)


def _is_grey_profile(profile: bytes) -> bool:
    from PIL import ImageCms

    try:
        return ImageCms.ImageCmsProfile(BytesIO(profile)).profile.xcolor_space.strip() == "GRAY"
    except Exception:  # noqa: BLE001 - an unreadable profile is no grey profile
        return False


def _encode(arr: np.ndarray, info: ImageInfo, output_profile: str, bits: int) -> tuple[np.ndarray, bytes | None]:
    """Linear values in ``info.profile``'s primaries -> display values in [0, 1] of the output profile, and the
    profile to tag the file with (None: untagged)."""
    working = info.profile
    if info.grey:
        target = info.input_profile if output_profile == "input" else icc.profile_for(output_profile, None)
        return encode_srgb(arr), target
    target = icc.profile_for(output_profile, info.input_profile)
    if target is None:                                 # untagged in, untagged out (taken as sRGB throughout)
        return encode_srgb(_linear_srgb(arr, working)), None
    if icc.same_profile(working, target):
        return encode_srgb(arr), target
    if icc.has_srgb_curve(target):                     # sRGB, Display P3, and inputs of their curve
        matrix = icc.linear_matrix(working, target)
        return encode_srgb(arr if matrix is None else arr @ matrix.T.astype(np.float32)), target
    # the input's own profile with another tone curve (Adobe RGB, ProPhoto): LittleCMS, 8-bit
    if bits != 8:
        log.warning("the input's profile (%s) is written back through LittleCMS at 8 bits only: the %d-bit file is "
                    "tagged with its working profile (%s) instead", icc.describe(target), bits, icc.describe(working))
        return encode_srgb(arr), working
    codes = icc.from_working(quantize(encode_srgb(arr), 8), working or icc.srgb(), target)
    return codes.astype(np.float32) / 255.0, target


@dataclass(frozen=True)
class _Extra:
    """What a file carries beside its pixels: the profile to tag it with and the metadata."""

    profile: bytes | None = None
    metadata: Metadata = field(default_factory=Metadata)


def _write_float_tiff(tmp: Path, linear: np.ndarray, alpha: np.ndarray | None, metadata: Metadata) -> None:
    """Linear sRGB as 32-bit floats, with the metadata's TIFF tags and XMP (no profile: float TIFF is linear
    sRGB by convention, as :func:`read_image` reads it)."""
    import tifffile

    data = linear if alpha is None else np.concatenate([linear, alpha[..., None]], axis=2)
    options = {"extrasamples": ("unassalpha",)} if alpha is not None else {}
    tifffile.imwrite(tmp, np.ascontiguousarray(data, dtype=np.float32), photometric="rgb", metadata=None,
                     **_tiff_tags(metadata), **options)


def _pillow_mode(channels: int, bits: int) -> str:
    return {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]


def _write_encoded(tmp: Path, suffix: str, encoded: np.ndarray, *, bits: int, quality: int,
                   extra: _Extra | None = None) -> None:
    extra = extra or _Extra()
    if bits == 16:
        data = quantize(encoded, 16)
        if suffix in (".tif", ".tiff") and _has_tifffile():
            _write_tiff16(tmp, data, extra)
            return
        cv2 = _cv2("writing 16-bit images")
        # OpenCV writes grey, BGR and BGRA; grey with alpha goes as BGRA with the grey repeated
        order = {1: [0], 2: [0, 0, 0, 1], 3: [2, 1, 0], 4: [2, 1, 0, 3]}[data.shape[2]]
        out = data[..., 0] if data.shape[2] == 1 else data[..., order]
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(out)):
            raise OSError(f"could not write {tmp}")
        if suffix == ".png":
            _png_add_chunks(tmp, extra)
        return
    from PIL import Image

    data = quantize(encoded, 8)
    mode = _pillow_mode(data.shape[2], bits)
    im = Image.fromarray(data[..., 0] if data.shape[2] == 1 else data, mode=mode)
    fmt = _FORMATS[suffix]
    if fmt in ("WEBP", "HEIF", "AVIF") and mode in ("L", "LA"):
        im = im.convert("RGBA" if mode == "LA" else "RGB")
    options = {"quality": quality} if fmt in _LOSSY else {}
    options.update(_pillow_extras(fmt, extra))
    if fmt == "HEIF":
        register_heif()
    im.save(tmp, format=fmt, **options)


def _pillow_extras(fmt: str, extra: _Extra) -> dict:
    """The save options of Pillow's writer ``fmt`` that carry the profile and the metadata."""
    from PIL import PngImagePlugin, TiffImagePlugin

    meta = extra.metadata
    options: dict = {}
    if extra.profile:
        options["icc_profile"] = extra.profile
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        if meta.xmp:
            text.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8", errors="replace"))
        if meta.comment:
            text.add_itxt("Comment", meta.comment)
        options["pnginfo"] = text
        if meta.exif:
            options["exif"] = meta.exif
    elif fmt == "TIFF":
        tags = TiffImagePlugin.ImageFileDirectory_v2()
        for tag, value in _tiff_ascii_tags(meta).items():
            tags[tag] = value
        if meta.xmp:
            tags[700] = meta.xmp
        options["tiffinfo"] = tags
    else:
        if meta.exif:
            options["exif"] = meta.exif
        if meta.xmp:
            if fmt == "JPEG" and len(meta.xmp) > _JPEG_XMP_LIMIT:
                log.warning("the XMP packet (%d bytes) is too large for one JPEG segment: not written", len(meta.xmp))
            else:
                options["xmp"] = meta.xmp
        if fmt == "JPEG" and meta.comment:
            options["comment"] = meta.comment
    return options


_TIFF_ASCII = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)


def _tiff_ascii_tags(meta: Metadata) -> dict:
    """The first IFD's descriptive text tags of the EXIF (what a TIFF holds in its own first IFD)."""
    exif = meta.exif_tags()
    return {tag: str(exif[tag]) for tag in _TIFF_ASCII if tag in exif}


def _tiff_tags(meta: Metadata) -> dict:
    """tifffile's arguments for the metadata's first-IFD text tags and XMP. tifffile writes the Software tag
    itself (its own name unless given one, and no tag for ``False``), in 7-bit ASCII."""
    tags = _tiff_ascii_tags(meta)
    software = tags.pop(0x0131, None)
    extratags = [(tag, "s", 0, value, True) for tag, value in tags.items()]
    if meta.xmp:
        extratags.append((700, "B", len(meta.xmp), meta.xmp, True))
    return {"software": software.encode("ascii", "replace").decode() if software else False, "extratags": extratags}


def _write_tiff16(tmp: Path, data: np.ndarray, extra: _Extra) -> None:
    import tifffile

    channels = data.shape[2]
    options = {"extrasamples": ("unassalpha",)} if channels in (2, 4) else {}
    photometric = "minisblack" if channels in (1, 2) else "rgb"
    tifffile.imwrite(tmp, data[..., 0] if channels == 1 else data, photometric=photometric, metadata=None,
                     iccprofile=extra.profile, **_tiff_tags(extra.metadata), **options)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_add_chunks(path: Path, extra: _Extra) -> None:
    """Add the profile (iCCP), EXIF (eXIf), XMP and comment (iTXt) to a PNG file written without them (OpenCV's
    16-bit PNG), right after its header chunk."""
    meta = extra.metadata
    chunks = b""
    if extra.profile:
        chunks += _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(extra.profile))
    if meta.exif:
        exif = meta.exif[6:] if meta.exif.startswith(b"Exif\0\0") else meta.exif
        chunks += _png_chunk(b"eXIf", exif)
    for key, text in (("XML:com.adobe.xmp", meta.xmp.decode("utf-8", errors="replace") if meta.xmp else None),
                      ("Comment", meta.comment)):
        if text:
            chunks += _png_chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))
    if not chunks:
        return
    data = path.read_bytes()
    end_of_header = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
    path.write_bytes(data[:end_of_header] + chunks + data[end_of_header:])
