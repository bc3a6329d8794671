"""``lensblur data check DATASET ROOT``: count and pair a dataset folder's files against its release.

Translates flags into :func:`lensblur.data.verify` and prints its report; the exit code is 0 when the folder
holds what the release holds, and 1 (a bad input, as for every command) when counts differ or files are
unpaired, or the folder is not there.
"""

from __future__ import annotations

import argparse
import json

from . import _args

__all__ = ["add_parser", "run"]

DATASETS = ("ebb", "ebb-val294", "nyu", "blb", "synth")

_EPILOG = """\
examples:
  lensblur data check ebb EBB/
  lensblur data check nyu nyu_depth_v2_labeled.mat --format json
  lensblur data check synth data/synth-v1

Counts each part of the folder, pairs inputs with targets and compares sizes (and NYU's depth bit depths)
from the file headers, against what the release holds. See docs/eval.md.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "data", help="check a dataset download against its release",
                           description="Dataset folders: check that one holds what its release holds.",
                           epilog=_EPILOG)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = _args.command(actions, "check", help="count and pair a dataset folder's files",
                          description=__doc__, epilog=_EPILOG)
    check.add_argument("dataset", metavar="DATASET", choices=DATASETS, help=f"one of {', '.join(DATASETS)}")
    check.add_argument("root", metavar="ROOT", help="the dataset folder (for NYU's labeled set, the .mat file)")
    _args.add_format(check, "text", "json", help="how to print the report")
    check.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..data import verify

    report = verify(args.dataset, args.root)
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        text = report.as_text()
        print(text, end="" if text.endswith("\n") else "\n")
    return 0 if report.ok else 1
