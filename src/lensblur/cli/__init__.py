"""The ``lensblur`` command: one module per subcommand, each with ``add_parser`` and ``run``.

Commands translate flags and call the library; they never duplicate its logic. Flags that several commands
take are declared once, in :mod:`lensblur.cli._args`. User mistakes (:class:`~lensblur.errors.LensblurError`)
are printed to stderr without a traceback and exit with code 1; an :class:`~lensblur.errors.InputError` names
the flag the user typed (``--focus-disparity``) where the library named its Python argument
(``focus_disparity``). Set ``LENSBLUR_DEBUG=1`` to see the traceback. Usage errors (an unknown flag, a
value that is not a number) are one line too, with exit code 2. Results go to stdout, progress and logs to
stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import signal
import sys
import threading

from .._memory import tune_allocator
from ..errors import LensblurError
from ._args import cli_message, start_pool_early, start_threads

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
    "ui": "ui",
}


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


_TYPE_NAMES = {"float": "a number", "int": "a whole number"}


class _Parser(argparse.ArgumentParser):
    """argparse with lensblur's one-line errors: ``lensblur render: error: --blur: expected a number, got
    'abc' (lensblur render --help lists the options)``, exit code 2, instead of the usage block."""

    def error(self, message: str):
        text = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        text = re.sub(r"invalid (float|int) value: ('.*')$",
                      lambda m: f"expected {_TYPE_NAMES[m.group(1)]}, got {m.group(2)}", text)
        text = text.replace("expected one argument", "expected a value after it")
        text = re.sub(r"^(-[^:]*?/)(--[^:]+): ", r"\2: ", text)     # -o/--output: -> --output:
        self.exit(2, f"{self.prog}: error: {text} ({self.prog} --help lists the options)\n")


def _valued_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string, in ``parser`` and its subcommands, that takes a value."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _valued_options(sub)
        elif action.option_strings and action.nargs != 0:
            found |= set(action.option_strings)
    return found


def _join_negative_values(argv: list[str], valued: set[str]) -> list[str]:
    """``--focus -1,-1`` -> ``--focus=-1,-1``: argparse reads a value that starts with a minus sign and is not
    a plain number as the next option, and would say "expected one argument"."""
    out: list[str] = []
    for token in argv:
        if out and out[-1] in valued and re.match(r"^-[\d.]", token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``lensblur`` parser and each subcommand's parser by name."""
    parser = _Parser(
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
    tune_allocator()        # before any thread starts: see lensblur._memory
    parser, commands = _build()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(_join_negative_values(argv, _valued_options(parser)))
    level = logging.ERROR if getattr(args, "quiet", False) else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 1
    previous = _stop_on_sigterm()
    try:
        start_pool_early(args)
        start_threads(args)
        return int(args.run(args) or 0)
    except KeyboardInterrupt as exc:
        return _interrupted(args.command, exc)
    except Exception as exc:
        # An error raised while a Ctrl-C or SIGTERM unwound the command (a library's cleanup that the signal
        # caught half done, e.g. tqdm releasing a lock it had not yet taken) is that interruption.
        interruption = _interruption(exc)
        if interruption is not None:
            return _interrupted(args.command, interruption)
        if not isinstance(exc, LensblurError) or os.environ.get("LENSBLUR_DEBUG"):
            raise
        print(f"lensblur {args.command}: error: {message(exc, _leaf(commands[args.command], args))}",
              file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM among the exceptions ``exc`` was raised while handling, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__context__
    return None


def _interrupted(command: str, exc: KeyboardInterrupt) -> int:
    if isinstance(exc, _Terminated):
        print(f"lensblur {command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    print(f"lensblur {command}: interrupted", file=sys.stderr)
    return 130


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command runs so that it stops as on Ctrl-C: temporary files removed, worker
    processes ended."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def _stop_on_sigterm():
    """Turn SIGTERM into :class:`_Terminated` while the command runs (from the main thread only, where signal
    handlers can be set); the handler before it, to restore, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


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
