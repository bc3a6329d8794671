"""The command line's one vocabulary: every flag that more than one subcommand takes is declared here once.

* small parsers (:func:`numbers`, :func:`floats`, :func:`point`, :func:`box`, :func:`named_box`, :func:`size`),
  so that every command reads a box or a size the same way;
* :func:`command`, the header every subcommand's parser starts from;
* argument groups: :func:`add_photo`, :func:`add_depth_source`, :func:`add_lens` (focus, blur, camera,
  aperture), :func:`add_compute` (``--threads``, ``--device``, ``--dtype``), :func:`add_diffusion` (the diffusion
  method's model, LoRA, tiles...), :func:`add_output` (``-o/--output``: a file where the command writes one file, a
  folder where it writes several), :func:`add_file_output` (``--bits``, ``--quality``, ``--output-profile``,
  ``--strip-metadata``, ``--strip-gps``), :func:`add_format` (``--format``), :func:`add_progress` (``--no-progress``,
  ``-q/--quiet``);
* hidden aliases: an old spelling still parses, for one release, to the same value as the new one, is left out
  of ``--help`` and prints a deprecation note on stderr when used;
* :func:`flag_for`: the flag of the parser that ran for a Python argument name, so that errors raised by
  the library (which name Python arguments) reach command-line users with the flag they typed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "DIFFUSION_OPTIONS",
    "FORMATS",
    "PYTHON_NAMES",
    "add_compute",
    "add_depth_source",
    "add_diffusion",
    "add_executor",
    "add_file_output",
    "add_format",
    "add_lens",
    "add_output",
    "add_photo",
    "add_progress",
    "add_threshold",
    "box",
    "cli_message",
    "command",
    "diffusion_error",
    "diffusion_flag",
    "diffusion_options",
    "executor_from_flags",
    "flag_for",
    "floats",
    "highlights",
    "in_flags",
    "method_from_flags",
    "named_box",
    "numbers",
    "point",
    "show_progress",
    "size",
    "start_threads",
]


# ------------------------------------------------------------------------------------------ small parsers
def numbers(text: str, count: int | None, what: str) -> tuple[float, ...]:
    """Comma-separated numbers: exactly ``count`` of them, or at least one when ``count`` is None."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if (len(values) != count) if count is not None else not values:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return values


def positive(text: str) -> float:
    """A finite number > 0."""
    (value,) = numbers(text, 1, "a number > 0")
    if not 0 < value < float("inf"):          # nan is not either
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def floats(text: str) -> list[float]:
    """``A,B,C,...``: one or more numbers."""
    return list(numbers(text, None, "comma-separated numbers such as 0.9,0.8,0.7"))


def point(text: str) -> tuple[float, float]:
    """``X,Y`` in pixels."""
    return numbers(text, 2, "a point X,Y in pixels (e.g. 812,430)")


def highlights(text: str) -> str | float:
    """``auto``, ``off`` or a number (its range is the library's to check: ``lensblur.render.highlights``)."""
    word = text.strip().lower()
    if word in ("auto", "off"):
        return word
    try:
        return float(word)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, off or a strength such as 1.5, got {text!r}") from None


def box(text: str) -> tuple[float, float, float, float]:
    """``X0,Y0,X1,Y1`` in pixels, X1/Y1 exclusive."""
    return numbers(text, 4, "a box X0,Y0,X1,Y1 in pixels (e.g. 100,120,300,400)")


def named_box(text: str) -> tuple[str | None, tuple[int, int, int, int]]:
    """``[NAME=]X0,Y0,X1,Y1``: the name (None without one) and the box rounded to whole pixels."""
    name, _, values = text.rpartition("=")
    return name.strip() or None, tuple(round(v) for v in box(values))


