"""Loading BokehDiff's weights as published: a base model, the LoRA (diffusers format) and the partial VAE
encoder (a pickle ``.ckpt`` of the fine-tuned ``encoder.conv_in``, ``mid_block`` and ``conv_out``).

Everything comes from a local path or the Hugging Face cache, never the network. The base model goes through
:func:`lensblur.generate.loading.load_text_to_image` (diffusers folders, single files, cached ids). A LoRA or
VAE encoder is checked tensor by tensor against the base model before anything is applied, so one made for
another base is refused with one message instead of diffusers' partial load or shape dump. The pickle is read
with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.

A ``lensblur train bokehdiff`` run loads the same way (:func:`find_training_run`): its checkpoint holds the
UNet LoRA and the VAE encoder's trained tensors (or, trained by LoRA, the encoder's LoRA, merged into the base
VAE on loading), and records the base model and the PISA settings it was trained with.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .._device import resolve_device
from .._device import resolve_dtype as precision
from .._optional import hf_cache_dir, require
from ..errors import InputError, ModelNotFoundError
from .constants import DEFAULT_BASE, DEFAULT_LORA

__all__ = [
    "BASE_HOW_TO_GET",
    "LORA_HOW_TO_GET",
    "VAE_ENCODER_HOW_TO_GET",
    "TrainingRun",
    "apply_unet_lora",
    "apply_vae_encoder",
    "convert_to_safetensors",
    "find_lora",
    "find_training_run",
    "find_vae_encoder",
    "load_base",
    "load_bokehdiff",
    "load_lora",
    "lora_delta",
    "read_vae_encoder",
    "resolve_device",
    "resolve_dtype",
    "run_pipeline_options",
    "run_unet_lora",
    "run_vae_encoder",
]

logger = logging.getLogger(__name__)

FEATURE = "BokehDiff (method bokehdiff)"
BASE_HOW_TO_GET = (
    f"the released weights were trained on {DEFAULT_BASE}: fetch it once on a machine with internet, "
    f"`hf download {DEFAULT_BASE}` (into the Hugging Face cache, where lensblur finds it by name) or "
    f"`hf download {DEFAULT_BASE} --local-dir RealVisXL_V5.0` and pass model=RealVisXL_V5.0; any diffusers "
    "SDXL or SD 1.x folder loads too, but the released LoRA fits SDXL only")
LORA_HOW_TO_GET = (
    f"`hf download {DEFAULT_LORA}` (the LoRA and small/vae.ckpt, into the Hugging Face cache), or pass "
    "lora=FILE.safetensors or a folder holding pytorch_lora_weights.safetensors (diffusers' LoRA format)")
VAE_ENCODER_HOW_TO_GET = (
    f"it ships with the LoRA as small/vae.ckpt (`hf download {DEFAULT_LORA}`); pass vae_encoder=FILE (.ckpt or "
    ".safetensors, e.g. from lensblur convert), or vae_encoder=none to keep the base model's encoder")
LORA_NAMES = ("pytorch_lora_weights.safetensors",)
VAE_ENCODER_NAMES = ("vae.ckpt", "vae.safetensors", "vae-encoder.safetensors", "vae_encoder.safetensors")
SUBFOLDERS = ("", "small")
"""Where a LoRA folder (or the released repository) holds its files: at the top or under the "small" variant."""
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LORA_PARTS = re.compile(r"^(?P<module>.+)\.(?P<kind>lora_A|lora_B|lora\.down|lora\.up)(\.[\w]+)?\.weight$")


# ------------------------------------------------------------------------------------------ device and dtype
def resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    """The UNet's dtype: ``None`` is float32 (as released); names ``float32``, ``float16``, ``bfloat16``.

    Raises:
        InputError: an unknown name, or float16 on the CPU (no fast half-precision convolutions there).
    """
    out = precision(dtype)
    if out == torch.float16 and device.type == "cpu":
        raise InputError("dtype", expected="float32 or bfloat16 on the CPU", got="float16",
                         fix="use dtype=float16 with device=cuda, or dtype=float32")
    return out


# ------------------------------------------------------------------------------------------ finding files
def _cached_snapshot(repo_id: str, looked: list[str]) -> Path | None:
    hub = require("huggingface_hub", extra="diffusion", feature=FEATURE)
    cache = hf_cache_dir(extra="diffusion", feature=FEATURE)
    looked.append(f"{cache} (Hugging Face cache, repository {repo_id}, local files only)")
    try:
        return Path(hub.snapshot_download(repo_id, local_files_only=True))
    except (OSError, ValueError):     # not cached (LocalEntryNotFoundError is an OSError), or a bad id
        return None


def _in_folder(folder: Path, names: tuple[str, ...], looked: list[str]) -> Path | None:
    for sub in SUBFOLDERS:
        for name in names:
            candidate = folder / sub / name if sub else folder / name
            looked.append(str(candidate))
            if candidate.is_file():
                return candidate
    return None


def find_lora(lora=None) -> Path:
    """The LoRA file: ``lora`` itself (a ``.safetensors`` file), ``pytorch_lora_weights.safetensors`` at the
    top of a folder or under its ``small/``, or the same inside a cached Hugging Face repository.

    Args:
        lora: a file, a folder or a Hugging Face id (default ``zcx65535/bokehdiff``).

    Returns:
        The file.

    Raises:
        ModelNotFoundError: nothing there (every place looked in, and how to get the LoRA).
    """
    text = str(lora if lora is not None else DEFAULT_LORA)
    path = Path(text).expanduser()
    looked: list[str] = []
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise ModelNotFoundError(f"A BokehDiff LoRA at {text!r}", looked_in=[str(path)],
                                     how_to_get=f"the file is not a .safetensors LoRA; {LORA_HOW_TO_GET}")
        return path
    folder = path if path.is_dir() else None
    if folder is None:
        looked.append(f"{path.resolve()} (as a file or folder: does not exist)")
        if _HF_ID.match(text) and not text.startswith((".", "/")):
            folder = _cached_snapshot(text, looked)
    if folder is not None:
        found = _in_folder(folder, LORA_NAMES, looked)
        if found is not None:
            return found
        others = sorted(p for sub in SUBFOLDERS for p in (folder / sub).glob("*.safetensors")
                        if not p.name.startswith("vae"))
        if len(others) == 1:
            return others[0]
        if others:
            raise ModelNotFoundError(f"One BokehDiff LoRA in {text!r}", looked_in=[str(p) for p in others],
                                     how_to_get="the folder holds several .safetensors files: pass lora=FILE")
    raise ModelNotFoundError(f"BokehDiff LoRA {text!r}", looked_in=looked, how_to_get=LORA_HOW_TO_GET)


def find_vae_encoder(vae_encoder="auto", lora_file: Path | None = None) -> Path | None:
    """The partial VAE-encoder state dict: ``vae_encoder`` itself, or (``"auto"``) ``vae.ckpt`` beside the
    LoRA file, in its folder's ``small/`` or its parent folder; ``"none"`` keeps the base model's encoder.

    Returns:
        The file, or None for ``"none"``.

    Raises:
        ModelNotFoundError: not found (where lensblur looked, how to get it).
    """
    if vae_encoder is None or str(vae_encoder).lower() == "none":
        return None
    looked: list[str] = []
    if str(vae_encoder) != "auto":
        path = Path(str(vae_encoder)).expanduser()
        if path.is_file():
            return path
        raise ModelNotFoundError(f"BokehDiff VAE encoder {str(vae_encoder)!r}", looked_in=[str(path.resolve())],
                                 how_to_get=VAE_ENCODER_HOW_TO_GET)
    folders = [] if lora_file is None else [lora_file.parent, lora_file.parent.parent]
    for folder in folders:
        found = _in_folder(folder, VAE_ENCODER_NAMES, looked)
        if found is not None:
            return found
    raise ModelNotFoundError("The BokehDiff VAE encoder beside the LoRA", looked_in=looked or ["(no LoRA folder)"],
                             how_to_get=VAE_ENCODER_HOW_TO_GET)


# ------------------------------------------------------------------------------------------ the LoRA
def _unet_keys(state: dict) -> dict:
    """The LoRA's UNet tensors under peft's names (``<module>.lora_A.weight`` / ``lora_B``), without the
    ``unet.`` prefix. Bare keys (no ``unet.`` or text-encoder prefix: what ``unet.save_attn_procs`` wrote in
    diffusers 0.32, the release's version) are UNet keys; diffusers >= 0.33 loads them as nothing. diffusers'
    older ``lora.down`` / ``lora.up`` names become ``lora_A`` / ``lora_B`` (diffusers 0.42 drops the attention
    layers of a file saved with them)."""
    if any(k.startswith("unet.") for k in state):
        state = {k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")}
    elif any(k.startswith(("text_encoder.", "text_encoder_2.")) for k in state):
        return {}
    return {k.replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B."): v for k, v in state.items()}


def _misfits(state: dict, unet) -> tuple[list[str], list[str]]:
    """The LoRA tensors that fit no layer of ``unet`` (missing module or wrong shape), and the modules the
    others adapt."""
    modules = dict(unet.named_modules())
    bad, names = [], []
    for key, tensor in state.items():
        match = _LORA_PARTS.match(key)
        if match is None:
            continue
        name, kind = match.group("module"), match.group("kind")
        names.append(name)
        module = modules.get(name)
        weight = getattr(getattr(module, "base_layer", module), "weight", None)
        if weight is None:
            bad.append(f"{key} (no layer {name})")
            continue
        if kind == "lora_A":
            fits = tensor.shape[1] == weight.shape[1] and tuple(tensor.shape[2:]) == tuple(weight.shape[2:])
        else:
            fits = tensor.shape[0] == weight.shape[0]
        if not fits:
            bad.append(f"{key} (shape {tuple(tensor.shape)} on a layer of {tuple(weight.shape)})")
    return bad, sorted(set(names))


def load_lora(pipe, path: Path) -> int:
    """Check the LoRA at ``path`` against ``pipe``'s UNet, then load it with diffusers' ``load_lora_weights``
    (under peft's names, so that every layer of it loads whatever diffusers version reads it), and check that
    every layer it adapts was adapted.

    Args:
        pipe: a diffusers Stable Diffusion (XL) pipeline.
        path: the ``.safetensors`` LoRA.

    Returns:
        The number of UNet layers adapted.

    Raises:
        ModelNotFoundError: the file cannot be read as a LoRA.
        InputError: a LoRA for another base model (tensors that fit no layer of this UNet), or one diffusers
            does not load whole.
    """
    require("peft", extra="diffusion", feature=FEATURE)          # diffusers' LoRA backend
    try:
        state, alphas = pipe.lora_state_dict(str(path.parent), weight_name=path.name, local_files_only=True)
    except Exception as exc:
        raise ModelNotFoundError(f"A readable LoRA at {str(path)!r}", looked_in=[str(path)],
                                 how_to_get=f"diffusers could not read it ({type(exc).__name__}: "
                                            f"{_first_line(exc)}); {LORA_HOW_TO_GET}") from exc
    if alphas:
        logger.warning("LoRA %s: its alphas are not used (scale 1, as BokehDiff's rank-8, alpha-8 LoRA)", path)
    return apply_unet_lora(pipe, _unet_keys(state), str(path))


def apply_unet_lora(pipe, unet_state: dict[str, torch.Tensor], source: str) -> int:
    """Check a UNet LoRA (peft names without the ``unet.`` prefix: ``<module>.lora_A.weight``) against
    ``pipe``'s UNet and load it (scale 1), checking that every layer it adapts was adapted.

    Args:
        pipe: a diffusers Stable Diffusion (XL) pipeline.
        unet_state: the LoRA's tensors.
        source: where they came from, for messages.

    Returns:
        The number of UNet layers adapted.

    Raises:
        InputError: tensors that fit no layer of this UNet, or a LoRA diffusers does not load whole.
    """
    path = source
    bad, names = _misfits(unet_state, pipe.unet)
    if not names or bad:
        got = f"{path}: no UNet LoRA tensors" if not names else \
            f"{path}: {len(bad)} of {len(unet_state)} LoRA tensors fit no layer of this UNet, e.g. {bad[0]}"
        raise InputError("lora", expected=f"a LoRA for this base model's UNet (BokehDiff's released one is for "
                                          f"SDXL, trained on {DEFAULT_BASE})", got=got,
                         fix=f"pass the base model the LoRA was trained on (model={DEFAULT_BASE}), or a LoRA "
                             f"trained on this base model")
    before = set(getattr(pipe.unet, "peft_config", {}) or {})
    pipe.load_lora_weights({f"unet.{k}": v for k, v in unet_state.items()})
    added = [a for a in (getattr(pipe.unet, "peft_config", {}) or {}) if a not in before]
    modules = dict(pipe.unet.named_modules())
    missed = [n for n in names if not (added and added[0] in getattr(modules[n], "lora_A", {}))]
    if missed:
        raise InputError("lora", expected="a LoRA diffusers loads whole onto the UNet",
                         got=f"{path}: {len(missed)} of {len(names)} layers not adapted, e.g. {missed[0]}",
                         fix=LORA_HOW_TO_GET)
    logger.info("LoRA %s: %d UNet layers", path, len(names))
    return len(names)


# ------------------------------------------------------------------------------------------ the VAE encoder
def read_vae_encoder(path: Path) -> dict[str, torch.Tensor]:
    """The partial VAE state dict: ``.safetensors``, or a pickle read with ``torch.load(weights_only=True)``.

    Raises:
        ModelNotFoundError: unreadable, or not a mapping of names to tensors.
    """
    try:
        state = _named_tensors(path)
    except Exception as exc:
        raise ModelNotFoundError(f"A readable VAE-encoder state dict at {str(path)!r}", looked_in=[str(path)],
                                 how_to_get=f"it could not be read ({type(exc).__name__}: {_first_line(exc)}); "
                                            f"{VAE_ENCODER_HOW_TO_GET}") from exc
    if state is None:
        raise ModelNotFoundError(f"A VAE-encoder state dict at {str(path)!r}", looked_in=[str(path)],
                                 how_to_get=f"the file holds no mapping of names to tensors; {VAE_ENCODER_HOW_TO_GET}")
    return state


def _named_tensors(path: Path) -> dict[str, torch.Tensor] | None:
    """A file's mapping of names to tensors (``.safetensors``, or a pickle read with ``torch.load(weights_only=True)``,
    its ``state_dict`` entry if it has one), or None when it holds something else. Raises what the readers raise."""
    if path.suffix.lower() == ".safetensors":
        safetensors = require("safetensors", extra="diffusion", feature=FEATURE)
        state = safetensors.torch.load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        return None
    return state


def apply_vae_encoder(vae, state: dict[str, torch.Tensor], source: str = "vae_encoder") -> int:
    """Overwrite the VAE's tensors named in ``state`` (the release's ``vae.ckpt`` names them as in
    ``AutoencoderKL.state_dict()``: ``encoder.conv_in.weight``, ``encoder.mid_block...``).

    Returns:
        The number of tensors replaced.

    Raises:
        InputError: a name the VAE lacks or a shape it does not have (a state dict for another VAE).
    """
    own = vae.state_dict()
    bad = [f"{k} (no such tensor)" for k in state if k not in own]
    bad += [f"{k} (shape {tuple(v.shape)}, the VAE's {tuple(own[k].shape)})" for k, v in state.items()
            if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise InputError("vae_encoder", expected="tensors of this base model's VAE (AutoencoderKL names, e.g. "
                                                 "encoder.conv_in.weight)",
                         got=f"{source}: {len(bad)} of {len(state)} do not fit, e.g. {bad[0]}",
                         fix=f"pass the VAE encoder that came with the LoRA and its base model ({DEFAULT_BASE})")
    vae.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    return len(state)


# ------------------------------------------------------------------------------------------ everything
@contextlib.contextmanager
def _quiet():
    """diffusers' and transformers' loading bars and notices off (lensblur logs what it loads), then restored."""
    diffusers = require("diffusers", extra="diffusion", feature=FEATURE)
    transformers = require("transformers", extra="diffusion", feature=FEATURE)
    libraries = [diffusers.utils.logging, transformers.utils.logging]
    saved = [(lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in libraries]
    for lib in libraries:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, (verbosity, bars) in zip(libraries, saved):
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()


def load_base(model=None, *, torch_dtype=None, how_to_get: str = BASE_HOW_TO_GET):
    """The base model's diffusers text-to-image pipeline (local files and the Hugging Face cache only), loaded
    quietly.

    Args:
        model: a diffusers folder, single-file checkpoint or cached id (default ``SG161222/RealVisXL_V5.0``).
        torch_dtype: the weights' dtype.
        how_to_get: the advice of the error when it is missing.

    Returns:
        A ``StableDiffusionXLPipeline`` or ``StableDiffusionPipeline``.

    Raises:
        ModelNotFoundError: the model is not there.
    """
    from ..generate.loading import HOW_TO_GET, load_text_to_image

    with _quiet():
        try:
            return load_text_to_image(model if model is not None else DEFAULT_BASE, torch_dtype=torch_dtype)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(exc.what, looked_in=exc.looked_in,
                                     how_to_get=exc.how_to_get.replace(HOW_TO_GET, how_to_get)) from exc


def load_bokehdiff(model=None, *, lora=None, vae_encoder="auto", torch_dtype=None, device=None):
    """The base model's diffusers pipeline with BokehDiff's LoRA and VAE encoder, on ``device``.

    ``lora`` may also name a ``lensblur train bokehdiff`` run (its folder, ``RUN/last.safetensors`` or a
    ``RUN/step-N/model.safetensors``): its UNet LoRA and VAE-encoder tensors are read from the checkpoint, and
    the base model defaults to the one the run recorded (:func:`find_training_run`).

    Args:
        model: a diffusers folder, single-file checkpoint or cached id (default ``SG161222/RealVisXL_V5.0``, or
            the run's base model).
        lora: a LoRA file, folder or cached id (default ``zcx65535/bokehdiff``), or a training run.
        vae_encoder: a file, ``"auto"`` (beside the LoRA, or the run's) or ``"none"``.
        torch_dtype: the UNet's and text encoders' dtype (the VAE stays float32 where diffusers' config asks
            for it in half precision).
        device: see :func:`resolve_device`.

    Returns:
        A ``StableDiffusionXLPipeline`` or ``StableDiffusionPipeline``.

    Raises:
        ModelNotFoundError: the base model, LoRA or VAE encoder is not there.
        InputError: weights for another base model, or a bad device or dtype.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(torch_dtype, device)
    run = find_training_run(lora)
    if run is not None:
        pipe = _load_run(run, model, vae_encoder, dtype)
    else:
        lora_file = find_lora(lora)
        encoder_file = find_vae_encoder(vae_encoder, lora_file)
        logger.info("loading %s with the LoRA %s", model if model is not None else DEFAULT_BASE, lora_file)
        pipe = load_base(model, torch_dtype=dtype)
        with _quiet():
            load_lora(pipe, lora_file)
        if encoder_file is not None:
            count = apply_vae_encoder(pipe.vae, read_vae_encoder(encoder_file), str(encoder_file))
            logger.info("VAE encoder %s: %d tensors", encoder_file, count)
    if dtype == torch.float16 and getattr(pipe.vae.config, "force_upcast", False):
        pipe.vae.to(torch.float32)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------------------ training runs
@dataclass(frozen=True)
class TrainingRun:
    """A ``lensblur train bokehdiff`` checkpoint.

    Args:
        path: its weights file.
        config: the trainer's recorded settings (:class:`~lensblur.bokehdiff.training.BokehDiffTrainConfig`).
        step: the optimisation steps it holds.
    """

    path: Path
    config: dict
    step: int


def find_training_run(lora) -> TrainingRun | None:
    """The ``lensblur train bokehdiff`` checkpoint that ``lora`` names, or None when it names anything else.

    Args:
        lora: a run folder (its ``last.safetensors``), or a ``.safetensors`` weights file of a run.

    Returns:
        The run, or None for a LoRA file, a LoRA folder or a Hugging Face id.

    Raises:
        InputError: a lensblur checkpoint of another method.
    """
    if lora is None:
        return None
    from ..train.checkpoint import LAST, read_metadata

    path = Path(str(lora)).expanduser()
    if path.is_dir():
        path = path / LAST
    if not (path.is_file() and path.suffix.lower() == ".safetensors"):
        return None
    try:
        meta = read_metadata(path)
    except InputError:          # not a lensblur checkpoint: a LoRA file
        return None
    if meta["method"] != "bokehdiff":
        raise InputError("lora", expected="a LoRA, or a checkpoint of lensblur train bokehdiff",
                         got=f"{path}, a {meta['method']} checkpoint",
                         fix="pass the bokehdiff run's folder or its last.safetensors")
    return TrainingRun(path=path, config=meta["config"], step=meta["step"])


_ADAPTER = re.compile(r"\.(lora_A|lora_B)\.[^.]+\.weight$")


def run_unet_lora(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A run's UNet LoRA under peft's names (``<module>.lora_A.weight``): its ``unet.`` tensors without the
    adapter's name."""
    return {_ADAPTER.sub(r".\1.weight", k[len("unet."):]): v for k, v in tensors.items() if k.startswith("unet.")}


def lora_delta(lora_a: torch.Tensor, lora_b: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The weight change ``scale * B A`` of a peft LoRA pair: ``(out, r) @ (r, in)`` for a linear layer; for a
    convolution (A of the layer's kernel, B 1x1) the kernel ``sum_r B[o, r] A[r, i, y, x]``."""
    if lora_a.ndim == 2:
        return scale * lora_b @ lora_a
    return scale * torch.einsum("or,riyx->oiyx", lora_b[:, :, 0, 0], lora_a)


def run_vae_encoder(tensors: dict[str, torch.Tensor], vae) -> dict[str, torch.Tensor]:
    """A run's VAE-encoder tensors under ``AutoencoderKL``'s names: the fine-tuned tensors as they are, and each
    LoRA-adapted layer's weight merged into ``vae``'s own (scale 1: rank = alpha)."""
    own = {k[len("vae."):]: v for k, v in tensors.items() if k.startswith("vae.")}
    plain = {k: v for k, v in own.items() if not _ADAPTER.search(k)}
    base = vae.state_dict()
    merged = {}
    for key, a in own.items():
        if ".lora_A." in key:
            module = key.split(".lora_A.")[0]
            b = own[key.replace(".lora_A.", ".lora_B.")]
            weight = base[f"{module}.weight"]
            merged[f"{module}.weight"] = weight + lora_delta(a.to(weight), b.to(weight))
    return {**plain, **merged}


def run_pipeline_options(lora) -> dict:
    """The :class:`~lensblur.bokehdiff.BokehDiffPipeline` settings a training run was trained with (its PISA
    layers, occlusion convention, distance, CoC mask and normalisation, timestep and prompt), or ``{}`` when
    ``lora`` is not a run."""
    run = find_training_run(lora)
    if run is None:
        return {}
    from .pisa import PISAProcessor

    cfg = run.config
    pisa = {"occlusion": cfg["occlusion"], "distance": cfg["distance"], "coc_mask": cfg.get("coc_mask", True),
            "normalize": cfg.get("normalize", "queries")}
    return {"processor": PISAProcessor.released_inference(**pisa),
            "layers": tuple(cfg["pisa_layers"]), "timestep": int(cfg["timestep"]), "prompt": cfg["prompt"]}


def _load_run(run: TrainingRun, model, vae_encoder, dtype):
    recorded = run.config.get("base_model") or None
    base = model if model is not None else recorded
    if base is None:
        raise ModelNotFoundError(f"The base model of the training run {run.path}", looked_in=["(none recorded)"],
                                 how_to_get="pass the base model the run was trained on: model=PATH (on the "
                                            "command line --diffusion-model PATH)")
    how = (f"the run {run.path} was trained on {recorded}: pass where that base model is now, model=PATH (on the "
           f"command line --diffusion-model PATH)" if recorded else BASE_HOW_TO_GET)
    own_encoder = vae_encoder is None or str(vae_encoder) == "auto"
    encoder_file = None if own_encoder else find_vae_encoder(vae_encoder)      # checked before the base loads
    logger.info("loading %s with the trained run %s (step %d)", base, run.path, run.step)
    pipe = load_base(base, torch_dtype=dtype, how_to_get=how)
    safetensors = require("safetensors.torch", extra="diffusion", feature=FEATURE, package="safetensors")
    tensors = safetensors.load_file(str(run.path))
    with _quiet():
        apply_unet_lora(pipe, run_unet_lora(tensors), str(run.path))
    if own_encoder:
        state, source = run_vae_encoder(tensors, pipe.vae), str(run.path)
    else:
        state, source = (read_vae_encoder(encoder_file), str(encoder_file)) if encoder_file is not None else ({}, "")
    if state:
        count = apply_vae_encoder(pipe.vae, state, source)
        logger.info("VAE encoder from %s: %d tensors", source, count)
    return pipe


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__



def convert_to_safetensors(path, out) -> int:
    """Rewrite a pickle state dict of tensors (BokehDiff's ``vae.ckpt``) as a ``.safetensors`` file, read with
    ``torch.load(weights_only=True)``; the file appears whole or not at all.

    Args:
        path: the ``.ckpt`` / ``.pt`` / ``.bin`` file.
        out: the ``.safetensors`` file to write.

    Returns:
        The number of tensors written.

    Raises:
        InputError: ``path`` is not a file of named tensors (missing, a folder, unreadable, other objects), or
            ``out`` does not end in ``.safetensors``.
    """
    from ..io.files import atomic_path

    path, out = Path(path), Path(out)
    if out.suffix.lower() != ".safetensors":
        raise InputError("out", expected="a .safetensors file name", got=str(out), fix=f"e.g. out={out.stem}.safetensors")
    if not path.is_file():
        got = f"{path} (a folder)" if path.is_dir() else f"{path} (no such file)"
        raise InputError("checkpoint", expected="a checkpoint file of tensors (.ckpt, .pt, .bin)", got=got,
                         fix="pass the file itself, e.g. small/vae.ckpt")
    expected = "a state dict: a mapping of names to tensors, read with torch.load(weights_only=True)"
    try:
        state = _named_tensors(path)
    except Exception as exc:
        raise InputError("checkpoint", expected=expected, got=f"{path} ({type(exc).__name__}: {_first_line(exc)})",
                         fix="convert a checkpoint of tensors only; pickles of other objects are not read, on purpose"
                         ) from exc
    if state is None:
        raise InputError("checkpoint", expected=expected, got=f"{path} (no mapping of names to tensors inside)",
                         fix="convert a checkpoint of tensors only")
    safetensors = require("safetensors.torch", extra="diffusion", feature=FEATURE)
    # Tensors sharing memory (tied weights) are written each in its own, as safetensors requires.
    with atomic_path(out) as tmp:
        safetensors.save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(tmp),
                              metadata={"converted_from": path.name})
    return len(state)
