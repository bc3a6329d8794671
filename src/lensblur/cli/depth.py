"""``lensblur depth PHOTO -o disparity.png``: get a disparity map from whatever the photo comes with.

Translates flags into :func:`lensblur.depth.resolve` and writes the map (16-bit grey PNG, float PFM or
NPY) and, on request, a colour-mapped preview beside the photo. Both files appear whole or not at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..color import srgb_to_linear
from ..errors import InputError
from ..io import atomic_path, check_output_path, write_image
from ..io.pfm import write_pfm
from . import _args

__all__ = ["DISPARITY_SUFFIXES", "add_parser", "preview_image", "run", "write_disparity"]

DISPARITY_SUFFIXES = (".png", ".pfm", ".npy")

_EPILOG = """\
examples:
  lensblur depth photo.heic -o disparity.png --preview preview.png   # depth stored in an iPhone photo
  lensblur depth portrait.jpg -o disparity.png                         # Pixel portrait (Dynamic Depth/GDepth)
  lensblur depth left.png --right right.png -o disparity.png           # stereo pair
  lensblur depth photo.jpg --depth-model path/or/cached-id -o disparity.png
  lensblur depth photo.jpg --depth-from subject --mask person.png -o disparity.png
  lensblur depth photo.jpg --disparity rough.png --refine-depth -o refined.png

--depth-from auto picks: --disparity, --right, --mask, depth inside the photo, --depth-model or
$LENSBLUR_DEPTH_MODEL, in that order. The map is written as disparity (white = near): a 16-bit grey PNG,
or float32 PFM/NPY. The source used (and the metric range when known) is printed on stdout.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "depth",
                           help="a disparity map from phone depth, a stereo pair, a model or a subject mask",
                           description="Get a disparity map (1 = near) for a photo from whatever it comes with.",
                           epilog=_EPILOG)
    _args.add_photo(parser, help="the photo (JPEG, PNG, HEIC, ...); the left view for stereo")
    _args.add_output(parser, folder=False, metavar="DISPARITY",
                     help="where to write the map: .png (16-bit grey), .pfm or .npy (float32)")
    _args.add_depth_source(parser, helps={"disparity": "an existing disparity map (to refine or reuse)"})
    parser.add_argument("--preview", type=Path, metavar="PREVIEW.png",
                        help="also write the photo beside a colour-mapped map")
    _args.add_format(parser, "text", "json", help="how to print the result")
    parser.add_argument("--force", action="store_true", help="allow overwriting an input file")
    parser.set_defaults(run=run)
    return parser


def write_disparity(path, disparity: np.ndarray) -> Path:
    """Write ``H x W`` disparity atomically: 16-bit grey PNG, or float32 PFM/NPY."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DISPARITY_SUFFIXES:
        raise InputError("output", expected=f"a file name ending in {', '.join(DISPARITY_SUFFIXES)}",
                         got=str(path), fix="write disparity.png (16-bit) or disparity.pfm (float)")
    arr = np.clip(np.asarray(disparity, dtype=np.float32), 0.0, 1.0)
    with atomic_path(path) as tmp:
        if suffix == ".png":
            from PIL import Image

            Image.fromarray(np.round(arr * 65535.0).astype(np.uint16)).save(tmp, format="PNG")
        elif suffix == ".pfm":
            write_pfm(tmp, arr)
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
    return path


def preview_image(image: np.ndarray, disparity: np.ndarray, *, max_width: int = 2048) -> np.ndarray:
    """The photo beside its colour-mapped disparity (turbo, near = red), as linear RGB."""
    from ..color import linear_to_srgb
    from ..depth._base import cv2 as _cv2

    cv2 = _cv2("depth previews")
    photo = np.clip(linear_to_srgb(torch.from_numpy(np.ascontiguousarray(image))).numpy(), 0, 1)
    colours = cv2.applyColorMap(np.round(disparity * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    pair = np.concatenate([photo, colours.astype(np.float32) / 255.0], axis=1)
    if pair.shape[1] > max_width:
        scale = max_width / pair.shape[1]
        size = (max_width, max(1, round(pair.shape[0] * scale)))
        pair = cv2.resize(pair, size, interpolation=cv2.INTER_AREA)
    return srgb_to_linear(torch.from_numpy(np.ascontiguousarray(pair, dtype=np.float32))).numpy()


def run(args) -> int:
    from ..depth import read_photo, resolve

    inputs = [args.photo, args.right, args.mask, args.disparity]
    output = check_output_path(args.output, inputs=inputs, force=args.force)
    if output.suffix.lower() not in DISPARITY_SUFFIXES:
        raise InputError("--output", expected=f"a file name ending in {', '.join(DISPARITY_SUFFIXES)}",
                         got=str(output), fix="write disparity.png (16-bit) or disparity.pfm (float)")
    preview = None
    if args.preview:
        preview = check_output_path(args.preview, inputs=inputs, force=args.force, argument="--preview")
        if preview.resolve() == output.resolve():
            raise InputError("--preview", expected="a path different from --output", got=str(preview),
                             fix="name the preview e.g. preview.png")
    image = read_photo(args.photo)
    result = resolve(args.photo, image, source=args.depth_from or "auto", disparity_path=args.disparity,
                     model=args.depth_model, mask=args.mask, right=args.right, refine=args.refine_depth)
    if preview is not None:
        preview_pixels = preview_image(image, result.disparity)
    write_disparity(output, result.disparity)
    if preview is not None:
        write_image(preview, preview_pixels)
    h, w = result.disparity.shape
    record = {"output": str(output), "width": w, "height": h, "source": result.source,
              "near_m": result.depth_range.near if result.depth_range else None,
              "far_m": result.depth_range.far if result.depth_range else None,
              "preview": str(preview) if preview else None}
    if args.format == "json":
        print(json.dumps(record))
    else:
        line = f"{output}: {w}x{h} disparity from {result.source}"
        if result.depth_range:
            line += f"; disparity 1 = {result.depth_range.near:.3f} m, 0 = {result.depth_range.far:.3f} m"
        print(line)
        if preview:
            print(f"{preview}: preview")
    return 0
