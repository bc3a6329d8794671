"""``lensblur train METHOD``: train a method on a dataset with the shared loop (:func:`lensblur.train.train`).

Translates flags: the dataset is opened by name (``lensblur.data.open_dataset``) and cut into random crops,
the method is built from its own flags (each trainer in :data:`TRAINERS` lists the flags it reads; a flag of
another method is refused); checkpoints, resume and logs are the loop's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import _args

__all__ = ["TRAINERS", "Trainer", "add_parser", "register_trainer", "run"]


@dataclass(frozen=True)
class Trainer:
    """How ``lensblur train NAME`` builds a method from its flags.

    Args:
        config: the method's config from the parsed flags (and the run's step count).
        flags: the method-specific flags (``args`` names) it reads; given to another method, they are refused.
        data: the training view of the opened dataset (default: random crops of the pairs).
        options: keyword arguments of the method's constructor that are not part of its recorded config (a
            machine's paths, such as a loss network's weights file), from the parsed flags.
    """

    config: Callable[[argparse.Namespace], Any]
    flags: tuple[str, ...] = ()
    data: Callable[[Any, argparse.Namespace], Any] | None = None
    options: Callable[[argparse.Namespace], dict[str, Any]] | None = None


TRAINERS: dict[str, Trainer] = {}


def register_trainer(name: str, trainer: Trainer) -> None:
    """Make ``lensblur train NAME`` build the method ``NAME`` of :data:`lensblur.baselines.TRAINABLE`."""
    TRAINERS[name] = trainer


def _pix2pix(args) -> Any:
    from ..baselines import Pix2PixConfig

    # pix2pix's schedule: the learning rate constant for half of the steps, then decaying to 0
    return Pix2PixConfig(num_downs=8 if args.num_downs is None else args.num_downs,
                         ngf=64 if args.ngf is None else args.ngf, lr=2e-4 if args.lr is None else args.lr,
                         lr_constant_steps=args.steps // 2, lr_decay_steps=args.steps - args.steps // 2)


register_trainer("pix2pix", Trainer(_pix2pix, flags=("num_downs", "ngf", "lr")))


def _cyclegan(args) -> Any:
    from ..baselines import CycleGANConfig

    architecture = args.architecture or "unet"
    if architecture != "unet" and args.num_downs is not None:
        raise InputError("--num-downs", expected="the U-Net's depth, with --architecture unet only",
                         got=f"{args.num_downs} with --architecture {architecture}",
                         fix="drop --num-downs, or pass --architecture unet")
    given = {k: getattr(args, k) for k in ("num_downs", "ngf", "lr", "norm", "cycle_weight", "identity_weight",
                                           "pool_size") if getattr(args, k) is not None}
    # the reference's schedule, as pix2pix's: constant for half of the steps, then decaying to 0
    return CycleGANConfig(architecture=architecture, **given, lr_constant_steps=args.steps // 2,
                          lr_decay_steps=args.steps - args.steps // 2)


def _unpaired_crops(dataset, args):
    from ..train import RandomCrops, Unpaired

    return Unpaired(RandomCrops(dataset, args.crop))


register_trainer("cyclegan", Trainer(_cyclegan, data=_unpaired_crops,
                                     flags=("num_downs", "ngf", "lr", "architecture", "norm", "cycle_weight",
                                            "identity_weight", "pool_size")))
def _depth(args) -> Any:
    from ..baselines import DenseDepthConfig

    return DenseDepthConfig(decoder_width=1664 if args.decoder_width is None else args.decoder_width,
                            lr=1e-4 if args.lr is None else args.lr,
                            pretrained_encoder=args.pretrained_encoder or "auto")


def _depth_data(dataset, args) -> Any:
    """DenseDepth's targets (inverse depth from the items' disparity), channel swaps, and random crops with
    mirroring; ``--crop 0`` trains on whole frames (NYU's 640x480, as DenseDepth), mirrored at random."""
    from ..baselines import DepthTargets
    from ..train import RandomCrops

    if args.crop == 0:
        return DepthTargets(dataset, flip=True)
    return RandomCrops(DepthTargets(dataset), args.crop)


register_trainer("depth", Trainer(_depth, flags=("decoder_width", "pretrained_encoder", "lr"), data=_depth_data))


def _bggan(args) -> Any:
    from ..baselines import BGGANConfig

    # BGGAN's two phases: reconstruction for the first half of the steps (--pretrain-steps), then the GAN
    # fine-tuning while the learning rate decays linearly to 0
    half = args.steps // 2
    given = {"lr": args.lr, "pretrain_steps": half if args.pretrain_steps is None else args.pretrain_steps}
    if args.num_downs is not None:
        given.update(num_downs=args.num_downs, refine_num_downs=args.num_downs)
    if args.ngf is not None:
        given.update(ngf=args.ngf, refine_ngf=args.ngf)
    if args.d_layers is not None:
        given["d_layers"] = tuple(int(n) if float(n).is_integer() else n for n in args.d_layers)
    if args.no_vgg:
        given["use_vgg"] = False
    if args.d_warmup_steps is not None:
        given["d_warmup_steps"] = args.d_warmup_steps
    return BGGANConfig(**{k: v for k, v in given.items() if v is not None}, lr_constant_steps=half,
                       lr_decay_steps=args.steps - half)


register_trainer("bggan", Trainer(_bggan, flags=("num_downs", "lr", "ngf", "d_layers", "pretrain_steps",
                                                 "d_warmup_steps", "no_vgg", "vgg_weights"),
                                  options=lambda args: {"vgg_weights": args.vgg_weights}))

def _bokehdiff(args) -> Any:
    from ..bokehdiff.constants import DEFAULT_BASE
    from ..bokehdiff.training import BokehDiffTrainConfig

    base = args.diffusion_model or DEFAULT_BASE
    if Path(base).expanduser().exists():        # a local model is recorded by its absolute path, for renders
        base = str(Path(base).expanduser().resolve())
    given = {"recipe": args.recipe or "released", "base_model": base, "total_steps": args.steps, "lr": args.lr,
             "discriminator": args.discriminator, "edge_loss": args.edge_loss}
    if args.no_lpips:
        given["lpips_weight"] = 0.0
    return BokehDiffTrainConfig(**{k: v for k, v in given.items() if v is not None})


def _bokehdiff_data(dataset, args) -> Any:
    """BokehDiff's view: random crops with the release's flips and exposure scaling, and PISA's inputs."""
    from ..bokehdiff.pairs import BokehDiffPairs

    return BokehDiffPairs(dataset, args.crop)


register_trainer("bokehdiff", Trainer(_bokehdiff, data=_bokehdiff_data,
                                      flags=("diffusion_model", "recipe", "lr", "no_lpips", "discriminator",
                                             "discriminator_weights", "edge_loss"),
                                      options=lambda args: {"diffusion_model": args.diffusion_model,
                                                            "discriminator_weights": args.discriminator_weights}))

# The method-specific flags: argparse name -> (flag, add_argument keywords). Every flag's default is None
# (not given); a switch is action="store_true", which then reads None or True.
_METHOD_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "num_downs": ("--num-downs", {"type": int, "help": "U-Net down-sampling steps (8: unet_256, 7: unet_128; "
                                                       "bggan: both stages)"}),
    "lr": ("--lr", {"type": float, "help": "Adam's learning rate (pix2pix, cyclegan 2e-4; bggan, depth 1e-4)"}),
    "architecture": ("--architecture", {"choices": ("unet", "resnet"),
                                        "help": "the generators: unet (the paper's) or resnet (resnet_9blocks)"}),
    "norm": ("--norm", {"choices": ("instance", "batch", "none"), "help": "the networks' normalisation (instance)"}),
    "cycle_weight": ("--cycle-weight", {"type": float, "help": "lambda, the cycle-consistency weight (10)"}),
    "identity_weight": ("--identity-weight", {"type": float,
                                              "help": "the identity term, as a fraction of lambda (0.5; 0: off)"}),
    "pool_size": ("--pool-size", {"type": int, "help": "generated images in each discriminator's history (50)"}),
    "decoder_width": ("--decoder-width", {"type": int, "help": "DenseDepth's decoder width (1664; the Keras "
                                                               "original 832; small for a CPU run)"}),
    "pretrained_encoder": ("--pretrained-encoder", {"metavar": "FILE", "help": "DenseNet-169 ImageNet weights "
                           "(torchvision's densenet169-b2777c0a.pth or .safetensors; default: the torch hub cache's "
                           "when there, else random weights with a warning)"}),
    "ngf": ("--ngf", {"type": int, "help": "the generators' first layer width (64; bggan: both stages)"}),
    "d_layers": ("--d-layers", {"type": _args.floats, "metavar": "N,N,...",
                                "help": "the discriminator branches' depths (2,3,4: receptive fields 34, 70, 142 px)"}),
    "pretrain_steps": ("--pretrain-steps", {"type": int, "metavar": "N",
                                            "help": "reconstruction-only steps before the GAN fine-tuning (half of "
                                                    "--steps)"}),
    "d_warmup_steps": ("--d-warmup-steps", {"type": int, "metavar": "N",
                                            "help": "GAN-phase steps in which only the discriminator trains before its "
                                                    "gradient reaches the generator (0, the paper's; a quarter of the "
                                                    "phase is what docs/baselines.md measured best)"}),
    "no_vgg": ("--no-vgg", {"action": "store_true", "help": "train without the VGG-19 perceptual term (no "
                                                            "ImageNet weights needed)"}),
    "vgg_weights": ("--vgg-weights", {"metavar": "PATH", "help": "ImageNet VGG-19 weights (safetensors or "
                                                                 "torchvision .pth; default: the torch hub cache's "
                                                                 "vgg19-dcbba9e9.pth)"}),
    "diffusion_model": _args.diffusion_flag("diffusion_model"),
    "recipe": ("--recipe", {"choices": ("released", "paper"),
                            "help": "released (default: the release's whole-UNet LoRA, encoder fine-tuned at 0.1x, "
                                    "5e-5, GAN 0.1 after 30k steps) or paper (down-block LoRA, encoder LoRA, 1e-4, GAN "
                                    "0.5 from the start, the Sobel edge loss); see docs/bokehdiff.md"}),
    "no_lpips": ("--no-lpips", {"action": "store_true", "help": "train without the LPIPS-VGG term (no VGG-16 "
                                                                "weights needed)"}),
    "discriminator": ("--discriminator", {"choices": ("convnext_base", "convnext_tiny", "convnext_small",
                                                      "convnext_large", "none"),
                                          "help": "the frozen ConvNeXt backbone (convnext_base, the release's size; "
                                                  "torchvision weights from the torch hub cache or "
                                                  "--discriminator-weights), or none: no adversarial term"}),
    "discriminator_weights": ("--discriminator-weights", {"metavar": "PATH",
                                                          "help": "the ConvNeXt's ImageNet weights (torchvision "
                                                                  ".pth or safetensors)"}),
    "edge_loss": ("--edge-loss", {"choices": ("sobel", "difference"),
                                  "help": "the edge loss: sobel (the paper's eq. 10) or difference (the release's)"}),
}

