"""The page's settings as a ``lensblur render`` command line, and that command line read back by the CLI's parser.

The page never builds a lens or reads a map by itself: its settings become the tokens of a ``lensblur render``
command (:func:`render_tokens`), which the render command's own parser reads (:func:`parse_render`). The same
tokens, with the files' own names instead of the server's copies, are the command line the page shows, so that
command reproduces the page's render by construction.
"""

from __future__ import annotations

import functools
import math
import shlex
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputError

__all__ = ["APERTURES", "FILE_ROLES", "UsageError", "command_line", "command_parser", "file_name", "one_photo",
           "parse_render", "render_parser", "render_tokens"]

APERTURES = ("circle", "triangle", "square", "pentagon", "hexagon", "heptagon", "octagon")
"""The named shapes of ``--aperture`` the page offers (besides a number of blades and a custom image)."""

FILE_ROLES = {"photo": None, "disparity": "--disparity", "right": "--right", "aperture": "--aperture"}
"""The files a page may upload, by role, and the flag each one feeds (the photo is the positional)."""


class UsageError(InputError):
    """A setting the render command's parser refuses (argparse's message, as ``lensblur render`` prints it)."""

    def __init__(self, message: str):
        Exception.__init__(self, message)
        self.argument, self.expected, self.got, self.fix = "", message, None, None

    def __str__(self) -> str:
        return self.args[0]


def _number(settings: Mapping, key: str, *, low: float | None = None, high: float | None = None) -> str | None:
    """``settings[key]`` as the command line writes it (None when unset); an error naming ``key`` otherwise."""
    value = settings.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or (low is not None and number < low) or \
            (high is not None and number > high):
        span = f" in [{low:g}, {high:g}]" if low is not None and high is not None else ""
        raise InputError(key, expected=f"a number{span}", got=value, fix=f"set {key} to a number{span}")
    return f"{number:.6g}"


def _numbers(settings: Mapping, key: str, count: int) -> str | None:
    values = settings.get(key)
    if values is None:
        return None
    if not isinstance(values, (list, tuple)) or len(values) != count:
        raise InputError(key, expected=f"{count} numbers", got=values, fix=f"send {key} as a list of {count} numbers")
    return ",".join(_number({key: v}, key, low=-1e9, high=1e9) for v in values)


def _flag(tokens: list[str], flag: str, value: str | None) -> None:
    """Append ``flag value``; ``flag=value`` when the value starts with a minus sign (argparse would read it as
    a flag)."""
    if value is None:
        return
    tokens.extend([f"{flag}={value}"] if value.startswith("-") else [flag, value])


