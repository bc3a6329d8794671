"""Finding and loading Stable Diffusion weights: diffusers folders, single-file checkpoints, Hugging Face ids.

Nothing is downloaded unless the caller passes a Hugging Face id *and* ``allow_download=True``; every failure to
find or read a model becomes one :class:`~lensblur.errors.ModelNotFoundError` that says where lensblur looked
and how to get the weights.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import NamedTuple

from .._optional import hf_cache_dir, require
from ..errors import InputError, ModelNotFoundError

__all__ = ["HOW_TO_GET", "SCHEDULERS", "FoundModel", "fetch_text_to_image", "find_text_to_image", "load_text_to_image",
           "make_scheduler"]

logger = logging.getLogger(__name__)

FEATURE = "Stage diffusion (lensblur generate)"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")
# Scheduler name -> (diffusers class, extra config). DDIM is the paper's sampler (eta = 0).
SCHEDULERS = {
    "ddim": ("DDIMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "euler": ("EulerDiscreteScheduler", {}),
    "model": (None, {}),
}
HOW_TO_GET = (
    "download Stable Diffusion once on a machine with internet, e.g. "
    "`hf download CompVis/stable-diffusion-v1-4 --local-dir sd-v1-4` (accept the licence on its "
    "model page first), then pass model=sd-v1-4; or pass a single-file .safetensors/.ckpt checkpoint; or pass "
    "a Hugging Face id together with allow_download=True to let lensblur fetch it into the Hugging Face cache"
)
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _diffusers():
    return require("diffusers", extra="diffusion", feature=FEATURE)


def make_scheduler(name: str, config):
    """A diffusers scheduler built from a model's scheduler config.

    Args:
        name: one of :data:`SCHEDULERS`; ``"model"`` keeps the model's own.
        config: the model scheduler's config.

    Returns:
        The scheduler, or None for ``"model"``.

    Raises:
        InputError: an unknown name (argument ``scheduler``, as the pipeline's methods call it).
        MissingDependencyError: diffusers is not installed.
    """
    if name not in SCHEDULERS:
        raise InputError("scheduler", expected=f"one of {', '.join(SCHEDULERS)}", got=name,
                         fix="pass scheduler=ddim (the paper's sampler), scheduler=dpm++ or scheduler=euler")
    class_name, extra = SCHEDULERS[name]
    if class_name is None:
        return None
    return getattr(_diffusers(), class_name).from_config(config, **extra)


def _pipeline_classes(xl: bool):
    d = _diffusers()
    return d.StableDiffusionXLPipeline if xl else d.StableDiffusionPipeline


def _class_from_model_index(index_file: Path, model: str) -> bool:
    """Whether the diffusers folder holds an SDXL pipeline (``_class_name`` in model_index.json)."""
    try:
        name = json.loads(index_file.read_text()).get("_class_name", "")
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"Stable Diffusion model {model!r}", looked_in=[str(index_file)],
                                 how_to_get=f"the model_index.json there is unreadable ({exc}); {HOW_TO_GET}")
    if "StableDiffusion" not in name or any(word in name for word in ("Inpaint", "Upscale", "Depth", "Instruct")):
        raise ModelNotFoundError(
            f"A Stable Diffusion text-to-image model at {model!r}", looked_in=[str(index_file)],
            how_to_get=f"its model_index.json describes a {name or 'unknown'} pipeline, not a Stable Diffusion "
                       f"1.x/2.x/XL text-to-image model; {HOW_TO_GET}")
    return "XL" in name


def _single_file_is_xl(path: Path) -> bool:
    """SDXL checkpoints hold a second text encoder under ``conditioner.embedders.1``."""
    if path.suffix.lower() == ".safetensors":
        safetensors = require("safetensors", extra="diffusion", feature=FEATURE)
        with safetensors.safe_open(str(path), framework="pt") as fh:
            keys = list(fh.keys())
    else:
        import torch

        state = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else {}
        keys = list(state.keys())
    return any(k.startswith("conditioner.embedders.1.") for k in keys)


def load_text_to_image(model: str | os.PathLike, *, torch_dtype=None, allow_download: bool = False,
                       config: str | None = None, variant: str | None = None):
    """Load a diffusers Stable Diffusion (1.x, 2.x or XL) text-to-image pipeline from ``model``.

    ``model`` is a diffusers folder (with model_index.json), a single-file ``.safetensors``/``.ckpt`` checkpoint
    (loaded with diffusers' ``from_single_file``; ``config`` names a diffusers folder or cached id with the
    matching configs), or a Hugging Face id resolved from the local cache (downloaded only with
    ``allow_download=True``).

    Args:
        model: a diffusers folder, a ``.safetensors``/``.ckpt`` file, or a Hugging Face id.
        torch_dtype: the weights' dtype (diffusers' default when None).
        allow_download: let a Hugging Face id be fetched into the cache.
        config: for a single file, a diffusers folder or id with the matching configs.
        variant: the weights variant (e.g. ``"fp16"``).

    Returns:
        A ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``.

    Raises:
        ModelNotFoundError: the model is missing or cannot be loaded (where it looked, how to get it).
        MissingDependencyError: diffusers is not installed.
    """
    found = find_text_to_image(model, allow_download=allow_download)
    if found.kind == "file":
        return _from_single_file(Path(found.source), torch_dtype=torch_dtype, allow_download=allow_download,
                                 config=config)
    # a local folder never downloads; a hub id only when allowed
    return _from_pretrained(_pipeline_classes(found.xl), found.source, found.looked, torch_dtype=torch_dtype,
                            local_files_only=found.kind == "folder" or not allow_download, variant=variant)


class FoundModel(NamedTuple):
    """Where a Stable Diffusion model is (:func:`find_text_to_image`).

    Attributes:
        kind: ``"folder"`` (diffusers), ``"file"`` (a single-file checkpoint) or ``"hub"`` (a Hugging Face id).
        source: the folder's or file's path, or the id.
        xl: whether it is an SDXL pipeline; None for a file, whose keys tell only when it is loaded.
        looked: where lensblur looked, for the error of a load that then fails.
    """

    kind: str
    source: str
    xl: bool | None
    looked: list[str]


def find_text_to_image(model: str | os.PathLike, *, allow_download: bool = False) -> FoundModel:
    """Find the Stable Diffusion model ``model`` names without loading its weights: a diffusers folder whose
    model_index.json describes a text-to-image pipeline, a checkpoint file with a known suffix, or a Hugging
    Face id whose model_index.json is in the local cache (fetched only with ``allow_download=True``). What
    :func:`load_text_to_image` loads, and what a server checks when it starts.

    Raises:
        ModelNotFoundError: nothing usable there (where it looked, how to get it).
        MissingDependencyError: a Hugging Face id without huggingface_hub installed.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise ModelNotFoundError(
                f"A diffusers Stable Diffusion model in {text!r}", looked_in=[str(index)],
                how_to_get=f"the folder has no model_index.json, so it is not a diffusers model folder; {HOW_TO_GET}")
        return FoundModel("folder", str(path), _class_from_model_index(index, text), [str(path)])
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelNotFoundError(
                f"A Stable Diffusion checkpoint at {text!r}", looked_in=[str(path)],
                how_to_get=f"the file is not a .safetensors or .ckpt checkpoint; {HOW_TO_GET}")
        return FoundModel("file", str(path), None, [str(path)])
    looked = [f"{path.resolve()} (as a folder or checkpoint file: does not exist)"]
    if _HF_ID.match(text) and not text.startswith((".", "/")):
        return _find_on_hub(text, looked, allow_download=allow_download)
    raise ModelNotFoundError(f"Stable Diffusion model {text!r}", looked_in=looked, how_to_get=HOW_TO_GET)


