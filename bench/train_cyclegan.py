"""Does CycleGAN learn on this CPU? Train it on unpaired `lensblur synth` crops and score held-out pairs.

Uses the pairs of bench/train_pix2pix.py (the same cache folder, made or completed here): all but the last
--held-out are the two unpaired domains (each photo is shown with the bokeh image of another scene), the last
--held-out are scored against their own targets. Prints the training time, the losses over the run (means of
the first and the last 10% of the steps: the cycle term should fall), and the held-out PSNR / SSIM (8-bit
sRGB, as `lensblur eval` scores) of the input itself (identity) and of G, plus how far G's output is from its
input.

    python bench/train_cyclegan.py                                   # 300 pairs at 128 px, 800 steps of 1
    python bench/train_cyclegan.py --pairs 8 --held-out 2 --size 32 --steps 4 --ngf 4   # does it run?
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from train_pix2pix import held_out_scores, make_pairs, print_scores


def loss_summary(metrics: Path) -> dict[str, tuple[float, float]]:
    """Means of each logged loss over the first and the last 10% of the steps of a ``metrics.jsonl``."""
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    for r in records:
        r["cycle"] = r["cycle_a"] + r["cycle_b"]
    tenth = max(1, len(records) // 10)
    names = ["cycle", "cycle_a", "cycle_b", "identity_a", "identity_b", "gan_ab", "gan_ba", "loss_d_a", "loss_d_b"]
    return {name: (float(np.mean([r[name] for r in records[:tenth]])),
                   float(np.mean([r[name] for r in records[-tenth:]]))) for name in names if name in records[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder (made or completed; default: the cache folder "
                        "bench/train_pix2pix.py uses for the same settings)")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=1, help="1, as the reference")
    parser.add_argument("--ngf", type=int, default=32, help="generator and discriminator width (64 in the reference)")
    parser.add_argument("--architecture", choices=("unet", "resnet"), default="unet")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lensblur.baselines import CycleGAN, CycleGANConfig
    from lensblur.train import RandomCrops, TrainConfig, Unpaired, train

    training, held_out = make_pairs(args.data, args.pairs, args.size, args.seed, args.held_out)
    num_downs = int(np.log2(args.size))
    config = CycleGANConfig(architecture=args.architecture, num_downs=num_downs, ngf=args.ngf, ndf=args.ngf,
                            lr_constant_steps=args.steps // 2, lr_decay_steps=args.steps - args.steps // 2)
    method = CycleGAN(config, seed=args.seed)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        train(method, Unpaired(RandomCrops(training, args.size)), run,
              TrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed, checkpoint_every=args.steps,
                          log_every=1, progress=False))
        seconds = time.perf_counter() - start
        losses = loss_summary(run / "metrics.jsonl")
    generator = f"unet with {num_downs} downs" if args.architecture == "unet" else "resnet, 9 blocks"
    print(f"cyclegan ({generator}, ngf {args.ngf}), {args.steps} steps of {args.batch_size} on {len(training)} "
          f"unpaired photos and bokeh images: {seconds:.0f} s on {args.threads} threads")
    print("| loss (L1 on [-1, 1] values; LSGAN) | first 10% of steps | last 10% |")
    print("|---|---:|---:|")
    for name, (first, last) in losses.items():
        print(f"| {name} | {first:.4f} | {last:.4f} |")
    print(f"held-out pairs: {len(held_out)}")
    print_scores(held_out_scores(held_out, {"identity": lambda x: x, "cyclegan (G)": method.predict}))
    away = held_out_scores([{"image": held_out[i]["image"], "target": held_out[i]["image"]}
                            for i in range(len(held_out))], {"G": method.predict})["G"]
    print(f"G(x) against its input x: PSNR {away[0]:.2f}, SSIM {away[1]:.4f}")


if __name__ == "__main__":
    main()