_EPILOG = """\
examples:
  lensblur train pix2pix --dataset synth --root data/synth-v1 -o runs/p2p --steps 2000
  lensblur train pix2pix --dataset ebb --root EBB/ -o runs/p2p --steps 200000 --crop 256 --resume
  lensblur train pix2pix --dataset synth --root data/tiny -o runs/tiny --steps 50 --crop 64 --num-downs 6
  lensblur train cyclegan --dataset ebb --root EBB/ --split train294 -o runs/cyc --steps 200000 --crop 256
  lensblur train depth --dataset nyu --root NYU/ --split train -o runs/depth1 --crop 0 --batch-size 4 \\
      --pretrained-encoder densenet169-b2777c0a.pth --steps 253440
  lensblur train depth --dataset synth --root data/synth-v1 -o runs/depth-synth --crop 128 --decoder-width 64
  lensblur train bggan --dataset ebb --root EBB/ -o runs/bgg --steps 200000 --crop 256 --vgg-weights vgg19.pth
  lensblur train bggan --dataset synth --root data/synth-v1 -o runs/bgg --steps 2000 --crop 128 --num-downs 7 --no-vgg
  lensblur train bokehdiff --dataset synth --root data/synth-bd --diffusion-model path/to/RealVisXL_V5.0 \\
      -o runs/bd1 --crop 512 --steps 120000 --checkpoint-every 5000 [--recipe paper] [--resume]
  lensblur render photo.jpg --disparity d.png --blur 30 --method bokehdiff --lora runs/bd1 -o out.png

A run folder holds run.json (the settings), metrics.jsonl (losses, validation PSNR/SSIM), tensorboard/ (the
same scalars, when tensorboard is installed), step-NNNNNNNN/ checkpoints (weights in safetensors, optimiser
and generator states) and last.safetensors. Run the same command with --resume to continue: the weights at
the end are those of a run that never stopped.
"""