def _from_pretrained(cls, source: str, looked: list[str], **kwargs):
    try:
        return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise ModelNotFoundError(
            f"A loadable Stable Diffusion model at {source!r}", looked_in=looked,
            how_to_get=f"diffusers could not load it ({type(exc).__name__}: {_first_line(exc)}); "
                       f"check that every component folder (unet, vae, text_encoder, tokenizer, scheduler) and its "
                       f"weights are there; {HOW_TO_GET}") from exc


def fetch_text_to_image(model: str | os.PathLike) -> FoundModel:
    """Find ``model`` as :func:`find_text_to_image` does, with downloads allowed, and fetch a Hugging Face id's
    files into the local cache without loading them, so that later loads (``allow_download=False``) find it.

    A folder or a file is only found: there is nothing to fetch.

    Raises:
        ModelNotFoundError: the model is not there, or its files could not be fetched (where it looked, why).
        MissingDependencyError: diffusers or huggingface_hub is not installed.
    """
    found = find_text_to_image(model, allow_download=True)
    if found.kind == "hub":
        try:
            _diffusers().DiffusionPipeline.download(found.source)
        except Exception as exc:
            raise ModelNotFoundError(f"The files of Hugging Face model {found.source!r}", looked_in=found.looked,
                                     how_to_get=f"{HOW_TO_GET} ({type(exc).__name__}: {_first_line(exc)})") from exc
    return found


