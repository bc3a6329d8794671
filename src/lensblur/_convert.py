"""The one place where numpy arrays at the public boundary become torch tensors and back.

Public: images ``H x W x 3`` float32 linear RGB, disparity ``H x W`` float32 in [0, 1].
Inside: images ``(B, 3, H, W)``, disparity ``(B, 1, H, W)``.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import InputError, ShapeError

__all__ = ["as_image", "disparity_to_tensor", "image_to_tensor", "tensor_to_disparity", "tensor_to_image"]


def as_image(image, *, name: str = "image") -> np.ndarray:
    """Check an ``H x W x 3`` (or ``B x H x W x 3``) image and return it as float32."""
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
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise InputError(name, expected="finite values", got="NaN or inf", fix="clean the image first")
    return arr


def image_to_tensor(image, *, device=None) -> torch.Tensor:
    """``H x W x 3`` or ``B x H x W x 3`` numpy -> ``(B, 3, H, W)`` float32 tensor."""
    arr = as_image(image)
    if arr.ndim == 3:
        arr = arr[None]
    # numpy moves the channel axis to the front about twice as fast as torch does
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, 1))).to(device)


def tensor_to_image(tensor: torch.Tensor, *, batched: bool = False) -> np.ndarray:
    """``(B, 3, H, W)`` tensor -> ``H x W x 3`` (or ``B x H x W x 3`` when ``batched``) float32 numpy."""
    arr = tensor.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).contiguous().numpy()
    return arr if batched else arr[0]


def disparity_to_tensor(disparity, *, device=None, name: str = "disparity") -> torch.Tensor:
    """``H x W`` (or ``B x H x W``) numpy in [0, 1] -> ``(B, 1, H, W)`` float32 tensor, validated."""
    arr = np.asarray(disparity)
    if arr.ndim not in (2, 3):
        raise ShapeError(name, expected="shape H x W (or B x H x W)", got=f"shape {arr.shape}",
                         fix="pass a single-channel map, e.g. disparity[..., 0]")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(name, expected="finite values in [0, 1]", got=f"{bad} NaN/inf values",
                         fix="fill the holes of the map before rendering (e.g. with the nearest valid value)")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(name, expected="values in [0, 1] (1 = nearest)", got=f"range [{lo:g}, {hi:g}]",
                         fix="rescale it, or pass --normalize (normalize=True) for a min-max rescale")
    if arr.ndim == 2:
        arr = arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr))[:, None].to(device)


def tensor_to_disparity(tensor: torch.Tensor) -> np.ndarray:
    """``(B, 1, H, W)`` tensor -> ``H x W`` float32 numpy (first item)."""
    return tensor.detach().to("cpu", torch.float32)[0, 0].numpy()