def size(text: str) -> tuple[int, int]:
    """``WxH``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size WxH such as 512x384, got {text!r}")
    return w, h


# ------------------------------------------------------------------------------------------ the command header
_ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|obj):`~?([^`]+)`")


def plain(text: str | None) -> str | None:
    """A module docstring as a help screen shows it: Sphinx roles (``:func:`lensblur.x```) and double
    backquotes (````lensblur x````) reduced to their text."""
    if text is None:
        return None
    return _ROLE.sub(r"\1", text).replace("``", "")


def command(subparsers, name: str, *, help: str, description: str, epilog: str | None = None):
    """A subcommand's parser: its one-line ``help`` in ``lensblur --help``, its ``description`` (the module's
    docstring, its markup dropped) and ``epilog`` (examples) printed as written."""
    return subparsers.add_parser(name, help=help, description=plain(description), epilog=plain(epilog),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


# ------------------------------------------------------------------------------------------ hidden aliases
class _Deprecated(argparse.Action):
    """An old spelling of ``target``: parses like it, hidden from ``--help``, with a note on stderr."""

    def __init__(self, option_strings, dest, *, target: argparse.Action, **_):
        self.target = target
        super().__init__(option_strings, dest, nargs=target.nargs, const=target.const, default=argparse.SUPPRESS,
                         type=target.type, choices=target.choices, help=argparse.SUPPRESS, metavar=target.metavar)

    def __call__(self, parser, namespace, values, option_string=None):
        new = "/".join(self.target.option_strings)
        print(f"lensblur: {option_string} is deprecated and will be removed in the next release; use {new}",
              file=sys.stderr)
        self.target(parser, namespace, values, self.target.option_strings[-1])


class Once(argparse.Action):
    """A flag that takes one value: given twice, it is a usage error (argparse's default keeps the last one)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, self.default) is not self.default:     # a value parsed already
            shown = ",".join(f"{v:g}" for v in values) if isinstance(values, tuple) else values
            parser.error(f"{option_string}: expected one value, got a second one ({shown}); pass it once")
        setattr(namespace, self.dest, values)


class _Flag(NamedTuple):
    names: tuple[str, ...]
    old: tuple[str, ...]
    kwargs: dict


def _flag(*names: str, old: tuple[str, ...] = (), **kwargs) -> _Flag:
    """One flag: its option strings, its old spellings (kept as hidden aliases) and ``add_argument``'s keywords."""
    return _Flag(names, old, kwargs)


def _add(container, names: tuple[str, ...], old: tuple[str, ...] = (), **kwargs) -> argparse.Action:
    """``container.add_argument(*names, **kwargs)``, plus one hidden alias per old spelling."""
    required = kwargs.pop("required", False)
    if old and required:                  # either spelling satisfies the requirement
        container = container.add_mutually_exclusive_group(required=True)
    action = container.add_argument(*names, required=required and not old, **kwargs)
    for spelling in old:
        container.add_argument(spelling, dest=action.dest, action=_Deprecated, target=action)
    return action


def _add_flags(parser, title: str, specs: dict, only, defaults, helps, exclusive=()) -> dict[str, argparse.Action]:
    """The flags of ``specs`` named in ``only`` (all when None) as one argument group; the ones named in
    ``exclusive`` are mutually exclusive."""
    names = list(specs) if only is None else list(only)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown {title} flags: {unknown}")
    group = parser.add_argument_group(title)
    exclusive = [n for n in names if n in exclusive]
    either = group.add_mutually_exclusive_group() if len(exclusive) > 1 else None
    actions = {}
    for name in names:
        flags, old, kwargs = specs[name]
        kwargs = dict(kwargs)
        if defaults and name in defaults:
            kwargs["default"] = defaults[name]
        if helps and name in helps:
            kwargs["help"] = helps[name]
        actions[name] = _add(either if either is not None and name in exclusive else group, flags, old, **kwargs)
    return actions


# ------------------------------------------------------------------------------------------ photo and depth
def add_photo(parser, help: str = "the photo (PNG, JPEG, TIFF, WebP, PFM, EXR, HEIC, ...)", *,
              many: bool = False) -> argparse.Action:
    """The positional ``PHOTO``, read with :func:`lensblur.depth.read_photo`; with ``many``, one or more
    (files, folders, glob patterns or fsspec URLs, kept as text: ``args.photo`` is then a list)."""
    if many:
        return parser.add_argument("photo", nargs="+", metavar="PHOTO", help=help)
    return parser.add_argument("photo", type=Path, metavar="PHOTO", help=help)


def _depth_sources() -> tuple[str, ...]:
    from ..choices import DEPTH_SOURCES

    return DEPTH_SOURCES


_DEPTH = {
    "disparity": _flag("--disparity", type=Path, metavar="FILE", help="disparity map, larger = nearer"),
    "depth": _flag("--depth", type=Path, metavar="FILE",
                   help="metric depth map, larger = farther (converted to disparity)"),
    "depth_from": _flag("--depth-from", metavar="SOURCE",
                        help="where depth comes from: %(choices)s (default auto: --disparity, --right, --mask, "
                             "depth inside the photo, --depth-model or $LENSBLUR_DEPTH_MODEL, in that order)"),
    "depth_model": _flag("--depth-model", old=("--model",), metavar="PATH_OR_ID",
                         help="monocular depth model: a transformers folder, a model id in the Hugging Face "
                              "cache, or a lensblur train depth run (folder or .safetensors)"),
    "right": _flag("--right", type=Path, metavar="RIGHT",
                   help="right view of a rectified stereo pair (the photo is the left)"),
    "mask": _flag("--mask", type=Path, metavar="MASK",
                  help="subject mask (white = subject) for --depth-from subject (portrait mode)"),
    "refine_depth": _flag("--refine-depth", old=("--refine",), action="store_true",
                          help="snap the map's edges to the photo's edges"),
    "normalize_disparity": _flag("--normalize-disparity", old=("--normalize",), action="store_true",
                                 help="min-max rescale disparity maps to [0, 1] (relative depth-model output)"),
    "resize_disparity": _flag("--resize-disparity", action="store_true",
                              help="resample a map of another size to the photo's"),
    "depth_scale": _flag("--depth-scale", type=positive, metavar="S",
                         help="metres per stored depth unit: of a --depth map (default 1), or of a phone photo's "
                              "depth whose units the file does not say (Google Lens Blur)"),
    "depth_range": _flag("--depth-range", type=lambda s: numbers(s, 2, "NEAR,FAR in metres"), metavar="NEAR,FAR",
                         help="metric depths of disparity 1 and 0 (for a camera with --disparity)"),
    "disparity_dir": _flag("--disparity-dir", metavar="DIR",
                           help="a folder of per-image disparity maps (same stem as the image)"),
    "extract_image": _flag("--extract-image", type=Path, metavar="OUT",
                           help="also write the sharp original image a phone photo holds beside its blurred "
                                "primary (Google Lens Blur GImage, Dynamic Depth Original)"),
}

DEPTH_SOURCE = ("disparity", "depth_from", "depth_model", "right", "mask", "refine_depth")
"""The flags that choose and refine a depth source (:func:`lensblur.depth.resolve`'s arguments)."""


def add_depth_source(parser, *, only=DEPTH_SOURCE, defaults=None, helps=None) -> dict[str, argparse.Action]:
    """The depth group: by default the flags of :data:`DEPTH_SOURCE`; ``only`` picks others from
    ``disparity, depth, depth_from, depth_model, right, mask, refine_depth, normalize_disparity,
    resize_disparity, depth_scale, depth_range, disparity_dir, extract_image``. ``--disparity`` and ``--depth`` are
    mutually exclusive. ``--depth-from`` offers :data:`lensblur.depth.SOURCES` everywhere."""
    specs = dict(_DEPTH)
    flag = specs["depth_from"]
    specs["depth_from"] = flag._replace(kwargs={**flag.kwargs, "choices": _depth_sources()})
    return _add_flags(parser, "depth", specs, only, defaults, helps, exclusive=("disparity", "depth"))


# ------------------------------------------------------------------------------------------ lens
_FOCUS = ("focus", "focus_box", "focus_disparity", "focus_mask")

_LENS = {
    "focus": _flag("--focus", type=point, metavar="X,Y", help="focus on this pixel (median disparity of a 9x9 window)"),
    "focus_box": _flag("--focus-box", type=box, metavar="X0,Y0,X1,Y1", help="focus on this box"),
    "focus_disparity": _flag("--focus-disparity", type=float, metavar="D", help="focus on this disparity, in [0, 1]"),
    "focus_mask": _flag("--focus-mask", type=Path, metavar="MASK", help="focus on the subject of this mask"),
    "blur": _flag("--blur", type=float, metavar="K", help="CoC scale K in pixels: blur radius K * |d - d_focus|"),
    "f_number": _flag("--f-number", type=float, metavar="N", help="f-number N of a physical camera"),
    "focal_length": _flag("--focal-length", type=float, metavar="MM",
                          help="focal length in mm (default: the photo's EXIF, else 50)"),
    "sensor_width": _flag("--sensor-width", type=float, metavar="MM",
                          help="sensor width in mm (default: from the EXIF's 35 mm-equivalent focal length, else 36)"),
    "focus_distance": _flag("--focus-distance", type=float, metavar="M", help="focus distance in metres"),
    "simulate": _flag("--simulate", metavar="LENS",
                      help='the blur of a full-frame lens framing the photo the same way, e.g. "85mm f/1.4 '
                           'full-frame" (the camera steps back; needs metric depth)'),
    "equivalent_focal": _flag("--equivalent-focal", type=float, metavar="MM",
                              help="with --f-number: the full-frame focal length whose blur to give, at the same "
                                   "framing (--simulate in two flags)"),
    "aperture": _flag("--aperture", default="circle",
                      help="circle, triangle, square, pentagon, hexagon, heptagon, octagon, or a grey-scale image "
                           "file (default circle)"),
    "blades": _flag("--blades", type=int, metavar="N",
                    help="number of aperture blades, 3 to 64 (0 = circle); overrides the shape"),
    "rotation": _flag("--rotation", type=float, default=0.0, metavar="DEG",
                      help="blade rotation in degrees (default 0)"),
    "curvature": _flag("--curvature", type=float, default=0.0, metavar="C",
                       help="rounded blades, 0 = straight (default), 1 = round"),
    "cat_eye": _flag("--cat-eye", type=float, default=0.0, metavar="AMOUNT",
                     help="optical vignetting toward the corners, 0 (default) .. 1"),
    "highlights": _flag("--highlights", type=lambda s: highlights(s), metavar="auto|off|STRENGTH",
                        help="clipped lights become bright bokeh: auto (default) raises each small clipped light "
                             "to its estimated energy, off leaves the photo as recorded, a strength 0..4 scales "
                             "auto's boost; auto leaves linear photos (EXR, PFM, float TIFF) as recorded"),
}


def add_lens(parser, *, only=None, defaults=None, helps=None) -> dict[str, argparse.Action]:
    """The focus group (``--focus``, ``--focus-box``, ``--focus-disparity``, ``--focus-mask``: mutually
    exclusive) and the lens group (``--blur``; the camera ``--f-number``, ``--focal-length``,
    ``--sensor-width``, ``--focus-distance``; the aperture ``--aperture``, ``--blades``, ``--rotation``,
    ``--curvature``, ``--cat-eye``; ``--highlights``). ``only`` picks some by their Python names,
    ``defaults`` and ``helps`` adjust them for one command."""
    names = list(_LENS) if only is None else list(only)
    focus = {n: _LENS[n] for n in _FOCUS}
    lens = {n: s for n, s in _LENS.items() if n not in _FOCUS}
    actions = {}
    if any(n in focus for n in names):
        actions.update(_add_flags(parser, "focus", focus, [n for n in names if n in focus], defaults, helps,
                                  exclusive=_FOCUS))
    if any(n not in focus for n in names):
        actions.update(_add_flags(parser, "lens", lens, [n for n in names if n not in focus], defaults, helps))
    return actions


# ------------------------------------------------------------------------------------------ threshold blur
_THRESHOLD = {
    "threshold": _flag("--threshold", type=float, metavar="T",
                       help="depth-threshold: blur pixels whose normalised depth (depth / 10 m) exceeds T "
                            "(default 0.3; the paper: 0.2, 0.25, 0.3)"),
    "threshold_sigma": _flag("--threshold-sigma", type=float, metavar="PX",
                             help="depth-threshold: the Gaussian's sigma in pixels (default 8 per 1024 px of height)"),
    "threshold_feather": _flag("--threshold-feather", type=float, metavar="PX",
                               help="depth-threshold: soften the mask's edge by a Gaussian of PX pixels (default 0: "
                                    "hard)"),
}


def add_threshold(parser) -> dict[str, argparse.Action]:
    """The depth-threshold method's options (``--threshold``, ``--threshold-sigma``, ``--threshold-feather``),
    None unless given, so that they reach :func:`lensblur.methods.get_method` only when asked for."""
    return _add_flags(parser, "depth-threshold method", _THRESHOLD, None, None, None)


# ------------------------------------------------------------------------------------------ diffusion methods
_DIFFUSION = {
    "diffusion_model": _flag("--diffusion-model", metavar="PATH_OR_ID",
                             help="base model: a diffusers folder, a single-file checkpoint or a Hugging Face id in "
                                  "the cache (default SG161222/RealVisXL_V5.0; for a lensblur train run, the one it "
                                  "recorded)"),
    "lora": _flag("--lora", metavar="PATH_OR_ID",
                  help="the LoRA: a .safetensors file, a folder, a cached id (default zcx65535/bokehdiff), or a "
                       "lensblur train bokehdiff run (its folder or RUN/last.safetensors)"),
    "vae_encoder": _flag("--vae-encoder", metavar="FILE",
                         help="the partial VAE encoder, .ckpt or .safetensors (default: beside the LoRA, or the "
                              "run's; none: the base model's)"),
    "tile": _flag("--tile", choices=("auto", "always", "never"),
                  help="512-px tiles: auto (above two tiles' area, default), always, never"),
    "tile_margin": _flag("--tile-margin", type=int, metavar="LATENTS",
                         help="latent pixels (8 px each) of every tile used as context only, so that blur from "
                              "beyond a tile's edge reaches what it keeps (default 0, the release; 0 to 31; more "
                              "tiles, the same memory per tile)"),
}

DIFFUSION_OPTIONS = {"model": "diffusion_model", "lora": "lora", "vae_encoder": "vae_encoder", "device": "device",
                     "dtype": "dtype", "tile": "tile", "tile_margin": "tile_margin"}
"""The diffusion method's options (``lensblur.bokehdiff.method.bokehdiff``'s Python names) -> their flags'
``dest``. ``model`` is the depth model's Python name elsewhere, so errors about it are renamed here."""


def diffusion_flag(name: str) -> tuple[str, dict]:
    """One diffusion flag's spelling and ``add_argument`` keywords (for a command that adds it on its own)."""
    flags, _, kwargs = _DIFFUSION[name]
    return flags[0], dict(kwargs)


def add_diffusion(parser) -> dict[str, argparse.Action]:
    """The diffusion method's group (``--diffusion-model``, ``--lora``, ``--vae-encoder``, ``--tile``,
    ``--tile-margin``), None unless given, so that they reach the method only when asked for. Its device and
    precision are the command's ``--device`` and ``--dtype`` (:func:`add_compute`)."""
    return _add_flags(parser, "diffusion method (bokehdiff)", _DIFFUSION, None, None, None)


def diffusion_options(args) -> dict:
    """The diffusion flags given, under the method's Python names (:data:`DIFFUSION_OPTIONS`)."""
    return {name: getattr(args, dest) for name, dest in DIFFUSION_OPTIONS.items() if getattr(args, dest, None) is not None}


def diffusion_error(exc):
    """An :class:`~lensblur.errors.InputError` about a diffusion option, named by its flag (``--diffusion-model``
    for ``model``, with ``model=`` in its fix as ``diffusion_model=``); other errors are returned as they are."""
    from ..errors import InputError

    if not isinstance(exc, InputError) or exc.argument not in DIFFUSION_OPTIONS:
        return exc
    dest = DIFFUSION_OPTIONS[exc.argument]
    flag = (_DIFFUSION[dest] if dest in _DIFFUSION else _COMPUTE[dest]).names[0]
    fix = re.sub(r"(?<![\w-])model=", "diffusion_model=", exc.fix) if exc.fix else exc.fix
    return InputError(flag, expected=exc.expected, got=exc.got, fix=fix)


def method_from_flags(args, **extra):
    """The method ``--method`` names, built with the method flags given (``--checkpoint``, the threshold's and
    the diffusion flags, and ``extra``): :func:`lensblur.methods.get_method`, its errors named by the flags."""
    from ..errors import InputError
    from ..methods import get_method

    try:
        return get_method(args.method, argument="--method", checkpoint=args.checkpoint, threshold=args.threshold,
                          sigma=args.threshold_sigma, feather=args.threshold_feather, **extra,
                          **diffusion_options(args))
    except InputError as exc:
        renamed = diffusion_error(exc)
        if renamed is exc:
            raise
        raise renamed from exc


# ------------------------------------------------------------------------------------------ threads and device
_COMPUTE = {
    "threads": _flag("--threads", type=int, metavar="N",
                     help="CPU threads for the torch work (default: $LENSBLUR_THREADS, else the cores this process "
                          "may run on)"),
    "device": _flag("--device", metavar="DEVICE",
                    help="auto (CUDA, else MPS, else the CPU), cpu, cuda, cuda:N or mps (default: the CPU for the "
                         "classical renderers, auto for bokehdiff)"),
    "dtype": _flag("--dtype", choices=("float32", "float16", "bfloat16"),
                   help="precision of the work: float32 (default), float16 or bfloat16, for the layered renderer "
                        "(meant for GPUs; about as fast on a CPU) and bokehdiff's UNet (float16 on a GPU only)"),
}


def add_compute(parser, *, only=("threads", "device"), defaults=None, helps=None) -> dict[str, argparse.Action]:
    """The compute group: ``--threads N`` (read by :func:`start_threads`), ``--device`` and, when ``only`` names
    it, ``--dtype`` (None unless given; the methods take them as ``device=`` and ``dtype=``). ``only`` picks
    which."""
    return _add_flags(parser, "compute", _COMPUTE, only, defaults, helps)


def start_threads(args) -> None:
    """Set torch's threads by lensblur's policy (:func:`lensblur._threads.set_threads`: ``--threads``, else
    ``LENSBLUR_THREADS``, else the cores available) for a command that has ``--threads``; others are left alone."""
    if hasattr(args, "threads"):
        from .._threads import set_threads

        set_threads(args.threads)


# ------------------------------------------------------------------------------------------ output
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


class _Output(argparse.Action):
    """``-o``'s value: a :class:`~pathlib.Path`, or in a command that writes to fsspec URLs (``urls``) the URL's
    text (a Path would fold the ``//`` of ``s3://bucket/out``). Other commands refuse a URL in one line."""

    def __init__(self, option_strings, dest, *, urls: bool = False, **kwargs):
        self.urls = urls
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if _URL.match(values) and not self.urls:
            parser.error(f"{option_string}: expected a local path, got the URL {values} (lensblur render with "
                         "several photos and lensblur synth write to URLs)")
        # A URL stays text; so does a folder named with a trailing separator where the command tells a file from
        # a folder by it (a Path drops the separator).
        keep = _URL.match(values) or (self.urls and values.endswith(("/", os.sep)))
        setattr(namespace, self.dest, values if keep else Path(values))


def add_output(parser, *, folder: bool, required: bool = True, default=None, help: str | None = None,
               metavar: str | None = None, old: tuple[str, ...] = (), urls: bool = False) -> argparse.Action:
    """``-o/--output``: a file where the command writes one file, a folder (``folder=True``) where it writes
    several; a :class:`~pathlib.Path`, or with ``urls`` also an fsspec URL (kept as text). ``old`` spellings
    stay as hidden aliases."""
    if help is None:
        help = "folder to write into (created if missing)" if folder else "where to write the result"
    if default is not None:
        help += f" (default {default})"
        default = Path(default) if isinstance(default, str) else default
    return _add(parser, ("-o", "--output"), old, action=_Output, urls=urls, required=required, default=default,
                metavar=metavar or ("DIR" if folder else "FILE"), help=help)


_FILE_OUTPUT = {
    "bits": _flag("--bits", type=int, choices=(8, 16, 32),
                  help="bits per channel: 16 for PNG/TIFF, 32 for float TIFF (default: the input's, as far as the "
                       "format holds it)"),
    "quality": _flag("--quality", type=int, metavar="Q", help="JPEG, WebP, HEIC and AVIF quality, 1-100 (default 95)"),
    "output_profile": _flag("--output-profile", choices=("input", "srgb", "p3"), default="input",
                            help="the colour profile to write: the input's own (default; none for an untagged "
                                 "input), srgb or p3 (Display P3)"),
    "strip_metadata": _flag("--strip-metadata", action="store_true",
                            help="write no EXIF, XMP or comment (by default the input's are carried, with "
                                 "lensblur's record in XMP)"),
    "strip_gps": _flag("--strip-gps", action="store_true", help="carry the metadata but not the GPS location"),
}


def add_file_output(parser, *, only=None) -> dict[str, argparse.Action]:
    """The output file's group: ``--bits``, ``--quality``, ``--output-profile``, ``--strip-metadata``,
    ``--strip-gps`` (see :func:`lensblur.io.write_image`); ``only`` picks some by their Python names."""
    return _add_flags(parser, "output file", _FILE_OUTPUT, only, None, None)


FORMATS = ("text", "markdown", "json")
"""Every result format a command may offer, in the order they are listed."""


def add_format(parser, *formats: str, help: str = "how to print the results") -> argparse.Action:
    """``--format``: the formats this command can produce (a subset of :data:`FORMATS`), the first by default."""
    unknown = [f for f in formats if f not in FORMATS]
    if not formats or unknown:
        raise ValueError(f"formats must be some of {FORMATS}, got {formats}")
    choices = tuple(f for f in FORMATS if f in formats)
    return parser.add_argument("--format", choices=choices, default=formats[0],
                               help=f"{help} (default {formats[0]})")


def add_focus_measures(parser) -> None:
    """``--grey`` and ``--brenner``: which variance of Laplacian and which Brenner gradient (see
    :mod:`lensblur.metrics.focus`), the same in every command that scores focus."""
    from ..choices import BRENNER_VARIANTS, GREYS

    group = parser.add_argument_group("focus measures")
    group.add_argument("--grey", choices=GREYS, default=GREYS[0],
                       help="grey kept in float (default), or rounded to whole 8-bit levels first, as the GBSD "
                            "paper's cited reference does")
    group.add_argument("--brenner", dest="brenner_variant", choices=BRENNER_VARIANTS, default=BRENNER_VARIANTS[0],
                       help="Brenner's 1976 horizontal sum (default), or Pertuz's mean of max(DH, DV)^2")


def add_executor(parser, *, workers_help: str | None = None, workers_default: int = 1,
                 local_help: str = "--workers processes on this machine") -> None:
    """Where the items of a batch run (:mod:`lensblur.executor`): ``--executor local|ray``, ``--ray-address``
    and, unless ``workers_help`` is ``""`` (the command has its own), ``--workers N``. ``local_help`` says what
    the local executor does in this command."""
    from ..executor import EXECUTORS

    group = parser.add_argument_group("execution")
    if workers_help != "":
        group.add_argument("--workers", type=int, default=workers_default, metavar="N",
                           help=workers_help or f"local processes, one thread each (default {workers_default})")
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       help=f"local: {local_help} (default); ray: one Ray task per item on the cluster of "
                            "--ray-address")
    group.add_argument("--ray-address", metavar="ADDRESS",
                       help="with --executor ray: auto (the cluster this machine is in), HOST:PORT of a head node, "
                            "or ray://HOST:10001 (Ray Client); default: a local Ray instance")


