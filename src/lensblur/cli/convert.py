"""``lensblur convert``: a pickle checkpoint of tensors (BokehDiff's ``vae.ckpt``) -> ``.safetensors``."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import _args

__all__ = ["add_parser", "run"]

EPILOG = """examples:
  lensblur convert ~/.cache/huggingface/hub/models--zcx65535--bokehdiff/snapshots/*/small/vae.ckpt \\
      -o vae-encoder.safetensors
  lensblur render photo.jpg --disparity d.png --method bokehdiff --vae-encoder vae-encoder.safetensors -o out.png

The pickle is read with torch.load(weights_only=True), which loads tensors and plain containers only; the
result holds the same names and tensors and loads without pickle.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "convert", help="convert a pickle checkpoint of tensors to safetensors",
                           description=__doc__, epilog=EPILOG)
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="the .ckpt / .pt / .bin file")
    _args.add_output(parser, folder=False, help="the .safetensors file to write")
    parser.add_argument("--force", action="store_true", help="allow overwriting the input file")
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..bokehdiff.loading import convert_to_safetensors
    from ..io import check_output_path

    check_output_path(args.output, inputs=[args.checkpoint], force=args.force)
    count = convert_to_safetensors(args.checkpoint, args.output)
    print(f"wrote {args.output} ({count} tensors)")
    return 0
