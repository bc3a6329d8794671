"""Trained baselines as methods to run: a checkpoint of ``lensblur train`` -> something that renders.

:func:`load_trained` reads a checkpoint's metadata, rebuilds the method it names with the config it records,
and loads its weights (safetensors; no pickle). :class:`TrainedMethod` wraps it for ``lensblur eval``
(``--method pix2pix --checkpoint RUN/last.safetensors``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from .._convert import image_to_tensor, tensor_to_image
from ..bokehdiff.training import BokehDiffTrainConfig, BokehDiffTrainer
from ..errors import InputError
from .bggan import BGGAN, BGGANConfig
from .cyclegan import CycleGAN, CycleGANConfig
from .densedepth import DenseDepth, DenseDepthConfig
from .pix2pix import Pix2Pix, Pix2PixConfig

__all__ = ["TRAINABLE", "TrainedMethod", "load_trained"]

# Method name -> (method class, config class).
TRAINABLE = {"pix2pix": (Pix2Pix, Pix2PixConfig), "cyclegan": (CycleGAN, CycleGANConfig),
             "bggan": (BGGAN, BGGANConfig), "depth": (DenseDepth, DenseDepthConfig),
             "bokehdiff": (BokehDiffTrainer, BokehDiffTrainConfig)}


def load_trained(path: str | os.PathLike, *, expected: str | None = None):
    """The method a checkpoint holds, built with its recorded config and loaded with its weights.

    Args:
        path: a weights file (``RUN/last.safetensors``, ``RUN/step-N/model.safetensors``) or a run folder.
        expected: the method the caller asked for; a checkpoint of another is refused.

    Returns:
        The method (e.g. :class:`~lensblur.baselines.Pix2Pix`), ready to ``predict``.

    Raises:
        ModelNotFoundError: no checkpoint at ``path``.
        InputError: not a lensblur checkpoint, one of another method, or of a method that cannot be loaded.
    """
    from ..train import load_weights, read_metadata

    meta = read_metadata(path)
    name = meta["method"]
    if expected is not None and name != expected:
        raise InputError("checkpoint", expected=f"a checkpoint of method {expected}", got=f"a {name} checkpoint",
                         fix=f"use method={name}, or a {expected} checkpoint")
    if name not in TRAINABLE:
        raise InputError("checkpoint", expected=f"a checkpoint of one of {', '.join(TRAINABLE)}", got=name,
                         fix="train one with lensblur train")
    method_class, config_class = TRAINABLE[name]
    # A method with networks used only as losses (BGGAN's VGG) is built without them: rendering needs none.
    build = getattr(method_class, "for_inference", method_class)
    method = build(config_class(**meta["config"]))
    load_weights(method, meta["path"])
    return method


class TrainedMethod:
    """A trained image-to-image baseline for ``lensblur eval``: it needs neither disparity nor a lens.

    Args:
        name: the method's name (``pix2pix``, ``cyclegan``).
        checkpoint: its checkpoint (see :func:`load_trained`).

    Raises:
        InputError: no checkpoint given, or one of another method.
    """

    needs_disparity = False
    needs_lens = False

    def __init__(self, name: str, checkpoint: str | os.PathLike | None = None):
        if checkpoint is None:
            raise InputError("checkpoint", expected=f"a {name} checkpoint to evaluate", got="none",
                             fix=f"train one with lensblur train {name} ... -o RUN, then pass checkpoint=RUN/last.safetensors")
        from ..train import read_metadata

        self.name = name
        self.method = load_trained(checkpoint, expected=name)
        self.training_data = read_metadata(checkpoint)["data"]

    def predict(self, image: np.ndarray, *, disparity=None, lens=None, meta: dict[str, Any] | None = None) -> np.ndarray:
        with torch.inference_mode():
            return tensor_to_image(self.method.predict(image_to_tensor(image)))
