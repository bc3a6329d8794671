"""The ``lensblur`` command: one module per subcommand, each with ``add_parser`` and ``run``.

Commands translate flags and call the library; they never duplicate its logic. Flags that several commands
take are declared once, in :mod:`lensblur.cli._args`. User mistakes (:class:`~lensblur.errors.LensblurError`)
are printed to stderr without a traceback and exit with code 1; an :class:`~lensblur.errors.InputError` names
the flag the user typed (``--focus-disparity``) where the library named its Python argument
(``focus_disparity``). Set ``LENSBLUR_DEBUG=1`` to see the traceback. Results go to stdout, progress and logs
to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ..errors import LensblurError
from ._args import cli_message

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
    "data": "data",
    "train": "train",
    "convert": "convert",
}


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``lensblur`` parser and each subcommand's parser by name."""
    parser = argparse.ArgumentParser(
        prog="lensblur",
        description="Realistic, controllable lens blur (bokeh) for photographs and generated images.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f"{__name__}.{module}").add_parser(subparsers)
    return parser, dict(subparsers.choices)


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser, commands = _build()
    args = parser.parse_args(argv)
    level = logging.ERROR if getattr(args, "quiet", False) else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 1
    try:
        return int(args.run(args) or 0)
    except LensblurError as exc:
        if os.environ.get("LENSBLUR_DEBUG"):
            raise
        print(f"lensblur {args.command}: error: {message(exc, _leaf(commands[args.command], args))}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lensblur {args.command}: interrupted", file=sys.stderr)
        return 130


def _leaf(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The parser that read the flags: ``parser``, or the sub-subcommand's (``lensblur data check``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return _leaf(action.choices[getattr(args, action.dest)], args)
    return parser


def message(exc: LensblurError, parser: argparse.ArgumentParser) -> str:
    """The error as the command line shows it: an :class:`InputError` about a Python argument that a flag
    of ``parser`` feeds is reported under that flag, and ``name=value`` in its fix reads ``--flag value``."""
    return cli_message(exc, parser)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
