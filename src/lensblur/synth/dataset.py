"""Writing synthetic datasets: one directory per pair, a manifest, resumable, in parallel.

The layout is the contract with :mod:`lensblur.data`, which reads it as the ``synth`` dataset (also in
``docs/synth.md``)::

    ROOT/manifest.json
    ROOT/pairs/000000/{image.png, image16.png, image.pfm, disparity.png, alpha_00.png ..., target.png,
                       target16.png, target.pfm, params.json}
    ROOT/pairs/000000/layers.npz     with store_layers=True: every layer's premultiplied colour, alpha and
                                     disparity on the whole canvas (see lensblur.synth.layers)

A pair is written into ``pairs/.000000.tmp-XXXX/`` and appears by one atomic rename, ``params.json`` last,
so a directory without the leading dot and with ``params.json`` is complete; a resumed run redoes anything
else. Scene ``i`` depends on ``(seed, i)`` only, so the same command gives the same bytes, whatever the
number of workers or the order in which pairs finish.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from .._convert import decode_srgb, encode_gamma, quantize
from ..errors import InputError
from ..executor import Executor, LocalExecutor, check_shared_location
from ..io.files import (
    atomic_path,
    join_location,
    local_path,
    location_exists,
    make_folder,
    new_mode,
    upload_folder,
    url_filesystem,
)
from ..io.image import write_image
from .aperture import aperture_samples, grid_size
from .layers import LAYERS_FILE, save_layers
from .presets import PRESETS
from .scene import GENERATOR_VERSION, Scene, check_cutout, list_images
from .tracer import TraceResult, auto_samples, trace

__all__ = ["MANIFEST", "SynthReport", "pair_name", "save_pair", "synthesize", "write_pair"]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PAIRS = "pairs"


@dataclass(frozen=True)
class SynthReport:
    """What a run of :func:`synthesize` did.

    Args:
        root: the dataset folder (a URL for a remote one).
        written: pairs written by this run.
        skipped: pairs already complete, kept.
        seconds: wall time of the run.
    """

    root: Path | str
    written: int
    skipped: int
    seconds: float


def pair_name(index: int) -> str:
    """The folder name of a pair.

    Args:
        index: the pair's index, >= 0.

    Returns:
        Six digits, e.g. ``"000042"``.
    """
    return f"{index:06d}"


def _write_grey16(path: Path, values: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(quantize(values, 16)).save(path, format="PNG")


def _dump(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_pair(root: str | os.PathLike, index: int, seed: int, size: tuple[int, int], options: dict) -> Path:
    """Make scene ``index`` of the set ``seed``, trace it and write its pair directory atomically.

    Args:
        root: the dataset folder (the pair goes to ``root/pairs/NNNNNN``).
        index: the scene's index, >= 0.
        seed: the set's seed, >= 0.
        size: ``(W, H)`` of the frame.
        options: ``background_files``, ``foreground_files``, ``max_layers``, ``tilt``, ``lights`` and
            ``samples`` (None for automatic), as :func:`synthesize` prepares them.

    Returns:
        The pair's folder.
    """
    scene = PRESETS[options.get("preset", "lensblur")](
        index, seed, size, backgrounds=options.get("background_files"), foregrounds=options.get("foreground_files"),
        max_layers=options["max_layers"], tilt=options["tilt"], lights=options["lights"])
    samples = options["samples"] or auto_samples(scene.layers, blur=scene.blur,
                                                 focus_disparity=scene.focus_disparity)
    result = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity,
                   aperture=scene.aperture, samples=samples, margin=scene.margin)
    return save_pair(Path(root) / PAIRS, index, scene, result, samples, store_layers=options.get("store_layers", False))


def save_pair(pairs: Path, index: int, scene: Scene, result: TraceResult, samples: int, *,
              store_layers: bool = False, extra: dict | None = None) -> Path:
    """Write a traced scene as ``pairs/NNNNNN`` (through a temporary directory and one rename).

    Args:
        pairs: the folder of pairs.
        index: the pair's index.
        scene: the scene that was traced.
        result: what the tracer returned for it.
        samples: the aperture samples used (recorded in the pair's metadata).
        store_layers: also write ``layers.npz`` (:func:`lensblur.synth.layers.save_layers`), from which the
            scene can be traced again with another lens.
        extra: more entries for ``params.json``.

    Returns:
        The pair's folder.
    """
    final = pairs / pair_name(index)
    w, h = scene.size
    tmp = Path(tempfile.mkdtemp(prefix=f".{pair_name(index)}.tmp-", dir=pairs))
    try:
        m = scene.margin
        shown_image, shown_target = _displayed(scene, result.image), _displayed(scene, result.target)
        write_image(tmp / "image.png", shown_image)
        write_image(tmp / "image16.png", shown_image, bits=16)
        write_image(tmp / "image.pfm", result.image)
        _write_grey16(tmp / "disparity.png", result.disparity)
        for k, layer in enumerate(scene.layers):
            _write_grey16(tmp / f"alpha_{k:02d}.png", layer.alpha[m: m + h, m: m + w])
        write_image(tmp / "target.png", shown_target)
        write_image(tmp / "target16.png", shown_target, bits=16)
        write_image(tmp / "target.pfm", result.target)
        if store_layers:
            save_layers(tmp / LAYERS_FILE, scene.layers)
        params = dict(scene.params, **(extra or {}))
        params["samples"] = len(aperture_samples(scene.aperture, grid_size(samples)))
        params["samples_requested"] = samples
        (tmp / "params.json").write_text(_dump(params))
        os.chmod(tmp, new_mode(directory=True))     # mkdtemp made it 0700
        for item in tmp.iterdir():
            os.chmod(item, new_mode())
        if final.exists():  # an earlier, incomplete copy (no params.json): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _displayed(scene: Scene, linear: np.ndarray) -> np.ndarray:
    """What the 8/16-bit files of a pair hold, as the linear values write_image sRGB-encodes: the image
    itself, or for a gamma 2.2 preset the linear values whose sRGB codes are ``linear ** (1 / 2.2)``."""
    if scene.params.get("transfer") != "gamma2.2":
        return linear
    return decode_srgb(encode_gamma(linear), 1.0)


def _is_complete(path: Path) -> bool:
    return (path / "params.json").is_file()


def _make_pair(shared: tuple, index: int) -> int:
    """Pair ``index`` (an executor's item): written in place under a local root, or traced into a local
    temporary folder and uploaded to a remote one, ``params.json`` last."""
    root, seed, size, options, remote = shared
    if not remote:
        write_pair(root, index, seed, size, options)
        return index
    staging = Path(tempfile.mkdtemp(prefix="lensblur-synth-"))
    try:
        (staging / PAIRS).mkdir()
        folder = write_pair(staging, index, seed, size, options)
        upload_folder(folder, join_location(root, PAIRS, pair_name(index)), last=("params.json",))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return index


def _read_text(location) -> str | None:
    """The text at a local path or URL, None when there is no such file."""
    local = local_path(location)
    if local is not None:
        return local.read_text() if local.is_file() else None
    fs, path = url_filesystem(location, argument="out")
    return fs.cat_file(path).decode() if fs.isfile(path) else None


def _check_manifest(root, manifest: dict) -> None:
    path = join_location(root, MANIFEST)
    try:
        text = _read_text(path)
        if text is None:
            return
        old = json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError("out", expected=f"a dataset folder with a readable {MANIFEST}", got=f"{path} ({exc})",
                         fix="pass out=FOLDER, a new folder, or delete the broken manifest") from exc
    keys = ("generator", "generator_version", "seed", "size", "options")
    diff = [k for k in keys if old.get(k) != manifest.get(k)]
    if diff:
        raise InputError("out", expected="the same settings as the dataset already there (to resume it)",
                         got=f"{root} made with other {', '.join(diff)}: "
                             + ", ".join(f"{k}={old.get(k)!r}" for k in diff),
                         fix="use the original settings to resume, or pass out=FOLDER, a new folder")


# Bounds of what one pair may ask for: a side of MAX_SIDE pixels keeps a frame's tracing buffers within a few
# GB; MAX_SAMPLES aperture samples take minutes per megapixel already.
MIN_SIDE, MAX_SIDE = 32, 8192
MAX_SAMPLES = 16384


def _check_size(size) -> None:
    ok = (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in size))
    if not ok or not all(MIN_SIDE <= v <= MAX_SIDE for v in size):
        got = f"{size[0]}x{size[1]}" if ok else repr(size)
        raise InputError("size", expected=f"a frame from {MIN_SIDE}x{MIN_SIDE} to {MAX_SIDE}x{MAX_SIDE} pixels (W, H)",
                         got=got, fix="e.g. a frame of 512x384")


def synthesize(out: str | os.PathLike, count: int, *, size: tuple[int, int] = (768, 512), seed: int = 0,
               backgrounds: str | os.PathLike | None = None, foregrounds: str | os.PathLike | None = None,
               workers: int = 1, samples: int | None = None, max_layers: int = 4, tilt: float = 0.5,
               lights: bool = True, store_layers: bool = False, preset: str = "lensblur",
               progress: bool = True, executor: Executor | None = None) -> SynthReport:
    """Write ``count`` pairs (indices ``0 .. count - 1``) under ``out``; complete pairs already there are kept.

    A rerun with the same settings resumes; other settings are refused. The bytes of pair ``i`` depend on
    ``(seed, i)`` and the settings only, not on the executor or the number of workers.

    Args:
        out: the dataset folder (new, or an earlier dataset to resume): a path, or an fsspec URL
            (``s3://bucket/synth``; each pair is traced locally and uploaded, ``params.json`` last).
        count: pairs to have, >= 1.
        size: ``(W, H)`` of the frames, at least 32x32.
        seed: the set's seed, >= 0.
        backgrounds: a folder of photos to draw backgrounds from (procedural when None).
        foregrounds: a folder of RGBA cut-outs to draw foreground layers from (procedural when None).
        workers: processes (each with one torch thread), >= 1.
        samples: aperture samples per pair, >= 1 (None: :func:`lensblur.synth.auto_samples` per scene).
        max_layers: foreground layers per scene, 1..4.
        tilt: the chance, in [0, 1], that a layer is a tilted plane.
        lights: HDR lights on the background.
        preset: the scene distribution, ``"lensblur"`` (the default, lensblur's richer scenes) or ``"bokehdiff"``
            (BokehDiff's released generator; see :mod:`lensblur.synth.presets`).
        store_layers: write each pair's layers (``layers.npz``) too, so that :func:`lensblur.synth.rerender`
            can trace the scenes again with another lens, or a layered method can be supervised per layer.
        progress: a tqdm bar with ETA on stderr.
        executor: where the pairs are traced (:mod:`lensblur.executor`); None: ``LocalExecutor(workers)``.
            The caller closes it.

    Returns:
        The :class:`SynthReport`.

    Raises:
        InputError: a value out of range; ``out`` is a file, or holds a dataset with other settings or a
            broken manifest; an image folder that does not exist or holds no images; a ``memory://`` URL with
            worker processes (they would write into their own memory); a URL whose filesystem package is
            missing.
    """
    if not isinstance(count, int) or count < 1:
        raise InputError("count", expected="a positive number of pairs", got=count, fix="e.g. count=2000")
    if not isinstance(workers, int) or workers < 1:
        raise InputError("workers", expected="an integer >= 1", got=workers, fix="e.g. workers=2")
    if not isinstance(seed, int) or seed < 0:
        raise InputError("seed", expected="an integer >= 0", got=seed, fix="e.g. seed=7")
    if samples is not None and (not isinstance(samples, int) or samples < 1):
        raise InputError("samples", expected="a positive integer (or automatic)", got=samples,
                         fix="pass samples=None for the automatic count, or e.g. samples=256")
    if samples is not None and samples > MAX_SAMPLES:
        raise InputError("samples", expected=f"at most {MAX_SAMPLES} aperture samples (the trace's time grows with "
                         "them; the automatic count is enough for the frame's largest blur)", got=samples,
                         fix="leave samples out for the automatic count (64..2048 per scene)")
    if not 0.0 <= tilt <= 1.0:
        raise InputError("tilt", expected="a probability in [0, 1]", got=tilt, fix="e.g. tilt=0.5")
    _check_size(size)
    local = local_path(out)
    remote = local is None
    root = local if local is not None else str(out).rstrip("/")
    if executor is None:
        executor = LocalExecutor(workers)
    check_shared_location(out, in_process=executor.in_process, executor=executor.name)
    if not remote and root.exists() and not root.is_dir():
        raise InputError("out", expected="a folder (new or an earlier dataset)", got=f"{root} (a file)",
                         fix="pass out=FOLDER, a folder path")
    background_files = list_images(backgrounds, argument="backgrounds")
    foreground_files = list_images(foregrounds, argument="foregrounds")
    for path in foreground_files:
        check_cutout(path)
    options = {"samples": samples, "max_layers": max_layers, "tilt": tilt, "lights": lights,
               "backgrounds": [p.name for p in background_files], "foregrounds": [p.name for p in foreground_files]}
    if preset not in PRESETS:
        raise InputError("preset", expected=f"one of {', '.join(PRESETS)}", got=preset, fix="preset=bokehdiff")
    # Written only when not the defaults, so that datasets made before these options resume as they were.
    if store_layers:
        options["store_layers"] = True
    if preset != "lensblur":
        options["preset"] = preset
    manifest = {"generator": "lensblur.synth", "generator_version": GENERATOR_VERSION, "lensblur_version": __version__,
                "seed": seed, "size": [size[0], size[1]], "count": count, "options": options}
    if not remote:
        make_folder(root, argument="out")
    _check_manifest(root, manifest)
    previous = _read_text(join_location(root, MANIFEST))
    if previous is not None:
        manifest["count"] = max(count, int(json.loads(previous).get("count", 0)))
    if remote:
        fs, path = url_filesystem(root, argument="out")
        fs.makedirs(path, exist_ok=True)
        fs.pipe_file(f"{path}/{MANIFEST}", _dump(manifest).encode())
        todo = [i for i in range(count)
                if not location_exists(join_location(root, PAIRS, pair_name(i), "params.json"), argument="out")]
    else:
        with atomic_path(root / MANIFEST) as tmp:
            tmp.write_text(_dump(manifest))
        pairs = root / PAIRS
        pairs.mkdir(exist_ok=True)
        # Leftovers of an interrupted run: temporary directories and pairs without params.json.
        for entry in pairs.iterdir():
            if entry.name.startswith(".") and ".tmp-" in entry.name:
                shutil.rmtree(entry, ignore_errors=True)
        todo = [i for i in range(count) if not _is_complete(pairs / pair_name(i))]
    skipped = count - len(todo)
    run_options = dict(options, background_files=background_files, foreground_files=foreground_files)
    shared = (str(root), seed, (size[0], size[1]), run_options, remote)
    logger.info("synth: %d pairs to make, %d already complete in %s (%s executor)", len(todo), skipped, root,
                executor.name)
    from tqdm import tqdm

    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc="synth", unit="pair", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    try:
        for _ in executor.map(_make_pair, todo, shared=shared):
            bar.update(1)
    finally:
        bar.close()
    return SynthReport(root=root, written=len(todo), skipped=skipped, seconds=time.perf_counter() - start)
