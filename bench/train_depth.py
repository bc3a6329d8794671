"""Does DenseDepth learn depth on this CPU, and how far does its depth take the paper's threshold bokeh?

Makes (or reuses, in a cache folder) --pairs synthetic pairs of one in-focus near subject in front of a
blurred background, trains DenseDepth with the shared loop on all but the last --held-out, then prints for
the held-out pairs:

* the depth loss (and abs rel, RMSE, delta1) of the network before and after training;
* PSNR / SSIM (8-bit sRGB, as `lensblur eval` scores) of identity, of depth-threshold on the trained
  network's depth, and of depth-threshold on the ground-truth disparity (the oracle ceiling), at the
  paper's thresholds 0.2, 0.25 and 0.3.

The pairs: lensblur's scene generator with one foreground layer, flat layers (no tilt), no HDR lights, then
refocused on the subject (the foreground layer's mean disparity) with the scene's own largest CoC, so that
the target is the sharp subject over a background blurred by the true lens (a disc, not a Gaussian). The
subject's disparity lies in 0.35..1, the background's in 0..0.3; read as 1 m .. 10 m (lensblur's assumed range
for maps without a metric one), the background is 2.7..10 m and the subject 1..2.4 m, so the normalised
depth (depth / 10 m) crosses the paper's thresholds between them.

    python bench/train_depth.py                                   # 300 pairs at 128 px, 300 steps, width 128
    python bench/train_depth.py --pairs 12 --held-out 4 --steps 5 # a check that it runs
    python bench/train_depth.py --decoder-width 1664 --steps 3000  # the paper's decoder (5.6x the FLOPs)

The decoder width defaults to 128 for a CPU: a training step of 4 pairs at 128 px is 28 GFLOP at width 128
(the encoder alone is 26), 63 at 832 (the Keras original) and 157 at 1664 (the PyTorch port). Without
densenet169-b2777c0a.pth in the torch hub cache the encoder starts from random weights (a warning says so),
which the paper's network did not.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def make_pairs(root: Path, count: int, size: int, seed: int, samples: int) -> None:
    """Subject-in-focus pairs (see the module doc) under ``root``, as lensblur.data.SynthDataset reads them."""
    from dataclasses import replace

    from lensblur.synth.dataset import MANIFEST, PAIRS, pair_name, save_pair
    from lensblur.synth.scene import make_scene
    from lensblur.synth.tracer import trace

    (root / PAIRS).mkdir(parents=True, exist_ok=True)
    manifest = {"generator": "bench/train_depth.py", "seed": seed, "size": [size, size], "count": count,
                "options": {"max_layers": 1, "tilt": 0.0, "lights": False, "focus": "subject", "samples": samples}}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    for i in range(count):
        if (root / PAIRS / pair_name(i) / "params.json").is_file():
            continue
        scene = make_scene(i, seed, (size, size), max_layers=1, tilt=0.0, lights=False)
        background, subject = scene.layers
        focus = float(np.clip(np.mean(subject.disparity), 0.0, 1.0))
        reach = max(focus - float(np.min(background.disparity)), 0.05)
        blur = float(scene.params["max_coc"]) / reach       # the scene's largest CoC, now on the background
        params = dict(scene.params, focus_disparity=round(focus, 6), blur=round(blur, 6), focus_on="subject")
        scene = replace(scene, focus_disparity=focus, blur=blur, params=params)
        result = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity, aperture=scene.aperture,
                       samples=samples, margin=scene.margin)
        save_pair(root / PAIRS, i, scene, result, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="pairs folder (made if missing; default: a cache folder)")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=128, help="aperture samples per pair")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=4, help="4, as DenseDepth's default")
    parser.add_argument("--decoder-width", type=int, default=128,
                        help="decoder width (128 for a CPU; 1664 the PyTorch port, 832 the Keras original)")
    parser.add_argument("--sigma", type=float, help="the threshold blur's sigma in px (default: 8 per 1024 px)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import tempfile

    from torch.utils.data import Subset

    from lensblur.baselines import DenseDepth, DenseDepthConfig, DepthTargets
    from lensblur.baselines.threshold import PAPER_THRESHOLDS, disparity_to_normalized_depth, threshold_blur
    from lensblur.data import SynthDataset
    from lensblur.eval.runner import display_8bit
    from lensblur.metrics import psnr, ssim
    from lensblur.train import RandomCrops, TrainConfig, train

    data = args.data or Path.home() / ".cache" / "lensblur" / "bench" / \
        f"train_depth-{args.size}px-seed{args.seed}-s{args.samples}"
    start = time.perf_counter()
    make_pairs(data, args.pairs, args.size, args.seed, args.samples)
    print(f"data: {args.pairs} subject-in-focus pairs at {args.size}x{args.size} in {data} "
          f"({time.perf_counter() - start:.0f} s)")
    pairs = SynthDataset(data)
    n_train = args.pairs - args.held_out
    training, held_out = Subset(pairs, range(n_train)), Subset(pairs, range(n_train, args.pairs))

    method = DenseDepth(DenseDepthConfig(decoder_width=args.decoder_width), seed=args.seed)
    before = method.validate(held_out, limit=len(held_out))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(method, RandomCrops(DepthTargets(training), args.size), Path(tmp) / "run",
              TrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed, checkpoint_every=args.steps,
                          log_every=50, progress=False))
        seconds = time.perf_counter() - start
    after = method.validate(held_out, limit=len(held_out))
    encoder = "ImageNet encoder" if method.encoder_weights else "random encoder (no ImageNet weights found)"
    print(f"DenseDepth, decoder width {args.decoder_width}, {encoder}: {args.steps} steps of {args.batch_size} on "
          f"{n_train} pairs in {seconds:.0f} s ({seconds / args.steps:.2f} s/step) on {args.threads} threads")
    print(f"held-out pairs: {len(held_out)}")
    print("| depth on held-out | loss | abs rel | RMSE (m) | delta1 |")
    print("|---|---:|---:|---:|---:|")
    for name, scores in (("start", before), ("end", after)):
        print(f"| {name} | {scores['val_loss']:.4f} | {scores['val_abs_rel']:.3f} | {scores['val_rmse']:.3f} | "
              f"{scores['val_delta1']:.3f} |")

    rows: dict[str, tuple[list[float], list[float]]] = {"identity": ([], [])}
    for t in PAPER_THRESHOLDS:
        rows[f"depth-threshold({t:g}), trained depth"] = ([], [])
        rows[f"depth-threshold({t:g}), oracle disparity"] = ([], [])
    for i in range(len(held_out)):
        item = held_out[i]
        image = item["image"][None]
        predicted = method.predict(image).to("cpu")
        oracle = disparity_to_normalized_depth(item["disparity"][None])
        outputs = {"identity": image}
        for t in PAPER_THRESHOLDS:
            outputs[f"depth-threshold({t:g}), trained depth"] = threshold_blur(image, predicted, threshold=t,
                                                                               sigma=args.sigma)
            outputs[f"depth-threshold({t:g}), oracle disparity"] = threshold_blur(image, oracle, threshold=t,
                                                                                 sigma=args.sigma)
        target = display_8bit(item["target"].permute(1, 2, 0))
        for name, out in outputs.items():
            shown = display_8bit(out[0].permute(1, 2, 0))
            rows[name][0].append(psnr(target, shown, data_range=1.0))
            rows[name][1].append(ssim(target, shown, data_range=1.0))
    sigma = f"{args.sigma:g} px" if args.sigma else f"default ({8 * args.size / 1024:g} px at {args.size} px)"
    print(f"bokeh on held-out pairs (Gaussian sigma {sigma}, hard mask):")
    print("| method | PSNR | SSIM |")
    print("|---|---:|---:|")
    for name, (p, s) in rows.items():
        print(f"| {name} | {np.mean([v for v in p if np.isfinite(v)]):.2f} | {np.mean(s):.4f} |")


if __name__ == "__main__":
    main()
