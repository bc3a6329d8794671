"""Checkpoints: weights in safetensors, with the method's name and config; training state beside them.

A checkpoint folder ``step-NNNNNNNN/`` holds

``model.safetensors``
    every module's state dict, keys prefixed with the module's name (``generator.``, ``discriminator.``),
    and in its metadata the lensblur version, the method's name, its config (JSON) and the step;
``state.pt``
    what resuming needs besides the weights: optimiser and scheduler states and the random generators'
    states, written with ``torch.save`` of tensors and plain containers only, read with
    ``torch.load(weights_only=True)`` (no pickled code);

and ``last.safetensors`` in the run folder is a copy of the newest weights, the file to render or evaluate
with. Files appear whole or not at all.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from .._optional import require
from ..errors import InputError, ModelNotFoundError
from ..io import atomic_path

__all__ = ["LAST", "latest_checkpoint", "load_weights", "read_metadata", "rng_state", "save_checkpoint",
           "set_rng_state"]

LAST = "last.safetensors"
WEIGHTS = "model.safetensors"
STATE = "state.pt"
FEATURE = "training and loading trained models"


def _safetensors():
    return require("safetensors.torch", extra="train", feature=FEATURE, package="safetensors")


def rng_state() -> dict[str, Any]:
    """The states of Python's, numpy's and torch's random generators."""
    np_state = np.random.get_state()
    return {"python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
            "numpy": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate((3, tuple(int(v) for v in state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), int(state["numpy_pos"]), 0, 0.0))
    torch.set_rng_state(state["torch"])


def save_checkpoint(run: Path, step: int, method, state: dict[str, Any]) -> Path:
    """Write ``run/step-NNNNNNNN/`` and refresh ``run/last.safetensors``.

    Args:
        run: the run folder.
        step: optimisation steps done.
        method: the training method (its ``name``, ``config()`` and ``modules()``).
        state: optimiser, scheduler and generator states, as :func:`torch.save` can write them.

    Returns:
        The checkpoint folder.
    """
    st = _safetensors()
    tensors = {f"{name}.{key}": value.detach().to("cpu").contiguous()
               for name, module in method.modules().items() for key, value in module.state_dict().items()}
    metadata = {"lensblur_version": __version__, "method": method.name, "config": json.dumps(method.config()),
                "step": str(step), "data": json.dumps(state.get("data") or {})}
    folder = run / f"step-{step:08d}"
    tmp = run / f".step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    st.save_file(tensors, str(tmp / WEIGHTS), metadata=metadata)
    torch.save(state, tmp / STATE)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    with atomic_path(run / LAST) as out:
        shutil.copyfile(folder / WEIGHTS, out)
    return folder


def latest_checkpoint(run: Path) -> Path | None:
    """The newest complete ``step-*`` folder of a run, or None."""
    found = sorted(p for p in run.glob("step-*") if p.is_dir() and (p / WEIGHTS).is_file() and (p / STATE).is_file())
    return found[-1] if found else None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """A weights file's metadata: ``method``, ``config`` (a dict), ``step``, ``lensblur_version``.

    Raises:
        ModelNotFoundError: no such file.
        InputError: not a lensblur checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise ModelNotFoundError("checkpoint", looked_in=[str(path)],
                                 how_to_get="train one with lensblur train METHOD ... -o RUN, then pass RUN/last.safetensors")
    st = require("safetensors", extra="train", feature=FEATURE)
    try:
        with st.safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:
        raise InputError("checkpoint", expected="a safetensors file written by lensblur train", got=f"{path} ({exc})",
                         fix="pass RUN/last.safetensors of a lensblur training run") from exc
    if "method" not in meta:
        raise InputError("checkpoint", expected="a lensblur checkpoint (method and config in its metadata)",
                         got=str(path), fix="pass RUN/last.safetensors of a lensblur training run")
    return {**meta, "config": json.loads(meta.get("config", "{}")), "data": json.loads(meta.get("data", "{}")),
            "step": int(meta.get("step", 0)), "path": path}


def load_weights(method, path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint's weights into ``method``'s modules, checking that it is this method's.

    Returns:
        The checkpoint's metadata (:func:`read_metadata`).

    Raises:
        InputError: a checkpoint of another method or another config, or weights that do not fit.
    """
    meta = read_metadata(path)
    if meta["method"] != method.name:
        raise InputError("checkpoint", expected=f"a checkpoint of method {method.name}",
                         got=f"{meta['path']}, a {meta['method']} checkpoint",
                         fix=f"use method={meta['method']}, or a {method.name} checkpoint")
    tensors = _safetensors().load_file(str(meta["path"]))
    for name, module in method.modules().items():
        own = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}
        try:
            module.load_state_dict(own)
        except RuntimeError as exc:
            raise InputError("checkpoint", expected=f"weights that fit this {method.name} ({name})",
                             got=f"{meta['path']} made with config {meta['config']}",
                             fix="build the method with the checkpoint's config") from exc
    return meta
