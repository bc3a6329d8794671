"""Speed and memory of the layered renderer: 1, 4, 12 and 24 megapixels, max CoC radius 1%, 2.5% and 5% of
the width, 2 CPU threads. Each case runs in its own process so that its peak memory is its own.

    python bench/speed.py                 # the full table
    python bench/speed.py --sizes 1,12 --radii 0.05 --repeat 1

The photo is a real one (bokehme_3 from ../shared/samples with its 16-bit disparity) resized to each size;
the focus sits at disparity 0.35 and ``blur`` is chosen so that the largest CoC in the frame is the stated
radius. Prints seconds (best of --repeat), megapixels per second and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"


def one_case(megapixels: float, radius_fraction: float, repeat: int, threads: int, method: str) -> dict:
    import numpy as np
    import torch

    import lensblur
    from lensblur.io import resize_map

    torch.set_num_threads(threads)
    photo = lensblur.read_image(SAMPLES / "bokehme_3.jpg")
    disparity = lensblur.read_disparity(SAMPLES / "bokehme_3_disparity16.png")
    width = round((megapixels * 1e6 * 3 / 2) ** 0.5)
    height = round(width * 2 / 3)
    image = torch.nn.functional.interpolate(torch.from_numpy(photo).permute(2, 0, 1)[None], size=(height, width),
                                            mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    disparity = np.clip(resize_map(disparity, (height, width)), 0, 1)
    focus = 0.35
    radius = radius_fraction * width
    lens = lensblur.Lens(focus, radius / float(np.abs(disparity - focus).max()), lensblur.Aperture(blades=0))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        lensblur.render(image, disparity, lens, method=method)
        best = min(best, time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"megapixels": width * height / 1e6, "size": f"{width}x{height}", "radius_px": radius,
            "seconds": best, "mp_per_s": width * height / 1e6 / best, "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,12,24", help="megapixels, comma-separated")
    parser.add_argument("--radii", default="0.01,0.025,0.05", help="max CoC radius as a fraction of the width")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", default="layered")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        mp, frac = (float(v) for v in args.case.split(":"))
        print(json.dumps(one_case(mp, frac, args.repeat, args.threads, args.method)))
        return
    print(f"lensblur {args.method} renderer, {args.threads} threads, best of {args.repeat}")
    print("| size | MP | max CoC radius | seconds | MP/s | peak memory |")
    print("|---|---|---|---|---|---|")
    for mp in (float(v) for v in args.sizes.split(",")):
        for frac in (float(v) for v in args.radii.split(",")):
            cmd = [sys.executable, __file__, "--case", f"{mp}:{frac}", "--repeat", str(args.repeat),
                   "--threads", str(args.threads), "--method", args.method]
            done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
            if done.returncode != 0:
                print(f"| {mp} MP | | {frac:.1%} | failed: {done.stderr.strip().splitlines()[-1]} | | |")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {r['size']} | {r['megapixels']:.1f} | {frac:.1%} ({r['radius_px']:.0f} px) | {r['seconds']:.2f} "
                  f"| {r['mp_per_s']:.2f} | {r['peak_mb'] / 1024:.2f} GB |", flush=True)


if __name__ == "__main__":
    main()