def executor_from_flags(args):
    """The :class:`~lensblur.executor.Executor` of ``--executor``, ``--workers`` and ``--ray-address``."""
    from ..errors import InputError
    from ..executor import get_executor

    if args.ray_address is not None and args.executor != "ray":
        raise InputError("--ray-address", expected="--executor ray as well", got=args.ray_address,
                         fix="add --executor ray")
    if args.executor != "local":
        return get_executor(args.executor, address=args.ray_address)
    check_workers(args)
    return get_executor(args.executor, workers=getattr(args, "workers", 1), address=args.ray_address)


def start_pool_early(args) -> None:
    """A command that will run a local pool of several workers starts its server before anything else, so that
    the server's import of torch overlaps the command's own (see :func:`lensblur.executor.start_pool_server`).
    A command whose runs do not all use the pool (render: one photo renders in this process) says which do
    with a ``pools(args)`` default."""
    workers = getattr(args, "workers", None)
    pools = getattr(args, "pools", None)      # a command's own test of whether this run uses its pool
    if getattr(args, "executor", "local") == "local" and isinstance(workers, int) and workers > 1 \
            and (pools is None or pools(args)):
        from ..executor import start_pool_server

        start_pool_server()


def check_workers(args) -> None:
    """``--workers``, when the command has it, is an integer >= 1 (the processes of a batch)."""
    from ..errors import InputError

    workers = getattr(args, "workers", 1)
    if workers is not None and workers < 1:
        raise InputError("--workers", expected="an integer >= 1", got=workers, fix="e.g. --workers 2")


