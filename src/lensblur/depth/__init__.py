"""Depth from whatever the user has, as lensblur disparity (``H x W`` float32 in [0, 1], 1 = nearest).

Sources (one module each, all following :class:`DepthSource`: built from their inputs, then
``estimate(image) -> DepthResult``):

* :class:`FileDepth` (``file.py``): a disparity map file;
* :class:`EmbeddedDepth` (``embedded.py``, with ``heif.py``, ``jpeg.py``, ``mpf.py`` and ``stored.py``): depth
  inside phone photos, HEIC/HEIF auxiliary depth, iPhone portrait JPEGs (MPF frames), Dynamic Depth and
  GDepth JPEGs, with the metric range, the stored focus and the sharp original where the file has them;
* :class:`ModelDepth` (``model.py``): transformers monocular depth models from a folder or the HF cache;
* :class:`TrainedDepth` (``trained.py``): a depth network trained with ``lensblur train depth`` (a run folder
  or ``.safetensors`` checkpoint given as the model; :func:`monocular_source` tells the two kinds apart);
* :class:`StereoDepth` (``stereo.py``): a rectified left/right pair (SGBM, left-right check, WLS), also the
  two views of a stereo MPO file or a spatial HEIC;
* :class:`SubjectDepth` (``subject.py``): a subject mask (user image or MediaPipe) as portrait mode.

:func:`refine` (``refine.py``) snaps a map's edges to the photo's. :func:`resolve` is what the command
line calls. Heavy packages (OpenCV, pillow-heif, transformers, MediaPipe) are imported only when used.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._convert import as_image, decode_srgb
from ..choices import DEPTH_SOURCES
from ..errors import InputError
from ._base import DepthResult, DepthSource
from .embedded import EmbeddedDepth, PortraitMatte, has_embedded_depth, has_portrait_matte
from .file import FileDepth
from .heif import read_photo, register_heif
from .model import MODEL_ENV, ModelDepth
from .refine import refine, upsample
from .stereo import StereoDepth
from .subject import SubjectDepth
from .trained import TrainedDepth, monocular_source

__all__ = [
    "SOURCES",
    "DepthResult",
    "DepthSource",
    "EmbeddedDepth",
    "FileDepth",
    "ModelDepth",
    "PortraitMatte",
    "StereoDepth",
    "SubjectDepth",
    "TrainedDepth",
    "build_source",
    "monocular_source",
    "read_photo",
    "refine",
    "register_heif",
    "resolve",
    "upsample",
]

logger = logging.getLogger(__name__)

WAYS = ("disparity_path=FILE (a disparity map); a phone photo with depth inside (iPhone HEIC or portrait "
        "JPEG, Pixel portrait or Lens Blur JPEG, a stereo MPO or spatial HEIC); model=PATH_OR_ID or the LENSBLUR_DEPTH_MODEL variable (a monocular model); right=RIGHT_IMAGE "
        "(a stereo pair); source=subject with mask=MASK.png (portrait mode)")


@dataclass(frozen=True)
class _Inputs:
    """What the caller gave :func:`build_source`."""

    image_path: object
    disparity_path: object
    model: object
    mask: object
    right: object


def _configured_model(model) -> str | None:
    return str(model) if model else (os.environ.get(MODEL_ENV) or None)


def _auto(given: _Inputs) -> DepthSource:
    if given.disparity_path is not None:
        return FileDepth(given.disparity_path)
    if given.right is not None:
        return StereoDepth(given.right)
    if given.mask is not None:
        return SubjectDepth(given.mask)
    if given.image_path is not None and has_embedded_depth(given.image_path):
        return EmbeddedDepth(given.image_path)
    if given.image_path is not None:
        pair = _stereo_views(given.image_path)
        if pair is not None:
            return pair
    configured = _configured_model(given.model)
    if configured:
        return monocular_source(configured)
    raise InputError("source", expected="a way to get depth for this photo",
                     got=f"{given.image_path}: no disparity file, no depth inside the photo, no model configured",
                     fix="give one of: " + WAYS)


def _needed(value, argument: str, expected: str, fix: str):
    """``value``, which the chosen source needs; an error naming ``argument`` when it was not given."""
    if not value:
        raise InputError(argument, expected=expected, got="none", fix=fix)
    return value


def _file(given: _Inputs) -> DepthSource:
    return FileDepth(_needed(given.disparity_path, "disparity_path", "a disparity file with source=file",
                             "pass disparity_path=FILE"))


def _embedded(given: _Inputs) -> DepthSource:
    return EmbeddedDepth(_needed(given.image_path, "image_path", "the photo's path to read its embedded depth",
                                 "pass image_path=PHOTO"))


def _model(given: _Inputs) -> DepthSource:
    return monocular_source(_needed(_configured_model(given.model), "model",
                                    "a model folder, a cached model id or a lensblur depth run",
                                    f"pass model=PATH_OR_ID or set {MODEL_ENV}"))


def _stereo(given: _Inputs) -> DepthSource:
    if given.right is None and given.image_path is not None:
        inside = _stereo_views(given.image_path)      # the other view of a stereo MPO or a spatial HEIC
        if inside is not None:
            return inside
    return StereoDepth(_needed(given.right, "right", "the right view of the stereo pair (or a photo that holds "
                               "both views: a stereo MPO or a spatial HEIC)",
                               "pass right=RIGHT_IMAGE (the photo is the left view)"))


def _stereo_views(image_path) -> DepthSource | None:
    """A :class:`StereoDepth` on the other view of a stereo MPO or a spatial HEIC photo, or None for any other
    file."""
    from pathlib import Path

    from .heif import read_view, stereo_views
    from .mpf import stereo_pair

    if not Path(image_path).is_file():
        return None
    views = stereo_views(image_path)
    if views is not None and views.photo_is is not None:
        def partner() -> np.ndarray:
            return np.ascontiguousarray(decode_srgb(read_view(image_path, views.partner), 255.0))

        other = "left" if views.photo_is == "right" else "right"
        return StereoDepth(partner, photo_is=views.photo_is,
                           label=f"the {other} view (item {views.partner}) of the spatial HEIC {Path(image_path).name}",
                           details={"format": "spatial HEIC (ster group)",
                                    "views": {"left": views.left, "right": views.right}})
    pair = stereo_pair(image_path)
    if pair is None:
        return None
    def right() -> np.ndarray:
        from ..io.image import orient, read_orientation
        from .mpf import frame_image

        view = orient(frame_image(image_path, pair[1]), read_orientation(image_path))
        return np.ascontiguousarray(decode_srgb(view, 255.0))

    return StereoDepth(right, label=f"frame {pair[1]} of the stereo MPO {Path(image_path).name}",
                       details={"format": "stereo MPO", "views": {"left": 0, "right": pair[1]}})


def _subject(given: _Inputs) -> DepthSource:
    coarse = None
    mask = given.mask
    if given.disparity_path is not None:
        coarse = FileDepth(given.disparity_path)
    elif given.model:
        coarse = monocular_source(given.model)
    if mask is None and given.image_path is not None and has_portrait_matte(given.image_path):
        mask = PortraitMatte(given.image_path)
        if coarse is None and has_embedded_depth(given.image_path):
            coarse = EmbeddedDepth(given.image_path, use_original=False)
    return SubjectDepth(mask, coarse=coarse)


_FACTORIES: dict[str, Callable[[_Inputs], DepthSource]] = {
    "auto": _auto,
    "file": _file,
    "embedded": _embedded,
    "model": _model,
    "stereo": _stereo,
    "subject": _subject,
}
"""Source name -> the factory that builds that source from the caller's inputs (or raises)."""

