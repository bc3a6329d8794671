"""Peak memory of training on 512x512 crops: each method, a few steps at its paper settings, batch 1, CPU.

Every method runs as its own `lensblur train` process (so one peak does not hide another) and the figure is
that process's peak resident set (``ru_maxrss`` from ``wait4``), which holds the weights, the optimiser
states, the activations of one step and Python itself.

    python bench/train_memory.py                          # every trainable method, 512 px crops, 3 steps
    python bench/train_memory.py --methods pix2pix --crop 256
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Flags a method needs on this machine (no VGG-19 weights here: BGGAN trains without its VGG term).
EXTRA = {"bggan": ["--no-vgg"]}


def main() -> None:
    from lensblur.cli.train import TRAINERS
    from lensblur.synth.dataset import synthesize

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(TRAINERS), choices=list(TRAINERS))
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--data", type=Path, help="a synth folder of frames at least --crop on each side")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "synth"
        if args.data is None:
            synthesize(data, 2, size=(args.crop, args.crop), seed=0, samples=16, progress=False)
        print(f"{args.steps} steps of batch 1 on {args.crop}x{args.crop} crops, CPU, torch threads "
              f"{os.environ.get('OMP_NUM_THREADS', 'default')}")
        print("| method | peak memory | seconds per step |")
        print("|---|---:|---:|")
        for name in args.methods:
            argv = [sys.executable, "-m", "lensblur", "train", name, "--dataset", "synth", "--root", str(data),
                    "-o", str(Path(tmp) / f"run-{name}"), "--crop", str(args.crop), "--steps", str(args.steps),
                    "--checkpoint-every", str(args.steps), "-q", *EXTRA.get(name, [])]
            start = time.perf_counter()
            child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                print(f"| {name} | failed: {child.stderr.read().decode().strip().splitlines()[-1]} | |")
                continue
            print(f"| {name} | {usage.ru_maxrss / 2**20:.2f} GiB | {seconds / args.steps:.1f} (with start-up) |")


if __name__ == "__main__":
    main()
