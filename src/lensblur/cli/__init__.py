"""The ``lensblur`` command: one module per subcommand, each with ``add_parser`` and ``run``.

Commands translate flags and call the library; they never duplicate its logic. User mistakes
(:class:`~lensblur.errors.LensblurError`) are printed to stderr without a traceback and exit with code 1;
set ``LENSBLUR_DEBUG=1`` to see the traceback. Results go to stdout, progress and logs to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ..errors import LensblurError

__all__ = ["COMMANDS", "build_parser", "main"]

# Subcommand name -> module under lensblur.cli. Each module defines add_parser(subparsers) and run(args).
COMMANDS = {
    "render": "render",
    "metrics": "metrics",
    "focus": "focus",
    "demo": "demo",
    "depth": "depth",
    "eval": "eval",
    "generate": "generate",
    "focus-report": "focus_report",
    "synth": "synth",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lensblur",
        description="Realistic, controllable lens blur (bokeh) for photographs and generated images.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f"{__name__}.{module}").add_parser(subparsers)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 1
    try:
        return int(args.run(args) or 0)
    except LensblurError as exc:
        if os.environ.get("LENSBLUR_DEBUG"):
            raise
        print(f"lensblur {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lensblur {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
