"""``lensblur generate``: GBSD stage diffusion (semantic bokeh) from a prompt, or from an image and a prompt."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

from ..choices import DEFAULT_ALPHA, DEFAULT_SIGMA, DEFAULT_STRENGTH, SIGMA_READINGS
from ..errors import InputError
from . import _args

logger = logging.getLogger(__name__)
_SIZE = (512, 512)          # --size's default, text-to-image

EPILOG = """examples:
  # the paper's Figure 5: carrots in focus, the bunny in bokeh (80 % global layout, 20 % focus stage)
  lensblur generate "a cute baby bunny standing on top of a pile of baby carrots under a spot light" \\
      --focus "a pile of baby carrots under a spot light" --sigma 0.8 --alpha 0 \\
      --model path/to/stable-diffusion-v1-4 --baseline -o out/
  # one layout, one image per focus prompt
  lensblur generate "..." --focus "a pile of carrots" --focus "a cute rabbit" --model ... -o out/
  # the paper's Figure 3 grid
  lensblur generate "..." --focus "a pile of carrots" --focus "a cute rabbit" --sweep-sigma 0.9,0.8,0.7,0.6,0.5 \\
      --model ... -o fig3/
  # image to image (the paper's Figure 8), with a focus report against the input image
  lensblur generate "A cute rabbit stands with carrots with green leaf" --focus "carrots with green leaf" \\
      --init-image rabbit.png --strength 0.5 --box carrots=40,300,260,500 --model ... -o out/

