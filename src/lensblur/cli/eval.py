"""``lensblur eval``: run a method over a dataset and write per-image scores, a summary and a table."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..choices import ALIGNMENTS, DISPLAYS, EDGE_BAND_PX, FOCUS_HEURISTICS, LPIPS_NETS, SSIM_VARIANTS
from ..errors import InputError
from . import _args

__all__ = ["add_parser", "run"]

_EPILOG = """\
examples:
  lensblur eval --method layered --dataset synth --root data/synth-v1 -o results/
  lensblur eval --method identity --dataset ebb-val294 --root EBB/ -o results/ --align-exposure
  lensblur eval --method layered --dataset ebb --split heldout --root EBB/ -o results/ \\
      --disparity-dir EBB-disparity/ --normalize-disparity --blur 20 --focus-disparity 0.9
  lensblur eval --method scatter --dataset blb --level 5 --root BLB/ -o results/ --limit 5
  lensblur eval --method bokehdiff --dataset ebb-val294 --root EBB/ -o results/ --align-exposure --device cuda
  lensblur eval --method bokehdiff --dataset synth --root data/synth-bd-val -o results/ --lora runs/bd1
  lensblur eval --method layered --dataset synth --root /shared/synth-1m -o /shared/results/ \
      --executor ray --ray-address auto            # one Ray task per image (docs/scale.md)

Each run writes DIR/<dataset>[-<split/level>]-<method>[-aligned[-PROTOCOL]][-<ssim/display/lpips-net>]/
(the scoring choices other than the defaults) with per_image.csv (resumable: rerun the same command to
continue), run.json, summary.json and table.md; DIR/table.md gathers every run in DIR.
Scores are on 8-bit sRGB display values: PSNR, SSIM, LPIPS (AlexNet), DISTS, and PSNR on the depth-edge
band (pixels within --edge-band px of a disparity jump > 0.02) for datasets with disparity. LPIPS and DISTS
read their ImageNet backbones from the torch hub cache ($TORCH_HOME/hub/checkpoints); without them the
columns say n/a. Datasets: synth, ebb, ebb-val294, blb (with disparity and lens); nyu has no bokeh targets.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "eval",
                           help="score a method on a dataset (PSNR, SSIM, LPIPS, DISTS, depth-edge PSNR)",
                           description="Run a bokeh method over a dataset and score it like the papers.",
                           epilog=_EPILOG)
    parser.add_argument("--method", required=True,
                        help="identity, a renderer (layered, scatter, gaussian, ...), depth-threshold (on the "
                             "dataset's disparity, or with --checkpoint on a trained depth network's), a "
                             "trained pix2pix or cyclegan, or bokehdiff (with the diffusion flags)")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="a trained method's checkpoint (RUN/last.safetensors of lensblur train)")
    _args.add_threshold(parser)
    _args.add_diffusion(parser)
    _args.add_compute(parser, only=("threads", "device", "dtype"))
    parser.add_argument("--dataset", required=True, help="synth, ebb, ebb-val294, blb")
    parser.add_argument("--root", required=True, help="the dataset folder")
    _args.add_output(parser, folder=True, old=("--out",), help="results folder (one subfolder per run)")
    parser.add_argument("--split", help="EBB!: train, heldout (= test), val, aim-test, val294, train294")
    parser.add_argument("--level", type=int, help="BLB: blur level 1..5 (BokehDiff reports level 5)")
    parser.add_argument("--encoding", choices=("png16", "png8", "pfm"),
                        help="synth: which image files to read (default png16)")
    _args.add_depth_source(parser, only=("disparity_dir", "normalize_disparity"), helps={
        "disparity_dir": "a folder of per-image disparity maps (same stem as the image) for datasets without "
                         "disparity (EBB!)",
        "normalize_disparity": "min-max rescale each map from --disparity-dir (relative depth-model output)"})
    _args.add_lens(parser, only=("blur", "focus_disparity", "blades", "highlights"), helps={
        "blur": "CoC scale K in pixels (needed where the dataset has no lens)",
        "focus_disparity": "focus disparity in [0, 1] (idem)",
        "blades": "aperture blades (0 = circle), overriding the dataset's"})
    parser.add_argument("--limit", type=int, help="score only the first N images")
    parser.add_argument("--workers", type=int, default=0, help="data-loading worker processes of the local executor (default 0)")
    parser.add_argument("--edge-band", type=int, default=EDGE_BAND_PX,
                        help=f"depth-edge band half-width in pixels (default {EDGE_BAND_PX})")
    scoring = parser.add_argument_group("scoring protocol (non-default choices are named in the run's folder)")
    scoring.add_argument("--align-exposure", nargs="?", const=True, default=False, metavar="PROTOCOL",
                         help=f"scale each input to its target's exposure first: {', '.join(ALIGNMENTS)} (without "
                              f"PROTOCOL: {ALIGNMENTS[0]}, BokehDiff's EBB! protocol)")
    scoring.add_argument("--ssim", choices=SSIM_VARIANTS, default=SSIM_VARIANTS[0],
                         help=f"SSIM variant (default {SSIM_VARIANTS[0]})")
    scoring.add_argument("--display", choices=DISPLAYS, default=DISPLAYS[0],
                         help=f"values scored: 8-bit sRGB files or float gamma 2.2 (default {DISPLAYS[0]})")
    scoring.add_argument("--lpips-net", choices=LPIPS_NETS, default=LPIPS_NETS[0],
                         help=f"LPIPS backbone (default {LPIPS_NETS[0]})")
    scoring.add_argument("--focus-heuristic", choices=FOCUS_HEURISTICS,
                         help="take each pair's focus disparity from the edges its input shares with its target "
                              "(BokehDiff's released EBB! protocol; it reads the target, so the run is named "
                              "for it and is not a blind renderer's score)")
    _args.add_executor(parser, workers_help="", local_help="this process, with --workers data loaders")
    _args.add_format(parser, "markdown", "json", help="how to print the run's summary")
    _args.add_progress(parser)
    parser.set_defaults(run=run)
    return parser


