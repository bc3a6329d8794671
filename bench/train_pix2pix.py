"""Does pix2pix learn on this CPU? Train it on `lensblur synth` pairs and score held-out pairs against identity.

Makes (or reuses) a synthetic set of --pairs square pairs, trains pix2pix with the shared loop on all but the
last --held-out, then prints the held-out PSNR / SSIM (8-bit sRGB, as `lensblur eval` scores) of the input
itself (identity) and of the trained generator, with the training time.

    python bench/train_pix2pix.py                                  # 300 pairs at 128 px, 600 steps
    python bench/train_pix2pix.py --pairs 120 --steps 100 --ngf 16  # a quick look
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder (made if missing; default: a temporary one)")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--ngf", type=int, default=32, help="generator width (64 in the reference)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lensblur.baselines import Pix2Pix, Pix2PixConfig
    from lensblur.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        training, held_out = make_pairs(args.data or Path(tmp) / "synth", args.pairs, args.size, args.seed,
                                        args.held_out)
        n_train = len(training)
        num_downs = int(np.log2(args.size))
        config = Pix2PixConfig(num_downs=num_downs, ngf=args.ngf, lr_constant_steps=args.steps // 2,
                               lr_decay_steps=args.steps - args.steps // 2)
        method = Pix2Pix(config, seed=args.seed)
        start = time.perf_counter()
        train(method, training, Path(tmp) / "run", TrainConfig(steps=args.steps, batch_size=args.batch_size,
                                                               seed=args.seed, checkpoint_every=args.steps,
                                                               log_every=50, progress=False))
        seconds = time.perf_counter() - start
        rows = score_held_out(held_out, {"pix2pix": method.predict})
        print(f"pix2pix (unet with {num_downs} downs, ngf {args.ngf}), {args.steps} steps of {args.batch_size} "
              f"on {n_train} pairs: {seconds:.0f} s on {args.threads} threads")
        print(f"held-out pairs: {len(held_out)}")
        print("| method | PSNR | SSIM |")
        print("|---|---:|---:|")
        for name, (p, s) in rows.items():
            print(f"| {name} | {p:.2f} | {s:.4f} |")


def make_pairs(folder: Path, count: int, size: int, seed: int, held_out: int):
    """``count`` synthetic ``size`` x ``size`` pairs in ``folder`` (made, or completed, there), split into the
    training pairs and the last ``held_out``."""
    from torch.utils.data import Subset

    from lensblur.data import SynthDataset
    from lensblur.synth.dataset import synthesize

    start = time.perf_counter()
    synthesize(folder, count, size=(size, size), seed=seed, samples=128, progress=False)
    print(f"data: {count} pairs at {size}x{size} in {folder} ({time.perf_counter() - start:.0f} s)")
    pairs = SynthDataset(folder)
    n_train = len(pairs) - held_out
    return Subset(pairs, range(n_train)), Subset(pairs, range(n_train, len(pairs)))


def score_held_out(held_out, predictors: dict) -> dict[str, tuple[float, float]]:
    """Mean PSNR and SSIM on 8-bit sRGB values (as ``lensblur eval`` scores) of the input itself
    (``identity``) and of each ``predict`` (``(1, 3, H, W)`` linear RGB in and out) on the held-out pairs."""
    from lensblur.eval.runner import display_8bit
    from lensblur.metrics import psnr, ssim

    scores = {name: ([], []) for name in ("identity", *predictors)}
    for i in range(len(held_out)):
        item = held_out[i]
        target = display_8bit(item["target"].permute(1, 2, 0))
        outputs = {"identity": item["image"], **{name: predict(item["image"][None])[0]
                                                 for name, predict in predictors.items()}}
        for name, out in outputs.items():
            shown = display_8bit(out.permute(1, 2, 0))
            scores[name][0].append(psnr(target, shown, data_range=1.0))
            scores[name][1].append(ssim(target, shown, data_range=1.0))
    return {name: (float(np.mean(p)), float(np.mean(s))) for name, (p, s) in scores.items()}


if __name__ == "__main__":
    main()
