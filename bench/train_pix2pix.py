"""Does pix2pix learn on this CPU? Train it on `lensblur synth` pairs and score held-out pairs against identity.

Makes (or reuses, from a cache folder) a synthetic set of --pairs square pairs, trains pix2pix with the shared
loop on all but the last --held-out, then prints the held-out PSNR / SSIM (8-bit sRGB, as `lensblur eval`
scores) of the input itself (identity) and of the trained generator, with the training time, the losses over
the run, and how it compares with identity pair by pair and where its error lies (identity_comparison).
bench/train_cyclegan.py trains on the same pairs (make_pairs) and scores the same way (held_out_scores).

The defaults are the bench's settings for a run of minutes: unet_128 at ngf 32 for the 128 px frames, the
70x70 PatchGAN at ndf 16 (64 in the reference; a narrower one adds less texture to what the lens leaves alone,
and costs less per step: see docs/baselines.md), 2000 steps of batch 1 (the reference's batch), the learning rate
constant for the first half.

    python bench/train_pix2pix.py --threads 1                   # 300 pairs at 128 px, 2000 steps of batch 1
    python bench/train_pix2pix.py --threads 1 --gan-weight 0    # the L1 term alone: a diagnostic, not pix2pix
    python bench/train_pix2pix.py --data /tmp/tiny --pairs 6 --held-out 2 --size 32 --steps 3 --ngf 4 --ndf 4
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
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
    median per-image gain, the PSNR of all held-out pixels pooled (one MSE over the set), and where its error
    lies, a line to print.

    The mean of per-image PSNRs weighs a near-perfect input heavily: an image already at 39 dB that a generator
    copies at 25 dB costs the mean as much as 14 images gaining 1 dB each. So the line also gives the squared
    error (8-bit levels) in the pixels the lens leaves alone (input within 2 levels of the target in every
    channel), with its smooth part (the error there blurred by a Gaussian of sigma 4 px, within those pixels only:
    colour shifts) and what is left (texture and lost detail), and in the pixels the lens changes, beside
    identity's."""
    from lensblur.eval.runner import display_8bit
    from lensblur.metrics import psnr
    from lensblur.render.gaussian import gaussian_blur

    def levels(t):
        return np.asarray(display_8bit(t.permute(1, 2, 0)), np.float64) * 255.0

    gains, errors = [], {"identity": [], "method": []}
    kept, kept_identity, kept_smooth, kept_texture, changed, changed_identity, kept_share = [], [], [], [], [], [], []
    for i in range(len(held_out)):
        item = held_out[i]
        target = levels(item["target"])
        with torch.no_grad():
            shown = {"identity": levels(item["image"]), "method": levels(predict(item["image"][None])[0])}
        gains.append(psnr(target / 255, shown["method"] / 255, data_range=1.0)
                     - psnr(target / 255, shown["identity"] / 255, data_range=1.0))
        for name, image in shown.items():
            errors[name].append(float(np.mean((image - target) ** 2)))
        error = shown["method"] - target
        same = np.all(np.abs(shown["identity"] - target) <= 2, axis=-1)
        kept_share.append(same.mean())
        if same.any():
            # the smooth part: the error blurred within the left-alone pixels only (a normalised convolution)
            inside = torch.from_numpy(same.astype(np.float64))[None, None]
            blurred = gaussian_blur(torch.from_numpy(error).permute(2, 0, 1)[None] * inside, 4.0)
            smooth = (blurred / gaussian_blur(inside, 4.0).clamp(min=1e-6))[0].permute(1, 2, 0).numpy()
            kept.append(float(np.mean(error[same] ** 2)))
            kept_identity.append(float(np.mean((shown["identity"] - target)[same] ** 2)))
            kept_smooth.append(float(np.mean(smooth[same] ** 2)))
            kept_texture.append(float(np.mean((error - smooth)[same] ** 2)))
        if not same.all():
            changed.append(float(np.mean(error[~same] ** 2)))
            changed_identity.append(float(np.mean((shown["identity"] - target)[~same] ** 2)))
    pooled = 10 * np.log10(np.mean(errors["identity"]) / np.mean(errors["method"]))
    return (f"better than identity on {sum(g > 0 for g in gains)} of {len(gains)} held-out pairs; median gain "
            f"{np.median(gains):+.2f} dB; pooled PSNR (one MSE over all held-out pixels) {pooled:+.2f} dB; "
            f"squared error (8-bit) in the {np.mean(kept_share):.0%} of pixels the lens leaves alone "
            f"{np.mean(kept):.1f} (smooth {np.mean(kept_smooth):.1f}, texture {np.mean(kept_texture):.1f}; "
            f"identity {np.mean(kept_identity):.2f}), "
            f"in the rest {np.mean(changed):.0f} (identity {np.mean(changed_identity):.0f})")


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


