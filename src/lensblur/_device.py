"""Which torch device lensblur's work runs on: one rule for every command and renderer.

``"auto"`` is CUDA when a GPU is visible, else Apple's MPS, else the CPU; a name (``"cpu"``, ``"cuda"``,
``"cuda:1"``, ``"mps"``) must exist on this machine.
"""

from __future__ import annotations

import torch

from .errors import InputError

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")
"""The device names offered (``cuda:N`` picks one GPU of several)."""


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
