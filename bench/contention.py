"""The layered renderer alone and beside one CPU-bound competitor: 1, 4, 12 and 24 megapixels, max CoC 60 px.

Every render's time is measured twice in a row, once on a quiet machine and once while this script keeps one
other process busy (a Python loop, or with ``--competitor matmul`` a one-thread torch matrix product), so
each loaded/unloaded ratio compares two runs taken within seconds of each other. Each size runs in its own
process; the figures are medians of ``--repeat`` pairs.

    python bench/contention.py                          # lensblur's thread policy (the default)
    python bench/contention.py --sizes 12 --repeat 5
    python bench/contention.py --src /tmp/before/src    # the same with another checkout: the code before

``--threads`` is torch's thread count when the render starts (``torch.set_num_threads``), which lensblur's
policy reads as its number of workers. The code before the coarse parallelism (torch splitting each operation
over its own threads) is measured by pointing ``--src`` at a checkout of it, e.g.
``git worktree add /tmp/before 17f5ae1``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPETITORS = {
    "python": "while True:\n    pass\n",
    "matmul": "import torch\ntorch.set_num_threads(1)\na = torch.rand(512, 512)\nwhile True:\n    a @ a\n",
}


def one_case(megapixels: float, radius: float, blades: int, repeat: int, threads: int, competitor: str) -> dict:
    import torch

    import lensblur

    sys.path.insert(0, str(HERE))
    from speed import lens_for, photo_at, tune_allocator

    tune_allocator()        # before torch's threads start, as the command line does
    torch.set_num_threads(threads)
    image, disparity = photo_at(megapixels)
    lens = lens_for(disparity, radius, blades)

    def render() -> float:
        start = time.perf_counter()
        lensblur.render(image, disparity, lens)
        return time.perf_counter() - start

    lensblur.render(image[:256, :256], disparity[:256, :256], lens)      # warm-up
    alone, loaded = [], []
    for _ in range(repeat):
        alone.append(render())
        busy = subprocess.Popen([sys.executable, "-c", COMPETITORS[competitor]], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.5)                 # the competitor is running (and torch imported) before the render
            loaded.append(render())
        finally:
            busy.terminate()
            busy.wait()
    h, w = disparity.shape
    return {"size": f"{w}x{h}", "megapixels": w * h / 1e6, "alone": statistics.median(alone),
            "loaded": statistics.median(loaded),
            "ratio": statistics.median(b / a for a, b in zip(alone, loaded))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,12,24", help="megapixels, comma-separated")
    parser.add_argument("--radius", type=float, default=60.0, help="the largest CoC radius, pixels (60)")
    parser.add_argument("--aperture", choices=("circle", "hexagon"), default="circle")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of renders per size (3)")
    parser.add_argument("--threads", type=int, default=2, help="torch's thread count at the start (2)")
    parser.add_argument("--competitor", choices=sorted(COMPETITORS), default="python")
    parser.add_argument("--src", type=Path, help="import lensblur from this source folder instead")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        mp, radius, blades = args.case.split(":")
        print(json.dumps(one_case(float(mp), float(radius), int(blades), args.repeat, args.threads,
                                  args.competitor)))
        return
    env = os.environ.copy()
    env.pop("LENSBLUR_THREADS", None)
    if args.src is not None:
        env["PYTHONPATH"] = str(args.src.resolve())
    print(f"layered renderer, {args.aperture}, max CoC {args.radius:g} px, {args.threads} threads, "
          f"competitor: one {args.competitor} process; medians of {args.repeat} pairs"
          + (f"; lensblur from {args.src}" if args.src else ""))
    print("| size | MP | alone (s) | with one competitor (s) | loaded / alone |")
    print("|---|---|---|---|---|")
    for mp in (float(v) for v in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--case", f"{mp}:{args.radius}:{6 if args.aperture == 'hexagon' else 0}",
               "--repeat", str(args.repeat), "--threads", str(args.threads), "--competitor", args.competitor]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            print(f"| {mp} MP | | failed: {(done.stderr.strip().splitlines() or ['?'])[-1]} | | |", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {r['size']} | {r['megapixels']:.1f} | {r['alone']:.2f} | {r['loaded']:.2f} | {r['ratio']:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