@contextlib.contextmanager
def gan_weight(weight: float):
    """While open, pix2pix's generator loss is ``weight * GAN + l1_weight * L1`` (the paper's is weight 1).

    A diagnostic: weight 0 is the L1 term alone, which is not pix2pix. The discriminator still trains and its
    loss and the (unweighted) GAN term are still logged; with weight 0 they do not reach the generator."""
    from lensblur.baselines import pix2pix as module

    paper = module.pix2pix_generator_loss

    def weighted(fake_logits, fake, target, l1_weight=100.0, mode="vanilla"):
        _, parts = paper(fake_logits, fake, target, l1_weight=l1_weight, mode=mode)
        return weight * parts["gan"] + l1_weight * parts["l1"], parts

    module.pix2pix_generator_loss = weighted if weight != 1.0 else paper
    try:
        yield
    finally:
        module.pix2pix_generator_loss = paper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder (made or completed; default: a cache folder in "
                        "the temporary directory, named by the settings)")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--held-out", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=1, help="1, as the reference")
    parser.add_argument("--ngf", type=int, default=32, help="generator width (64 in the reference)")
    parser.add_argument("--ndf", type=int, default=16, help="the PatchGAN's width (64 in the reference)")
    parser.add_argument("--constant-steps", type=int, help="steps at the full learning rate before the linear decay "
                        "to 0 over the rest (default: half of --steps, as the reference's 100 + 100 epochs)")
    parser.add_argument("--gan-weight", type=float, default=1.0, help="the GAN term's weight in the generator's "
                        "loss (1, the paper's; 0 trains on L1 alone: a diagnostic, not pix2pix)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the training's seed (weights, batches, dropout)")
    parser.add_argument("--data-seed", type=int, default=0, help="the synthetic set's seed")
    parser.add_argument("--run", type=Path, help="keep the run folder here (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from lensblur.baselines import Pix2Pix, Pix2PixConfig
    from lensblur.train import TrainConfig, train

    training, held_out = make_pairs(args.data, args.pairs, args.size, args.data_seed, args.held_out)
    num_downs = int(np.log2(args.size))
    constant = args.steps // 2 if args.constant_steps is None else args.constant_steps
    config = Pix2PixConfig(num_downs=num_downs, ngf=args.ngf, ndf=args.ndf, lr_constant_steps=constant,
                           lr_decay_steps=args.steps - constant)
    method = Pix2Pix(config, seed=args.seed)
    log_every = max(1, args.steps // 100)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, gan_weight(args.gan_weight):
        run = args.run or Path(tmp) / "run"
        train(method, training, run, TrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                                 checkpoint_every=args.steps, log_every=log_every, progress=False))
        logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    seconds = time.perf_counter() - start
    name = "pix2pix" if args.gan_weight == 1.0 else f"L1 + {args.gan_weight:g} x GAN (not pix2pix)"
    scores = held_out_scores(held_out, {"identity": lambda x: x, name: method.predict,
                                        f"{name}, batch statistics at test": batch_statistics_predict(method)})
    print(f"{name} (unet with {num_downs} downs, ngf {args.ngf}; PatchGAN ndf {args.ndf}), {args.steps} steps of "
          f"{args.batch_size} on {len(training)} pairs: {seconds:.0f} s on {args.threads} threads")
    tenths = [logged[i * len(logged) // 10:(i + 1) * len(logged) // 10] for i in range(10)]
    for key in ("l1", "gan", "loss_d"):
        print(f"{key} by tenth of the run (means of the logged steps): "
              + ", ".join(f"{np.mean([x[key] for x in part]):.4g}" for part in tenths if part))
    print(f"held-out pairs: {len(held_out)}")
    print_scores(scores)
    print(f"{name}: " + identity_comparison(held_out, method.predict))

if __name__ == "__main__":
    main()
