"""The one place where numpy arrays at the public boundary become torch tensors and back, and where
linear RGB becomes the integer codes of an sRGB file.

Public: images ``H x W x 3`` float32 linear RGB, disparity ``H x W`` float32 in [0, 1].
Inside: images ``(B, 3, H, W)``, disparity ``(B, 1, H, W)``.

Quantising follows one rule everywhere: values are clipped to [0, 1], scaled to the full code range and
rounded to the nearest code, halves to even (``numpy.round``).

Large float32 images cross the boundary by bands of rows, on the workers of an enclosing
:func:`lensblur._threads.coarse_parallel` block when there is one (a copy and a check per band; the bytes are
those of one whole copy; numpy's copies and ufuncs release the GIL).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ._threads import parallel_bands
from .color import linear_to_srgb, srgb_to_linear
from .errors import InputError, ShapeError

__all__ = [
    "GAMMA",
    "array_to_tensor",
    "as_image",
    "check_disparity",
    "decode_gamma",
    "decode_srgb",
    "disparity_to_tensor",
    "display_8bit",
    "encode_gamma",
    "encode_srgb",
    "image_to_tensor",
    "quantize",
    "tensor_to_image",
    "to_srgb8",
]

_FULL_SCALE = {8: (255.0, np.uint8), 16: (65535.0, np.uint16)}


def array_to_tensor(array, *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """A numpy image to a ``(B, C, H, W)`` tensor: the one channel move from the boundary's layout.

    Args:
        array: ``H x W``, ``H x W x C`` or ``B x H x W x C`` values (any real dtype).
        dtype: the tensor's dtype.
        device: where the tensor goes (it is made on the CPU first).

    Returns:
        A contiguous ``(B, C, H, W)`` tensor (``B = 1`` and ``C = 1`` where the array had no such axis).
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim == 3:
        arr = arr[None]
    # numpy moves the channel axis to the front about twice as fast as torch does
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, 1))).to(device=device, dtype=dtype)


def encode_srgb(image) -> np.ndarray:
    """Linear RGB to sRGB-encoded display values in [0, 1] (values above 1 clip to white).

    Args:
        image: linear values, any shape (numpy array or tensor).

    Returns:
        float32 numpy array of the same shape.
    """
    t = image.detach().to("cpu", torch.float32) if isinstance(image, torch.Tensor) else \
        torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    return linear_to_srgb(t).numpy()


# The plain power-law transfer that BokehMe and BokehDiff use where lensblur uses the sRGB curve.
GAMMA = 2.2


def encode_gamma(linear) -> np.ndarray:
    """Linear values to gamma 2.2 display values: ``clip(x, 0, 1) ** (1 / 2.2)`` (float64)."""
    arr = linear.detach().cpu().numpy() if isinstance(linear, torch.Tensor) else np.asarray(linear)
    return np.clip(arr.astype(np.float64), 0.0, 1.0) ** (1.0 / GAMMA)


def decode_gamma(display) -> np.ndarray:
    """Gamma 2.2 display values in [0, 1] back to linear: ``x ** 2.2`` (float64)."""
    return np.clip(np.asarray(display, dtype=np.float64), 0.0, 1.0) ** GAMMA


def decode_srgb(codes: np.ndarray, full_scale: float) -> np.ndarray:
    """Integer sRGB codes to linear float32 values, with the exact IEC 61966-2-1 curve.

    Args:
        codes: codes in ``0..full_scale``, any shape.
        full_scale: the code of white (255, 65535, or 1.0 for display values).

    Returns:
        float32 linear values in [0, 1], same shape.
    """
    codes = np.asarray(codes)
    if codes.dtype in (np.uint8, np.uint16):
        # Every code's value from a table: the float32 curve once per code, not once per pixel, and no float
        # temporaries the size of the photo. Each code now has one value: per pixel, torch's vector and scalar
        # loops gave a code values one float32 step apart depending on its place in the array.
        return _srgb_table(codes.dtype.str, float(full_scale))[codes]
    return _decode_srgb(codes, full_scale)


def _decode_srgb(codes: np.ndarray, full_scale: float) -> np.ndarray:
    return srgb_to_linear(torch.from_numpy(codes.astype(np.float32) / np.float32(full_scale))).numpy()


@functools.lru_cache(maxsize=8)
def _srgb_table(dtype: str, full_scale: float) -> np.ndarray:
    """The linear value of every code of an unsigned integer ``dtype``, as :func:`decode_srgb` computes it."""
    table = _decode_srgb(np.arange(np.iinfo(np.dtype(dtype)).max + 1), full_scale)
    table.flags.writeable = False
    return table


def quantize(values: np.ndarray, bits: int = 8) -> np.ndarray:
    """Display values in [0, 1] to integer codes: clipped, scaled to ``2**bits - 1``, rounded half to even.

    Args:
        values: display (already encoded) values, any shape.
        bits: 8 (``uint8``) or 16 (``uint16``).

    Returns:
        The codes, same shape.
    """
    scale, dtype = _FULL_SCALE[bits]
    return np.round(np.clip(values, 0.0, 1.0) * scale).astype(dtype)


def to_srgb8(image) -> np.ndarray:
    """Linear RGB to the 8-bit sRGB codes a file or a model input holds.

    Args:
        image: linear values (numpy or torch), any shape; values outside [0, 1] clip.

    Returns:
        ``uint8`` codes, same shape.
    """
    return quantize(encode_srgb(image), 8)


def display_8bit(image) -> np.ndarray:
    """What a saved 8-bit file of a linear image shows: its sRGB codes over 255 (the values results are scored
    on, in evaluation and in training's validation alike).

    Args:
        image: ``H x W x 3`` linear RGB (numpy, or a tensor in the same layout).

    Returns:
        ``H x W x 3`` float64 display values in [0, 1], multiples of 1/255.
    """
    return to_srgb8(image).astype(np.float64) / 255.0


