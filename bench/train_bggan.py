"""Does BGGAN learn on this CPU? Train it on `lensblur synth` pairs and score held-out pairs against identity.

Makes (or completes) a cached synthetic set of --pairs square pairs, trains BGGAN with the shared loop on all
but the last --held-out (phase 1, reconstruction, for the first 3/4 of the steps; phase 2, the GAN
fine-tuning, for the rest, its first quarter the critic's warm-up; no VGG term unless --vgg-weights is given, since this machine has no ImageNet
weights), then prints the held-out PSNR / SSIM (8-bit sRGB, as `lensblur eval` scores) of the input itself
(identity) and of the trained Glass-Net, the margin between them, and the training time.

    python bench/train_bggan.py --threads 1  # 300 pairs at 128 px, 800 steps of 4: 600 + 200 (50 of warm-up)
    python bench/train_bggan.py --data /tmp/tiny --pairs 6 --held-out 2 --size 64 --steps 2 --ngf 4 --ndf 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from train_pix2pix import held_out_scores, identity_comparison, make_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder (made or completed; default: the cache folder "
                                                  "bench/train_pix2pix.py uses)")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--pretrain-steps", type=int, help="phase 1 (reconstruction only) steps (3/4 of --steps, as "
                        "the fact sheet's about 1k of reconstruction before a few hundred of GAN fine-tuning)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--ngf", type=int, default=32, help="both stages' width (64 in lensblur's default)")
    parser.add_argument("--ndf", type=int, default=32, help="the discriminator branches' width (64)")
    parser.add_argument("--adv-weight", type=float, default=1.0, help="the adversarial term's weight (1, eq. 4)")
    parser.add_argument("--d-warmup-steps", type=int, help="the first phase-2 steps, in which the discriminator "
                        "trains before Glass-Net's loss takes its term (default: a quarter of phase 2)")
    parser.add_argument("--d-norm", default="spectral", help="the discriminator's normalisation (spectral, the "
                        "default; instance, as lensblur's BGGAN had before, for the comparison)")
    parser.add_argument("--vgg-weights", type=Path, help="ImageNet VGG-19 weights, for the VGG term")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, help="keep the run folder here (default: a temporary one); its "
                        "step-N checkpoint at the end of phase 1 can start other fine-tunings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lensblur.baselines import BGGAN, BGGANConfig
    from lensblur.train import TrainConfig, train

    training, held_out = make_pairs(args.data, args.pairs, args.size, args.seed, args.held_out)
    num_downs = int(np.log2(args.size))
    half = args.pretrain_steps if args.pretrain_steps is not None else args.steps * 3 // 4
    warmup = (args.steps - half) // 4 if args.d_warmup_steps is None else args.d_warmup_steps
    d_layers = tuple(n for n in (2, 3, 4) if 3 * 2**n <= args.size)
    config = BGGANConfig(num_downs=num_downs, ngf=args.ngf, refine_num_downs=num_downs, refine_ngf=args.ngf,
                         ndf=args.ndf, d_layers=d_layers, use_vgg=args.vgg_weights is not None, pretrain_steps=half,
                         adv_weight=args.adv_weight, d_norm=args.d_norm, d_warmup_steps=warmup,
                         lr_constant_steps=half, lr_decay_steps=args.steps - half)
    method = BGGAN(config, seed=args.seed, vgg_weights=args.vgg_weights)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or Path(tmp) / "run"
        start = time.perf_counter()
        loop = {"batch_size": args.batch_size, "seed": args.seed, "log_every": max(1, args.steps // 10),
                "progress": False}
        # phase 1 alone, scored, then resumed into phase 2 (the same run: only the step count changes)
        train(method, training, run, TrainConfig(steps=half, checkpoint_every=half, **loop))
        phase1 = held_out_scores(held_out, {"glass-net after phase 1 (L1 + SSIM only)": method.predict})
        phase1_comparison = identity_comparison(held_out, method.predict)
        result = train(method, training, run, TrainConfig(steps=args.steps, checkpoint_every=half, **loop),
                       resume=True)
        seconds = time.perf_counter() - start
        logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = {**held_out_scores(held_out, {"identity": lambda x: x}), **phase1,
            **held_out_scores(held_out, {"bggan": method.predict})}
    vgg = "with VGG" if config.use_vgg else "no VGG"
    print(f"bggan (two U-Nets with {num_downs} downs, ngf {args.ngf}; D branches {d_layers}, ndf {args.ndf}, "
          f"{args.d_norm} norm, {warmup} warm-up steps; adversarial weight {args.adv_weight}; {vgg}), "
          f"{args.steps} steps of {args.batch_size} ({half} reconstruction, {args.steps - half} GAN) on "
          f"{len(training)} pairs: {seconds:.0f} s on {args.threads} threads")
    print("last losses: " + ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items()))
    print("L1 (display values in [0, 1]) by step: " + ", ".join(f"{x['step']}: {x['l1']:.4f}" for x in logged))
    print(f"held-out pairs: {len(held_out)}")
    print("| method | PSNR | SSIM |")
    print("|---|---:|---:|")
    for name, (p, s) in rows.items():
        print(f"| {name} | {p:.2f} | {s:.4f} |")
    (p0, s0), (p1, s1) = rows["identity"], rows["bggan"]
    print(f"margin over identity: {p1 - p0:+.2f} dB PSNR, {s1 - s0:+.4f} SSIM")
    print("glass-net after phase 1: " + phase1_comparison)
    print("bggan: " + identity_comparison(held_out, method.predict))


if __name__ == "__main__":
    main()