def _users(dest: str) -> str:
    return ", ".join(name for name, trainer in TRAINERS.items() if dest in trainer.flags)


def add_parser(subparsers) -> argparse.ArgumentParser:
    names = ", ".join(TRAINERS)
    parser = _args.command(subparsers, "train", help=f"train a method ({names}) on a dataset",
                           description=__doc__, epilog=_EPILOG)
    parser.add_argument("method", metavar="METHOD", choices=tuple(TRAINERS), help=f"one of {names}")
    parser.add_argument("--dataset", required=True, help="dataset name, as lensblur eval takes it (synth, ebb, ...)")
    parser.add_argument("--root", required=True, help="the dataset's folder")
    parser.add_argument("--split", help="the dataset's split (e.g. train294 for EBB! before a Val294 evaluation)")
    _args.add_output(parser, folder=True, help="the run folder")
    parser.add_argument("--steps", type=int, default=1000, help="optimisation steps in all (1000)")
    parser.add_argument("--batch-size", type=int, default=1, help="pairs per step (1, as pix2pix)")
    parser.add_argument("--crop", type=int, default=256,
                        help="random crop side in pixels (256; depth: 0 for whole frames)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the data order (0)")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (500)")
    parser.add_argument("--validate-every", type=int, default=0, help="steps between validations (0: at the end)")
    parser.add_argument("--val-root", help="a dataset folder of the same kind to validate on (PSNR/SSIM; depth: "
                                           "abs rel, RMSE, delta1)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    parser.add_argument("--grad-accumulation", type=int, default=1,
                        help="batches whose gradients are summed per optimiser step (1)")
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no",
                        help="accelerate's mixed precision, on a GPU (no)")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loading processes (0)")
    group = parser.add_argument_group("the methods' own settings (each names the methods that read it)")
    for dest, (flag, kwargs) in _METHOD_FLAGS.items():
        group.add_argument(flag, dest=dest, default=None, **{**kwargs, "help": f"{_users(dest)}: {kwargs['help']}"})
    _args.add_format(parser, "text", "json", help="how to print the summary")
    _args.add_progress(parser)
    parser.set_defaults(run=run)
    return parser


