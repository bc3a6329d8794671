"""``lensblur synth``: write a synthetic dataset of all-in-focus / ground-truth bokeh pairs.

Each pair is a layered scene (a background photo or procedural texture, 1..4 foreground layers with fine
structure and soft alpha, tilted planes, HDR lights) ray-traced through a thin lens by sampling the
aperture (:mod:`lensblur.synth`). The command translates flags and calls
:func:`lensblur.synth.dataset.synthesize`.
"""

from __future__ import annotations

import argparse
import json

from ..choices import SYNTH_PRESETS
from . import _args

__all__ = ["add_parser", "run"]

_EPILOG = """\
examples:
  lensblur synth -o data/synth-v1 -n 2000 --size 768x512 --seed 7
  lensblur synth -o data/synth-photos -n 500 --backgrounds photos/ --foregrounds cutouts/ --workers 2
  lensblur synth -o data/tiny -n 8 --size 256x192 --samples 128 --no-progress
  lensblur synth -o data/bd -n 1000 --size 768x768 --preset bokehdiff --store-layers
  lensblur synth --rerender data/bd -o data/bd-f2 --blur 40 --focus-disparity 0.2   # trace again, another lens
  lensblur synth -o s3://bucket/synth-1m -n 1000000 --executor ray --ray-address auto  # docs/scale.md

Running the same command again continues an interrupted run (complete pairs are kept) and gives the same
bytes; pair i depends only on --seed and i. Layout: ROOT/manifest.json and ROOT/pairs/NNNNNN/ with
image.png/image16.png/image.pfm (all-in-focus), disparity.png (16-bit, larger = nearer), alpha_NN.png,
target.png/target16.png/target.pfm (ground truth) and params.json. See docs/synth.md.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "synth",
                           help="synthesise all-in-focus / bokeh pairs by ray tracing layered scenes",
                           description="Write a synthetic dataset: layered scenes with transparency at known "
                                       "disparities, ray-traced through a thin lens by sampling the aperture.",
                           epilog=_EPILOG)
    _args.add_output(parser, folder=True, old=("--out",), urls=True,
                     help="dataset folder (created; an earlier run is resumed), or an fsspec URL (s3://bucket/set)")
    parser.add_argument("-n", "--count", type=int, help="number of pairs (indices 0..N-1); not with --rerender")
    parser.add_argument("--size", type=_args.size, metavar="WxH",
                        help="frame size, 32x32 to 8192x8192 (768x512); not with --rerender")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (0)")
    parser.add_argument("--backgrounds", metavar="DIR", help="folder of background photos (else procedural)")
    parser.add_argument("--foregrounds", metavar="DIR",
                        help="folder of RGBA cut-outs (PNG with alpha; else procedural objects)")
    parser.add_argument("--workers", type=int, default=1, help="processes (1)")
    parser.add_argument("--samples", type=int, default=None,
                        help="aperture samples per pair, at most 16384 (default: automatic per scene, 64..2048)")
    parser.add_argument("--layers", type=int, default=4, choices=(1, 2, 3, 4),
                        help="largest number of foreground layers (4)")
    parser.add_argument("--tilt", type=float, default=0.5, help="chance that a layer is a tilted plane (0.5)")
    parser.add_argument("--no-lights", action="store_true", help="no HDR light sources")
    parser.add_argument("--preset", choices=SYNTH_PRESETS, default="lensblur",
                        help="scene distribution: lensblur (default, richer scenes) or bokehdiff (BokehDiff's "
                             "released generator); see docs/synth.md")
    parser.add_argument("--store-layers", action="store_true",
                        help="also keep each pair's layers (layers.npz) to re-trace them later")
    parser.add_argument("--rerender", metavar="SOURCE",
                        help="trace the pairs of SOURCE (made with --store-layers) again with the lens below, "
                             "into the -o folder")
    _args.add_lens(parser, only=("blur", "focus_disparity", "blades", "rotation"),
                   defaults={"rotation": None},
                   helps={"blur": "with --rerender: the new CoC scale K in pixels (default: each pair's own)",
                          "focus_disparity": "with --rerender: the new focus disparity (default: each pair's own)",
                          "blades": "with --rerender: aperture blades, 0 = circle (default: each pair's own)",
                          "rotation": "with --rerender: blade rotation in degrees"})
    _args.add_executor(parser, workers_help="")
    _args.add_format(parser, "text", "json", help="how to print the summary")
    _args.add_progress(parser)
    _args.add_compute(parser, only=("threads",), helps={"threads": "CPU threads of each worker process's torch work "
                      "(default: $LENSBLUR_THREADS, else the cores this process may run on; workers > 1 take 1 each)"})
    parser.set_defaults(run=run)
    return parser


def _rerender(args) -> int:
    from ..lens import Aperture
    from ..synth import rerender

    aperture = None if args.blades is None else Aperture(blades=args.blades, rotation=args.rotation or 0.0)
    count = rerender(args.rerender, args.output, blur=args.blur, focus_disparity=args.focus_disparity,
                     aperture=aperture, samples=args.samples)
    if args.format == "json":
        print(json.dumps({"root": str(args.output), "written": count, "rerendered_from": str(args.rerender)}))
    else:
        print(f"{args.output}: traced {count} pairs of {args.rerender} again")
    return 0


def run(args) -> int:
    from ..errors import InputError
    from ..synth.dataset import synthesize

    lens = [f for f, v in (("--blur", args.blur), ("--focus-disparity", args.focus_disparity),
                           ("--blades", args.blades), ("--rotation", args.rotation)) if v is not None]
    if args.rerender is not None:
        if args.count is not None:
            raise InputError("--count", expected="no --count with --rerender (every pair of SOURCE is traced)",
                             got=args.count, fix="drop -n")
        for flag, value in (("--size", args.size), ("--backgrounds", args.backgrounds),
                            ("--foregrounds", args.foregrounds)):
            if value is not None:       # the scenes, and their frames, are SOURCE's own
                raise InputError(flag, expected=f"no {flag} with --rerender (SOURCE's scenes are traced again)",
                                 got=value if not isinstance(value, tuple) else "x".join(map(str, value)),
                                 fix=f"drop {flag}")
        if args.executor != "local" or args.ray_address is not None:
            raise InputError("--executor", expected="the local executor with --rerender", got=args.executor,
                             fix="drop --executor/--ray-address")
        return _rerender(args)
    if args.count is None:
        raise InputError("--count", expected="the number of pairs to make", got="none", fix="e.g. -n 2000")
    if lens:
        raise InputError(lens[0], expected="lens flags only with --rerender (new scenes draw their own lens)",
                         got=" ".join(lens), fix="drop them, or add --rerender SOURCE")
    with _args.executor_from_flags(args) as executor:
        size = {"size": args.size} if args.size is not None else {}      # else synthesize's own default
        report = synthesize(args.output, args.count, **size, seed=args.seed, backgrounds=args.backgrounds,
                            foregrounds=args.foregrounds, workers=args.workers, samples=args.samples,
                            max_layers=args.layers, tilt=args.tilt, lights=not args.no_lights,
                            store_layers=args.store_layers, preset=args.preset,
                            progress=_args.show_progress(args), executor=executor)
    per_pair = report.seconds / report.written if report.written else 0.0
    if args.format == "json":
        print(json.dumps({"root": str(report.root), "written": report.written, "skipped": report.skipped,
                          "seconds": round(report.seconds, 3), "seconds_per_pair": round(per_pair, 3)}))
    else:
        print(f"{report.root}: wrote {report.written} pairs, kept {report.skipped} complete ones "
              f"({report.seconds:.1f} s, {per_pair:.2f} s per pair)")
    return 0
