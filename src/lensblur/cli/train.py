"""``lensblur train METHOD``: train a method on a dataset with the shared loop (:func:`lensblur.train.train`).

Translates flags: the dataset is opened by name (``lensblur.data.open_dataset``), cut into random crops, and
the method is built from its own flags; checkpoints, resume and logs are the loop's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import _args

__all__ = ["METHODS", "add_parser", "run"]

# Trainable methods by name (more arrive with the other baselines).
METHODS = ("pix2pix",)

_EPILOG = """\
examples:
  lensblur train pix2pix --dataset synth --root data/synth-v1 -o runs/p2p --steps 2000
  lensblur train pix2pix --dataset ebb --root EBB/ -o runs/p2p --steps 200000 --crop 256 --resume
  lensblur train pix2pix --dataset synth --root data/tiny -o runs/tiny --steps 50 --crop 64 --num-downs 6

A run folder holds run.json (the settings), metrics.jsonl (losses, validation PSNR/SSIM), step-NNNNNNNN/
checkpoints (weights in safetensors, optimiser and generator states) and last.safetensors. Run the same
command with --resume to continue: the weights at the end are those of a run that never stopped.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "train", help="train a method (pix2pix) on a dataset",
                           description=__doc__, epilog=_EPILOG)
    parser.add_argument("method", metavar="METHOD", choices=METHODS, help=f"one of {', '.join(METHODS)}")
    parser.add_argument("--dataset", required=True, help="dataset name, as lensblur eval takes it (synth, ebb, ...)")
    parser.add_argument("--root", required=True, help="the dataset's folder")
    parser.add_argument("--split", help="the dataset's split (e.g. train294 for EBB! before a Val294 evaluation)")
    _args.add_output(parser, folder=True, help="the run folder")
    parser.add_argument("--steps", type=int, default=1000, help="optimisation steps in all (1000)")
    parser.add_argument("--batch-size", type=int, default=1, help="pairs per step (1, as pix2pix)")
    parser.add_argument("--crop", type=int, default=256, help="random crop side in pixels (256)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the data order (0)")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (500)")
    parser.add_argument("--validate-every", type=int, default=0, help="steps between validations (0: at the end)")
    parser.add_argument("--val-root", help="a dataset folder of the same kind to validate on (PSNR/SSIM)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    parser.add_argument("--num-downs", type=int, default=8, help="pix2pix: U-Net down-sampling steps (8: unet_256)")
    parser.add_argument("--lr", type=float, default=2e-4, help="pix2pix: Adam's learning rate (2e-4)")
    _args.add_format(parser, "text", "json", help="how to print the summary")
    _args.add_progress(parser)
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..baselines import Pix2Pix, Pix2PixConfig
    from ..data import open_dataset
    from ..train import RandomCrops, TrainConfig, train

    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                         checkpoint_every=args.checkpoint_every, validate_every=args.validate_every,
                         progress=_args.show_progress(args))
    recorded = Path(args.output) / "run.json"
    if args.resume and recorded.is_file():    # a resumed run keeps its own method settings (its lr schedule)
        method_config = Pix2PixConfig(**json.loads(recorded.read_text())["method_config"])
    else:   # pix2pix's schedule: the learning rate constant for half of the steps, then decaying to 0
        method_config = Pix2PixConfig(num_downs=args.num_downs, lr=args.lr, lr_constant_steps=args.steps // 2,
                                      lr_decay_steps=args.steps - args.steps // 2)
    options = {"split": args.split} if args.split else {}
    data = RandomCrops(open_dataset(args.dataset, args.root, **options), args.crop)
    val = open_dataset(args.dataset, args.val_root) if args.val_root else None
    result = train(Pix2Pix(method_config, seed=args.seed), data, args.output, config, val_dataset=val,
                   resume=args.resume, data_info={"dataset": args.dataset, "split": args.split or "train"})
    summary = {"run": str(result.run), "steps": result.steps, **result.losses, **result.validation}
    if args.format == "json":
        print(json.dumps(summary))
    else:
        scores = ", ".join(f"{k} {v:.4g}" for k, v in {**result.losses, **result.validation}.items())
        print(f"{result.run}: {result.steps} steps of {args.method}; {scores}")
    return 0
