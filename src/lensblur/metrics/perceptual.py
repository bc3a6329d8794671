"""Perceptual distances: LPIPS (Zhang et al. 2018) and DISTS (Ding et al. 2020), through torchmetrics.

Both need an ImageNet-pretrained torchvision backbone (AlexNet or VGG-16 for LPIPS, VGG-16 for DISTS),
which lensblur never downloads: it must already be in the torch hub cache,
``$TORCH_HOME/hub/checkpoints/`` (``~/.cache/torch/hub/checkpoints/`` by default), under torchvision's file
name (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``). The small learned heads (LPIPS linear layers,
DISTS alpha/beta) ship inside torchmetrics. When a backbone is missing, :func:`load_lpips` /
:func:`load_dists` raise :class:`~lensblur.errors.ModelNotFoundError` naming the path; no number is ever
computed with a random network.

:func:`find_backbone` and :func:`load_backbone_state` are that lookup for other users of these backbones
(BGGAN's VGG-19 perceptual loss, BokehDiff's ConvNeXt discriminator): the hub cache file, or a file given
explicitly (safetensors, or a torchvision ``.pth`` read with ``torch.load(weights_only=True)``).

Inputs are display (sRGB-encoded) values in [0, 1], ``H x W x 3`` arrays or ``(B, 3, H, W)`` tensors, like
:func:`lensblur.metrics.psnr`. LPIPS runs at full resolution; DISTS first resizes so that the shorter side is
256 pixels (antialiased bilinear), as the reference implementation prepares its inputs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._convert import array_to_tensor
from .._optional import require
from ..errors import InputError, ModelNotFoundError, ShapeError

__all__ = ["PerceptualMetric", "backbone_path", "find_backbone", "hub_checkpoints_dir", "load_backbone_state",
           "load_dists", "load_lpips"]

logger = logging.getLogger(__name__)

# torchvision's file names for the ImageNet weights (the last part of the weights' URL), and the
# torchvision.models functions that build them.
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth", "vgg19": "vgg19-dcbba9e9.pth",
                  "convnext_tiny": "convnext_tiny-983f1562.pth", "convnext_small": "convnext_small-0c510722.pth",
                  "convnext_base": "convnext_base-6075fbad.pth", "convnext_large": "convnext_large-ea097f82.pth"}
BACKBONE_MODELS = {"alex": "alexnet", "vgg": "vgg16", "vgg19": "vgg19", "convnext_tiny": "convnext_tiny",
                   "convnext_small": "convnext_small", "convnext_base": "convnext_base",
                   "convnext_large": "convnext_large"}
_HOW_TO_GET = ("on a machine with internet access run  python -c \"import torchvision; "
               "torchvision.models.{fn}(weights='IMAGENET1K_V1')\"  and copy {file} from its "
               "~/.cache/torch/hub/checkpoints/ into {folder} (or set TORCH_HOME)")


def hub_checkpoints_dir(hub_dir: str | os.PathLike | None = None) -> Path:
    """Where torchvision keeps downloaded weights: ``<torch hub dir>/checkpoints``.

    Args:
        hub_dir: the torch hub folder, or None for ``torch.hub.get_dir()``.

    Returns:
        The checkpoints folder (it may not exist).
    """
    return Path(hub_dir if hub_dir is not None else torch.hub.get_dir()) / "checkpoints"


def backbone_path(net: str, hub_dir: str | os.PathLike | None = None) -> Path:
    """The cache file a backbone is loaded from.

    Args:
        net: a key of :data:`BACKBONE_FILES`.
        hub_dir: the torch hub folder, or None for torch's own.

    Returns:
        The path (it may not exist).
    """
    return hub_checkpoints_dir(hub_dir) / BACKBONE_FILES[net]


def find_backbone(net: str, *, what: str, path: str | os.PathLike | None = None, hub_dir=None,
                  otherwise: str | None = None) -> Path:
    """The file of a backbone's ImageNet weights, never downloaded.

    Args:
        net: a key of :data:`BACKBONE_FILES` (``"alex"``, ``"vgg"`` (VGG-16), ``"vgg19"``, ``"convnext_base"``...).
        what: what needs it, for the error message (``"LPIPS (alex)"``).
        path: a file given explicitly (then only it is looked at), or None for the hub cache file.
        hub_dir: the torch hub folder, or None for torch's own (``$TORCH_HOME/hub``).
        otherwise: another way out, added to the error's advice (``"or pass use_vgg=False"``).

    Returns:
        The existing file.

    Raises:
        ModelNotFoundError: no such file; the message names the place looked at and how to get the file.
    """
    found = Path(path) if path is not None else backbone_path(net, hub_dir)
    if not found.is_file():
        fn = BACKBONE_MODELS[net]
        folder = found.parent if path is None else hub_checkpoints_dir(hub_dir)
        how = _HOW_TO_GET.format(fn=fn, file=BACKBONE_FILES[net], folder=folder)
        raise ModelNotFoundError(f"{what}: the ImageNet {fn} backbone weights", looked_in=[str(found)],
                                 how_to_get=f"{how}{'; ' + otherwise if otherwise else ''}")
    return found


def load_torchvision_features(net: str, *, what: str, argument: str, path: str | os.PathLike | None = None,
                              hub_dir=None, otherwise: str | None = None, upto: int | None = None):
    """torchvision's ``NET(weights=None).features`` (the first ``upto + 1`` modules) with ImageNet weights from
    :func:`load_backbone_state`'s file, keys ``features.N...`` (the whole classifier) or ``N...``.

    Args:
        net: the torchvision model's name (``vgg19``, ``convnext_base``, ...).
        what, path, hub_dir, otherwise: as :func:`load_backbone_state`.
        argument: the name errors give the weights file.
        upto: the last module of ``features`` kept, or None for all.

    Returns:
        The ``features`` module, its weights loaded, in evaluation mode, without gradients.

    Raises:
        InputError: a file without the weights the kept modules need.
        ModelNotFoundError: no weights file (nothing is downloaded).
        MissingDependencyError: torchvision is not installed.
    """
    from .._optional import require

    models = require("torchvision.models", extra="train", feature=what, package="torchvision")
    state = load_backbone_state(net, what=what, path=path, hub_dir=hub_dir, otherwise=otherwise)
    with torch.device("meta"):
        features = getattr(models, net)(weights=None).features
        if upto is not None:
            features = features[: upto + 1]
    own = {}
    for key in features.state_dict():
        for name in (f"features.{key}", key):
            if name in state:
                own[key] = state[name]
                break
    missing = sorted(set(features.state_dict()) - set(own))
    if missing:
        kept = f" up to features[{upto}]" if upto is not None else ""
        raise InputError(argument, expected=f"{net} weights{kept} (features.N... as torchvision saves them)",
                         got=f"a file without {', '.join(missing[:4])}", fix=f"pass torchvision's {net} file")
    features.load_state_dict(own, assign=True)
    return features.eval().requires_grad_(False)


def load_backbone_state(net: str, *, what: str, path: str | os.PathLike | None = None, hub_dir=None,
                        otherwise: str | None = None) -> dict[str, torch.Tensor]:
    """A backbone's ImageNet state dict, read from :func:`find_backbone`'s file without running pickled code.

    Args:
        net, what, path, hub_dir, otherwise: as :func:`find_backbone`.

    Returns:
        The tensors by name, on the CPU: a ``.safetensors`` file's, or a torchvision ``.pth`` file's
        (``torch.load(weights_only=True)``).

    Raises:
        ModelNotFoundError: no such file.
        InputError: a file that holds no state dict (``argument`` ``path``).
    """
    found = find_backbone(net, what=what, path=path, hub_dir=hub_dir, otherwise=otherwise)
    try:
        if found.suffix == ".safetensors":
            state = require("safetensors.torch", extra="train", feature=what, package="safetensors").load_file(str(found))
        else:
            state = torch.load(found, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError("path", expected=f"a {BACKBONE_MODELS[net]} state dict (safetensors or torchvision .pth)",
                         got=f"{found} ({type(exc).__name__}: {exc})", fix=f"pass torchvision's {BACKBONE_FILES[net]}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError("path", expected=f"a {BACKBONE_MODELS[net]} state dict (tensors by name)",
                         got=f"{found} holding a {type(state).__name__}", fix=f"pass torchvision's {BACKBONE_FILES[net]}")
    logger.info("%s: %s weights read from %s", what, BACKBONE_MODELS[net], found)
    return dict(state)


def _require_backbone(net: str, hub_dir, what: str) -> Path:
    return find_backbone(net, what=what, hub_dir=hub_dir)


@dataclass
class PerceptualMetric:
    """A perceptual distance between two images (lower = more similar).

    ``metric(image_true, image_test)`` scores one image pair: each an ``H x W x 3`` array or a ``(3, H, W)``
    or ``(1, 3, H, W)`` tensor of display values in [0, 1] (clamped), the two of one shape. It returns a
    float, and raises :class:`ShapeError` for other shapes, for shapes that differ and for a batch of more
    than one pair (call ``metric.distance`` for a ``(B,)`` tensor of distances of a batch).

    Args:
        name: the metric's name in tables (``"LPIPS-alex"``, ``"DISTS"``).
        distance: ``distance(x, y) -> (B,)`` on ``(B, 3, H, W)`` display values in [0, 1].
        source: where the weights were loaded from.
        device: where ``distance`` runs.
        network: the module ``distance`` runs, or None (to move or freeze it when the distance is a loss).
    """

    name: str
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    source: str = ""
    device: str | torch.device = "cpu"
    network: torch.nn.Module | None = None

    def __call__(self, image_true, image_test) -> float:
        a, b = _as_batch(image_true, "image_true"), _as_batch(image_test, "image_test")
        if a.shape != b.shape:
            raise ShapeError("image_test", expected=f"the shape of image_true {tuple(a.shape)}", got=f"{tuple(b.shape)}",
                             fix="compare images of the same size")
        if a.shape[0] != 1:
            raise ShapeError("image_true", expected="one image pair (H x W x 3, (3, H, W) or (1, 3, H, W))",
                             got=f"a batch of {a.shape[0]} pairs {tuple(a.shape)}",
                             fix="score the pairs one at a time, or call metric.distance(x, y) for a (B,) tensor")
        with torch.inference_mode():
            value = self.distance(a.to(self.device), b.to(self.device))
        return float(value.reshape(-1)[0])


def _as_batch(image, argument: str) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        t = image.detach().float()
        t = t[None] if t.ndim == 3 else t
    else:
        arr = np.asarray(image, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ShapeError(argument, expected="an H x W x 3 array", got=f"shape {arr.shape}", fix="pass an RGB image")
        t = array_to_tensor(arr)
    if t.ndim != 4 or t.shape[1] != 3:
        raise ShapeError(argument, expected="(B, 3, H, W)", got=f"{tuple(t.shape)}", fix="pass RGB images")
    return t.clamp(0.0, 1.0)


def _with_hub_dir(hub_dir, build):
    """Run ``build()`` with torch hub pointed at ``hub_dir`` (torchvision then loads from its cache)."""
    if hub_dir is None:
        return build()
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub_dir))
    try:
        return build()
    finally:
        torch.hub.set_dir(previous)


def load_lpips(net: str = "alex", *, hub_dir=None, device: str | torch.device = "cpu") -> PerceptualMetric:
    """LPIPS v0.1 with the ``"alex"`` (default, as most papers report) or ``"vgg"`` backbone.

    Args:
        net: ``"alex"`` or ``"vgg"``.
        hub_dir: the torch hub folder holding the backbone, or None for torch's own.
        device: where the network runs.

    Returns:
        The :class:`PerceptualMetric`.

    Raises:
        InputError: another ``net``.
        ModelNotFoundError: the backbone weights are not in the hub cache (never downloaded).
        MissingDependencyError: torchvision or torchmetrics is not installed.
    """
    if net not in ("alex", "vgg"):
        raise InputError("net", expected="alex or vgg", got=net, fix="use net=alex (the usual LPIPS)")
    path = _require_backbone(net, hub_dir, f"LPIPS ({net})")
    require("torchvision", extra="train", feature="LPIPS")
    tm = require("torchmetrics.image.lpip", extra="train", feature="LPIPS", package="torchmetrics")
    metric = _with_hub_dir(hub_dir, lambda: tm.LearnedPerceptualImagePatchSimilarity(
        net_type=net, normalize=True, reduction="mean"))
    metric = metric.to(device).eval()
    logger.info("LPIPS (%s) backbone loaded from %s", net, path)
    return PerceptualMetric(f"LPIPS-{net}", lambda x, y: metric.net(x, y, normalize=True).reshape(-1),
                            source=str(path), device=device, network=metric)


def _dists_resize(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    if min(h, w) <= 256:
        return x
    scale = 256 / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def load_dists(*, hub_dir=None, device: str | torch.device = "cpu") -> PerceptualMetric:
    """DISTS with torchmetrics' network (VGG-16 backbone from the hub cache, alpha/beta from torchmetrics).

    Args:
        hub_dir: the torch hub folder holding the backbone, or None for torch's own.
        device: where the network runs.

    Returns:
        The :class:`PerceptualMetric`.

    Raises:
        ModelNotFoundError: the VGG-16 weights are not in the hub cache (never downloaded).
        MissingDependencyError: torchvision or torchmetrics is not installed.
    """
    path = _require_backbone("vgg", hub_dir, "DISTS")
    require("torchvision", extra="train", feature="DISTS")
    tm = require("torchmetrics.functional.image.dists", extra="train", feature="DISTS", package="torchmetrics")
    network = _with_hub_dir(hub_dir, lambda: tm.DISTSNetwork(load_weights=True)).to(device).eval()
    logger.info("DISTS backbone loaded from %s", path)

    def distance(x, y):
        return network(_dists_resize(x), _dists_resize(y)).reshape(-1)

    return PerceptualMetric("DISTS", distance, source=str(path), device=device)
