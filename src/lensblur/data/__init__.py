"""Dataset readers: EBB!, EBB! Val294, BLB, NYU Depth v2 and lensblur's synthetic sets.

Every reader is a torch ``Dataset`` whose items share one layout (see :mod:`lensblur.data._common`):
``image`` ``(3, H, W)`` linear RGB, ``target`` ``(3, H, W)`` linear RGB when the dataset has ground-truth
bokeh, ``disparity`` ``(1, H, W)`` in [0, 1] (1 = nearest) when it has one, and ``meta`` (``id``, paths, and
``lens`` when the dataset knows the blur and focus it was made with).

:func:`open_dataset` opens one by name (the names ``lensblur eval --dataset`` takes); :data:`DATASETS`
maps the names to factories, and :func:`register_dataset` adds more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from ..errors import InputError
from ._common import ALIGNMENTS, align_exposure, make_item
from .blb import BLB
from .ebb import EBB, HELDOUT_IDS, EBBVal294
from .nyu import NYUDepthV2
from .synth import SynthDataset
from .verify import DatasetReport, verify

__all__ = [
    "ALIGNMENTS",
    "BLB",
    "DATASETS",
    "EBB",
    "HELDOUT_IDS",
    "DatasetReport",
    "EBBVal294",
    "NYUDepthV2",
    "SynthDataset",
    "align_exposure",
    "make_item",
    "open_dataset",
    "register_dataset",
    "verify",
]

# name -> factory(root, **options) -> Dataset. Options a factory does not take are an error.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "synth": SynthDataset,
    "ebb": EBB,
    "ebb-val294": EBBVal294,
    "blb": BLB,
    "nyu": NYUDepthV2,
}


def register_dataset(name: str, factory: Callable[..., Dataset]) -> None:
    """Make ``factory(root, **options)`` available as ``name`` to :func:`open_dataset` and ``lensblur eval``.

    Args:
        name: the dataset's name; an existing name is replaced.
        factory: builds the dataset from its root folder and keyword options; its items follow
            :mod:`lensblur.data._common`.
    """
    DATASETS[name] = factory


def open_dataset(name: str, root, *, argument: str = "name", root_argument: str = "root", **options: Any) -> Dataset:
    """Open a dataset by name.

    Args:
        name: one of :data:`DATASETS`.
        root: the dataset's folder.
        argument: the name error messages give ``name``.
        root_argument: the name error messages give ``root`` (a caller opening a second folder, such as a
            validation set, names it as its own argument).
        **options: keywords of its reader (e.g. ``split=``, ``level=``).

    Returns:
        The torch ``Dataset``.

    Raises:
        InputError: an unknown ``name``, an option the reader does not take, or a ``root`` that is not laid
            out like the dataset (the reader's own checks).
    """
    if name not in DATASETS:
        raise InputError(argument, expected=f"one of {', '.join(sorted(DATASETS))}", got=name,
                         fix=f"e.g. {argument}=synth for a folder written by lensblur synth")
    import inspect

    reader = DATASETS[name]
    parameters = list(inspect.signature(reader).parameters.values())[1:]     # after root
    takes = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters)
    unknown = [] if open_ended else sorted(set(options) - set(takes))
    if unknown:     # named by the option itself (the command line reports it under its flag)
        raise InputError(unknown[0], expected=f"an option the {name} reader takes ({', '.join(takes) or 'none'})",
                         got=f"{unknown[0]}={options[unknown[0]]!r}", fix=f"drop {unknown[0]}={options[unknown[0]]} for {name}")
    try:
        return reader(root, **options)
    except InputError as exc:       # the readers name their folder root
        if root_argument == "root" or exc.argument != "root":
            raise
        fix = exc.fix and re.sub(r"\broot=", f"{root_argument}=", exc.fix)
        raise InputError(root_argument, expected=exc.expected, got=exc.got, fix=fix) from exc