def as_image(image, *, name: str = "image") -> np.ndarray:
    """Check a public-boundary image and return it as float32.

    Args:
        image: ``H x W x 3`` or ``B x H x W x 3`` floating-point linear RGB (numpy, not torch).
        name: the name error messages give it.

    Returns:
        The image as float32 (not copied when it already is).

    Raises:
        InputError: a torch tensor, an integer dtype, or NaN/inf values.
        ShapeError: not ``H x W x 3`` or ``B x H x W x 3``.
    """
    arr = _image_array(image, name)
    if not _finite(arr):
        raise _not_finite(name)
    return arr


def _image_array(image, name: str) -> np.ndarray:
    """:func:`as_image` without the check of the values."""
    if isinstance(image, torch.Tensor):
        raise InputError(name, expected="a numpy array H x W x 3", got="a torch.Tensor",
                         fix="pass image.numpy() (or use the tensor functions in lensblur.render)")
    arr = np.asarray(image)
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ShapeError(name, expected="shape H x W x 3 (or B x H x W x 3)", got=f"shape {arr.shape}",
                         fix="drop alpha with image[..., :3] or stack grey images to 3 channels")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(name, expected="floating-point linear RGB in [0, 1]", got=f"dtype {arr.dtype}",
                         fix="read files with lensblur.read_image, which decodes sRGB to linear float32")
    return arr.astype(np.float32, copy=False)


def _finite(arr: np.ndarray) -> bool:
    """Whether every value of ``arr`` (``... x H x W x C``) is finite, checked by bands of rows."""
    return all(parallel_bands(lambda rows: bool(np.isfinite(arr[..., rows, :, :]).all()), arr.shape[-3]))


def _not_finite(name: str) -> InputError:
    return InputError(name, expected="finite values", got="NaN or inf", fix="clean the image first")


def image_to_tensor(image, *, device=None) -> torch.Tensor:
    """A public-boundary image to the renderers' layout, checked by :func:`as_image`.

    Args:
        image: ``H x W x 3`` or ``B x H x W x 3`` float linear RGB.
        device: the tensor's device.

    Returns:
        ``(B, 3, H, W)`` float32 tensor.

    Raises:
        InputError, ShapeError: as :func:`as_image`.
    """
    arr = _image_array(image, "image")
    if arr.ndim == 3:
        arr = arr[None]
    out = np.empty((arr.shape[0], 3) + arr.shape[1:3], dtype=np.float32)

    def band(rows: slice) -> bool:      # checked and moved while the band is in the cache
        if not np.isfinite(arr[:, rows]).all():
            return False
        np.copyto(out[:, :, rows], np.moveaxis(arr[:, rows], -1, 1))
        return True

    if not all(parallel_bands(band, arr.shape[1])):
        raise _not_finite("image")
    return torch.from_numpy(out).to(device=device)


def tensor_to_image(tensor: torch.Tensor, *, batched: bool = False) -> np.ndarray:
    """A ``(B, 3, H, W)`` tensor back to the public layout, on the CPU.

    Args:
        tensor: ``(B, 3, H, W)``.
        batched: keep the batch axis; otherwise only the first item is returned.

    Returns:
        ``H x W x 3`` (or ``B x H x W x 3`` when ``batched``) float32 numpy.
    """
    tensor = tensor.detach().to("cpu", torch.float32)
    source = tensor.numpy()
    out = np.empty((source.shape[0], source.shape[2], source.shape[3], source.shape[1]), dtype=np.float32)

    # Channel by channel, so that the reads stay contiguous: numpy's copy of the moved axes took 1.5x as long.
    def band(rows: slice) -> None:
        for channel in range(source.shape[1]):
            out[:, rows, :, channel] = source[:, channel, rows]

    parallel_bands(band, source.shape[2])
    return out if batched else out[0]


def check_disparity(disparity, *, argument: str = "disparity") -> np.ndarray:
    """Check that a disparity map holds finite values in [0, 1] (1 = nearest).

    Args:
        disparity: an array of any shape.
        argument: the name the error messages give it.

    Returns:
        The map as float32 (not copied when it already is).

    Raises:
        InputError: NaN or infinite values, or values outside [0, 1].
    """
    arr = np.asarray(disparity).astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(argument, expected="finite values in [0, 1]", got=f"{bad} NaN/inf values",
                         fix="fill the holes of the map before rendering (e.g. with the nearest valid value)")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(argument, expected="values in [0, 1] (1 = nearest)", got=f"range [{lo:g}, {hi:g}]",
                         fix="rescale it, or read the file with normalize=True for a min-max rescale")
    return arr


def disparity_to_tensor(disparity, *, device=None, name: str = "disparity") -> torch.Tensor:
    """A public-boundary disparity map to the renderers' layout, checked by :func:`check_disparity`.

    Args:
        disparity: ``H x W`` or ``B x H x W``, finite values in [0, 1].
        device: the tensor's device.
        name: the name error messages give it.

    Returns:
        ``(B, 1, H, W)`` float32 tensor.

    Raises:
        ShapeError: not ``H x W`` or ``B x H x W``.
        InputError: NaN/inf or values outside [0, 1].
    """
    arr = np.asarray(disparity)
    if arr.ndim not in (2, 3):
        raise ShapeError(name, expected="shape H x W (or B x H x W)", got=f"shape {arr.shape}",
                         fix="pass a single-channel map, e.g. disparity[..., 0]")
    arr = check_disparity(arr, argument=name)
    return torch.from_numpy(np.ascontiguousarray(arr if arr.ndim == 3 else arr[None]))[:, None].to(device)