def add_progress(parser) -> None:
    """``--no-progress`` (no progress bars) and ``-q/--quiet`` (no progress bars, and errors only on stderr)."""
    group = parser.add_argument_group("progress")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars, and only errors on stderr")


def show_progress(args) -> bool:
    """Whether to draw progress bars (:func:`add_progress`)."""
    return bool(getattr(args, "progress", True)) and not getattr(args, "quiet", False)


# ------------------------------------------------------------------------------------------ flags in messages
PYTHON_NAMES = {
    # lensblur.depth.resolve / build_source, lensblur.render, the readers
    "source": ("depth_from", "rerender"),
    "disparity_path": ("disparity",),
    "model": ("depth_model", "generate_model"),     # the second: the model lensblur ui's generate tab loads
    "depth model": ("depth_model",),
    "refine": ("refine_depth",),
    "resize": ("resize_disparity",),
    "image_path": ("photo",),
    # lensblur.generate.report.write_blur_maps
    "paths": ("images",),
    "folder": ("blur_maps",),
    "image": ("init_image", "photo", "images"),
    # lensblur.io.depth_to_disparity (the metric range)
    "near": ("depth_range",),
    "far": ("depth_range",),
    # lensblur.baselines.threshold.DepthThreshold (the depth-threshold method's options)
    "sigma": ("threshold_sigma",),
    "feather": ("threshold_feather",),
    # lensblur.eval.evaluate, lensblur.synth.synthesize
    "out_dir": ("output",),
    "out": ("output",),
    "max_layers": ("layers",),
    # lensblur.generate.report
    "regions": ("box",),
    # lensblur.lens: focus_at_point, Aperture.from_image
    "point": ("focus",),
    "kernel": ("aperture",),
    # lensblur.generate.check_inputs / StageDiffusionPipeline.__call__
    "focus_prompt": ("focus",),
    "num_inference_steps": ("steps",),
    "guidance_scale": ("guidance",),
    "num_images_per_prompt": ("num_images",),
    "height": ("size",),
    "width": ("size",),
}
"""Python argument names of library functions the commands call -> the ``dest`` of the flags that may feed
them, where the two differ. Used only when the command that ran has no flag of the Python name itself; the
first candidate the command has wins."""


