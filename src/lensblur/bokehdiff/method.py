"""BokehDiff as a lensblur method (``lensblur render --method bokehdiff``, ``lensblur eval --method bokehdiff``).

Light to import: the factory loads diffusers and the weights only when it is called.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError
from ..lens import Aperture

__all__ = ["BokehDiffMethod", "bokehdiff"]

logger = logging.getLogger(__name__)

TILES = ("auto", "always", "never")


class BokehDiffMethod:
    """The :class:`~lensblur.methods.EvalMethod` of BokehDiff: a photo, its disparity and a lens -> bokeh.

    Args:
        pipeline: the :class:`~lensblur.bokehdiff.BokehDiffPipeline`.
        tile: the pipeline's ``tile``.

    Attributes:
        name: ``"bokehdiff"``; it needs a disparity map and a lens.
    """

    name = "bokehdiff"
    needs_disparity = True
    needs_lens = True

    def __init__(self, pipeline, *, tile: str = "auto"):
        self.pipeline = pipeline
        self.tile = tile
        self._warned = False

    def predict(self, image, *, disparity, lens, meta=None) -> np.ndarray:
        if lens.aperture != Aperture() and not self._warned:
            logger.warning("bokehdiff renders a round CoC: the aperture's shape is not used")
            self._warned = True
        return self.pipeline(image, disparity, lens, tile=self.tile).images


def bokehdiff(model=None, lora=None, vae_encoder=None, device=None, dtype=None, tile=None,
              tile_margin=None) -> BokehDiffMethod:
    """Load BokehDiff for ``lensblur render`` / ``eval`` (local files and the Hugging Face cache only).

    Args:
        model: the base model (default ``SG161222/RealVisXL_V5.0``): a diffusers folder, a single file or a
            cached id.
        lora: the LoRA file, folder or cached id (default ``zcx65535/bokehdiff``).
        vae_encoder: the partial VAE-encoder state dict (default: beside the LoRA; ``"none"``: the base's).
        device: ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
        dtype: ``float32`` (default, as released), ``float16`` or ``bfloat16``.
        tile: ``auto`` (512-px tiles above two tiles' area, default), ``always`` or ``never``.
        tile_margin: latent pixels of each tile kept as context only (default 0, the release; see
            :mod:`lensblur.bokehdiff.tiles`).

    Returns:
        The method.

    Raises:
        ModelNotFoundError: a model file is missing.
        InputError: weights for another base, or a bad option.
    """
    tile = "auto" if tile is None else str(tile)
    if tile not in TILES:
        raise InputError("tile", expected=f"one of {', '.join(TILES)}", got=tile, fix="tile=auto")
    from .constants import TILE_LATENTS
    from .loading import resolve_device, resolve_dtype
    from .pipeline import BokehDiffPipeline
    from .tiles import check_margin

    tile_margin = 0 if tile_margin is None else tile_margin
    check_margin(tile_margin, TILE_LATENTS)
    resolve_dtype(dtype, resolve_device(device))          # checked before anything loads
    pipeline = BokehDiffPipeline.from_pretrained(model, lora=lora, vae_encoder="auto" if vae_encoder is None
                                                 else vae_encoder, torch_dtype=dtype, device=device,
                                                 tile_margin=tile_margin)
    return BokehDiffMethod(pipeline, tile=tile)
