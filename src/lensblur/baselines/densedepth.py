"""DenseDepth (Alhashim & Wonka 2018), the depth network of the third paper's first method.

The network is a DenseNet-169 encoder (torchvision's ``densenet169`` architecture, its ``features``) and the
decoder of the Keras original: a 1x1 convolution of the bottleneck to ``decoder_width`` channels, then four
up-projections (bilinear x2 up-sampling to the skip's size, concatenation of the skip, two 3x3 convolutions
each followed by LeakyReLU(0.2)) halving the width each time, then a 3x3 convolution to one channel. The
PyTorch port's up-block applies no activation after its first convolution; this one does, as the Keras
model. The output is at half the input's resolution.

What the network predicts is DenseDepth's inverse depth ``y = 1000 / depth_cm``, the depth clipped to
10..1000 cm, so ``y`` lies in [1, 100]; its normalised depth ``clip(1000 / y, 10, 1000) / 1000`` (depth over
10 m, in [0.01, 1]) is what the threshold blur of :mod:`lensblur.baselines.threshold` reads. The loss is
``0.1 * L1 + L_grad + clip((1 - SSIM) / 2, 0, 1)`` with SSIM's data range 100 (1000 / 10).

Training data are any lensblur items with a disparity map (:class:`DepthTargets`): a map with a metric range
(NYU Depth v2's ``meta["depth_range"]``) becomes metric depth exactly; a map without one (lensblur's synthetic
pairs) is read as inverse depth between :data:`ASSUMED_RANGE`'s 1 m (disparity 1) and 10 m (disparity 0).
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .._optional import require
from ..color import linear_to_srgb
from ..errors import InputError, ModelNotFoundError, ShapeError, check_learning_rate
from ..geometry import DepthRange

__all__ = [
    "ASSUMED_RANGE",
    "DENSENET169_FILE",
    "DenseDepth",
    "DenseDepthConfig",
    "DenseDepthNet",
    "DepthTargets",
    "depth_loss",
    "disparity_to_depth",
    "gradient_loss",
    "image_gradients",
    "inverse_depth_target",
    "load_encoder_weights",
    "normalized_depth",
]

logger = logging.getLogger(__name__)

# DenseDepth's depth range in metres (--mindepth 10, --maxdepth 1000 in centimetres): the target 1000 / cm
# lies in [MAX / MAX, MAX / MIN] = [1, 100], which is also the SSIM data range of the loss.
MIN_DEPTH_M = 0.1
MAX_DEPTH_M = 10.0
TARGET_RANGE = MAX_DEPTH_M / MIN_DEPTH_M

ASSUMED_RANGE = DepthRange(near=1.0, far=MAX_DEPTH_M)
"""What a disparity map without a metric range is taken to span: 1 m at disparity 1, 10 m (DenseDepth's
farthest depth) at disparity 0. Only the ratio matters to the normalised depth the threshold reads."""

DENSENET169_FILE = "densenet169-b2777c0a.pth"
"""torchvision's file name of DenseNet-169's ImageNet weights in the torch hub cache."""

ENCODER_CHANNELS = 1664       # DenseNet-169's bottleneck
_SKIPS = ("relu0", "pool0", "transition1", "transition2")     # Keras conv1/relu, pool1, pool2_pool, pool3_pool
_SKIP_CHANNELS = (64, 64, 128, 256)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_MIN_SIDE = 32                # five halvings down to the bottleneck
_HOW_TO_GET = ("on a machine with internet access run  python -c \"import torchvision; "
               "torchvision.models.densenet169(weights='IMAGENET1K_V1')\"  and copy " + DENSENET169_FILE +
               " from its ~/.cache/torch/hub/checkpoints/ into {folder} (or set TORCH_HOME), or pass "
               "pretrained_encoder=PATH")


# -- the network -------------------------------------------------------------------------------------------
class UpProject(nn.Module):
    """One decoder step: bilinear up-sampling to the skip's size, concatenation, 3x3 conv + LeakyReLU(0.2) twice.

    Args:
        in_channels: the channels of the up-sampled input plus those of the skip.
        out_channels: the channels out.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_a = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv_b = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.act(self.conv_b(self.act(self.conv_a(torch.cat([x, skip], dim=1)))))


