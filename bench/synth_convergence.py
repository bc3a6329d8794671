"""Convergence of the ray tracer: 8-bit PSNR between the ground truth traced with S and with 4S samples.

The hardest scenes are those with the largest blur and HDR lights: the scenes are made by
``lensblur.synth.make_scene`` with the largest CoC pinned at 5% of the frame's longer side and lights on.
Prints one line per scene and sample count, with the estimated PSNR of S against the exact integral: the
approximation shrinks as ``1 / sqrt(S)``, so the error of S is about twice its difference from 4S, 6.02 dB
below the S-vs-4S PSNR. Usage::

    python bench/synth_convergence.py [--size 512x384] [--scenes 3] [--samples 64,256] [--tilt 0]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from lensblur.color import linear_to_srgb
from lensblur.metrics import psnr
from lensblur.synth import auto_samples, make_scene, trace

# Error of S ~ 2 x (S vs 4S difference) under 1 / sqrt(S) convergence: 20 log10(2) dB.
ERROR_TO_DIFFERENCE_DB = 20 * math.log10(2)

def to_8bit(linear: np.ndarray) -> np.ndarray:
    return np.round(linear_to_srgb(torch.from_numpy(linear)).numpy() * 255.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x384")
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--samples", default="auto", help="comma-separated S values, or 'auto'")
    parser.add_argument("--tilt", type=float, default=0.0, help="chance that a layer is tilted")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    found = 0
    index = 0
    print(f"{'scene':>5} {'layers':>6} {'lights':>6} {'max CoC':>8} {'S':>6} {'4S':>6} {'PSNR S vs 4S':>13} "
          f"{'est. vs exact':>14} {'time S':>7} {'time 4S':>8}")
    while found < args.scenes:
        scene = make_scene(index, args.seed, (w, h), tilt=args.tilt, max_coc=(0.05, 0.05))
        index += 1
        if not scene.lights:
            continue
        found += 1
        kwargs = {"blur": scene.blur, "focus_disparity": scene.focus_disparity, "aperture": scene.aperture,
                  "margin": scene.margin}
        counts = ([auto_samples(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity)]
                  if args.samples == "auto" else [int(v) for v in args.samples.split(",")])
        for s in counts:
            t0 = time.perf_counter()
            low = trace(scene.layers, samples=s, **kwargs).target
            t1 = time.perf_counter()
            high = trace(scene.layers, samples=4 * s, **kwargs).target
            t2 = time.perf_counter()
            value = psnr(to_8bit(high), to_8bit(low), data_range=255.0)
            print(f"{index - 1:>5} {len(scene.layers):>6} {len(scene.lights):>6} {scene.params['max_coc']:>8.1f} "
                  f"{s:>6} {4 * s:>6} {value:>10.2f} dB {value - ERROR_TO_DIFFERENCE_DB:>11.2f} dB "
                  f"{t1 - t0:>6.1f}s {t2 - t1:>7.1f}s", flush=True)


if __name__ == "__main__":
    main()
