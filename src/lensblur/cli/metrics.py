"""``lensblur metrics OUT REFERENCE``: PSNR and SSIM of a result against a reference image.

Both scores are computed on the display values of the files (the sRGB-encoded pixels, divided by the
file's full scale: 255 for 8-bit, 65535 for 16-bit), with ``data_range = 1.0``. Linear float files (PFM,
EXR, float TIFF) are sRGB-encoded first, so that a float result compares with an 8-bit reference.
"""

from __future__ import annotations

import argparse
import json
import math

from ..errors import InputError, ShapeError
from . import _args

__all__ = ["add_parser", "run"]

_EPILOG = """\
examples:
  lensblur metrics out.png reference.png
  lensblur metrics out.png reference.png --box 100,120,300,400 --format json

Scores are computed on the sRGB-encoded file values scaled to [0, 1] (data_range 1.0); linear float
files (PFM, EXR, float TIFF) are sRGB-encoded first. SSIM uses a Gaussian window (sigma 1.5) as
scikit-image's structural_similarity(gaussian_weights=True, use_sample_covariance=False). In JSON, a PSNR
of identical images (infinite) is written as null.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "metrics", help="PSNR and SSIM of a result against a reference image",
                           description="Compare a result with a reference image: PSNR (dB) and SSIM on display "
                                       "values.",
                           epilog=_EPILOG)
    parser.add_argument("out", metavar="OUT", help="the image to score (e.g. a render)")
    parser.add_argument("reference", metavar="REFERENCE", help="the reference image, same size as OUT")
    parser.add_argument("--box", type=_args.box, action=_args.Once, metavar="X0,Y0,X1,Y1",
                        help="score only this region (pixels, X1/Y1 exclusive)")
    _args.add_format(parser, "text", "json")
    _args.add_compute(parser, only=("threads",))
    parser.set_defaults(run=run)
    return parser


def _size(arr) -> str:
    return f"{arr.shape[1]}x{arr.shape[0]}"


def run(args) -> int:
    from ..geometry import parse_box
    from ..io import read_display
    from ..metrics import psnr, ssim

    out = read_display(args.out, argument="OUT")
    reference = read_display(args.reference, argument="REFERENCE")
    if out.shape != reference.shape:
        raise ShapeError("REFERENCE", expected=f"the size of OUT, {_size(out)} (width x height)",
                         got=f"{_size(reference)} ({args.reference})",
                         fix="compare a result with a reference of the same size (resize one of them first)")
    region_box = None if args.box is None else parse_box(args.box, out.shape[:2], argument="--box")
    try:
        psnr_db = psnr(reference, out, data_range=1.0, box=region_box)
        ssim_value = ssim(reference, out, data_range=1.0, box=region_box)
    except InputError as exc:
        if exc.argument not in ("image_true", "image_test"):
            raise
        raise InputError("OUT", expected=exc.expected, got=exc.got, fix=exc.fix) from exc

    if args.format == "json":
        result = {
            "out": str(args.out),
            "reference": str(args.reference),
            "width": out.shape[1],
            "height": out.shape[0],
            "box": list(region_box) if region_box is not None else None,
            "psnr_db": psnr_db if math.isfinite(psnr_db) else None,
            "ssim": ssim_value,
        }
        print(json.dumps(result, indent=2))
    else:
        region = "whole image" if region_box is None else "box " + ",".join(str(v) for v in region_box)
        print(f"{args.out} vs {args.reference} ({_size(out)}, {region})")
        print(f"PSNR  {psnr_db:.4f} dB")
        print(f"SSIM  {ssim_value:.6f}")
    return 0
