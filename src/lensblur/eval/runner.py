"""Run a method over a dataset and score it like the papers: PSNR, SSIM, LPIPS, DISTS, depth-edge PSNR.

Scores are computed on what a user would see: the prediction and the target are clipped to [0, 1] in linear
light, sRGB-encoded and quantised to 8 bits (the papers score saved 8-bit images), then compared with
``data_range = 1`` (``display="srgb8"``, the default). ``display="gamma22"`` is BokehMe's and BokehDiff's
scoring of BLB's float EXR files instead: the clipped linear values raised to ``1 / 2.2``, not quantised. PSNR and SSIM are :func:`lensblur.metrics.psnr` / :func:`~lensblur.metrics.ssim`;
LPIPS and DISTS come from :mod:`lensblur.metrics.perceptual` (a column reads ``n/a (backbone weights not
found in <path>)`` when their pretrained backbone is not in the torch hub cache).

Depth-edge band (datasets with disparity): the pixels within ``edge_band`` pixels (Euclidean, default
:data:`EDGE_BAND_PX` = 5) of a disparity discontinuity, where a discontinuity is a jump of more than
:data:`EDGE_JUMP` = 0.02 (2 % of the disparity range [0, 1]) between 4-neighbours. ``psnr_edge`` is the
PSNR over that band: the place where renderers that ignore occlusion fail.

A run writes into its own folder: ``per_image.csv`` (one row per image, appended and flushed as it goes,
so an interrupted run resumes where it stopped), ``run.json`` (the settings; a rerun with other settings
is refused), ``summary.json`` and ``table.md``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._convert import display_8bit, encode_gamma
from ..choices import DISPLAYS, EDGE_BAND_PX, LPIPS_NETS, SSIM_VARIANTS
from ..errors import InputError, ModelNotFoundError, check_integer
from ..io import atomic_path, make_folder, write_text
from ..lens import Aperture, Lens
from ..methods import EvalMethod
from ..metrics import psnr, ssim

__all__ = [
    "COLUMNS",
    "DISPLAYS",
    "EDGE_BAND_PX",
    "EDGE_JUMP",
    "EvalOptions",
    "depth_edge_band",
    "display_8bit",
    "display_values",
    "evaluate",
    "lens_for_item",
    "load_perceptual",
    "summarize",
]

logger = logging.getLogger(__name__)

EDGE_JUMP = 0.02
METRICS = ("psnr", "ssim", "lpips", "dists", "psnr_edge")
COLUMNS = ("id", *METRICS, "edge_pixels", "exposure_scale", "seconds")
NA = "n/a"


@dataclass(frozen=True)
class EvalOptions:
    """Settings of one run.

    Args:
        blur: CoC scale in pixels for every item (overrides the item's own lens), ``> 0``.
        focus_disparity: focus disparity in [0, 1] for every item (overrides the item's own lens).
        blades: aperture blades (0 = circle, else at least 3) for every item.
        align_exposure: align each input's exposure to its target first: ``False``, ``True`` (BokehDiff's
            protocol) or a protocol name of :data:`lensblur.data.ALIGNMENTS`; kept as the protocol's name.
        limit: score only the first ``limit`` items (``>= 1``).
        workers: data-loading worker processes (``>= 0``).
        edge_band: half-width in pixels of the depth-edge band (``>= 0``).
        progress: show a progress bar on stderr.
        ssim: the SSIM variant, one of :data:`lensblur.metrics.SSIM_VARIANTS` (named in every table).
        lpips_net: LPIPS's backbone, ``"alex"`` (most papers) or ``"vgg"``.
        display: how linear images become the values scored, one of :data:`DISPLAYS` (named in every table).
        focus_heuristic: ``"ground-truth-edges"``: each item's focus disparity from edges its input shares with
            its *target* (BokehDiff's release on EBB!, :mod:`lensblur.eval.gt_focus`); not with
            ``focus_disparity``. Scores made so have seen the ground truth's focus.

    Raises:
        InputError: a value outside its range (checked when the options are made).
    """

    blur: float | None = None
    focus_disparity: float | None = None
    blades: int | None = None
    align_exposure: bool | str | None = False
    limit: int | None = None
    workers: int = 0
    edge_band: int = EDGE_BAND_PX
    progress: bool = True
    ssim: str = SSIM_VARIANTS[0]
    lpips_net: str = LPIPS_NETS[0]
    display: str = DISPLAYS[0]
    focus_heuristic: str | None = None

    def __post_init__(self) -> None:
        from ..data._common import check_alignment

        object.__setattr__(self, "align_exposure", check_alignment(self.align_exposure))
        for name, low in (("limit", 1), ("workers", 0), ("edge_band", 0)):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), low, fix=f"e.g. {name}={max(low, 1)}")
        if self.blur is not None and not (math.isfinite(self.blur) and self.blur > 0):
            raise InputError("blur", expected="a CoC scale in pixels > 0", got=self.blur, fix="e.g. blur=30")
        if self.focus_disparity is not None and not 0.0 <= self.focus_disparity <= 1.0:
            raise InputError("focus_disparity", expected="a disparity in [0, 1]", got=self.focus_disparity,
                             fix="e.g. focus_disparity=0.8")
        from ..metrics.fidelity import SSIM_VARIANTS

        if self.ssim not in SSIM_VARIANTS:
            raise InputError("ssim", expected=f"one of {', '.join(SSIM_VARIANTS)}", got=self.ssim, fix="ssim=gaussian")
        if self.display not in DISPLAYS:
            raise InputError("display", expected=f"one of {', '.join(DISPLAYS)}", got=self.display,
                             fix="display=srgb8 (8-bit sRGB files), or display=gamma22 for BLB as BokehMe scores it")
        if self.lpips_net not in ("alex", "vgg"):
            raise InputError("lpips_net", expected="alex or vgg", got=self.lpips_net, fix="lpips_net=alex")
        from .gt_focus import GT_FOCUS

        if self.focus_heuristic not in (None, GT_FOCUS):
            raise InputError("focus_heuristic", expected=f"None or {GT_FOCUS!r}", got=self.focus_heuristic,
                             fix=f"focus_heuristic={GT_FOCUS!r} (the release's EBB! focus), or leave it out")
        if self.focus_heuristic is not None and self.focus_disparity is not None:
            raise InputError("focus_heuristic", expected="one source of focus", got=f"{self.focus_heuristic!r} and "
                             f"focus_disparity={self.focus_disparity}", fix="drop one of them")
        if self.blades is not None and (self.blades < 0 or self.blades in (1, 2)):
            raise InputError("blades", expected="0 (a circle) or at least 3", got=self.blades, fix="e.g. blades=6")


# -- pieces ---------------------------------------------------------------------------------------------
def display_values(image: np.ndarray | torch.Tensor, display: str = "srgb8") -> np.ndarray:
    """The values a linear image is scored on (see the module doc): :func:`display_8bit` for ``"srgb8"``,
    ``clip(x, 0, 1) ** (1 / 2.2)`` in float64 for ``"gamma22"``.

    Args:
        image: ``H x W x 3`` linear RGB.
        display: one of :data:`DISPLAYS`.

    Returns:
        ``H x W x 3`` float64 in [0, 1].
    """
    if display == "gamma22":
        return encode_gamma(image)
    return display_8bit(image)


def depth_edge_band(disparity, *, radius: int = EDGE_BAND_PX, jump: float = EDGE_JUMP) -> np.ndarray:
    """The depth-edge band: the pixels within ``radius`` px of a disparity jump larger than ``jump``.

    Args:
        disparity: ``H x W`` (or ``1 x H x W``) disparity in [0, 1], numpy or torch.
        radius: half-width of the band in pixels (Euclidean), >= 0.
        jump: the disparity difference between 4-neighbours that counts as an edge.

    Returns:
        ``H x W`` bool mask.
    """
    d = torch.as_tensor(np.asarray(disparity, dtype=np.float32))
    d = d.reshape(d.shape[-2:])
    edge = torch.zeros_like(d, dtype=torch.bool)
    dx = (d[:, 1:] - d[:, :-1]).abs() > jump
    dy = (d[1:, :] - d[:-1, :]).abs() > jump
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    if radius > 0 and bool(edge.any()):
        r = int(radius)
        yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        disk = ((yy**2 + xx**2) <= r * r).float()[None, None]
        edge = F.conv2d(edge.float()[None, None], disk, padding=r)[0, 0] > 0.5
    return edge.numpy()


def load_perceptual(*, hub_dir=None, device="cpu", lpips_net: str = "alex") -> dict[str, Any]:
    """The perceptual metrics whose backbones are in the torch hub cache; never downloads.

    Args:
        hub_dir: the hub cache folder (``torch.hub``'s own when None).
        device: where the networks run.
        lpips_net: LPIPS's backbone, ``"alex"`` or ``"vgg"``.

    Returns:
        ``{"lpips": metric, "dists": metric}``, a metric replaced by the text ``"n/a (...)"`` saying where its
        weights were looked for when they are missing.
    """
    from ..metrics.perceptual import load_dists, load_lpips

    out: dict[str, Any] = {}
    for key, loader in (("lpips", lambda: load_lpips(lpips_net, hub_dir=hub_dir, device=device)),
                        ("dists", lambda: load_dists(hub_dir=hub_dir, device=device))):
        try:
            out[key] = loader()
        except ModelNotFoundError as exc:
            out[key] = f"{NA} (backbone weights not found in {exc.looked_in[0]})"
            logger.warning("%s: %s", key.upper(), out[key])
    return out


def lens_for_item(meta: dict[str, Any], options: EvalOptions) -> Lens | None:
    """The item's lens (``meta["lens"]``) with the run's ``blur`` / ``focus_disparity`` / ``blades`` on top.

    Args:
        meta: the item's ``meta``.
        options: the run's settings.

    Returns:
        The :class:`~lensblur.Lens`, or None when neither the item nor the options give both blur and focus.
    """
    known = meta.get("lens") or {}
    blur = options.blur if options.blur is not None else known.get("blur")
    focus = options.focus_disparity if options.focus_disparity is not None else known.get("focus_disparity")
    if blur is None or focus is None:
        return None
    aperture = known.get("aperture") or {}
    blades = options.blades if options.blades is not None else int(aperture.get("blades", 0))
    return Lens(focus_disparity=float(focus), blur=float(blur),
                aperture=Aperture(blades=blades, rotation=float(aperture.get("rotation", 0.0))))


# -- resumable per-image table --------------------------------------------------------------------------
def _read_rows(path: Path) -> list[dict[str, str]]:
    """Complete rows of an existing CSV (a row cut short by an interruption is dropped)."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise InputError("out_dir", expected=f"a per_image.csv with columns {','.join(COLUMNS)}", got=str(path),
                             fix="pass out_dir=FOLDER, a new folder")
        return [row for row in reader if None not in row.values() and all(k in row for k in COLUMNS)
                and row["seconds"] != ""]


def _rewrite(path: Path, rows: list[dict[str, str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, (list, tuple)):
        return " ".join(_fmt(v) for v in value)
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _identity_collate(item):
    return item


# -- the run --------------------------------------------------------------------------------------------
def _check_item(item: dict[str, Any], method: EvalMethod, lens: Lens | None, dataset_name: str,
                options: EvalOptions) -> None:
    if "target" not in item:
        raise InputError("dataset", expected="items with a ground-truth bokeh target to score against",
                         got=f"{dataset_name} item {item['meta'].get('id')} without one",
                         fix="evaluate on a split with targets (e.g. EBB! heldout or val294, BLB, synth)")
    if method.needs_disparity and "disparity" not in item:
        raise InputError("disparity_dir", expected=f"a disparity map for every image: method {method.name} "
                         "renders from image + disparity", got=f"none for {dataset_name} item {item['meta'].get('id')}",
                         fix="open the dataset with disparity_dir=DIR, a folder with one disparity map per image "
                         "(same file stem, larger = nearer), e.g. from a depth model")
    if method.needs_lens and lens is None:
        known = item["meta"].get("lens") or {}
        missing = [name for name in ("blur", "focus_disparity")
                   if getattr(options, name) is None and known.get(name) is None]
        raise InputError(missing[0], expected=f"a lens for method {method.name}; {dataset_name} does not record "
                         "the blur and focus of its targets", got="no " + " and no ".join(missing),
                         fix="set them in EvalOptions: blur=30 (pixels) and focus_disparity=0.5 (in [0, 1])")


def _score(item, prediction: np.ndarray, perceptual: dict[str, Any], options: EvalOptions) -> dict[str, Any]:
    target = display_values(item["target"].permute(1, 2, 0), options.display)
    pred = display_values(prediction, options.display)
    if pred.shape != target.shape:
        raise InputError("method", expected=f"an image of the target's size {target.shape[1]}x{target.shape[0]}",
                         got=f"{pred.shape[1]}x{pred.shape[0]}", fix="the method must keep the input size")
    row: dict[str, Any] = {"psnr": psnr(target, pred, data_range=1.0),
                           "ssim": ssim(target, pred, data_range=1.0, variant=options.ssim)}
    for key in ("lpips", "dists"):
        metric = perceptual.get(key)
        row[key] = NA if metric is None or isinstance(metric, str) else metric(target, pred)
    if "disparity" in item:
        band = depth_edge_band(item["disparity"], radius=options.edge_band)
        row["edge_pixels"] = int(band.sum())
        row["psnr_edge"] = psnr(target, pred, data_range=1.0, mask=band) if band.any() else NA
    else:
        row["edge_pixels"], row["psnr_edge"] = "", NA
    return row


def _with_target_focus(item: dict[str, Any], options: EvalOptions, dataset_name: str) -> EvalOptions:
    """``options`` with the item's focus disparity from the ground-truth edge heuristic."""
    from dataclasses import replace

    from .gt_focus import ground_truth_edge_focus

    if "target" not in item or "disparity" not in item:
        raise InputError("focus_heuristic", expected="items with a target and a disparity to take the focus from",
                         got=f"{dataset_name} item {item['meta'].get('id')} without "
                             f"{'a target' if 'target' not in item else 'a disparity'}",
                         fix="open the dataset with its disparity (disparity_dir=DIR), or pass focus_disparity")
    focus = ground_truth_edge_focus(item["image"].permute(1, 2, 0).numpy(), item["target"].permute(1, 2, 0).numpy(),
                                    item["disparity"][0].numpy())
    return replace(options, focus_heuristic=None, focus_disparity=min(max(focus, 0.0), 1.0))


def _scored_row(item: dict[str, Any], method: EvalMethod, perceptual: dict[str, Any], options: EvalOptions,
                dataset_name: str) -> dict[str, str]:
    """One item rendered by ``method`` and scored: its ``per_image.csv`` row (formatted)."""
    ident = str(item["meta"]["id"])
    if options.focus_heuristic is not None:     # on the pair as it was shot, before any exposure alignment
        options = _with_target_focus(item, options, dataset_name)
    if options.align_exposure:
        from ..data import align_exposure

        item = align_exposure(item, options.align_exposure)
    lens = lens_for_item(item["meta"], options)
    _check_item(item, method, lens, dataset_name, options)
    image = item["image"].permute(1, 2, 0).numpy()
    disparity = item["disparity"][0].numpy() if "disparity" in item else None
    start = time.perf_counter()
    prediction = method.predict(image, disparity=disparity, lens=lens, meta=item["meta"])
    seconds = time.perf_counter() - start
    row = _score(item, prediction, perceptual, options)
    row.update(id=ident, seconds=seconds, exposure_scale=item["meta"].get("exposure_scale"))
    return {k: _fmt(row.get(k)) for k in COLUMNS}


def _score_index(shared: tuple, index: int) -> dict[str, str] | None:
    """An executor's item: dataset item ``index`` read, rendered and scored (None when already scored)."""
    dataset, method, perceptual, options, dataset_name, done = shared
    item = dataset[index]
    if str(item["meta"]["id"]) in done:
        return None
    return _scored_row(item, method, perceptual, options, dataset_name)


def _rows(dataset, method, todo: list[int], perceptual, options: EvalOptions, dataset_name: str, done: set[str],
          executor):
    """The rows of the items ``todo``, in their order (None for an item found already scored)."""
    if executor is None:        # this process, the items read by a DataLoader (options.workers loaders)
        from torch.utils.data import DataLoader, Subset

        loader = DataLoader(Subset(dataset, todo), batch_size=None, shuffle=False, num_workers=options.workers,
                            collate_fn=_identity_collate)
        for item in loader:
            ident = str(item["meta"]["id"])
            yield None if ident in done else _scored_row(item, method, perceptual, options, dataset_name)
        return
    # Items finish in any order; rows are written in the items' order, so that the table (and every mean
    # over it) is the one this process alone would write. A row waits only for the items before it.
    shared = (dataset, method, perceptual, options, dataset_name, frozenset(done))
    waiting: dict[int, dict[str, str] | None] = {}
    following = 0
    for position, row in executor.map(_score_index, todo, shared=shared):
        waiting[position] = row
        while following in waiting:
            yield waiting.pop(following)
            following += 1


def evaluate(dataset, method: EvalMethod, out_dir, *, dataset_name: str, options: EvalOptions = EvalOptions(),
             perceptual: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
             executor=None) -> dict[str, Any]:
    """Score ``method`` on ``dataset``, resumably (see the module doc).

    Args:
        dataset: a dataset whose items follow :mod:`lensblur.data._common`, with targets.
        method: the method to score.
        out_dir: the run's folder (made if missing): ``per_image.csv``, ``run.json``, ``summary.json`` and
            ``table.md`` are written there.
        dataset_name: the name recorded in the run and the table.
        options: the run's settings.
        perceptual: the LPIPS/DISTS metrics (as :func:`load_perceptual` returns; loaded when None).
        settings: more settings recorded in ``run.json`` (a rerun must repeat them).
        executor: where items are read, rendered and scored (:mod:`lensblur.executor`: worker processes or Ray
            tasks; the dataset, the method and the metrics are sent to each worker); None: in this process
            (with ``options.workers`` data loaders). The rows, the resume rule and the scores are the same;
            the caller closes it.

    Returns:
        The summary (:func:`summarize`), also written to ``summary.json``.

    Raises:
        InputError: ``out_dir`` is inside the dataset's folder, or holds a run with other settings, or a
            malformed ``per_image.csv``; an item has
            no target, or no disparity or lens where ``method`` needs one; a prediction of another size.
    """
    trained = getattr(method, "training_data", None) or {}
    if getattr(dataset, "split", None) == "val294" and trained:
        from ..data.ebb import holds_val294

        if holds_val294(trained.get("dataset"), trained.get("split")):
            logger.warning("%s was trained on %s split %s, which holds Val294's pairs: its Val294 scores are "
                           "not a held-out measure (train on split train294 for that)", method.name,
                           trained.get("dataset"), trained.get("split"))
    out = Path(out_dir)
    root = getattr(dataset, "root", None)
    if root is not None and out.resolve().is_relative_to(Path(root).resolve()):
        raise InputError("out_dir", expected="a folder outside the dataset (results inside it would mix with the "
                         "data, and a later read of the dataset would see them)", got=f"{out} inside {root}",
                         fix="pass out_dir=results/NAME, a folder beside the dataset")
    make_folder(out, argument="out_dir")
    if perceptual is None:
        perceptual = load_perceptual(lpips_net=options.lpips_net)
    perceptual_state = {k: (v if isinstance(v, str) else getattr(v, "name", k)) for k, v in perceptual.items()}
    config = {"method": method.name, "dataset": dataset_name, **(settings or {}),
              # focus_heuristic only when set, so that runs made before it existed resume
              "options": {k: v for k, v in asdict(options).items() if k not in ("workers", "progress", "limit")
                          and not (k == "focus_heuristic" and v is None)},
              "perceptual": perceptual_state}
    run_file = out / "run.json"
    if run_file.is_file():
        previous = json.loads(run_file.read_text())
        if previous != config:
            raise InputError("out_dir", expected="the same settings as the run already in this folder",
                             got=f"{out} holds a run with {json.dumps(previous, sort_keys=True)}",
                             fix="pass out_dir=FOLDER, a new folder (or delete this one), to evaluate other settings")
    else:
        _write_json(run_file, config)

    csv_path = out / "per_image.csv"
    rows = _read_rows(csv_path)
    _rewrite(csv_path, rows)  # drops a row cut short by an interruption
    done = {row["id"] for row in rows}
    total = len(dataset) if options.limit is None else min(options.limit, len(dataset))
    todo = list(range(total))
    if hasattr(dataset, "item_id"):  # skip done items without loading them (else they are skipped after loading)
        todo = [i for i in todo if str(dataset.item_id(i)) not in done]
    logger.info("%s on %s: %d images, %d already scored", method.name, dataset_name, total, len(done))

    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=total - len(todo), desc=f"{method.name} on {dataset_name}", unit="img",
                   disable=not options.progress, file=None)
        with open(csv_path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
            for row in _rows(dataset, method, todo, perceptual, options, dataset_name, done, executor):
                if row is not None:
                    writer.writerow(row)
                    fh.flush()
                    os.fsync(fh.fileno())
                    done.add(row["id"])
                bar.update(1)
        bar.close()

    summary = summarize(_read_rows(csv_path), config=config, perceptual=perceptual_state)
    _write_json(out / "summary.json", summary)
    from .report import markdown_table

    write_text(out / "table.md", markdown_table([summary]))
    return summary


def summarize(rows: list[dict[str, str]], *, config: dict[str, Any], perceptual: dict[str, str]) -> dict[str, Any]:
    """Means over images (PSNR averaged per image, as the papers do; infinite PSNRs counted apart).

    Args:
        rows: the rows of ``per_image.csv`` (strings, as read).
        config: the run's settings (``run.json``).
        perceptual: per perceptual metric, its name or its ``"n/a (...)"`` text.

    Returns:
        ``{"method", "dataset", "images", "metrics", "counts", "psnr_infinite", "seconds_per_image",
        "config"}``; a metric with no value is ``"n/a"``.
    """
    means: dict[str, Any] = {}
    counts: dict[str, int] = {}
    infinite = 0
    for key in METRICS:
        values = []
        for row in rows:
            cell = row.get(key, "")
            if cell in ("", NA):
                continue
            value = float(cell)
            if math.isinf(value):
                infinite += key == "psnr"
                continue
            values.append(value)
        counts[key] = len(values)
        if key in ("lpips", "dists") and isinstance(perceptual.get(key), str) and perceptual[key].startswith(NA):
            means[key] = perceptual[key]
        elif values:
            means[key] = float(np.mean(values))
        else:
            means[key] = NA
    seconds = [float(r["seconds"]) for r in rows if r.get("seconds")]
    return {"method": config["method"], "dataset": config["dataset"], "images": len(rows), "metrics": means,
            "counts": counts, "psnr_infinite": infinite, "seconds_per_image": float(np.mean(seconds)) if seconds else None,
            "config": config}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