class DenseDepthNet(nn.Module):
    """DenseNet-169 encoder + the Keras DenseDepth decoder (see the module doc).

    Args:
        decoder_width: the decoder's first width F (1664 as the PyTorch port, 832 as the Keras default); the
            up-projections have F/2, F/4, F/8, F/16 channels. At least 16.

    ``forward`` takes ``(B, 3, H, W)`` (H, W >= 32) and returns ``(B, 1, ceil(H/2), ceil(W/2))``.

    Raises:
        InputError: ``decoder_width`` < 16.
        MissingDependencyError: torchvision is not installed (``lensblur[train]``).
    """

    def __init__(self, decoder_width: int = ENCODER_CHANNELS):
        super().__init__()
        _check_width(decoder_width)
        models = require("torchvision.models", extra="train", feature="the DenseDepth encoder (DenseNet-169)",
                         package="torchvision")
        self.encoder = models.densenet169(weights=None).features
        f = decoder_width
        widths = [f // 2, f // 4, f // 8, f // 16]
        self.conv2 = nn.Conv2d(ENCODER_CHANNELS, f, 1)
        ins = [f, *widths[:-1]]
        skips = _SKIP_CHANNELS[::-1]
        self.up1, self.up2, self.up3, self.up4 = (UpProject(i + s, o) for i, s, o in zip(ins, skips, widths))
        self.conv3 = nn.Conv2d(widths[-1], 1, 3, padding=1)
        for module in (self.conv2, self.up1, self.up2, self.up3, self.up4, self.conv3):   # Keras' glorot_uniform
            for conv in module.modules():
                if isinstance(conv, nn.Conv2d):
                    nn.init.xavier_uniform_(conv.weight)
                    nn.init.zeros_(conv.bias)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The skips at /2, /4, /8, /16 (64, 64, 128, 256 channels) and the bottleneck at /32 (1664, after ReLU)."""
        skips = []
        for name, layer in self.encoder.named_children():
            x = layer(x)
            if name in _SKIPS:
                skips.append(x)
        return [*skips, F.relu(x)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s2, s4, s8, s16, bottleneck = self.encode(x)
        d = self.conv2(bottleneck)
        d = self.up1(d, s16)
        d = self.up2(d, s8)
        d = self.up3(d, s4)
        d = self.up4(d, s2)
        return self.conv3(d)


def _check_width(width) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or width < 16:
        raise InputError("decoder_width", expected="an integer >= 16 (the decoder halves it four times)", got=width,
                         fix="decoder_width=1664 (the PyTorch port) or decoder_width=832 (the Keras default)")


# -- ImageNet weights for the encoder ---------------------------------------------------------------------
_OLD_DENSE_KEY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            st = require("safetensors.torch", extra="train", feature="reading safetensors weights",
                         package="safetensors")
            state = st.load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError("pretrained_encoder", expected="a safetensors file or a torch state dict (weights only)",
                         got=f"{path} ({type(exc).__name__}: {exc})",
                         fix=f"pass torchvision's {DENSENET169_FILE}, or a .safetensors of its state dict") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError("pretrained_encoder", expected="a state dict (names -> tensors)", got=f"{path}",
                         fix=f"pass torchvision's {DENSENET169_FILE}")
    return state


def _encoder_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A DenseNet's state dict as its ``features``' keys: prefixes dropped (``module.``, ``features.``), the
    classifier left out, and the old torchvision names (``denselayer1.norm.1``) renamed (``denselayer1.norm1``)."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("classifier."):
            continue
        out[_OLD_DENSE_KEY.sub(r"\1\2.", key.removeprefix("features."))] = value
    return out


def load_encoder_weights(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Load DenseNet-169 weights into ``encoder`` (a ``densenet169().features``).

    Args:
        encoder: the module to load into.
        path: torchvision's ``densenet169-b2777c0a.pth`` (read with ``torch.load(weights_only=True)``), or a
            ``.safetensors`` file; the whole DenseNet's state dict or its ``features``' alone.

    Raises:
        ModelNotFoundError: no file at ``path``.
        InputError: not a state dict, or not DenseNet-169's (missing, unexpected or misshapen tensors).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError("DenseNet-169 encoder weights", looked_in=[str(path)],
                                 how_to_get=_HOW_TO_GET.format(folder=path.parent))
    state = _encoder_keys(_read_state_dict(path))
    own = encoder.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    misshapen = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or misshapen:
        parts = [f"{len(v)} {what} (e.g. {v[0]})" for what, v in
                 (("missing tensors", missing), ("unexpected tensors", unexpected), ("of other shapes", misshapen)) if v]
        raise InputError("pretrained_encoder", expected="DenseNet-169 ImageNet weights (torchvision's densenet169)",
                         got=f"{path}: " + ", ".join(parts), fix=f"pass torchvision's {DENSENET169_FILE}")
    encoder.load_state_dict(state, strict=False)


def _encoder_source(pretrained_encoder: str | os.PathLike | None) -> Path | None:
    """The weights file to load (None: random initialisation), as :class:`DenseDepthConfig` describes."""
    if pretrained_encoder is None:
        return None
    if str(pretrained_encoder) == "auto":
        from ..metrics.perceptual import hub_checkpoints_dir

        cached = hub_checkpoints_dir() / DENSENET169_FILE
        if cached.is_file():
            return cached
        logger.warning("DenseDepth: no ImageNet weights for the DenseNet-169 encoder at %s, so it starts from "
                       "random weights (depth will be much worse than the paper's). To get them: %s", cached,
                       _HOW_TO_GET.format(folder=cached.parent))
        return None
    path = Path(pretrained_encoder).expanduser()
    if not path.is_file():
        raise ModelNotFoundError("DenseNet-169 encoder weights", looked_in=[str(path)],
                                 how_to_get=_HOW_TO_GET.format(folder=path.parent))
    return path


# -- depth encoding ---------------------------------------------------------------------------------------
def disparity_to_depth(disparity: torch.Tensor, depth_range: DepthRange = ASSUMED_RANGE) -> torch.Tensor:
    """Metric depth (metres) of a lensblur disparity map: ``1 / (1/far + d (1/near - 1/far))``.

    Args:
        disparity: values in [0, 1], 1 = nearest, any shape.
        depth_range: the depths of disparity 1 and 0.

    Returns:
        Depth in metres, same shape.
    """
    inverse = 1.0 / depth_range.far + disparity * (1.0 / depth_range.near - 1.0 / depth_range.far)
    return 1.0 / inverse


def inverse_depth_target(depth: torch.Tensor) -> torch.Tensor:
    """DenseDepth's target ``1000 / depth_cm``, the depth clipped to 10..1000 cm: in [1, 100].

    Args:
        depth: depth in metres, any shape.

    Returns:
        The target, same shape.
    """
    return MAX_DEPTH_M / depth.clamp(MIN_DEPTH_M, MAX_DEPTH_M)


def normalized_depth(output: torch.Tensor) -> torch.Tensor:
    """DenseDepth's ``predict``: ``clip(1000 / y, 10, 1000) / 1000``, depth over 10 m in [0.01, 1].

    Written ``1 / clip(y, 1, 100)``, the same for ``y > 0``; an output <= 0 (an untrained network) counts as
    the farthest depth.

    Args:
        output: the network's inverse depth ``y``, any shape.

    Returns:
        The normalised depth, same shape.
    """
    return 1.0 / output.clamp(1.0, TARGET_RANGE)


def _item_range(meta: dict[str, Any] | None, default: DepthRange) -> DepthRange:
    """The metric range an item's disparity stands for: ``meta["depth_range"]`` (NYU) or ``default``."""
    known = (meta or {}).get("depth_range")
    if known is None:
        return default
    return known if isinstance(known, DepthRange) else DepthRange(*(float(v) for v in known))


# -- the loss ---------------------------------------------------------------------------------------------
def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences ``(dy, dx)`` of ``(B, C, H, W)``, zero in the last row / column
    (``tf.image.image_gradients``)."""
    dy = torch.zeros_like(x)
    dx = torch.zeros_like(x)
    dy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return dy, dx


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean(|dy pred - dy target| + |dx pred - dx target|)`` with :func:`image_gradients`."""
    dy_p, dx_p = image_gradients(prediction)
    dy_t, dx_t = image_gradients(target)
    return ((dy_p - dy_t).abs() + (dx_p - dx_t).abs()).mean()


def depth_loss(prediction: torch.Tensor, target: torch.Tensor, *, depth_weight: float = 0.1,
               data_range: float = TARGET_RANGE) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DenseDepth's loss ``depth_weight * L1 + L_grad + clip((1 - SSIM) / 2, 0, 1)`` (paper eq. 1, lambda 0.1).

    SSIM is :func:`lensblur.metrics.ssim_tensor` (Gaussian window, sigma 1.5, over the pixels whose window
    lies inside the map: TensorFlow's ``tf.image.ssim``), clipped per image and averaged over the batch as
    the Keras loss does.

    Args:
        prediction: ``(B, 1, H, W)`` network output (H, W > 10 for the SSIM window).
        target: ``(B, 1, H, W)`` inverse-depth target.
        depth_weight: the weight of L1 (0.1).
        data_range: SSIM's data range (1000 / 10 = 100).

    Returns:
        The loss and its terms ``{"depth_l1", "depth_grad", "depth_ssim"}`` (unweighted).

    Raises:
        ShapeError: shapes that differ.
    """
    from ..metrics import ssim_tensor

    if prediction.shape != target.shape:
        raise ShapeError("prediction", expected=f"the target's shape {tuple(target.shape)}",
                         got=f"{tuple(prediction.shape)}", fix="resize the target to the output's size")
    l1 = (prediction - target).abs().mean()
    grad = gradient_loss(prediction, target)
    structure = ((1.0 - ssim_tensor(target, prediction, data_range=data_range)) / 2.0).clamp(0.0, 1.0).mean()
    total = depth_weight * l1 + grad + structure
    return total, {"depth_l1": l1, "depth_grad": grad, "depth_ssim": structure}


# -- the training view ------------------------------------------------------------------------------------
class DepthTargets(Dataset):
    """A dataset with disparity as DenseDepth training items: ``image`` and ``depth_target`` ``(1, H, W)``
    (``1000 / depth_cm``, full resolution; the method takes it to the output's half resolution).

    A map with ``meta["depth_range"]`` (NYU Depth v2) is metric; one without (synth) spans ``depth_range``.
    Augmentation as DenseDepth's: with probability 1/2 a random permutation of the RGB channels (``swap``),
    and with ``flip`` a left-right mirror with probability 1/2 (leave it off under :class:`RandomCrops`,
    which mirrors itself). Draws come from torch's global generator, which the training loop seeds and saves.

    Args:
        dataset: items with ``image`` and ``disparity`` (a :mod:`lensblur.data` reader).
        depth_range: the depths of disparity 1 and 0 for maps without a metric range.
        swap: the probability of a channel permutation (0 to turn it off).
        flip: mirror left-right with probability 1/2.

    Raises:
        InputError: an item without disparity (when it is read).
    """

    def __init__(self, dataset, *, depth_range: DepthRange = ASSUMED_RANGE, swap: float = 0.5, flip: bool = False):
        self.dataset, self.depth_range, self.swap, self.flip = dataset, depth_range, swap, flip

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        meta = item.get("meta", {})
        if "disparity" not in item:
            raise InputError("dataset", expected="items with a disparity map (NYU Depth v2, synth) to train depth on",
                             got=f"{meta.get('dataset', 'an item')} {meta.get('id', index)} without one",
                             fix="train depth on --dataset nyu or --dataset synth")
        target = inverse_depth_target(disparity_to_depth(item["disparity"].float(),
                                                         _item_range(meta, self.depth_range)))
        image = item["image"]
        if self.swap and bool(torch.rand(()) < self.swap):
            image = image[torch.randperm(3)]
        if self.flip and bool(torch.rand(()) < 0.5):
            image, target = image.flip(-1), target.flip(-1)
        return {"image": image, "depth_target": target, "meta": meta}


# -- the method -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DenseDepthConfig:
    """DenseDepth's settings (defaults: the reference's training).

    Args:
        decoder_width: the decoder's width F (1664: the PyTorch port and the sheet's 42.6M model; 832: Keras).
        lr: Adam's learning rate (1e-4).
        amsgrad: Adam's AMSGrad variant (the Keras training uses it).
        depth_weight: the weight of the L1 term (0.1).
        imagenet_normalize: subtract ImageNet's mean and divide by its std before the encoder. Off, as the
            original feeds [0, 1] sRGB values straight to its ImageNet encoder.
        pretrained_encoder: the encoder's ImageNet weights: ``"auto"`` (the torch hub cache's
            ``densenet169-b2777c0a.pth`` when it is there, else random weights with a warning), a file
            (``.pth`` or ``.safetensors``), or None (random weights). Checkpoints record None: their own
            weights replace the encoder's.
    """

    decoder_width: int = ENCODER_CHANNELS
    lr: float = 1e-4
    amsgrad: bool = True
    depth_weight: float = 0.1
    imagenet_normalize: bool = False
    pretrained_encoder: str | None = "auto"

    def __post_init__(self) -> None:
        _check_width(self.decoder_width)
        check_learning_rate(self.lr, default=1e-4)


class DenseDepth:
    """The DenseDepth method for :func:`lensblur.train.train`, and, trained, a monocular depth estimator.

    Args:
        config: the settings (:class:`DenseDepthConfig`).
        seed: the seed of the weights' initialisation (global generators are left as they were).

    Raises:
        ModelNotFoundError: ``config.pretrained_encoder`` names a file that is not there.
        InputError: that file holds other weights than DenseNet-169's.
    """

    name = "depth"

    def __init__(self, config: DenseDepthConfig = DenseDepthConfig(), *, seed: int = 0):
        self.settings = config
        source = _encoder_source(config.pretrained_encoder)      # a missing file is named before any building
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.network = DenseDepthNet(config.decoder_width)
        if source is not None:
            load_encoder_weights(self.network.encoder, source)
            logger.info("DenseDepth encoder: ImageNet weights from %s", source)
        self.encoder_weights = str(source) if source is not None else None
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.lr, amsgrad=config.amsgrad)
        self._net, self._opt = self.network, self.optimizer

    # -- what the loop asks for ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {**asdict(self.settings), "pretrained_encoder": None}

    def modules(self) -> dict[str, nn.Module]:
        return {"network": self.network}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"network": self.optimizer}

    def schedulers(self) -> dict[str, Any]:
        return {}

    def prepare(self, accelerator) -> None:
        self._net, self._opt = accelerator.prepare(self.network, self.optimizer)

    def _inputs(self, image: torch.Tensor) -> torch.Tensor:
        """Linear RGB to the encoder's input: sRGB display values (ImageNet-normalised when asked)."""
        x = linear_to_srgb(image)
        if self.settings.imagenet_normalize:
            mean = torch.tensor(_IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            std = torch.tensor(_IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x

    def training_step(self, batch: dict[str, torch.Tensor], accelerator) -> dict[str, float]:
        """One Adam step on a batch of ``image`` and ``depth_target`` (:class:`DepthTargets`)."""
        image, target = batch["image"], batch["depth_target"]
        _check_size(image, training=True)
        self._net.train()
        self._opt.zero_grad()
        out = self._net(self._inputs(image))
        target = F.interpolate(target, size=out.shape[-2:], mode="area")   # DenseDepth halves the ground truth
        loss, parts = depth_loss(out, target, depth_weight=self.settings.depth_weight)
        accelerator.backward(loss)
        self._opt.step()
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}}

    # -- prediction ---------------------------------------------------------------------------------------
    def output(self, image: torch.Tensor) -> torch.Tensor:
        """The network's inverse depth ``y`` at half resolution, ``(B, 1, ceil(H/2), ceil(W/2))``, eval mode."""
        _check_size(image)
        device = next(self.network.parameters()).device
        self._net.eval()
        with torch.no_grad():
            return self._net(self._inputs(image.to(device)))

    def _full_size(self, image: torch.Tensor, convert) -> torch.Tensor:
        """``convert`` of the network's output, taken to the image's size bilinearly, averaged with that of the
        mirrored image mirrored back (DenseDepth's evaluation)."""
        h, w = image.shape[-2:]

        def one(x):
            return F.interpolate(convert(self.output(x)), size=(h, w), mode="bilinear", align_corners=False)

        return 0.5 * (one(image) + one(image.flip(-1)).flip(-1))

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """The normalised depth (depth over 10 m, in [0.01, 1]; larger = farther) of ``(B, 3, H, W)`` linear RGB.

        As DenseDepth's evaluation: the prediction of the image and the mirrored prediction of its mirror
        are averaged, each taken to the image's size bilinearly from the network's half resolution.

        Args:
            image: ``(B, 3, H, W)`` linear RGB, H and W >= 32.

        Returns:
            ``(B, 1, H, W)`` on the network's device.

        Raises:
            ShapeError: not ``(B, 3, H, W)`` with sides >= 32.
        """
        return self._full_size(image, normalized_depth)

    def predict_disparity(self, image: torch.Tensor) -> torch.Tensor:
        """lensblur disparity (1 = nearest) of ``(B, 3, H, W)`` linear RGB: the network's inverse depth,
        mirror-averaged at the image's size as :meth:`predict`, min-max rescaled per image (relative: its metric
        range is not kept). The output is not clipped to DenseDepth's range first, so that a network whose
        output still lies outside it (early in training) gives its relative depth rather than a flat map.

        Returns:
            ``(B, 1, H, W)`` in [0, 1] on the network's device (all 0 for a constant output).
        """
        inverse = self._full_size(image, lambda y: y)
        lo = inverse.amin(dim=(1, 2, 3), keepdim=True)
        hi = inverse.amax(dim=(1, 2, 3), keepdim=True)
        return ((inverse - lo) / (hi - lo).clamp_min(1e-12)).clamp(0.0, 1.0)

    def validate(self, dataset, limit: int = 16) -> dict[str, float]:
        """Depth scores on up to ``limit`` items with disparity, as DenseDepth's ``compute_errors``.

        The prediction is :meth:`predict` times 10 m; the ground truth the item's disparity as metric depth
        (its ``meta["depth_range"]``, else :data:`ASSUMED_RANGE`), clipped to 0.1..10 m, over the whole frame
        (not the Eigen crop), leaving out disparity-0 pixels of items that report holes (NYU).

        Returns:
            ``val_abs_rel`` (mean |p - g| / g), ``val_rmse`` (metres), ``val_delta1`` (share of pixels with
            max(p/g, g/p) < 1.25) and ``val_loss`` (the training loss at half resolution), each the mean over
            items.
        """
        scores: dict[str, list[float]] = {"val_abs_rel": [], "val_rmse": [], "val_delta1": [], "val_loss": []}
        for i in range(min(limit, len(dataset))):
            item = dataset[i]
            if "disparity" not in item:
                raise InputError("val_dataset", expected="items with a disparity map", got="an item without one",
                                 fix="validate depth on a dataset with disparity (nyu, synth)")
            image = item["image"][None]
            disparity = item["disparity"][None].float()
            truth = disparity_to_depth(disparity, _item_range(item.get("meta"), ASSUMED_RANGE))
            truth = truth.clamp(MIN_DEPTH_M, MAX_DEPTH_M).to(next(self.network.parameters()).device)
            pred = self.predict(image) * MAX_DEPTH_M
            valid = torch.ones_like(truth, dtype=torch.bool)
            if (item.get("meta") or {}).get("holes"):
                valid = disparity.to(truth.device) > 0
            p, g = pred[valid], truth[valid]
            ratio = torch.maximum(p / g, g / p)
            scores["val_abs_rel"].append(float(((p - g).abs() / g).mean()))
            scores["val_rmse"].append(float(((p - g) ** 2).mean().sqrt()))
            scores["val_delta1"].append(float((ratio < 1.25).float().mean()))
            out = self.output(image)
            target = F.interpolate(inverse_depth_target(truth), size=out.shape[-2:], mode="area")
            scores["val_loss"].append(float(depth_loss(out, target, depth_weight=self.settings.depth_weight)[0]))
        return {k: float(np.mean(v)) if v else math.nan for k, v in scores.items()}


def _bottleneck(side: int) -> int:
    """The bottleneck's side for an input side: conv0 and pool0 round up, the three transitions down."""
    side = math.ceil(math.ceil(side / 2) / 2)
    for _ in range(3):
        side //= 2
    return side


def _check_size(image, *, training: bool = False) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
        raise ShapeError("image", expected="a (B, 3, H, W) tensor", got=f"{tuple(getattr(image, 'shape', ()))}",
                         fix="pass image_to_tensor(image)")
    b, _, h, w = image.shape
    if min(h, w) < _MIN_SIDE:
        raise ShapeError("image", expected=f"sides of at least {_MIN_SIDE} px (DenseNet halves them five times)",
                         got=f"{w}x{h}", fix="use a larger image or crop")
    if training and b * _bottleneck(h) * _bottleneck(w) < 2:
        raise InputError("crop", expected="more than one bottleneck value per channel for BatchNorm: crops of at "
                         "least 64 px with batch_size 1, or batch_size >= 2", got=f"{b} x {w}x{h}",
                         fix="crop=64, or batch_size=2")
