"""Portrait mode: a subject mask becomes the in-focus layer and the rest a background plane.

The mask comes from the user (any grey image of the photo's size, white = subject; an RGBA cut-out uses
its alpha) or from MediaPipe's person/selfie segmenter (Tasks API, ``ImageSegmenter``) when its
``.tflite`` model is available. The soft mask ``m`` in [0, 1] gives

* without a coarse depth: ``disparity = m`` (the subject at 1, the background plane at 0), so focusing at
  disparity 1 keeps the subject sharp and blurs the background by the full ``blur``;
* with a coarse depth ``c`` (any other source): ``disparity = m + (1 - m) * clip(c / c_subject, 0, 1)``
  where ``c_subject`` is the median of ``c`` under the subject: the subject sits at exactly 1 and the
  background keeps its depth order, scaled so that the subject's depth maps to 1.

The segmenter model: MediaPipe's ``selfie_segmentation.tflite`` ships inside the legacy
``mediapipe==0.10.21`` wheel on PyPI; :func:`extract_segmenter` copies it out of a downloaded wheel (see
docs/depth.md). lensblur looks for it at ``model=``, ``$LENSBLUR_SEGMENTER_MODEL``, then
``~/.cache/lensblur/selfie_segmentation.tflite``.

The whole set-up is one command (:data:`SETUP_COMMAND`): ``pip install 'lensblur[portrait]' && python -m
lensblur.depth.subject``, the second part downloading that wheel with pip (no dependencies) and copying the
model out. When something is missing, :func:`segment_subject` says everything that is, in one message.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .._convert import to_srgb8
from .._optional import require
from ..errors import InputError, ModelNotFoundError, ShapeError
from ..io import read_mask
from ._base import DepthResult, DepthSource

__all__ = [
    "SEGMENTER_ENV",
    "SEGMENTER_MEMBER",
    "SETUP_COMMAND",
    "SubjectDepth",
    "SubjectSetupError",
    "download_segmenter",
    "extract_segmenter",
    "missing_for_subject_masks",
    "read_subject_mask",
    "segment_subject",
    "segmenter_path",
    "subject_disparity",
]

logger = logging.getLogger(__name__)

SEGMENTER_ENV = "LENSBLUR_SEGMENTER_MODEL"
SEGMENTER_MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
_DEFAULT = Path("~/.cache/lensblur/selfie_segmentation.tflite")
SETUP_COMMAND = "pip install -c constraints.txt 'lensblur[portrait]' && python -m lensblur.depth.subject"
"""The one command that sets up automatic subject masks: mediapipe, then the segmenter model."""
_HOW_TO_GET = (f"{SETUP_COMMAND} (downloads the mediapipe==0.10.21 wheel with pip download --no-deps and copies "
               "selfie_segmentation.tflite out of it to ~/.cache/lensblur/); or give your own mask image "
               "(--mask MASK.png; mask= in Python)")


def read_subject_mask(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """A subject mask (:func:`lensblur.io.read_mask`) that must mark both subject and background.

    Args:
        path: the mask image (white = subject).
        shape: ``(H, W)`` of the photo.

    Returns:
        ``H x W`` float32 in [0, 1].

    Raises:
        InputError: a constant mask (all subject or all background), besides :func:`~lensblur.io.read_mask`'s.
    """
    arr = read_mask(path, shape)
    if float(arr.max()) - float(arr.min()) < 1e-3:
        raise InputError("mask", expected="a mask with both subject (white) and background (black)",
                         got=f"a constant mask ({float(arr.min()):g})", fix="check the mask file")
    return arr


def segmenter_path(model: str | os.PathLike | None = None) -> Path:
    """Where the segmenter ``.tflite`` is: ``model``, ``$LENSBLUR_SEGMENTER_MODEL`` or the default cache.

    Args:
        model: the ``.tflite`` file, or None to look in the environment variable and then the cache.

    Returns:
        The path of the file.

    Raises:
        ModelNotFoundError: not there (the message says how to get it).
    """
    candidates = [Path(model).expanduser()] if model else []
    if not candidates and os.environ.get(SEGMENTER_ENV):
        candidates.append(Path(os.environ[SEGMENTER_ENV]).expanduser())
    if not candidates:
        candidates.append(_DEFAULT.expanduser())
        installed = _installed_segmenter()
        if installed is not None:
            candidates.append(installed)
    for path in candidates:
        if path.is_file():
            return path
    raise ModelNotFoundError("MediaPipe selfie segmenter (selfie_segmentation.tflite)",
                             looked_in=[str(p) for p in candidates], how_to_get=_HOW_TO_GET)


class SubjectSetupError(ModelNotFoundError):
    """Automatic subject masks are not set up: every missing piece, and the one command that brings them all.

    Args:
        missing: the missing pieces (:func:`missing_for_subject_masks`).
    """

    def __init__(self, missing: list[str]):
        self.what = "automatic subject masks"
        self.looked_in = list(missing)
        self.how_to_get = _HOW_TO_GET
        Exception.__init__(self, f"automatic subject masks need {len(missing)} more thing"
                           f"{'s' if len(missing) > 1 else ''}: {'; '.join(missing)}. Fix: {_HOW_TO_GET}")


def _installed_segmenter() -> Path | None:
    """The model inside an installed mediapipe package that still ships it (0.10.21), found without importing it."""
    spec = importlib.util.find_spec("mediapipe")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / Path(SEGMENTER_MEMBER).relative_to("mediapipe")
        if path.is_file():
            return path
    return None


def missing_for_subject_masks(model: str | os.PathLike | None = None) -> list[str]:
    """Everything automatic subject masks still need, each as a short phrase (empty when all is there).

    Args:
        model: the segmenter ``.tflite`` (see :func:`segmenter_path`).

    Returns:
        The missing pieces: the package ``mediapipe``, the model file (with where lensblur looked).
    """
    missing = []
    if importlib.util.find_spec("mediapipe") is None:
        missing.append("the package 'mediapipe' (not installed)")
    try:
        segmenter_path(model)
    except ModelNotFoundError as exc:
        missing.append(f"the segmenter model selfie_segmentation.tflite (not in {', '.join(exc.looked_in)})")
    return missing


def extract_segmenter(wheel: str | os.PathLike, destination: str | os.PathLike | None = None) -> Path:
    """Copy ``selfie_segmentation.tflite`` out of a mediapipe wheel (or a folder holding one).

    Args:
        wheel: a ``mediapipe-*.whl`` file, or a folder holding one (the last by name is used).
        destination: where to write, by default ``~/.cache/lensblur/selfie_segmentation.tflite``.

    Returns:
        The path written.

    Raises:
        InputError: no wheel in the folder, not a zip file, or a wheel without the segmenter.
    """
    wheel = Path(wheel)
    if wheel.is_dir():
        found = sorted(wheel.glob("mediapipe-*.whl"))
        if not found:
            raise InputError("wheel", expected="a folder with a mediapipe-*.whl file", got=str(wheel),
                             fix="pip download mediapipe==0.10.21 --no-deps --only-binary=:all: -d FOLDER")
        wheel = found[-1]
    target = Path(destination).expanduser() if destination else _DEFAULT.expanduser()
    try:
        with zipfile.ZipFile(wheel) as zf:
            if SEGMENTER_MEMBER not in zf.namelist():
                raise InputError("wheel", expected=f"a mediapipe wheel containing {SEGMENTER_MEMBER}",
                                 got=wheel.name, fix="use mediapipe==0.10.21, the last wheel that ships it")
            target.parent.mkdir(parents=True, exist_ok=True)
            from ..io import atomic_path

            with zf.open(SEGMENTER_MEMBER) as src, atomic_path(target) as tmp, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as exc:
        raise InputError("wheel", expected="a wheel (zip) file", got=f"{wheel} ({exc})",
                         fix="download it again with pip download") from exc
    return target


def segment_subject(image: np.ndarray, *, model: str | os.PathLike | None = None) -> np.ndarray:
    """Person/selfie mask from MediaPipe's Tasks ``ImageSegmenter``.

    Args:
        image: ``H x W x 3`` float32 linear RGB.
        model: the segmenter ``.tflite`` (see :func:`segmenter_path`).

    Returns:
        ``H x W`` float32 in [0, 1], 1 = subject.

    Raises:
        ModelNotFoundError: the segmenter file is not found.
        MissingDependencyError: mediapipe is not installed (``lensblur[portrait]``).
    """
    missing = missing_for_subject_masks(model)
    if missing:
        raise SubjectSetupError(missing)
    path = segmenter_path(model)
    mp = require("mediapipe", extra="portrait", feature="automatic subject masks")
    from mediapipe.tasks.python import BaseOptions, vision

    pixels = to_srgb8(image)
    options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                           output_confidence_masks=True, output_category_mask=False)
    segmenter = vision.ImageSegmenter.create_from_options(options)
    try:
        result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels))
        masks = result.confidence_masks
        mask = np.array(masks[-1].numpy_view(), dtype=np.float32)
    finally:
        segmenter.close()
    if mask.ndim == 3:
        mask = mask[..., 0]
    logger.info("MediaPipe segmenter %s: subject covers %.1f%% of the photo", path.name, 100 * float(mask.mean()))
    return np.clip(mask, 0.0, 1.0)


def subject_disparity(mask: np.ndarray, coarse: np.ndarray | None = None) -> np.ndarray:
    """Disparity from a soft subject mask, optionally over a coarse disparity (see the module docstring).

    Args:
        mask: ``H x W`` in [0, 1] (clipped), 1 = subject.
        coarse: ``H x W`` disparity to shape the background, or None for a flat background at 0.

    Returns:
        ``H x W`` float32 disparity in [0, 1], the subject at 1.

    Raises:
        InputError: ``coarse`` is given and no pixel of ``mask`` is above 0.5.
    """
    m = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    if coarse is None:
        return m.copy()
    c = np.asarray(coarse, dtype=np.float32)
    inside = m > 0.5
    if not inside.any():
        raise InputError("mask", expected="a subject covering some pixels (values > 0.5)", got="an empty subject",
                         fix="check the mask")
    reference = float(np.median(c[inside]))
    if reference <= 0:
        background = np.zeros_like(c)
    else:
        background = np.clip(c / reference, 0.0, 1.0)
    return np.clip(m + (1.0 - m) * background, 0.0, 1.0).astype(np.float32)


class SubjectDepth:
    """Portrait-mode depth: the subject in focus, the background a plane (or a coarse depth behind it).

    Args:
        mask: a mask image path, an ``H x W`` array in [0, 1], or a callable ``mask(image) -> H x W`` array
            (e.g. :class:`~lensblur.depth.embedded.PortraitMatte`, the matte an iPhone stored); None runs the
            MediaPipe segmenter.
        segmenter: the segmenter's ``.tflite`` (see :func:`segmenter_path`).
        coarse: another :class:`DepthSource` to shape the background.

    ``estimate(image)`` takes the ``H x W x 3`` linear photo and returns a :class:`DepthResult` focused on
    the subject; it raises :class:`ShapeError` for a mask of another size and :class:`InputError` for a
    constant one.
    """

    name = "subject"

    def __init__(self, mask=None, *, segmenter: str | os.PathLike | None = None,
                 coarse: DepthSource | None = None):
        self.mask = mask
        self.segmenter = segmenter
        self.coarse = coarse

    def estimate(self, image: np.ndarray) -> DepthResult:
        h, w = image.shape[:2]
        if self.mask is None:
            mask = segment_subject(image, model=self.segmenter)
            what = "MediaPipe selfie segmenter"
        elif callable(self.mask):
            mask = np.asarray(self.mask(image), dtype=np.float32)
            if mask.shape != (h, w):
                raise ShapeError("mask", expected=f"a mask of the photo's size {w}x{h}", got=f"shape {mask.shape}",
                                 fix="return a mask of the photo's size")
            what = getattr(self.mask, "name", "subject mask")
        elif isinstance(self.mask, np.ndarray):
            mask = np.asarray(self.mask, dtype=np.float32)
            if mask.shape != (h, w):
                raise ShapeError("mask", expected=f"a mask of the photo's size {w}x{h}",
                                 got=f"{mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]}",
                                 fix="resize the mask to the photo")
            what = "subject mask array"
        else:
            mask = read_subject_mask(self.mask, (h, w))
            what = f"subject mask {Path(self.mask).name}"
        if self.coarse is None:
            return DepthResult(disparity=subject_disparity(mask), depth_range=None,
                               source=f"{what} ({100 * float(mask.mean()):.0f}% subject at disparity 1, "
                                      f"background plane at 0)", focus=1.0)
        coarse = self.coarse.estimate(image)
        return DepthResult(disparity=subject_disparity(mask, coarse.disparity), depth_range=None,
                           source=f"{what} over {coarse.source}", focus=1.0)


def download_segmenter(destination: str | os.PathLike | None = None) -> Path:
    """Download the ``mediapipe==0.10.21`` wheel with pip (no dependencies, into a temporary folder) and copy the
    segmenter model out of it (:func:`extract_segmenter`).

    Args:
        destination: where to write, by default ``~/.cache/lensblur/selfie_segmentation.tflite``.

    Returns:
        The path written.

    Raises:
        InputError: pip could not download the wheel.
    """
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "mediapipe==0.10.21", "--no-deps", "--only-binary=:all:",
                   "-d", folder, "--quiet"]
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            raise InputError("wheel", expected="the mediapipe==0.10.21 wheel from pip download", got=f"pip exit code "
                             f"{done.returncode}", fix="check the network, or download the wheel yourself and run "
                             "python -m lensblur.depth.subject --wheel FILE")
        return extract_segmenter(folder, destination)


def main(argv: list[str] | None = None) -> int:
    """``python -m lensblur.depth.subject [--wheel FILE]``: put the segmenter model where lensblur looks, then say
    what else automatic subject masks need (nothing, once mediapipe is installed)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lensblur.depth.subject",
                                     description="Set up automatic subject masks (--depth-from subject without "
                                                 "--mask): the MediaPipe selfie segmenter model.")
    parser.add_argument("--wheel", type=Path, help="a downloaded mediapipe-0.10.21 wheel (default: pip download it)")
    parser.add_argument("--to", type=Path, help="where to write the model (default ~/.cache/lensblur/)")
    args = parser.parse_args(argv)
    try:
        out = extract_segmenter(args.wheel, args.to) if args.wheel else download_segmenter(args.to)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"segmenter model: {out}")
    missing = missing_for_subject_masks(out)
    if missing:
        print("still missing: " + "; ".join(missing) + ". Fix: pip install -c constraints.txt 'lensblur[portrait]'",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