def _action_for(parser: argparse.ArgumentParser, argument: str) -> argparse.Action | None:
    if not argument or argument.startswith("-"):
        return None
    dest = argument.strip().replace("-", "_").replace(" ", "_")
    by_dest = {a.dest: a for a in parser._actions if a.help is not argparse.SUPPRESS}
    candidates = (dest, *PYTHON_NAMES.get(argument, PYTHON_NAMES.get(dest, ())))
    return next((by_dest[c] for c in candidates if c in by_dest), None)


def _name(action: argparse.Action) -> str:
    if action.option_strings:
        return max(action.option_strings, key=len)
    return action.metavar if isinstance(action.metavar, str) else action.dest


def flag_for(parser: argparse.ArgumentParser, argument: str) -> str | None:
    """The flag (e.g. ``--focus-disparity``) or positional (``PHOTO``) of ``parser`` that a Python argument
    name (``focus_disparity``) stands for; None when the parser has none."""
    action = _action_for(parser, argument)
    return None if action is None else _name(action)


_ASSIGNMENT = re.compile(r"(?<![\w-])([A-Za-z_][A-Za-z0-9_]*)=(True\b|False\b)?")


# A Python call in a message (``Aperture(blades=6)``, ``focus_at_point(disparity, (x, y))``): its arguments are
# the library's, not flags, and are left as they are.
_CALL = re.compile(r"\b[A-Za-z_][\w.]*\((?:[^()]|\([^()]*\))*\)")