def _find_on_hub(repo_id: str, looked: list[str], *, allow_download: bool) -> FoundModel:
    hub = require("huggingface_hub", extra="diffusion", feature=FEATURE)
    cache = hf_cache_dir(extra="diffusion", feature=FEATURE)
    looked = looked + [f"{cache} (Hugging Face cache, {'download allowed' if allow_download else 'local files only'})"]
    try:
        index = hub.hf_hub_download(repo_id, "model_index.json", local_files_only=not allow_download)
    except Exception as exc:
        hint = "" if allow_download else " (downloads are off: pass allow_download=True to fetch it)"
        raise ModelNotFoundError(f"Hugging Face model {repo_id!r}{hint}", looked_in=looked,
                                 how_to_get=f"{HOW_TO_GET} ({type(exc).__name__}: {_first_line(exc)})") from exc
    return FoundModel("hub", repo_id, _class_from_model_index(Path(index), repo_id), looked)


def _from_single_file(path: Path, *, torch_dtype, allow_download: bool, config: str | None):
    looked = [str(path)]
    try:
        xl = _single_file_is_xl(path)
    except Exception as exc:
        raise ModelNotFoundError(f"A Stable Diffusion checkpoint at {str(path)!r}", looked_in=looked,
                                 how_to_get=f"the file could not be read as a checkpoint ({type(exc).__name__}: "
                                            f"{_first_line(exc)}); {HOW_TO_GET}") from exc
    cls = _pipeline_classes(xl)
    kwargs = {"torch_dtype": torch_dtype, "local_files_only": not allow_download}
    if config is not None:
        kwargs["config"] = str(config)
        looked.append(f"{config} (configs)")
    else:
        cache = hf_cache_dir(extra="diffusion", feature=FEATURE)
        looked.append(f"{cache} (configs of the matching base model, Hugging Face cache)")
    try:
        return cls.from_single_file(str(path), **kwargs)
    except Exception as exc:
        raise ModelNotFoundError(
            f"A usable Stable Diffusion {'XL ' if xl else ''}checkpoint at {str(path)!r}", looked_in=looked,
            how_to_get=f"diffusers could not load it ({type(exc).__name__}: {_first_line(exc)}); a single-file "
                       f"checkpoint needs its base model's configs: pass config=FOLDER, a diffusers folder of the "
                       f"same family (e.g. a local stable-diffusion-v1-5 folder), or allow_download=True; "
                       f"or {HOW_TO_GET}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
