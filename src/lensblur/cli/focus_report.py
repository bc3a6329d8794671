"""``lensblur focus-report``: variance of Laplacian and Brenner per region, with ratios to a baseline image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import _args

EPILOG = """examples:
  lensblur focus-report baseline.png gbsd.png --box carrots=40,300,260,500 --box bunny=250,60,480,330
  lensblur focus-report input.jpg gbsd-img2img.png --box 100,200,300,380 --format json

The first image is the baseline; every score is also given as a ratio to it (the GBSD paper reports e.g.
"VoL 95.53, 3.81x baseline"). Scores are computed on the grey display values (0..255,
0.299 R + 0.587 G + 0.114 B; --grey uint8 rounds it to 8 bits first): variance of the 4-neighbour Laplacian
(== OpenCV's Laplacian(...).var()) and Brenner's horizontal gradient, the sum of (I(x+2, y) - I(x, y))^2
over the region (--brenner pertuz: Pertuz's mean of max(DH, DV)^2). --blur-maps DIR writes the paper's
Figure 5 blur maps.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "focus-report",
                           help="focus scores (VoL, Brenner) of image regions against a baseline",
                           description="Variance of Laplacian and Brenner score of image regions, with ratios to "
                                       "the first image.",
                           epilog=EPILOG)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="baseline image first, then the images to score")
    parser.add_argument("--box", type=_args.named_box, action="append", default=[], metavar="[NAME=]X0,Y0,X1,Y1",
                        help="a region in pixels (x1, y1 exclusive); repeat for several; default: the whole image")
    _args.add_focus_measures(parser)
    parser.add_argument("--blur-maps", type=Path, metavar="DIR",
                        help="also write each image's blur map (the paper's Figure 5: the Laplacian's magnitude, "
                             "normalised) as DIR/<name>_blurmap.png")
    _args.add_format(parser, "markdown", "json")
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..errors import InputError
    from ..generate.report import Region, format_json, format_markdown, report_files, write_blur_maps

    if args.blur_maps is not None and not args.blur_maps.is_dir():
        raise InputError("--blur-maps", expected="an existing folder", got=str(args.blur_maps),
                         fix=f"create it first: mkdir -p {args.blur_maps}")
    regions = [Region(name or f"box {i + 1}", box) for i, (name, box) in enumerate(args.box)] or None
    scores = report_files(args.images, regions, grey=args.grey, brenner_variant=args.brenner_variant)
    if args.blur_maps is not None:
        for path in write_blur_maps(args.images, args.blur_maps, grey=args.grey):
            print(f"wrote {path}", file=sys.stderr)
    print(format_json(scores) if args.format == "json" else format_markdown(scores), end="")
    return 0