def in_flags(text: str, parser: argparse.ArgumentParser) -> str:
    """``text`` (a fix suggested by the library) with each ``name=value`` that a flag of ``parser`` feeds
    written as the command line takes it: ``blur=30`` -> ``--blur 30``, ``allow_download=True`` ->
    ``--allow-download``. Other text, and the arguments of a Python call in it, are left alone."""
    calls = [match.span() for match in _CALL.finditer(text)]

    def swap(match: re.Match) -> str:
        if any(start <= match.start() < end for start, end in calls):
            return match.group(0)
        action = _action_for(parser, match.group(1))
        if action is None or not action.option_strings:
            return match.group(0)
        if action.nargs == 0:            # a switch: name=True is the flag itself
            return _name(action) if match.group(2) == "True" else match.group(0)
        return f"{_name(action)} " + (match.group(2) or "")

    return _ASSIGNMENT.sub(swap, text)


def cli_message(exc: Exception, parser: argparse.ArgumentParser) -> str:
    """An error as the command line shows it: an :class:`~lensblur.errors.InputError` about a Python
    argument that a flag of ``parser`` feeds is reported under that flag, and its fix in flags."""
    from ..errors import InputError, ModelNotFoundError

    text = str(exc)
    if isinstance(exc, ModelNotFoundError):     # how to get the model: "pass model=PATH" -> "pass --model PATH"
        return in_flags(text, parser)
    if not isinstance(exc, InputError):
        return text
    flag = flag_for(parser, exc.argument)
    prefix = f"{exc.argument}: "
    if flag is not None and text.startswith(prefix):
        text = f"{flag}: {text[len(prefix):]}"
    head, sep, fix = text.partition(". Fix: ")
    return head + sep + in_flags(fix, parser) if sep else text
