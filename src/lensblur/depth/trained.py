"""Monocular depth from a depth network trained with ``lensblur train depth`` (DenseDepth).

``--depth-model RUN`` (a run folder) or ``--depth-model RUN/last.safetensors`` gives the network's relative
inverse depth, min-max rescaled to [0, 1] like the relative transformers models (:mod:`.model`): the metric
range is not carried. :func:`monocular_source` is the one place that tells the two kinds of model apart: a
run folder (``run.json`` or ``last.safetensors`` in it) or a ``.safetensors`` file is a lensblur checkpoint,
anything else a transformers model.

The network itself lives in :mod:`lensblur.baselines` (on top of :mod:`lensblur.train`); it is imported only
when such a checkpoint is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._convert import image_to_tensor
from ..errors import InputError
from ._base import DepthResult, DepthSource

__all__ = ["TrainedDepth", "is_trained_checkpoint", "monocular_source"]

METHOD = "depth"
"""The ``lensblur train`` method whose checkpoints give depth."""


def is_trained_checkpoint(model: str | os.PathLike) -> bool:
    """Whether ``model`` names a lensblur training run or checkpoint rather than a transformers model.

    Args:
        model: what ``--depth-model`` was given.

    Returns:
        True for a folder holding ``run.json`` or ``last.safetensors``, or a ``.safetensors`` file.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return (path / "run.json").is_file() or (path / "last.safetensors").is_file()
    return path.suffix == ".safetensors"


class TrainedDepth:
    """Depth from a ``lensblur train depth`` checkpoint, loaded on the first :meth:`estimate`.

    Args:
        checkpoint: the run folder or weights file.
        device: where to run the network (CPU when None).

    ``estimate(image)`` returns the ``H x W`` disparity of the network's mirror-averaged prediction, min-max
    rescaled, with no metric range. It raises :class:`~lensblur.errors.ModelNotFoundError` when there is no
    checkpoint, and :class:`InputError` for a checkpoint of another method or a constant prediction.
    """

    name = "model"

    def __init__(self, checkpoint: str | os.PathLike, *, device: str | torch.device | None = None):
        self.checkpoint = Path(checkpoint).expanduser()
        self.device = device
        self._method = None

    def _load(self):
        from ..baselines.trained import load_trained
        from ..train import read_metadata

        found = read_metadata(self.checkpoint)["method"]
        if found != METHOD:
            raise InputError("model", expected=f"a depth model: a checkpoint of lensblur train {METHOD}",
                             got=f"{self.checkpoint} (a {found} checkpoint)",
                             fix=f"pass model=RUN, a run of lensblur train {METHOD}, or a transformers depth model")
        method = load_trained(self.checkpoint, expected=METHOD)
        method.network.to(self.device or "cpu")
        return method

    def estimate(self, image: np.ndarray) -> DepthResult:
        if self._method is None:
            self._method = self._load()
        disparity = self._method.predict_disparity(image_to_tensor(image))[0, 0].to("cpu", torch.float32).numpy()
        if float(disparity.max()) <= float(disparity.min()):
            raise InputError("model", expected="a prediction with more than one depth", got="a constant map",
                             fix="train the network longer, or use another depth source")
        return DepthResult(disparity=np.ascontiguousarray(disparity), depth_range=None,
                           source=f"lensblur depth network {self.checkpoint} (relative inverse depth)")


def monocular_source(model: str | os.PathLike, *, device: str | torch.device | None = None) -> DepthSource:
    """The source for a monocular model: :class:`TrainedDepth` for a lensblur checkpoint
    (:func:`is_trained_checkpoint`), else :class:`~lensblur.depth.ModelDepth` (transformers).

    Args:
        model: a run folder, a ``.safetensors`` checkpoint, a transformers folder, a cached id or an alias.
        device: where to run it.

    Returns:
        The source, not yet loaded.
    """
    if is_trained_checkpoint(model):
        return TrainedDepth(model, device=device)
    from .model import ModelDepth

    return ModelDepth(model, device=device)
