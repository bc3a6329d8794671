"""``lensblur depth PHOTO -o disparity.png``: get a disparity map from whatever the photo comes with.

Translates flags into :func:`lensblur.depth.resolve` and writes the map with
:func:`lensblur.io.write_disparity` (16-bit grey PNG, float PFM or NPY) and, on request, a colour-mapped
preview beside the photo (:func:`lensblur.io.preview_image`). Both files appear whole or not at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from . import _args

__all__ = ["add_parser", "run"]

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
    _args.add_compute(parser, only=("threads",))
    parser.add_argument("--force", action="store_true", help="allow overwriting an input file")
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..depth import read_photo, resolve
    from ..io import check_disparity_output, check_output_path, preview_image, write_disparity, write_image

    inputs = [args.photo, args.right, args.mask, args.disparity]
    output = check_disparity_output(check_output_path(args.output, inputs=inputs, force=args.force),
                                    argument="--output")
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
