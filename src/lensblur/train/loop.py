"""The one training loop every trainable method runs on, on accelerate (CPU, one or several GPUs, machines).

A method (:class:`TrainMethod`) builds its models, optimisers and losses and does one optimisation step; the
loop does the rest:

1. seeded data: step ``s`` takes the batch ``s`` of a permutation of the dataset drawn from ``(seed, epoch)``,
   and each item's random choices (crops, flips) run on a generator seeded from ``(seed, step, slot)``, so
   the batches depend on the seed and the step only (not on ``num_workers`` loading processes, nor on where
   a run was resumed);
2. gradient accumulation and mixed precision through accelerate;
3. checkpoints every ``checkpoint_every`` steps and at the end (:mod:`lensblur.train.checkpoint`), with the
   optimisers', schedulers' and random generators' states;
4. exact resume: ``resume=True`` continues from the newest checkpoint, and the weights at the end are those of
   a run that was never stopped;
5. ``metrics.jsonl`` (one line per logged step: the losses, and the validation PSNR/SSIM every
   ``validate_every`` steps, with ``samples/step-N.png``, a sheet of inputs, predictions and targets), the same scalars as TensorBoard logs in ``tensorboard/`` when tensorboard is
   installed, and a progress bar with the losses.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from .._optional import require
from ..errors import InputError, check_integer
from ..io.files import make_folder
from .checkpoint import STATE, latest_checkpoint, load_weights, rng_state, save_checkpoint, set_rng_state

__all__ = ["TrainConfig", "TrainMethod", "TrainResult", "train"]

logger = logging.getLogger(__name__)


class TrainMethod(Protocol):
    """What a trainable method gives the loop.

    Attributes:
        name: the method's name (recorded in its checkpoints).
    """

    name: str

    def config(self) -> dict[str, Any]:
        """The JSON-ready settings that rebuild the method (recorded in checkpoints)."""

    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks, by name (their weights are the checkpoint)."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers, by name."""

    def schedulers(self) -> dict[str, Any]:
        """Learning-rate schedulers, by name (may be empty)."""

    def prepare(self, accelerator) -> None:
        """Let accelerate wrap the modules and optimisers (``accelerator.prepare``)."""

    def training_step(self, batch: dict[str, torch.Tensor], accelerator) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the losses to log."""

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` linear RGB in, ``(B, 3, H, W)`` linear RGB out (evaluation mode)."""

    # Optional: a method may also define
    #   check_size(height, width)   refuse training items its networks cannot take (InputError), asked of the
    #       first item before anything is written;
    #   validate(dataset) -> dict[str, float]   its own validation scores (default: PSNR/SSIM of predict);
    #   extra_state() -> dict / load_extra_state(dict)   state beyond weights, optimisers and random
    #       generators that exact resume needs (CycleGAN's image pools), tensors and plain containers only.


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the loop (the method's own settings are its config).

    Args:
        steps: optimisation steps in all, >= 1.
        batch_size: items per step, >= 1.
        seed: the seed of the weights' initialisation and of the data order.
        grad_accumulation: batches whose gradients are summed per optimiser step, >= 1.
        checkpoint_every: steps between checkpoints (and one at the end), >= 1.
        validate_every: steps between validations (0: only at the end).
        log_every: steps between lines of ``metrics.jsonl``, >= 1.
        num_workers: data-loading processes, >= 0.
        mixed_precision: ``"no"``, ``"fp16"`` or ``"bf16"`` (accelerate's; on a GPU).
        progress: show a progress bar.
    """

    steps: int = 1000
    batch_size: int = 1
    seed: int = 0
    grad_accumulation: int = 1
    checkpoint_every: int = 500
    validate_every: int = 0
    log_every: int = 10
    num_workers: int = 0
    mixed_precision: str = "no"
    progress: bool = True

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch_size", 1), ("grad_accumulation", 1), ("checkpoint_every", 1),
                          ("validate_every", 0), ("log_every", 1), ("num_workers", 0), ("seed", 0)):
            check_integer(name, getattr(self, name), low, fix=f"{name}={max(low, 1)}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise InputError("mixed_precision", expected="no, fp16 or bf16", got=self.mixed_precision,
                             fix="mixed_precision=no")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: the run folder, the steps done, the last losses and validation scores."""

    run: Path
    steps: int
    losses: dict[str, float]
    validation: dict[str, float]


def _batch_indices(step: int, size: int, batch: int, seed: int) -> list[int]:
    """The dataset indices of step ``step``: batch ``step`` of the epochs' seeded permutations."""
    per_epoch = max(1, size // batch)
    epoch, offset = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(size)
    return [int(i) for i in order[offset * batch: offset * batch + batch]]


class _SeededItems(torch.utils.data.Dataset):
    """``dataset[index]`` read under its own seed: ``self[(index, seed)]`` runs the item's random choices
    (crops, flips, unpaired partners) on torch's generator seeded with ``seed`` and leaves the caller's
    generator as it was, so an item is the same in any worker process and in a resumed run."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


def _batches(start: int, config: TrainConfig, size: int):
    """Steps ``start .. config.steps - 1``' lists of ``(index, item seed)``."""
    for step in range(start, config.steps):
        yield [(index, int(np.random.SeedSequence([config.seed, step, slot]).generate_state(1)[0]))
               for slot, index in enumerate(_batch_indices(step, size, config.batch_size, config.seed))]


def _collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    keys = [k for k in items[0] if isinstance(items[0][k], torch.Tensor)]
    return {k: torch.stack([item[k] for item in items]) for k in keys}


def _validate(method, dataset, sheet: Path | None = None, limit: int = 16, shown: int = 4) -> dict[str, float]:
    """Mean PSNR and SSIM on 8-bit sRGB values of up to ``limit`` validation items; with ``sheet``, the first
    ``shown`` items' input, prediction and target written there as one PNG (items of the first one's size)."""
    from .._convert import display_8bit, to_srgb8
    from ..io import contact_sheet
    from ..metrics import psnr, ssim

    scores = {"psnr": [], "ssim": []}
    rows = []
    for i in range(min(limit, len(dataset))):
        item = dataset[i]
        with torch.no_grad():
            pred = method.predict(item["image"][None])[0]
        a, b = display_8bit(item["target"].permute(1, 2, 0)), display_8bit(pred.permute(1, 2, 0))
        scores["psnr"].append(psnr(a, b, data_range=1.0))
        scores["ssim"].append(ssim(a, b, data_range=1.0))
        if len(rows) < shown and (not rows or rows[0][0].shape[:2] == tuple(item["image"].shape[-2:])):
            rows.append([to_srgb8(x.permute(1, 2, 0).cpu().numpy()) for x in (item["image"], pred, item["target"])])
    if sheet is not None and rows:
        sheet.parent.mkdir(exist_ok=True)
        contact_sheet(rows, sheet, column_titles=["input", "prediction", "target"])
    return {f"val_{k}": float(np.mean([v for v in values if math.isfinite(v)] or [math.inf]))
            for k, values in scores.items()}


def _tensorboard(run: Path):
    """A TensorBoard writer on ``run/tensorboard`` when tensorboard is installed, else None."""
    try:
        import tensorboard  # noqa: F401  (what torch.utils.tensorboard writes with)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.info("tensorboard is not installed: the losses go to metrics.jsonl only")
        return None
    return SummaryWriter(log_dir=str(run / "tensorboard"))


def _state(method, step: int, data: dict[str, Any] | None = None) -> dict[str, Any]:
    extra = method.extra_state() if hasattr(method, "extra_state") else {}
    return {"step": step, "data": data or {}, "optimizers": {k: o.state_dict() for k, o in method.optimizers().items()},
            "schedulers": {k: s.state_dict() for k, s in method.schedulers().items()}, "rng": rng_state(),
            "method": extra}


def _resume(method, run: Path) -> int:
    """Load the newest checkpoint of ``run`` into ``method``; the steps it had done (0 without one)."""
    folder = latest_checkpoint(run)
    if folder is None:
        return 0
    load_weights(method, folder / "model.safetensors")
    state = torch.load(folder / STATE, weights_only=True)
    for name, optimizer in method.optimizers().items():
        optimizer.load_state_dict(state["optimizers"][name])
    for name, scheduler in method.schedulers().items():
        scheduler.load_state_dict(state["schedulers"][name])
    set_rng_state(state["rng"])
    if hasattr(method, "load_extra_state"):
        method.load_extra_state(state.get("method", {}))
    logger.info("resumed %s from %s (step %d)", method.name, folder, state["step"])
    return int(state["step"])


def _check_run(run: Path, method, config: TrainConfig, resume: bool) -> None:
    settings = {"method": method.name, "method_config": method.config(), "train_config": asdict(config)}
    settings["train_config"].pop("progress")
    path = run / "run.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        previous_train = {k: v for k, v in previous.get("train_config", {}).items() if k != "steps"}
        current_train = {k: v for k, v in settings["train_config"].items() if k != "steps"}
        if not resume:
            raise InputError("out", expected="a new run folder, or resume=True to continue the run in it",
                             got=f"{run} holds a run", fix="pass resume=True, or out=FOLDER, a new folder")
        if previous.get("method") != method.name or previous.get("method_config") != settings["method_config"] \
                or previous_train != current_train:
            raise InputError("out", expected="the run's own settings to resume it (only steps may change)",
                             got=f"{run} was made with {json.dumps(previous, sort_keys=True)}",
                             fix="resume with the same settings, or train into a new folder")
    make_folder(run, argument="out")
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


def train(method: TrainMethod, dataset, out: str | os.PathLike, config: TrainConfig = TrainConfig(), *,
          val_dataset=None, resume: bool = False, data_info: dict[str, Any] | None = None) -> TrainResult:
    """Train ``method`` on ``dataset`` into the run folder ``out`` (see the module doc).

    Args:
        method: the method, built with its models (seeded by the caller).
        dataset: items with ``image`` and ``target`` ``(3, H, W)`` (a :mod:`lensblur.data` reader, or a
            crop/transform of one).
        out: the run folder: ``run.json``, ``metrics.jsonl``, ``step-*/`` and ``last.safetensors``.
        config: the loop's settings.
        val_dataset: items scored (PSNR/SSIM) every ``config.validate_every`` steps and at the end.
        resume: continue the run in ``out`` from its newest checkpoint.
        data_info: what the training data was (``{"dataset": "ebb", "split": "train"}``), recorded in the
            checkpoints so that an evaluation on overlapping data can warn.

    Returns:
        The :class:`TrainResult`.

    Raises:
        InputError: an empty dataset, a folder holding another run (or any run without ``resume``).
    """
    accelerate = require("accelerate", extra="train", feature="training")
    if len(dataset) == 0:
        raise InputError("dataset", expected="at least one training item", got="an empty dataset",
                         fix="point root at a dataset with pairs")
    first = _SeededItems(dataset)[(0, config.seed)]     # read before anything is written: a crop larger than
    if hasattr(method, "check_size"):                   # the frames, a broken pair, a crop the networks cannot
        method.check_size(*first["image"].shape[-2:])   # take... are refused here
    run = Path(out)
    created = not run.exists()
    _check_run(run, method, config, resume)
    try:
        return _run(accelerate, method, dataset, run, config, val_dataset, resume, data_info)
    except BaseException:
        # A new run that fails before its first checkpoint (a crop its network cannot take, a stop) leaves no
        # folder behind to block the corrected command.
        if created and not any(run.glob("step-*")):
            shutil.rmtree(run, ignore_errors=True)
        raise


def _run(accelerate, method, dataset, run: Path, config: TrainConfig, val_dataset, resume: bool,
         data_info) -> TrainResult:
    accelerator = accelerate.Accelerator(gradient_accumulation_steps=config.grad_accumulation,
                                         mixed_precision=config.mixed_precision)
    method.prepare(accelerator)
    start = _resume(method, run) if resume else 0
    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, initial=start, desc=f"train {method.name}", unit="step",
               disable=not config.progress or not accelerator.is_main_process)
    losses: dict[str, float] = {}
    validation: dict[str, float] = {}
    board = _tensorboard(run) if accelerator.is_main_process else None
    with open(run / "metrics.jsonl", "a") as log:
        # The loader's own generator: starting its iterator would otherwise take a draw from torch's global one,
        # which a resumed run would take twice (methods draw from it: dropout, CycleGAN's image pools).
        loader = torch.utils.data.DataLoader(_SeededItems(dataset), batch_sampler=_batches(start, config, len(dataset)),
                                             collate_fn=_collate, num_workers=config.num_workers,
                                             generator=torch.Generator().manual_seed(config.seed))
        for step, batch in zip(range(start, config.steps), loader):
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            with accelerator.accumulate(*method.modules().values()):
                losses = method.training_step(batch, accelerator)
            done = step + 1
            bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
            bar.update(1)
            record: dict[str, Any] = {}
            if done % config.log_every == 0 or done == config.steps:
                record = {"step": done, **losses}
            if val_dataset is not None and ((config.validate_every and done % config.validate_every == 0)
                                            or done == config.steps):
                validation = method.validate(val_dataset) if hasattr(method, "validate") \
                    else _validate(method, val_dataset, run / "samples" / f"step-{done:08d}.png")
                record = {"step": done, **losses, **validation}
            if record:
                log.write(json.dumps(record) + "\n")
                log.flush()
                if board is not None:
                    for key, value in record.items():
                        if key != "step":
                            board.add_scalar(key, value, done)
            if done % config.checkpoint_every == 0 or done == config.steps:
                save_checkpoint(run, done, method, _state(method, done, data_info))
    bar.close()
    if board is not None:
        board.close()
    return TrainResult(run=run, steps=config.steps, losses=losses, validation=validation)