def _run_name(args) -> str:
    parts = [args.dataset]
    if args.split:
        parts.append(args.split)
    if args.level is not None:
        parts.append(f"level{args.level}")
    parts.append(args.method)
    for prefix, value in (("t", args.threshold), ("sigma", args.threshold_sigma), ("feather", args.threshold_feather)):
        if value is not None:       # a method option given is part of what was run
            parts.append(f"{prefix}{value:g}")
    if args.align_exposure:
        protocol = ALIGNMENTS[0] if args.align_exposure is True else args.align_exposure
        parts.append("aligned" if protocol == ALIGNMENTS[0] else f"aligned-{protocol}")
    from ..eval.runner import EvalOptions

    for name in ("ssim", "display", "lpips_net"):
        if getattr(args, name) != getattr(EvalOptions, name):
            parts.append(getattr(args, name))
    if args.focus_heuristic:
        parts.append(f"focus-{args.focus_heuristic}")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def _dataset_options(args) -> dict:
    options = {}
    if args.split is not None:
        options["split"] = args.split
    if args.level is not None:
        options["level"] = args.level
    if args.encoding is not None:
        options["encoding"] = args.encoding
    if args.disparity_dir is not None:
        options["disparity_dir"] = args.disparity_dir
    if args.normalize_disparity:
        if args.disparity_dir is None:
            raise InputError("--normalize-disparity", expected="--disparity-dir as well", got="no --disparity-dir",
                             fix="pass --disparity-dir DIR")
        options["normalize_disparity"] = True
    return options


def run(args) -> int:
    from ..data import open_dataset
    from ..eval import collect_summaries, evaluate, load_perceptual, markdown_table
    from ..eval.runner import EvalOptions
    from ..io import write_text

    options = EvalOptions(blur=args.blur, focus_disparity=args.focus_disparity, blades=args.blades,
                          align_exposure=args.align_exposure, limit=args.limit, workers=args.workers,
                          edge_band=args.edge_band, progress=_args.show_progress(args), ssim=args.ssim,
                          display=args.display, lpips_net=args.lpips_net,
                          focus_heuristic=args.focus_heuristic)
    method = _args.method_from_flags(args, highlights=args.highlights)
    dataset = open_dataset(args.dataset, args.root, argument="--dataset", **_dataset_options(args))
    out_root = Path(args.output)
    if out_root.exists() and not out_root.is_dir():
        raise InputError("--output", expected="a folder", got=f"{out_root} (a file)", fix="choose a folder name")
    settings = {"root": str(Path(args.root).resolve()), "dataset_options": _dataset_options(args)}
    if args.checkpoint:     # a rerun with another checkpoint is another run (run.json refuses to mix them)
        settings["checkpoint"] = str(Path(args.checkpoint).resolve())
    settings.update({f"diffusion_{k}": str(v) for k, v in _args.diffusion_options(args).items()})
    if hasattr(method, "highlights"):   # a classical renderer: runs with other highlight recovery are not mixed
        settings["highlights"] = str(method.highlights)
    # local: this process renders and scores (with --workers data loaders); ray: one task per image.
    executor = _args.executor_from_flags(args) if args.executor == "ray" else None
    if args.ray_address is not None and executor is None:
        raise InputError("--ray-address", expected="--executor ray as well", got=args.ray_address,
                         fix="add --executor ray")
    try:
        summary = evaluate(dataset, method, out_root / _run_name(args), dataset_name=args.dataset, options=options,
                           perceptual=load_perceptual(lpips_net=args.lpips_net),
                           settings=settings, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    write_text(out_root / "table.md", markdown_table(collect_summaries(out_root)))
    if args.format == "json":
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        sys.stdout.write(markdown_table([summary]))
    return 0