def _method_config(args, trainer: Trainer, config_class):
    for dest, (flag, _) in _METHOD_FLAGS.items():
        if getattr(args, dest, None) is not None and dest not in trainer.flags:
            raise InputError(flag, expected=f"a setting of {args.method} (it is one of {_users(dest)})",
                             got=getattr(args, dest), fix=f"drop {flag}")
    recorded = Path(args.output) / "run.json"
    if args.resume and recorded.is_file():    # a resumed run keeps its own method settings (its lr schedule)
        return config_class(**json.loads(recorded.read_text())["method_config"])
    return trainer.config(args)


def run(args) -> int:
    from ..baselines.trained import TRAINABLE
    from ..data import open_dataset
    from ..errors import InputError
    from ..train import RandomCrops, TrainConfig, train

    run_folder, root = Path(args.output).resolve(), Path(args.root).resolve()
    for data_root in (root, *([Path(args.val_root).resolve()] if args.val_root else [])):
        if run_folder == data_root or data_root in run_folder.parents:
            raise InputError("--output", expected="a run folder outside the dataset", got=f"{args.output} in {data_root}",
                             fix="choose a run folder of its own, e.g. -o runs/NAME")
    trainer = TRAINERS[args.method]
    method_class, config_class = TRAINABLE[args.method]
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                         checkpoint_every=args.checkpoint_every, validate_every=args.validate_every,
                         grad_accumulation=args.grad_accumulation, mixed_precision=args.mixed_precision,
                         num_workers=args.num_workers, progress=_args.show_progress(args))
    method_config = _method_config(args, trainer, config_class)
    options = {"split": args.split} if args.split else {}
    dataset = open_dataset(args.dataset, args.root, **options)
    data = trainer.data(dataset, args) if trainer.data else RandomCrops(dataset, args.crop)
    val = open_dataset(args.dataset, args.val_root, root_argument="val_root") if args.val_root else None
    import torch

    # --seed also seeds torch's global generator, which methods draw from during their steps (dropout,
    # CycleGAN's image pools): a new run is then the same in every process (a resumed one restores it)
    torch.manual_seed(args.seed)
    method_options = trainer.options(args) if trainer.options else {}
    result = train(method_class(method_config, seed=args.seed, **method_options), data, args.output, config,
                   val_dataset=val, resume=args.resume,
                   data_info={"dataset": args.dataset, "split": args.split or "train"})
    summary = {"run": str(result.run), "steps": result.steps, **result.losses, **result.validation}
    if args.format == "json":
        print(json.dumps(summary))
    else:
        scores = ", ".join(f"{k} {v:.4g}" for k, v in {**result.losses, **result.validation}.items())
        print(f"{result.run}: {result.steps} steps of {args.method}; {scores}")
    return 0