SOURCES = DEPTH_SOURCES
"""The names :func:`build_source` and :func:`resolve` take (the command line's ``--depth-from`` choices),
the keys of ``_FACTORIES``."""


def build_source(image_path, *, source: str = "auto", disparity_path=None, model=None, mask=None,
                 right=None) -> DepthSource:
    """The :class:`DepthSource` that :func:`resolve` would use (without running it).

    Args:
        image_path: the photo's file (read for embedded depth), or None.
        source: one of :data:`SOURCES`; ``"auto"`` picks as :func:`resolve` says.
        disparity_path: a disparity map file (``"file"``; the coarse map of ``"subject"``).
        model: a depth model folder or cached id, or a ``lensblur train depth`` run or checkpoint (``"model"``;
            the coarse map of ``"subject"``); else ``$LENSBLUR_DEPTH_MODEL``.
        mask: a subject mask file (``"subject"``; without one, MediaPipe finds the subject).
        right: the right view of a stereo pair (``"stereo"``).

    Returns:
        The source, not yet run.

    Raises:
        InputError: ``source`` is not one of :data:`SOURCES`, or what it needs was not given.
    """
    factory = _FACTORIES.get(source) if isinstance(source, str) else None
    if factory is None:
        raise InputError("source", expected=f"one of {', '.join(SOURCES)}", got=source,
                         fix="pass source=auto (the default), or one of source=" + ", ".join(SOURCES[1:]))
    return factory(_Inputs(image_path=image_path, disparity_path=disparity_path, model=model, mask=mask,
                           right=right))


def resolve(image_path, image: np.ndarray, *, source: str | DepthSource = "auto", disparity_path=None,
            model=None, mask=None, right=None, refine: bool = False) -> DepthResult:
    """Depth for the photo ``image`` (linear ``H x W x 3``, read from ``image_path``) from ``source``: the
    name of a source or any :class:`DepthSource` object.

    ``"auto"`` picks, in order: ``disparity_path``; ``right`` (stereo); ``mask`` (subject); depth embedded
    in the photo; the other view of a stereo MPO or a spatial HEIC; ``model`` or ``$LENSBLUR_DEPTH_MODEL``; else an :class:`~lensblur.errors.InputError`
    listing the ways to supply depth. ``refine`` snaps the map's edges to the photo's
    (:func:`lensblur.depth.refine`).

    Args:
        image_path: the photo's file, or None.
        image: ``H x W x 3`` float32 linear RGB, the photo.
        source: one of :data:`SOURCES`, or any :class:`DepthSource`.
        disparity_path, model, mask, right: the inputs of :func:`build_source`.
        refine: snap the map's edges to the photo's.

    Returns:
        The :class:`DepthResult`, its disparity ``H x W`` (the photo's size; the size of ``result.photo``
        when the source gives the photo to render instead, the sharp original a phone file holds).

    Raises:
        InputError: as :func:`build_source`; ``image`` is not one photo; the source fails (each says why).
        ShapeError: ``image`` is not ``H x W x 3``.
        MissingDependencyError, ModelNotFoundError: the source needs a package or weights that are missing.
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
    if result.photo is not None:      # the file's own sharp original: the map matches it, and it is the photo
        image = result.photo
    if result.disparity.shape != image.shape[:2]:
        raise InputError("source", expected=f"a map of the photo's size {image.shape[1]}x{image.shape[0]}",
                         got=f"{result.disparity.shape[1]}x{result.disparity.shape[0]} from {result.source}",
                         fix="report this: every source must match the photo")
    if refine:
        from .refine import refine as _refine

        result = dataclasses.replace(result, disparity=_refine(image, result.disparity),
                                     source=result.source + ", edge-refined")
    logger.info("depth: %s", result.source)
    return result