def render_tokens(settings: Mapping, files: Mapping[str, str], output: str) -> list[str]:
    """The ``lensblur render`` arguments (after ``render``) for the page's ``settings``.

    Args:
        settings: the page's settings (every key optional): ``refine``, ``normalize``, ``resize`` (depth switches),
            ``depth_model``, ``depth_range`` ([near, far] m), ``depth_scale`` (metres per unit of the photo's
            depth), ``focus`` ({"point": [x, y]}, {"box": [x0, y0, x1,
            y1]} in full-resolution pixels, {"disparity": d} or {"distance": m}), ``mode`` ("blur" or "camera"), ``blur``, ``f_number``,
            ``focal_length``, ``sensor_width``, ``aperture`` (one of :data:`APERTURES`, ``"blades"`` or
            ``"custom"``), ``blades``, ``rotation``, ``curvature``, ``cat_eye``, ``highlights``, ``method``,
            ``checkpoint``.
        files: role (:data:`FILE_ROLES`) -> path to write for that file; ``photo`` is required.
        output: the ``-o`` path.

    Returns:
        The tokens.

    Raises:
        InputError: a setting has the wrong type or is out of range (named by its setting).
    """
    tokens = [str(files["photo"])]
    for role in ("disparity", "right"):
        if files.get(role):
            tokens += [FILE_ROLES[role], str(files[role])]
    model = settings.get("depth_model")
    if model:
        tokens += ["--depth-model", str(model)]
    for key, flag in (("refine", "--refine-depth"), ("normalize", "--normalize-disparity"),
                      ("resize", "--resize-disparity")):
        if settings.get(key):
            if key != "refine" and not files.get("disparity"):
                continue                  # only a dropped map is normalised or resampled
            tokens.append(flag)
    _flag(tokens, "--depth-range", _numbers(settings, "depth_range", 2))
    _flag(tokens, "--depth-scale", _number(settings, "depth_scale", low=1e-9, high=1e9))
    focus = settings.get("focus") or {}
    if not isinstance(focus, Mapping):
        raise InputError("focus", expected="a point, a box or a distance", got=focus, fix="click the photo")
    camera = settings.get("mode") == "camera"
    if "point" in focus:
        _flag(tokens, "--focus", ",".join(str(int(float(v))) for v in _numbers(focus, "point", 2).split(",")))
    elif "box" in focus:
        _flag(tokens, "--focus-box", ",".join(str(int(float(v))) for v in _numbers(focus, "box", 4).split(",")))
    elif "disparity" in focus:
        _flag(tokens, "--focus-disparity", _number(focus, "disparity", low=0, high=1))
    if camera:
        _flag(tokens, "--f-number", _number(settings, "f_number", low=0.5, high=128) or "2.8")
        _flag(tokens, "--focal-length", _number(settings, "focal_length", low=1, high=2000))
        _flag(tokens, "--sensor-width", _number(settings, "sensor_width", low=1, high=200))
        if "distance" in focus and not {"point", "box", "disparity"} & set(focus):
            _flag(tokens, "--focus-distance", _number(focus, "distance", low=0.01, high=1e6))
    else:
        _flag(tokens, "--blur", _number(settings, "blur", low=0, high=1000) or "30")
    shape = settings.get("aperture") or "circle"
    if shape == "custom":
        if not files.get("aperture"):
            raise InputError("aperture", expected="a shape image for a custom aperture", got="none",
                             fix="drop a grey-scale image of the shape (white = open)")
        tokens += ["--aperture", str(files["aperture"])]
    elif shape == "blades":
        _flag(tokens, "--blades", _number(settings, "blades", low=0, high=64) or "6")
    elif shape in APERTURES:
        if shape != "circle":
            tokens += ["--aperture", shape]
    else:
        raise InputError("aperture", expected=f"one of {', '.join(APERTURES)}, blades or custom", got=shape,
                         fix="pick a shape from the list")
    for key, flag in (("rotation", "--rotation"), ("curvature", "--curvature"), ("cat_eye", "--cat-eye")):
        value = _number(settings, key, low=-360 if key == "rotation" else 0, high=360 if key == "rotation" else 1)
        if value is not None and float(value) != 0:
            _flag(tokens, flag, value)
    highlights = _number(settings, "highlights", low=0, high=4)     # 1 = auto, the render command's default
    if highlights is not None and float(highlights) != 1:
        _flag(tokens, "--highlights", "off" if float(highlights) == 0 else highlights)
    method = settings.get("method") or "layered"
    if not isinstance(method, str):
        raise InputError("method", expected="a method name", got=method, fix="pick a method from the list")
    if method != "layered":
        tokens += ["--method", method]
    if settings.get("checkpoint"):
        tokens += ["--checkpoint", str(settings["checkpoint"])]
    tokens += ["-o", str(output)]
    return tokens


def command_line(tokens: list[str], name: str = "render") -> str:
    """``lensblur NAME TOKENS`` (``render`` by default), quoted for a POSIX shell."""
    return shlex.join(["lensblur", name, *tokens])


@functools.cache
def command_parser(name: str):
    """The parser of ``lensblur NAME`` (``render``, ``generate``) whose usage errors raise :class:`UsageError`
    instead of exiting."""
    parser = _commands()[name]

    def refuse(status=0, message=None):
        text = (message or "").strip()
        raise UsageError(text.split(": error: ", 1)[-1])

    parser.exit = refuse
    return parser


@functools.cache
def _commands() -> dict:
    from ..cli import _build

    return _build()[1]


def render_parser():
    """The parser of ``lensblur render`` whose usage errors raise :class:`UsageError` instead of exiting."""
    return command_parser("render")


def parse_render(tokens: list[str], parser=None):
    """Read ``tokens`` with the render command's parser: the same ``args`` ``lensblur render TOKENS`` runs with.

    Args:
        tokens: from :func:`render_tokens` (or, with ``parser``, another command's tokens).
        parser: a parser from :func:`command_parser` (the render command's when None).

    Returns:
        The :class:`argparse.Namespace`.

    Raises:
        UsageError: the parser refuses a value.
    """
    from ..cli import _join_negative_values, _valued_options

    parser = parser or render_parser()
    return parser.parse_args(_join_negative_values(list(tokens), _valued_options(parser)))


def one_photo(args):
    """``args`` as ``lensblur render`` renders one photo with them: ``photo`` one path (the parser keeps a list,
    since the command also takes several photos)."""
    import argparse

    photo = args.photo[0] if isinstance(args.photo, (list, tuple)) else args.photo
    return argparse.Namespace(**{**vars(args), "photo": Path(photo)})


def file_name(name: str, role: str) -> str:
    """A safe file name for an upload: its base name, without path parts, control characters or a leading dash.

    Args:
        name: the name the browser sent.
        role: the file's role, used when nothing is left.

    Returns:
        The name.
    """
    base = Path(str(name).replace("\\", "/")).name
    keep = "".join(c for c in base if c.isalnum() or c in "._- +()")
    keep = keep.strip().lstrip("-.") or role
    return keep[-120:]
