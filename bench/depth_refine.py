"""Does edge-aware refinement of a degraded disparity map improve the rendered bokeh at depth edges?

Scenes are lensblur's synthetic layered scenes with ray-traced ground truth (``lensblur.synth``). The true
disparity is degraded the ways real maps are wrong: blurred (a soft monocular map), dilated and eroded
(edges a few pixels off), downsampled 4x (a phone's low-resolution depth). Each degraded map is rendered with
the layered renderer as it is and after ``lensblur.depth.refine`` (``upsample`` for the 4x case), and the
result is scored on the depth-edge band (8-bit sRGB PSNR) twice: against the ray-traced target (what a
user sees, the renderer's own error included), and against the same renderer fed the true map (the map's
error alone). The band's mean absolute disparity error is printed too.

    python bench/depth_refine.py                 # 6 scenes at 256x192
    python bench/depth_refine.py --scenes 12
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F


def degrade(disparity: np.ndarray, how: str) -> np.ndarray:
    t = torch.from_numpy(disparity)[None, None]
    if how == "blurred":
        k = torch.ones(1, 1, 9, 9) / 81
        out = F.conv2d(F.pad(t, (4, 4, 4, 4), mode="replicate"), k)
    elif how == "dilated":
        out = F.max_pool2d(F.pad(t, (3, 3, 3, 3), mode="replicate"), 7, stride=1)
    elif how == "eroded":
        out = -F.max_pool2d(F.pad(-t, (3, 3, 3, 3), mode="replicate"), 7, stride=1)
    elif how == "downsampled 4x":
        return F.avg_pool2d(t, 4)[0, 0].numpy()
    else:
        raise ValueError(how)
    return out[0, 0].numpy().astype(np.float32)


def main() -> None:
    import lensblur
    from lensblur.depth import refine, upsample
    from lensblur.eval.runner import depth_edge_band
    from lensblur.metrics import psnr
    from lensblur.synth import make_scene, trace

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--size", default="256x192")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))

    def encode(x):
        return np.round(lensblur.color.linear_to_srgb(torch.from_numpy(np.ascontiguousarray(x))).numpy() * 255) / 255

    ways = ["blurred", "dilated", "eroded", "downsampled 4x"]
    # per way: (vs truth as it is, refined), (vs the exact map's render as it is, refined), (band MAE ...)
    scores = {way: [[], [], [], [], [], []] for way in ways}
    exact = []
    for index in range(args.scenes):
        scene = make_scene(index, args.seed, (w, h), max_coc=(0.02, 0.04), lights=False)
        truth = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity,
                      aperture=scene.aperture, margin=scene.margin)
        image = np.clip(truth.image, 0, None)
        band = depth_edge_band(truth.disparity)
        lens = lensblur.Lens(scene.focus_disparity, scene.blur, scene.aperture)
        target = encode(truth.target)

        def rendered(disparity, image=image, lens=lens):
            return encode(lensblur.render(image, np.clip(disparity, 0, 1), lens))

        from_truth = rendered(truth.disparity)
        exact.append(psnr(target, from_truth, data_range=1.0, mask=band))
        for way in ways:
            bad = degrade(truth.disparity, way)
            fixed = upsample(image, bad) if way.startswith("down") else refine(image, bad)
            if way.startswith("down"):
                bad = lensblur.io.resize_map(bad, truth.disparity.shape)
            for k, disparity in enumerate((bad, fixed)):
                out = rendered(disparity)
                scores[way][k].append(psnr(target, out, data_range=1.0, mask=band))
                scores[way][2 + k].append(psnr(from_truth, out, data_range=1.0, mask=band))
                scores[way][4 + k].append(float(np.abs(np.clip(disparity, 0, 1) - truth.disparity)[band].mean()))
        print(f"scene {index}: exact map {exact[-1]:.2f} dB; "
              + "; ".join(f"{way} {scores[way][0][-1]:.2f} -> {scores[way][1][-1]:.2f}" for way in ways), flush=True)
    print(f"\n{args.scenes} scenes at {w}x{h}; PSNR (dB) of the layered render on the depth-edge band, against "
          f"ray-traced truth (the true disparity gives {np.mean(exact):.2f} dB) and against the render from the "
          f"true disparity; mean absolute disparity error on the band\n")
    print("| degraded disparity | vs truth: as it is | refined | gain | vs true-map render: as it is | refined "
          "| band error: as it is | refined |")
    print("|---|---|---|---|---|---|---|---|")
    for way in ways:
        m = [float(np.mean(v)) for v in scores[way]]
        print(f"| {way} | {m[0]:.2f} | {m[1]:.2f} | {m[1] - m[0]:+.2f} | {m[2]:.2f} | {m[3]:.2f} "
              f"| {m[4]:.4f} | {m[5]:.4f} |")


if __name__ == "__main__":
    main()
