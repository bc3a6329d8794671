"""Portable float map (PFM): linear float images and maps, little- or big-endian, bottom row first."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

__all__ = ["read_pfm", "write_pfm"]


def read_pfm(path: str | Path) -> np.ndarray:
    """Read a PFM file.

    Args:
        path: the file.

    Returns:
        ``H x W x 3`` (``PF``) or ``H x W`` (``Pf``) float32, top row first.

    Raises:
        ValueError: not a PFM file, or a malformed or truncated one (:func:`~lensblur.io.read_raw` turns
            this into an :class:`~lensblur.errors.InputError`).
    """
    with open(path, "rb") as fh:
        header = fh.readline().strip()
        if header not in (b"PF", b"Pf"):
            raise ValueError(f"not a PFM file (header {header[:8]!r})")
        dims = fh.readline()
        while dims.startswith(b"#"):
            dims = fh.readline()
        match = re.match(rb"^\s*(\d+)\s+(\d+)\s*$", dims)
        if not match:
            raise ValueError("malformed PFM size line")
        width, height = int(match.group(1)), int(match.group(2))
        scale = float(fh.readline().strip())
        dtype = "<f4" if scale < 0 else ">f4"
        channels = 3 if header == b"PF" else 1
        data = np.fromfile(fh, dtype=dtype, count=width * height * channels)
    if data.size != width * height * channels:
        raise ValueError("truncated PFM file")
    data = data.reshape(height, width, channels)[::-1].astype(np.float32)
    return data[..., 0] if channels == 1 else data


def write_pfm(path: str | Path, array: np.ndarray) -> None:
    """Write float data as little-endian PFM (not atomic; the image writers call it on a temporary path).

    Args:
        path: the file.
        array: ``H x W x 3`` (written as ``PF``) or ``H x W`` (``Pf``), cast to float32.
    """
    arr = np.asarray(array, dtype="<f4")
    color = arr.ndim == 3
    with open(path, "wb") as fh:
        fh.write(b"PF\n" if color else b"Pf\n")
        fh.write(f"{arr.shape[1]} {arr.shape[0]}\n-1.0\n".encode())
        fh.write(np.ascontiguousarray(arr[::-1]).tobytes())
