"""Does pix2pix learn on this CPU? Train it on `lensblur synth` pairs and score held-out pairs against identity.

Makes (or reuses, from a cache folder) a synthetic set of --pairs square pairs, trains pix2pix with the shared
loop on all but the last --held-out, then prints the held-out PSNR / SSIM (8-bit sRGB, as `lensblur eval`
scores) of the input itself (identity) and of the trained generator, with the training time.
bench/train_cyclegan.py trains on the same pairs (make_pairs) and scores the same way (held_out_scores).

    python bench/train_pix2pix.py                                  # 300 pairs at 128 px, 600 steps
    python bench/train_pix2pix.py --pairs 120 --steps 100 --ngf 16  # a quick look
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_pairs(folder: Path | None, pairs: int, size: int, seed: int, held_out: int):
    """The synthetic set in ``folder`` (default: a cache folder named by its settings), made or completed
    (``synthesize`` resumes), split into (training, held-out) subsets."""
    from torch.utils.data import Subset

    from lensblur.data import SynthDataset
    from lensblur.synth.dataset import synthesize

    folder = folder or Path(tempfile.gettempdir()) / "lensblur-bench" / f"synth-{size}px-{pairs}-seed{seed}"
    start = time.perf_counter()
    synthesize(folder, pairs, size=(size, size), seed=seed, samples=128, progress=False)
    print(f"data: {pairs} pairs at {size}x{size} in {folder} ({time.perf_counter() - start:.0f} s)")
    dataset = SynthDataset(folder)
    n_train = len(dataset) - held_out
    return Subset(dataset, range(n_train)), Subset(dataset, range(n_train, len(dataset)))


def held_out_scores(held_out, methods: dict) -> dict[str, tuple[float, float]]:
    """Mean PSNR and SSIM (8-bit sRGB) against the targets of each ``name -> ((B, 3, H, W) -> same)`` mapping."""
    from lensblur.eval.runner import display_8bit
    from lensblur.metrics import psnr, ssim

    rows = {name: ([], []) for name in methods}
    for i in range(len(held_out)):
        item = held_out[i]
        target = display_8bit(item["target"].permute(1, 2, 0))
        for name, method in methods.items():
            with torch.no_grad():
                shown = display_8bit(method(item["image"][None])[0].permute(1, 2, 0))
            rows[name][0].append(psnr(target, shown, data_range=1.0))
            rows[name][1].append(ssim(target, shown, data_range=1.0))
    return {name: (float(np.mean(p)), float(np.mean(s))) for name, (p, s) in rows.items()}


def identity_comparison(held_out, predict) -> str:
    """How a mapping compares with identity image by image: on how many held-out pairs its PSNR is higher, the
    median per-image gain, and the PSNR of all held-out pixels pooled (one MSE over the set), a line to print.

    The mean of per-image PSNRs weighs a near-perfect input heavily: an image already at 39 dB that a generator
    copies at 25 dB costs the mean as much as 14 images gaining 1 dB each."""
    from lensblur.eval.runner import display_8bit
    from lensblur.metrics import psnr

    gains, errors = [], {"identity": [], "method": []}
    for i in range(len(held_out)):
        item = held_out[i]
        target = display_8bit(item["target"].permute(1, 2, 0))
        with torch.no_grad():
            shown = {"identity": display_8bit(item["image"].permute(1, 2, 0)),
                     "method": display_8bit(predict(item["image"][None])[0].permute(1, 2, 0))}
        gains.append(psnr(target, shown["method"], data_range=1.0) - psnr(target, shown["identity"], data_range=1.0))
        for name, image in shown.items():
            errors[name].append(float(np.mean((np.asarray(image, np.float64) - np.asarray(target, np.float64)) ** 2)))
    pooled = 10 * np.log10(np.mean(errors["identity"]) / np.mean(errors["method"]))
    return (f"better than identity on {sum(g > 0 for g in gains)} of {len(gains)} held-out pairs; median gain "
            f"{np.median(gains):+.2f} dB; pooled PSNR (one MSE over all held-out pixels) {pooled:+.2f} dB")


def print_scores(scores: dict[str, tuple[float, float]]) -> None:
    print("| method | PSNR | SSIM |")
    print("|---|---:|---:|")
    for name, (p, s) in scores.items():
        print(f"| {name} | {p:.2f} | {s:.4f} |")


def batch_statistics_predict(method):
    """The reference's test without ``--eval``: BatchNorm on the image's own statistics, dropout on (seeded).

    It runs a copy of the generator: a forward pass in training mode also moves BatchNorm's running statistics
    toward the test image's, and on the generator itself that would change what ``method.predict`` (evaluation
    mode, the running statistics) gives for every later held-out image.
    """
    from lensblur.baselines.pix2pix import from_display, to_display

    def predict(image):
        torch.manual_seed(0)
        generator = copy.deepcopy(method.generator).train()
        with torch.no_grad():
            out = generator(to_display(image)).clamp(-1.0, 1.0)
        return from_display(out)

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder (made or completed; default: a cache folder in "
                        "the temporary directory, named by the settings)")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--ngf", type=int, default=32, help="generator width (64 in the reference)")
    parser.add_argument("--ndf", type=int, default=64, help="the PatchGAN's width (64 in the reference)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, help="keep the run folder here (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lensblur.baselines import Pix2Pix, Pix2PixConfig
    from lensblur.train import TrainConfig, train

    training, held_out = make_pairs(args.data, args.pairs, args.size, args.seed, args.held_out)
    num_downs = int(np.log2(args.size))
    config = Pix2PixConfig(num_downs=num_downs, ngf=args.ngf, ndf=args.ndf, lr_constant_steps=args.steps // 2,
                           lr_decay_steps=args.steps - args.steps // 2)
    method = Pix2Pix(config, seed=args.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(method, training, args.run or Path(tmp) / "run", TrainConfig(steps=args.steps, batch_size=args.batch_size,
                                                               seed=args.seed, checkpoint_every=args.steps,
                                                               log_every=50, progress=False))
    seconds = time.perf_counter() - start
    scores = held_out_scores(held_out, {"identity": lambda x: x, "pix2pix": method.predict,
                                        "pix2pix, batch statistics at test": batch_statistics_predict(method)})
    print(f"pix2pix (unet with {num_downs} downs, ngf {args.ngf}; PatchGAN ndf {args.ndf}), {args.steps} steps of {args.batch_size} "
          f"on {len(training)} pairs: {seconds:.0f} s on {args.threads} threads")
    print(f"held-out pairs: {len(held_out)}")
    print_scores(scores)
    print("pix2pix: " + identity_comparison(held_out, method.predict))


if __name__ == "__main__":
    main()
