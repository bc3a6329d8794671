"""Monocular depth with the transformers depth-estimation models, from a local folder or the HF cache.

Supported families and what their (post-processed) output means:

=================  ==============================  ===========================================================
``model_type``     example checkpoint              output -> lensblur disparity
=================  ==============================  ===========================================================
``depth_anything`` depth-anything/Depth-Anything-   relative inverse depth (``depth_estimation_type="relative"``)
                   V2-Small-hf                      -> min-max rescale; metric depth (``"metric"``) -> exact
``dpt``            Intel/dpt-large                  relative inverse depth -> min-max rescale
``zoedepth``       Intel/zoedepth-nyu-kitti         metric depth in metres -> exact, with its range
``depth_pro``      apple/DepthPro-hf                metric depth (from its field of view) -> exact
``glpn``           vinvino02/glpn-nyu               metric depth in metres -> exact
=================  ==============================  ===========================================================

Relative inverse depth is known only up to scale and shift; lensblur's disparity is an affine function of
inverse depth, so the min-max rescale is the right conversion (and the metric range stays unknown).
Metric depth ``z`` becomes ``(1/z - 1/far) / (1/near - 1/far)`` with ``near``/``far`` the map's extremes,
which are carried as the :class:`~lensblur.io.DepthRange`.

Nothing is downloaded: a model is a folder with ``config.json`` and weights, or a model id already in the
Hugging Face cache (``local_files_only=True``).
"""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path

import numpy as np
import torch

from .._convert import to_srgb8
from .._optional import hf_cache_dir, require
from ..errors import InputError, ModelNotFoundError
from ..io import depth_to_disparity
from ._base import DepthResult, normalize_inverse_depth

__all__ = ["ALIASES", "MODEL_ENV", "ModelDepth", "load_depth_model", "output_kind"]

logger = logging.getLogger(__name__)

MODEL_ENV = "LENSBLUR_DEPTH_MODEL"
# Short names for the usual checkpoints (model ids on the Hugging Face hub).
ALIASES = {
    "depth-anything-v2-small": "depth-anything/Depth-Anything-V2-Small-hf",
    "depth-anything-v2-base": "depth-anything/Depth-Anything-V2-Base-hf",
    "depth-anything-v2-large": "depth-anything/Depth-Anything-V2-Large-hf",
    "dpt-large": "Intel/dpt-large",
    "dpt-hybrid": "Intel/dpt-hybrid-midas",
    "zoedepth-nyu-kitti": "Intel/zoedepth-nyu-kitti",
    "depth-pro": "apple/DepthPro-hf",
}
_RELATIVE = {"dpt"}
_METRIC = {"zoedepth", "depth_pro", "glpn"}


def output_kind(config) -> str:
    """What a depth model outputs.

    Args:
        config: the model's transformers config.

    Returns:
        ``"relative"`` (inverse depth up to scale and shift) or ``"metric"`` (depth in metres).

    Raises:
        InputError: not a depth-estimation model lensblur knows.
    """
    model_type = getattr(config, "model_type", None)
    if model_type == "depth_anything":
        return "metric" if getattr(config, "depth_estimation_type", "relative") == "metric" else "relative"
    if model_type in _RELATIVE:
        return "relative"
    if model_type in _METRIC:
        return "metric"
    raise InputError("model", expected="a depth-estimation model (Depth Anything, DPT, ZoeDepth, Depth Pro, GLPN)",
                     got=f"a '{model_type}' model", fix="pass a depth-estimation checkpoint, e.g. "
                     "depth-anything/Depth-Anything-V2-Small-hf")


def _how_to_get(model_id: str) -> str:
    return (f"on a machine with internet run `huggingface-cli download {model_id}` (or "
            f"`snapshot_download('{model_id}')`) and copy the folder or the HF cache here; then pass the "
            f"folder as model=PATH or set {MODEL_ENV}")


