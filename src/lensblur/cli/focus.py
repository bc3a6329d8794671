"""``lensblur focus IMAGE``: sharpness of regions (variance of Laplacian, Brenner's gradient).

Scores are computed on the display values of the file (sRGB-encoded pixels) turned to grey on 0..255 with
``0.299 R + 0.587 G + 0.114 B``; see :mod:`lensblur.metrics.focus` for the exact definitions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import _args

__all__ = ["add_parser", "run"]

_EPILOG = """\
examples:
  lensblur focus out.png                                   # the whole image
  lensblur focus out.png --box 100,120,300,400 --box 0,0,64,64
  lensblur focus out.png --mask subject.png --format json

variance_of_laplacian: variance over the region of the 4-neighbour Laplacian of the grey image
  (= cv2.Laplacian(grey, cv2.CV_64F)[region].var(), reflect-101 borders).
brenner: horizontal Brenner gradient, the sum over the region of (I(x+2,y) - I(x,y))^2; it grows with the
  region's size, so compare it between regions of the same size (or use brenner_per_pixel). With
  --brenner pertuz it is Pertuz's mean of max(DH, DV)^2, per pixel already (brenner_per_pixel is the same).
Grey = 0.299 R + 0.587 G + 0.114 B on 0..255, from the sRGB-encoded file values.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "focus", help="sharpness of image regions: variance of Laplacian and Brenner",
                           description="Measure how sharp regions of an image are (whole image, boxes, or a mask).",
                           epilog=_EPILOG)
    parser.add_argument("image", metavar="IMAGE", help="the image to measure")
    parser.add_argument("--box", type=_args.box, action="append", default=[], metavar="X0,Y0,X1,Y1",
                        help="a region in pixels (X1/Y1 exclusive); repeat for several regions")
    parser.add_argument("--mask", type=Path, metavar="MASK.png",
                        help="a mask of the image's size (its alpha channel if it has one, else its luminance); "
                             "white (> 50%%) marks the region")
    _args.add_focus_measures(parser)
    _args.add_format(parser, "text", "json")
    parser.set_defaults(run=run)
    return parser


def _scores(image, args, **region) -> dict:
    from ..metrics import brenner, variance_of_laplacian

    return {
        "variance_of_laplacian": variance_of_laplacian(image, data_range=1.0, grey=args.grey, **region),
        "brenner": brenner(image, data_range=1.0, grey=args.grey, variant=args.brenner_variant, **region),
    }


def run(args) -> int:
    from ..geometry import parse_box
    from ..io import read_display, read_mask

    image = read_display(args.image, argument="IMAGE")
    shape = image.shape[:2]
    regions = []
    if not args.box and args.mask is None:
        pixels = shape[0] * shape[1]
        regions.append({"region": "whole image", "pixels": pixels, **_scores(image, args)})
    for b in args.box:
        x0, y0, x1, y1 = parse_box(b, shape, argument="--box")
        scores = _scores(image, args, box=(x0, y0, x1, y1))
        regions.append({"region": f"box {x0},{y0},{x1},{y1}", "box": [x0, y0, x1, y1],
                        "pixels": (x1 - x0) * (y1 - y0), **scores})
    if args.mask is not None:
        mask = read_mask(args.mask, shape, argument="--mask")
        scores = _scores(image, args, mask=mask)
        regions.append({"region": f"mask {args.mask}", "pixels": int((mask > 0.5).sum()), **scores})
    for r in regions:       # Pertuz's variant is a mean already
        r["brenner_per_pixel"] = r["brenner"] if args.brenner_variant == "pertuz" else r["brenner"] / r["pixels"]

    if args.format == "json":
        print(json.dumps({"image": str(args.image), "width": shape[1], "height": shape[0],
                          "regions": regions}, indent=2))
        return 0
    width = max(len("region"), *(len(r["region"]) for r in regions))
    print(f"{args.image} ({shape[1]}x{shape[0]})")
    print(f"{'region':<{width}}  {'var_laplacian':>14}  {'brenner':>16}  {'brenner/pixel':>14}")
    for r in regions:
        print(f"{r['region']:<{width}}  {r['variance_of_laplacian']:>14.4f}  {r['brenner']:>16.1f}  "
              f"{r['brenner_per_pixel']:>14.4f}")
    return 0
