"""Depth from whatever the user has, as lensblur disparity (``H x W`` float32 in [0, 1], 1 = nearest).

Sources (one module each, all following :class:`DepthSource`: built from their inputs, then
``estimate(image) -> DepthResult``):

* :class:`FileDepth` (``file.py``): a disparity map file;
* :class:`EmbeddedDepth` (``embedded.py``, with ``heif.py`` and ``jpeg.py``): depth inside phone photos,
  HEIC/HEIF auxiliary depth, Dynamic Depth and GDepth JPEGs, with the metric range;
* :class:`ModelDepth` (``model.py``): transformers monocular depth models from a folder or the HF cache;
* :class:`StereoDepth` (``stereo.py``): a rectified left/right pair (SGBM, left-right check, WLS);
* :class:`SubjectDepth` (``subject.py``): a subject mask (user image or MediaPipe) as portrait mode.

:func:`refine` (``refine.py``) snaps a map's edges to the photo's. :func:`resolve` is what the command
line calls. Heavy packages (OpenCV, pillow-heif, transformers, MediaPipe) are imported only when used.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .._convert import as_image
from ..errors import InputError
from ._base import DepthResult, DepthSource
from .embedded import EmbeddedDepth, has_embedded_depth
from .file import FileDepth
from .heif import read_photo, register_heif
from .model import MODEL_ENV, ModelDepth
from .refine import refine, upsample
from .stereo import StereoDepth
from .subject import SubjectDepth

__all__ = [
    "SOURCES",
    "DepthResult",
    "DepthSource",
    "EmbeddedDepth",
    "FileDepth",
    "ModelDepth",
    "StereoDepth",
    "SubjectDepth",
    "build_source",
    "read_photo",
    "refine",
    "register_heif",
    "resolve",
    "upsample",
]

log = logging.getLogger(__name__)

SOURCES = ("auto", "file", "embedded", "model", "stereo", "subject")

WAYS = ("--disparity FILE (a disparity map); a phone photo with depth inside (iPhone HEIC, Pixel "
        "portrait JPEG); --depth-model PATH_OR_ID or the LENSBLUR_DEPTH_MODEL variable (a monocular model); "
        "--right RIGHT_IMAGE (a stereo pair); --depth-from subject [--mask MASK.png] (portrait mode)")


def _configured_model(model) -> str | None:
    return str(model) if model else (os.environ.get(MODEL_ENV) or None)


def build_source(image_path, *, source: str = "auto", disparity_path=None, model=None, mask=None,
                 right=None) -> DepthSource:
    """The :class:`DepthSource` that :func:`resolve` would use (without running it)."""
    if source not in SOURCES:
        raise InputError("source", expected=f"one of {', '.join(SOURCES)}", got=source,
                         fix="pass --depth-from auto (the default), embedded, model, stereo or subject")
    if source == "auto":
        if disparity_path is not None:
            return FileDepth(disparity_path)
        if right is not None:
            return StereoDepth(right)
        if mask is not None:
            return SubjectDepth(mask)
        if image_path is not None and has_embedded_depth(image_path):
            return EmbeddedDepth(image_path)
        configured = _configured_model(model)
        if configured:
            return ModelDepth(configured)
        raise InputError("depth", expected="a way to get depth for this photo",
                         got=f"{image_path}: no disparity file, no depth inside the photo, no model configured",
                         fix="give one of: " + WAYS)
    if source == "file":
        if disparity_path is None:
            raise InputError("disparity", expected="a disparity file with --depth-from file", got="none",
                             fix="pass --disparity FILE")
        return FileDepth(disparity_path)
    if source == "embedded":
        if image_path is None:
            raise InputError("photo", expected="the photo's path to read its embedded depth", got="none",
                             fix="pass the photo file")
        return EmbeddedDepth(image_path)
    if source == "model":
        configured = _configured_model(model)
        if not configured:
            raise InputError("depth model", expected="a model folder or cached model id", got="none",
                             fix=f"pass --depth-model PATH_OR_ID or set {MODEL_ENV}")
        return ModelDepth(configured)
    if source == "stereo":
        if right is None:
            raise InputError("right", expected="the right view of the stereo pair", got="none",
                             fix="pass --right RIGHT_IMAGE (the photo is the left view)")
        return StereoDepth(right)
    coarse = None
    if disparity_path is not None:
        coarse = FileDepth(disparity_path)
    elif model:
        coarse = ModelDepth(model)
    return SubjectDepth(mask, coarse=coarse)


def resolve(image_path, image: np.ndarray, *, source: str | DepthSource = "auto", disparity_path=None,
            model=None, mask=None, right=None, refine: bool = False) -> DepthResult:
    """Depth for the photo ``image`` (linear ``H x W x 3``, read from ``image_path``) from ``source``: the
    name of a source or any :class:`DepthSource` object.

    ``"auto"`` picks, in order: ``disparity_path``; ``right`` (stereo); ``mask`` (subject); depth embedded
    in the photo; ``model`` or ``$LENSBLUR_DEPTH_MODEL``; else an :class:`~lensblur.errors.InputError`
    listing the ways to supply depth. ``refine`` snaps the map's edges to the photo's
    (:func:`lensblur.depth.refine`). The result has the photo's size.
    """
    image = as_image(image)
    if image.ndim != 3:
        raise InputError("image", expected="one H x W x 3 photo", got=f"shape {image.shape}", fix="pass one image")
    if isinstance(source, str):
        chosen = build_source(image_path, source=source, disparity_path=disparity_path, model=model, mask=mask,
                              right=right)
    elif isinstance(source, DepthSource):
        chosen = source
    else:
        raise InputError("source", expected="a source name or an object with estimate(image) -> DepthResult",
                         got=type(source).__name__, fix=f"use one of {', '.join(SOURCES)}")
    result = chosen.estimate(image)
    if result.disparity.shape != image.shape[:2]:
        raise InputError("depth", expected=f"a map of the photo's size {image.shape[1]}x{image.shape[0]}",
                         got=f"{result.disparity.shape[1]}x{result.disparity.shape[0]} from {result.source}",
                         fix="report this: every source must match the photo")
    if refine:
        from .refine import refine as _refine

        result = DepthResult(disparity=_refine(image, result.disparity), depth_range=result.depth_range,
                             source=result.source + ", edge-refined", focus=result.focus)
    log.info("depth: %s", result.source)
    return result