def load_depth_model(model: str | os.PathLike, *, device: str | torch.device | None = None):
    """Load a depth model from a folder or a cached model id; never downloads.

    Args:
        model: a folder saved with ``save_pretrained``, a model id in the Hugging Face cache, or an alias
            from :data:`ALIASES`.
        device: where to put the model (CPU when None).

    Returns:
        ``(model, image_processor, kind)``, ``kind`` as :func:`output_kind`.

    Raises:
        ModelNotFoundError: the folder or the cached weights are not there.
        InputError: not a (complete) depth-estimation checkpoint.
        MissingDependencyError: transformers is not installed (``lensblur[depth]``).
    """
    transformers = require("transformers", extra="depth", feature="monocular depth models")
    name = str(model)
    model_id = ALIASES.get(name, name)
    path = Path(model_id).expanduser()
    is_folder = path.is_dir()
    looks_like_path = name.startswith((".", "~", os.sep)) or model_id.count("/") > 1
    if is_folder:
        if not (path / "config.json").is_file():
            raise InputError("model", expected="a model folder with config.json (saved with save_pretrained)",
                             got=f"{path} (no config.json)",
                             fix="pass the folder that holds config.json and the weights")
        source, local = str(path), {}
        looked = [str(path)]
    elif path.exists():
        raise InputError("model", expected="a model folder (with config.json) or a model id", got=f"{path} (a file)",
                         fix="pass the folder that holds config.json and the weights")
    elif looks_like_path:
        raise ModelNotFoundError(f"depth model folder {name}", looked_in=[str(path)],
                                 how_to_get="check the path, or pass a model id that is in the Hugging Face cache")
    else:
        source, local = model_id, {"local_files_only": True}
        cache = Path(hf_cache_dir(extra="depth", feature="monocular depth models"))
        looked = [str(cache / ("models--" + model_id.replace("/", "--")))]
    try:
        config = transformers.AutoConfig.from_pretrained(source, **local)
    except OSError as exc:
        raise ModelNotFoundError(f"depth model '{model_id}'", looked_in=looked, how_to_get=_how_to_get(model_id)) \
            from exc
    except ValueError as exc:
        raise InputError("model", expected="a transformers model folder", got=f"{source} ({exc})",
                         fix="pass a depth-estimation checkpoint folder") from exc
    kind = output_kind(config)
    try:
        net = transformers.AutoModelForDepthEstimation.from_pretrained(source, **local)
        processor = transformers.AutoImageProcessor.from_pretrained(source, **local)
    except OSError as exc:
        raise ModelNotFoundError(f"weights or image processor of depth model '{model_id}'", looked_in=looked,
                                 how_to_get=_how_to_get(model_id)) from exc
    except ValueError as exc:
        raise InputError("model", expected="a depth-estimation model with its image processor",
                         got=f"{source} ({exc})", fix="pass a complete depth-estimation checkpoint") from exc
    net.eval().to(device or "cpu")
    logger.info("loaded depth model %s (%s, %s output)", model_id, config.model_type, kind)
    return net, processor, kind


class ModelDepth:
    """Monocular depth from a transformers model, loaded on the first :meth:`estimate`.

    Args:
        model: a folder, a cached id, or an alias from :data:`ALIASES` (see :func:`load_depth_model`).
        device: where to run it (CPU when None).

    ``estimate(image)`` takes the ``H x W x 3`` linear photo and returns a :class:`DepthResult` of its size:
    relative models give a min-max rescaled inverse depth without a range, metric ones the disparity of
    their depths and its :class:`~lensblur.io.DepthRange`. It raises what :func:`load_depth_model` raises,
    and :class:`InputError` when the output carries no depth.
    """

    name = "model"

    def __init__(self, model: str | os.PathLike, *, device: str | torch.device | None = None):
        self.model = str(model)
        self.device = device
        self._loaded = None

    def estimate(self, image: np.ndarray) -> DepthResult:
        if self._loaded is None:
            self._loaded = load_depth_model(self.model, device=self.device)
        net, processor, kind = self._loaded
        h, w = image.shape[:2]
        pixels = to_srgb8(image)
        inputs = processor(images=pixels, return_tensors="pt").to(net.device)
        with torch.inference_mode():
            outputs = net(**inputs)
        post = processor.post_process_depth_estimation
        extra = {"source_sizes": [(h, w)]} if "source_sizes" in inspect.signature(post).parameters else {}
        result = post(outputs, target_sizes=[(h, w)], **extra)[0]
        values = result["predicted_depth"].detach().to("cpu", torch.float32).numpy()
        if values.shape != (h, w):
            values = torch.nn.functional.interpolate(torch.from_numpy(values)[None, None].float(), size=(h, w),
                                                     mode="bilinear", align_corners=False)[0, 0].numpy()
        label = f"{net.config.model_type} model {Path(self.model).name if Path(self.model).is_dir() else self.model}"
        if kind == "relative":
            disparity = normalize_inverse_depth(values, argument="model")
            return DepthResult(disparity=disparity, depth_range=None, source=f"{label} (relative inverse depth)")
        depth = np.asarray(values, dtype=np.float32)
        positive = np.isfinite(depth) & (depth > 0)
        if not positive.any():
            raise InputError("model", expected="positive metric depths in its output", got="none",
                             fix="check the model checkpoint")
        # resampling can overshoot below zero next to the nearest pixels: those are the nearest depth
        depth = np.where(np.isfinite(depth), np.maximum(depth, depth[positive].min()), depth[positive].max())
        if float(depth.max()) <= float(depth.min()):
            raise InputError("model", expected="an output depth map with more than one value",
                             got=f"constant {float(depth.min()):g} m", fix="check the model checkpoint")
        disparity, depth_range = depth_to_disparity(depth)
        return DepthResult(disparity=disparity, depth_range=depth_range,
                           source=f"{label} (metric depth {depth_range.near:.2f}..{depth_range.far:.2f} m)")
