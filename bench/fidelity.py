"""Fidelity of the classical renderers against ray-traced ground truth.

Scenes are lensblur's synthetic layered scenes (``lensblur.synth.make_scene``): a background and 1..4
foreground layers with soft alpha, some tilted, some with HDR lights. Ground truth is made by sampling the
aperture and compositing the displaced layers front to back (``lensblur.synth.trace``), so what a blurred
foreground edge reveals of the background behind it is exact. Each renderer sees only what a camera would
give it: the all-in-focus image and the disparity of the front-most surface.

    python bench/fidelity.py                      # 8 scenes, 192x128
    python bench/fidelity.py --scenes 16 --size 256x192
    python bench/fidelity.py --methods layered --dtype float16     # half precision (render(..., dtype=))

Prints PSNR and SSIM (8-bit sRGB, as the papers score) overall and on the depth-edge band (pixels within
5 px of a disparity jump larger than 0.02), per method, averaged over the scenes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    import lensblur
    from lensblur._device import resolve_dtype
    from lensblur.eval.runner import depth_edge_band
    from lensblur.metrics import psnr, ssim
    from lensblur.render import PRECISIONS
    from lensblur.synth import make_scene, trace

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--size", default="192x128")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--methods", default="layered,scatter,gaussian")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32",
                        help="the precision of the methods that take dtype= (float16, bfloat16: layered); float32 "
                             "for the others")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    methods = args.methods.split(",")

    def encode(x):
        return np.round(lensblur.color.linear_to_srgb(torch.from_numpy(np.ascontiguousarray(x))).numpy() * 255) / 255

    rows = {m: [] for m in methods}
    seconds = {m: 0.0 for m in methods}
    for index in range(args.scenes):
        scene = make_scene(index, args.seed, (w, h), max_coc=(0.03, 0.05))
        truth = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity,
                      aperture=scene.aperture, margin=scene.margin)
        band = depth_edge_band(truth.disparity)
        lens = lensblur.Lens(scene.focus_disparity, scene.blur, scene.aperture)
        target = encode(truth.target)
        for m in methods:
            start = time.perf_counter()
            dtype = args.dtype if resolve_dtype(args.dtype) in PRECISIONS.get(m, ()) else "float32"
            out = lensblur.render(np.clip(truth.image, 0, None), truth.disparity, lens, method=m, dtype=dtype)
            seconds[m] += time.perf_counter() - start
            result = encode(out)
            rows[m].append((psnr(target, result, data_range=1.0), ssim(target, result, data_range=1.0),
                            psnr(target, result, data_range=1.0, mask=band) if band.any() else np.nan,
                            band.mean()))
        print(f"scene {index}: blur {scene.blur:.1f}, focus {scene.focus_disparity:.2f}, "
              f"{len(scene.layers)} layers, aperture blades {scene.aperture.blades}, "
              + ", ".join(f"{m} {rows[m][-1][0]:.2f} dB" for m in methods), flush=True)
    print(f"\n{args.scenes} scenes at {w}x{h}, seed {args.seed}, {args.dtype} where the method takes it; scores on "
          "8-bit sRGB against ray-traced truth\n")
    print("| method | PSNR | SSIM | PSNR on depth-edge band | seconds per scene |")
    print("|---|---|---|---|---|")
    for m in methods:
        r = np.array(rows[m], dtype=np.float64)
        print(f"| {m} | {r[:, 0].mean():.2f} | {r[:, 1].mean():.4f} | {np.nanmean(r[:, 2]):.2f} "
              f"| {seconds[m] / args.scenes:.2f} |")


if __name__ == "__main__":
    main()