sigma is the fraction of the steps actually run that use the global prompt, rounded half up (at least 1):
50 steps at --sigma 0.8 -> 40 global + 10 focus steps. In image-to-image only int(steps * strength) steps run
(--steps 50 --strength 0.5 -> 25), and sigma applies to those (0.8 -> 20 + 5). --global-steps N gives the
count directly. Image j of a run uses seed + j, so every image can be regenerated alone.
--model takes a diffusers folder, a .safetensors/.ckpt file, or a Hugging Face id already in the local cache
(add --allow-download to fetch it).
"""

_SCHEDULERS = ("ddim", "dpm++", "euler", "model")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = _args.command(subparsers, "generate",
                      help="text-to-image / image-to-image with semantic bokeh (GBSD stage diffusion)",
                      description="Generate images whose focus follows a prompt: a global layout stage on the "
                                  "global prompt, then a focus stage on (e_focus + alpha * e_global) / (1 + alpha).",
                      epilog=EPILOG)
    p.add_argument("prompt", nargs="?", help="global prompt: describes the whole image (or the input image)")
    p.add_argument("--focus", action="append", default=[], metavar="TEXT",
                   help="focus prompt naming the object to make sharp; repeat for one image per focus prompt")
    _args.add_output(p, folder=True, help="folder to write the images into")
    p.add_argument("--model", metavar="PATH|ID", help="diffusers folder, .safetensors/.ckpt file, or cached HF id")
    p.add_argument("--config", metavar="PATH|ID", help="configs for a single-file checkpoint (a diffusers folder)")
    p.add_argument("--allow-download", action="store_true", help="let a Hugging Face id be downloaded")
    stage = p.add_argument_group("stage diffusion")
    stage.add_argument("--sigma", type=float,
                       help=f"fraction of the steps in the global layout stage, in (0, 1] (default {DEFAULT_SIGMA})")
    stage.add_argument("--global-steps", type=int, metavar="N", help="number of global steps instead of --sigma")
    stage.add_argument("--sigma-of", choices=SIGMA_READINGS, default=SIGMA_READINGS[0],
                       help="image-to-image: sigma is a fraction of the steps run (steps-run, default) or a step of "
                            "the whole schedule (schedule)")
    stage.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                       help=f"weight of the global prompt in the focus stage, >= 0 (default {DEFAULT_ALPHA:g})")
    stage.add_argument("--sweep-sigma", type=_args.floats, metavar="LIST", help="one image per sigma, e.g. 0.9,0.8,0.7")
    stage.add_argument("--sweep-alpha", type=_args.floats, metavar="LIST", help="one image per alpha, e.g. 0,0.5,1,2")
    stage.add_argument("--baseline", action="store_true",
                       help="also write the plain run (global prompt only, same seeds) and a contact sheet")
    sampling = p.add_argument_group("sampling (defaults follow the paper)")
    sampling.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    sampling.add_argument("--guidance", type=float, default=15.0, help="classifier-free guidance scale (default 15)")
    sampling.add_argument("--size", type=_args.size, metavar="WxH",
                          help="image size for text-to-image, multiples of 8 (default 512x512)")
    sampling.add_argument("--seed", type=int, default=42, help="seed of the first image (default 42)")
    sampling.add_argument("--num-images", type=int, default=4, help="images per prompt (default 4)")
    sampling.add_argument("--negative-prompt", metavar="TEXT", help="negative prompt (default none)")
    sampling.add_argument("--scheduler", choices=_SCHEDULERS, default="ddim",
                          help="sampler: ddim (paper, eta 0), dpm++ (DPM-Solver++ 2M), euler, or the model's own")
    sampling.add_argument("--init-image", metavar="IMAGE", help="image-to-image: start from this picture")
    sampling.add_argument("--strength", type=float,
                          help=f"image-to-image noise strength in (0, 1] (default {DEFAULT_STRENGTH:g})")
    sampling.add_argument("--fp16", action="store_true", help="half precision (CUDA only)")
    p.add_argument("--box", type=_args.named_box, action="append", default=[], metavar="[NAME=]X0,Y0,X1,Y1",
                   help="write a focus report for this region (against the baseline, or the input image)")
    p.add_argument("--force", action="store_true", help="overwrite existing files in the output folder")
    _args.add_progress(p)
    _args.add_compute(p, defaults={"device": "auto"},
                      helps={"device": "auto (CUDA, else MPS, else the CPU; default), cpu, cuda, cuda:N or mps"})
    p.set_defaults(run=run)
    return p


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "focus"


# --sigma, --strength and --size parse to None when not given, so that giving one where it is not read can be
# told from leaving it out; these are the values a run uses (the command's and the ui's generate tab's).
def _sigma(args) -> float:
    return DEFAULT_SIGMA if args.sigma is None else args.sigma


def _strength(args) -> float:
    return DEFAULT_STRENGTH if args.strength is None else args.strength


def _size(args) -> tuple[int, int]:
    return _SIZE if args.size is None else args.size


def _check(args):
    """Every user mistake is caught here, before a model is loaded: the command line's own rules (a global
    prompt, a model, one sweep at a time), then :func:`lensblur.generate.check_inputs` on every run planned."""
    from ..generate.stages import check_inputs

    if not args.prompt or not args.prompt.strip():
        got = "a focus prompt but no global prompt" if args.focus else "no prompt"
        raise InputError("prompt", expected="the global prompt describing the whole image", got=got,
                         fix='lensblur generate "a cute baby bunny on a pile of carrots" --focus "a pile of carrots" ...')
    if args.model is None:
        raise InputError("--model", expected="a Stable Diffusion model (diffusers folder, checkpoint file or cached "
                         "Hugging Face id)", got="nothing", fix="pass --model path/to/stable-diffusion-v1-4")
    if args.sweep_sigma and args.sweep_alpha:
        raise InputError("--sweep-sigma/--sweep-alpha", expected="one sweep at a time", got="both",
                         fix="sweep sigma and alpha in two runs")
    if (args.sweep_sigma or args.sweep_alpha) and not args.focus:
        raise InputError("--focus", expected="a focus prompt for the sweep", got="none",
                         fix='add --focus "the object to bring into focus"')
    for flag, value in (("--sweep-sigma", args.sweep_sigma), ("--sigma", args.sigma)):
        if args.global_steps is not None and value is not None:
            raise InputError("--global-steps", expected=f"either --global-steps or {flag}", got="both",
                             fix="drop one of them")
    image_to_image = args.init_image is not None
    if image_to_image and args.size is not None:
        logger.warning("--size is text-to-image's: image-to-image keeps the init image's size; ignored")
    if not image_to_image and args.strength is not None:
        logger.warning("--strength is read with --init-image (image-to-image); ignored")
    width, height = (None, None) if image_to_image else _size(args)
    for focus in args.focus or [None]:
        for sigma in args.sweep_sigma or [_sigma(args)]:
            for alpha in args.sweep_alpha or [args.alpha]:
                check_inputs(args.prompt, focus, sigma=sigma, alpha=alpha, num_inference_steps=args.steps,
                             num_images_per_prompt=args.num_images, image_to_image=image_to_image,
                             strength=_strength(args), height=height, width=width,
                             global_steps=args.global_steps if focus is not None else None,
                             sigma_of=args.sigma_of)


def _device(args):
    import torch

    from .._device import resolve_device

    device = resolve_device(args.device)
    if args.fp16 and device.type != "cuda":
        raise InputError("--fp16", expected="a CUDA device", got=str(device), fix="drop --fp16 on CPU")
    return device, (torch.float16 if args.fp16 else None)


def _plan(args, output: Path):
    """The runs: (label, focus prompt or None, sigma, alpha, file name stem); baseline first if asked."""
    want_baseline = args.baseline or (args.box and args.init_image is None) or not args.focus
    sigma = _sigma(args)
    runs = []
    if want_baseline:
        runs.append(("baseline", None, 1.0, args.alpha, "baseline"))
    for focus in args.focus:
        slug = _slug(focus)
        if args.sweep_sigma:
            runs += [(f"sigma {s:g}", focus, s, args.alpha, f"{slug}-sigma{s:g}-alpha{args.alpha:g}")
                     for s in args.sweep_sigma]
        elif args.sweep_alpha:
            runs += [(f"alpha {a:g}", focus, sigma, a, f"{slug}-sigma{sigma:g}-alpha{a:g}")
                     for a in args.sweep_alpha]
        else:
            label = f"{args.global_steps} steps" if args.global_steps else f"sigma {sigma:g}"
            stem = f"{slug}-steps{args.global_steps}" if args.global_steps else f"{slug}-sigma{sigma:g}"
            runs.append((label, focus, sigma, args.alpha, f"{stem}-alpha{args.alpha:g}"))
    seeds = [args.seed + j for j in range(args.num_images)]
    files = [[output / f"{stem}-seed{seed}.png" for seed in seeds] for *_, stem in runs]
    return runs, seeds, files


def run(args) -> int:
    _check(args)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise InputError("--output", expected="a folder", got=f"{output} (a file)", fix="name a folder, e.g. -o out/")
    init_display = None
    width, height = _size(args)
    if args.init_image is not None:
        from ..io import read_display

        init_display = read_display(args.init_image)
        height, width = (d - d % 8 for d in init_display.shape[:2])
        if height < 8 or width < 8:
            raise InputError("--init-image", expected="a picture at least 8x8 pixels", got=args.init_image,
                             fix="pass a larger image")
        init_display = init_display[:height, :width]
    regions = _regions(args.box, (height, width))
    runs, seeds, files = _plan(args, output)
    sheet_path = output / "sheet.png"
    extra = [sheet_path, output / "run.json"] + ([output / "report.md", output / "report.json"] if regions else [])
    existing = [str(f) for f in [f for row in files for f in row] + extra if f.exists()]
    if existing and not args.force:
        raise InputError("--output", expected="a folder without earlier results", got=f"{existing[0]} exists",
                         fix="choose another folder, or pass --force to overwrite")
    device, dtype = _device(args)

    import torch
    from tqdm.auto import tqdm

    from ..generate import StageDiffusionPipeline
    from ..io import atomic_path, make_folder

    pipe = StageDiffusionPipeline.from_pretrained(args.model, scheduler=args.scheduler, torch_dtype=dtype,
                                                  allow_download=args.allow_download, config=args.config)
    pipe.to(device)
    progress = _args.show_progress(args)
    pipe.set_progress_bar_config(disable=not progress, leave=False)
    make_folder(output, argument="--output")
    image = None
    if init_display is not None:
        from PIL import Image

        from .._convert import quantize

        image = Image.fromarray(quantize(init_display, 8))
    results, record = [], []
    for (label, focus, sigma, alpha, _), paths in tqdm(list(zip(runs, files)), desc="runs", unit="run",
                                                       disable=not progress, file=sys.stderr):
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        out = pipe(args.prompt, focus_prompt=focus, sigma=sigma, alpha=alpha, image=image, strength=_strength(args),
                   global_steps=args.global_steps if focus is not None else None, num_inference_steps=args.steps,
                   sigma_of=args.sigma_of,
                   guidance_scale=args.guidance, negative_prompt=args.negative_prompt,
                   height=None if image is not None else height, width=None if image is not None else width,
                   num_images_per_prompt=args.num_images, generator=generators, output_type="pil")
        for picture, path in zip(out.images, paths):
            with atomic_path(path) as tmp:
                picture.save(tmp, format="PNG")
        results.append(out.images)
        record.append({"label": label, "focus_prompt": focus, "sigma": sigma, "alpha": alpha,
                       "steps_run": out.steps_run, "global_steps": out.global_steps, "focus_steps": out.focus_steps,
                       "files": [p.name for p in paths], "nsfw_content_detected": out.nsfw_content_detected})
    written = [p for row in files for p in row]
    if len(runs) > 1:
        titles = [f"{label}: {focus}" if focus else label for label, focus, *_ in runs]
        rows = [[imgs[j] for imgs in results] for j in range(len(seeds))]
        from ..io import contact_sheet

        contact_sheet(rows, sheet_path, column_titles=titles, row_titles=[f"seed {s}" for s in seeds])
        written.append(sheet_path)
    if regions:
        written += _write_report(output, regions, runs, files, args.init_image, init_display)
    _write_json(output / "run.json", args, width, height, seeds, record)
    written.append(output / "run.json")
    for path in written:
        print(path)
    return 0


def _regions(boxes, shape):
    from ..generate.report import Region
    from ..geometry import parse_box

    regions = []
    for i, (name, box) in enumerate(boxes):
        name = name or f"box {i + 1}"
        regions.append(Region(name, parse_box(box, shape, argument=f"--box {name}")))
    return regions


def _write_report(output, regions, runs, files, init_path, init_display):
    """report.md / report.json: per seed, the reference (baseline or input image) first, then the focus runs."""
    from ..generate.report import focus_report, format_json, format_markdown
    from ..io import atomic_path, read_display

    scores = []
    for j in range(len(files[0])):
        if init_display is not None:
            images = [(f"{Path(init_path).name} (input)", init_display)]
            images += [(files[r][j].name, read_display(files[r][j])) for r in range(len(runs))]
        else:
            images = [(files[r][j].name, read_display(files[r][j])) for r in range(len(runs))]
        scores.extend(focus_report(images, regions))
    paths = []
    for name, text in (("report.md", format_markdown(scores)), ("report.json", format_json(scores))):
        with atomic_path(output / name) as tmp:
            tmp.write_text(text)
        paths.append(output / name)
    return paths


def _write_json(path, args, width, height, seeds, record):
    from ..io import atomic_path

    settings = {"prompt": args.prompt, "model": str(args.model), "scheduler": args.scheduler, "steps": args.steps,
                "guidance": args.guidance, "size": [width, height], "seeds": seeds, "negative_prompt":
                args.negative_prompt, "init_image": args.init_image,
                "strength": _strength(args) if args.init_image else None, "sigma_of": args.sigma_of, "runs": record}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
