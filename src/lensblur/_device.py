"""Which torch device lensblur's work runs on: one rule for every command and renderer.

``"auto"`` is CUDA when a GPU is visible, else Apple's MPS, else the CPU; a name (``"cpu"``, ``"cuda"``,
``"cuda:1"``, ``"mps"``) must exist on this machine.

The precision of a render (:func:`resolve_dtype`) is float32 unless asked for; in half precision, an
operation a device has no kernel for in that type is computed in float32 there (:func:`fft_dtype`), so the
upcast depends on what the device supports, not on its name.
"""

from __future__ import annotations

import functools
import warnings

import torch

from .errors import InputError

__all__ = ["DEVICES", "DTYPES", "fft_dtype", "resolve_device", "resolve_dtype"]

DEVICES = ("auto", "cpu", "cuda", "mps")
"""The device names offered (``cuda:N`` picks one GPU of several)."""

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
"""The precisions offered, by name."""

_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``None``/``"auto"`` is CUDA when available, else Apple's MPS, else the CPU.

    Args:
        device: ``None``, ``"auto"``, a device name or a :class:`torch.device`.

    Returns:
        The :class:`torch.device`.

    Raises:
        InputError: not a device name, or one that is not there.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        out = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError("device", expected="auto, cpu, cuda, cuda:N or mps", got=str(device),
                         fix="e.g. device=cuda") from None
    if out.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device", expected="a device that exists", got=f"{device} (no CUDA GPU is visible)",
                         fix="device=cpu")
    if out.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                  and torch.backends.mps.is_available()):
        raise InputError("device", expected="a device that exists", got=f"{device} (MPS is not available)",
                         fix="device=cpu")
    return out


def resolve_dtype(dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The floating-point type to compute in: ``None`` is float32; a name of :data:`DTYPES` or one of its types.

    Args:
        dtype: ``None``, ``"float32"``, ``"float16"``, ``"bfloat16"`` (or ``fp32``, ``fp16``, ``half``, ``bf16``)
            or the :class:`torch.dtype` itself.

    Returns:
        The :class:`torch.dtype`.

    Raises:
        InputError: anything else.
    """
    if dtype is None:
        return torch.float32
    name = str(dtype).lower().removeprefix("torch.")
    out = dtype if isinstance(dtype, torch.dtype) else DTYPES.get(_ALIASES.get(name, name))
    if out not in DTYPES.values():
        raise InputError("dtype", expected="float32, float16 or bfloat16", got=str(dtype),
                         fix="e.g. dtype=float16 (on a GPU)")
    return out


def fft_dtype(device: torch.device, dtype: torch.dtype, size: tuple[int, ...]) -> torch.dtype:
    """The type a real FFT convolution of ``size`` runs in on ``device``: ``dtype`` where torch has FFT kernels
    for it there, else float32 (the CPU has none in half precision; CUDA's need power-of-two sizes).

    Found once per device, type and kind of size by running a tiny convolution (:func:`torch.fft.rfft2`,
    a product of spectra, :func:`torch.fft.irfft2`), not from a table of devices.

    Args:
        device: where the FFT runs.
        dtype: the data's type.
        size: the FFT's size.

    Returns:
        ``dtype`` or ``torch.float32``.
    """
    if dtype in (torch.float32, torch.float64):
        return dtype
    power_of_two = all(n > 0 and n & (n - 1) == 0 for n in size)
    return dtype if _fft_runs(torch.device(device), dtype, power_of_two) else torch.float32


@functools.cache
def _fft_runs(device: torch.device, dtype: torch.dtype, power_of_two: bool) -> bool:
    side = 8 if power_of_two else 12
    try:
        with warnings.catch_warnings():       # CUDA's complex half is "experimental": a warning, not a failure
            warnings.simplefilter("ignore")
            x = torch.ones((1, 1, side, side), dtype=dtype, device=device)
            y = torch.fft.irfft2(torch.fft.rfft2(x) * torch.fft.rfft2(x), s=(side, side))
            return bool(torch.isfinite(y).all())
    except (RuntimeError, NotImplementedError, TypeError):
        return False
