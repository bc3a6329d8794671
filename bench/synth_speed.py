"""Seconds per synthetic pair: scene generation + ray tracing + writing the pair's files (one process).

Scenes are ``lensblur.synth.make_scene`` scenes with the layer count and tilt pinned: "3 flat" is a
background and two foreground layers, all parallel to the sensor; "tilted" is the same with every layer a
tilted plane. The largest CoC is ``--coc`` of the frame's longer side (3%, the middle of the default
range; 5% is the top) and the sample count is automatic. Prints one line per configuration. Usage::

    python bench/synth_speed.py [--sizes 512x384,1024x768] [--pairs 3] [--threads 2] [--coc 0.03]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lensblur.synth import auto_samples, make_scene, trace
from lensblur.synth.dataset import save_pair


def scene_with(index: int, size, tilt: float, coc: float):
    """The first scene from ``index`` on that has exactly two foreground layers (3 layers in all)."""
    while True:
        scene = make_scene(index, 1, size, max_layers=2, tilt=tilt, max_coc=(coc, coc))
        if len(scene.layers) == 3:
            return index, scene
        index += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512x384,1024x768")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--coc", type=float, default=0.03, help="largest CoC radius / longer side (0.03)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, largest CoC {args.coc:.1%} of the longer side")
    print(f"{'size':>9} {'layers':>8} {'samples':>8} {'trace s':>8} {'pair s (median)':>16}")
    for text in args.sizes.split(","):
        w, h = (int(v) for v in text.split("x"))
        for label, tilt in (("3 flat", 0.0), ("tilted", 1.0)):
            times, traces, counts = [], [], []
            index = 0
            for _ in range(args.pairs):
                index, _ = scene_with(index, (w, h), tilt, args.coc)
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    _, scene = scene_with(index, (w, h), tilt, args.coc)
                    samples = auto_samples(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity)
                    t1 = time.perf_counter()
                    result = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity,
                                   aperture=scene.aperture, samples=samples, margin=scene.margin)
                    t2 = time.perf_counter()
                    save_pair(Path(tmp), index, scene, result, samples)
                    t3 = time.perf_counter()
                counts.append(samples)
                traces.append(t2 - t1)
                times.append(t3 - t0)
                index += 1
            print(f"{text:>9} {label:>8} {int(np.median(counts)):>8} {statistics.median(traces):>8.2f} "
                  f"{statistics.median(times):>16.2f}", flush=True)


if __name__ == "__main__":
    main()
