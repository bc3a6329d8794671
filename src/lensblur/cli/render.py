"""``lensblur render``: a photo and its depth -> a photo with lens blur."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..errors import InputError
from . import _args

log = logging.getLogger(__name__)

EPILOG = """examples:
  lensblur render photo.jpg --disparity disp.png --focus 812,430 --blur 40 --aperture hexagon -o out.jpg
  lensblur render photo.jpg --depth depth.exr --focus-disparity 0.35 --f-number 1.8 --focal-length 50 \\
      --sensor-width 36 --focus-distance 2.0 -o out.png
  lensblur render photo.heic --focus 1200,900 --f-number 1.4 -o out.jpg      # depth inside the photo
  lensblur render portrait.jpg --depth-from subject --blur 30 -o out.jpg

Focus: --focus X,Y (median disparity in a 9x9 window), --focus-box, --focus-disparity or --focus-mask;
by default the subject with --depth-from subject, else the centre of the frame. Blur: --blur K gives the CoC radius K * (d - d_focus) pixels; or give
a camera (--f-number with --focal-length, --sensor-width, --focus-distance and a metric depth range).
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="render bokeh from a photo and its depth",
                              description=__doc__, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", type=Path, help="all-in-focus photo (PNG, JPEG, TIFF, WebP, PFM, EXR, HEIC)")
    p.add_argument("-o", "--output", type=Path, required=True, help="where to write the result")

    g = p.add_argument_group("depth")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--disparity", type=Path, help="disparity map, larger = nearer")
    src.add_argument("--depth", type=Path, help="depth map, larger = farther (converted to disparity)")
    g.add_argument("--depth-from", choices=["auto", "embedded", "model", "stereo", "subject"],
                   help="estimate depth: embedded phone depth, a monocular model, a stereo pair, a subject mask "
                        "(default when no map is given: auto)")
    g.add_argument("--depth-model", help="monocular depth model folder or Hugging Face id (local cache)")
    g.add_argument("--right", type=Path, help="right image of a stereo pair (the photo is the left)")
    g.add_argument("--mask", type=Path, help="subject mask for --depth-from subject (white = subject)")
    g.add_argument("--refine-depth", action="store_true", help="snap the map's edges to the photo's")
    g.add_argument("--normalize", action="store_true", help="min-max rescale the map to [0, 1]")
    g.add_argument("--resize-disparity", action="store_true", help="resample a map of another size")
    g.add_argument("--depth-scale", type=float, default=1.0, help="metres per stored depth unit (default 1)")
    g.add_argument("--depth-range", type=lambda s: _args.numbers(s, 2, "NEAR,FAR in metres"),
                   metavar="NEAR,FAR", help="metric depths of disparity 1 and 0 (for a camera with --disparity)")

    f = p.add_argument_group("focus")
    foc = f.add_mutually_exclusive_group()
    foc.add_argument("--focus", type=_args.point, metavar="X,Y", help="focus on this pixel")
    foc.add_argument("--focus-box", type=_args.box, metavar="X0,Y0,X1,Y1", help="focus on this box")
    foc.add_argument("--focus-disparity", type=float, metavar="D", help="focus on this disparity value")
    foc.add_argument("--focus-mask", type=Path, metavar="MASK", help="focus on the subject of this mask")

    b = p.add_argument_group("lens")
    b.add_argument("--blur", type=float, help="CoC scale K in pixels (default 30 without a camera)")
    b.add_argument("--f-number", type=float, help="f-number N of a physical camera")
    b.add_argument("--focal-length", type=float, default=50.0, help="focal length in mm (default 50)")
    b.add_argument("--sensor-width", type=float, default=36.0, help="sensor width in mm (default 36)")
    b.add_argument("--focus-distance", type=float, help="focus distance in metres")
    b.add_argument("--aperture", default="circle",
                   help="circle, triangle, square, pentagon, hexagon, heptagon, octagon, or a grey-scale image file")
    b.add_argument("--blades", type=int, help="number of blades (0 = circle); overrides --aperture's shape")
    b.add_argument("--rotation", type=float, default=0.0, help="blade rotation in degrees (default 0)")
    b.add_argument("--curvature", type=float, default=0.0, help="rounded blades, 0 = straight, 1 = round")
    b.add_argument("--cat-eye", type=float, default=0.0, help="optical vignetting toward the corners, 0..1")
    b.add_argument("--highlights", type=float, default=0.0,
                   help="recover clipped highlights so lights become bright bokeh, 0..1 (default off)")

    o = p.add_argument_group("output")
    o.add_argument("--method", default="layered", help="layered (default), scatter (slow reference), gaussian")
    o.add_argument("--bits", type=int, default=8, choices=[8, 16], help="bits per channel for PNG/TIFF")
    o.add_argument("--force", action="store_true", help="allow overwriting an input file")
    p.set_defaults(run=run)


def _aperture(args):
    from ..lens import Aperture

    common = {"rotation": args.rotation, "curvature": args.curvature, "cat_eye": args.cat_eye}
    name = str(args.aperture)
    if args.blades is not None:
        return Aperture(blades=args.blades, **common)
    if Path(name).suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".pfm", ".npy"):
        if not Path(name).is_file():
            raise InputError("--aperture", expected="an existing kernel image", got=name, fix="check the path")
        return Aperture.from_image(name, **common)
    return Aperture.named(name.lower(), **common)


def _read_photo(path: Path):
    from ..io import read_image

    if path.suffix.lower() in (".heic", ".heif", ".hif", ".avif"):
        from ..depth import read_photo

        return read_photo(path)
    return read_image(path)


def _disparity(args, image):
    """The disparity map, its metric range (or None), a description of where it came from and the focus
    its source suggests (or None)."""
    from ..io import DepthRange, read_depth_as_disparity, read_disparity

    shape = image.shape[:2]
    if args.depth is not None:
        disparity, rng = read_depth_as_disparity(args.depth, scale=args.depth_scale, shape=shape,
                                                 resize=args.resize_disparity)
        return disparity, rng, f"depth map {args.depth} ({rng.near:g}..{rng.far:g})", None
    rng = DepthRange(*args.depth_range) if args.depth_range else None
    if args.disparity is not None and args.depth_from is None:
        disparity = read_disparity(args.disparity, normalize=args.normalize, shape=shape,
                                   resize=args.resize_disparity)
        return disparity, rng, f"disparity map {args.disparity}", None
    from ..depth import resolve

    result = resolve(args.image, image, source=args.depth_from or "auto", disparity_path=args.disparity,
                     model=args.depth_model, mask=args.mask, right=args.right, refine=args.refine_depth)
    return result.disparity, result.depth_range or rng, result.source, result.focus


def _focus(args, disparity, rng, suggested: float | None = None) -> tuple[float, str]:
    from ..io import read_disparity
    from ..lens import focus_at_point, focus_in_box, focus_in_mask

    h, w = disparity.shape
    if args.focus_disparity is not None:
        return args.focus_disparity, f"disparity {args.focus_disparity:g}"
    if args.focus is not None:
        return focus_at_point(disparity, args.focus), f"point {args.focus[0]:g},{args.focus[1]:g}"
    if args.focus_box is not None:
        return focus_in_box(disparity, args.focus_box), "box"
    if args.focus_mask is not None:
        mask = read_disparity(args.focus_mask, shape=(h, w))
        return focus_in_mask(disparity, mask), f"mask {args.focus_mask}"
    if args.focus_distance is not None and rng is not None:
        return rng.disparity(args.focus_distance), f"distance {args.focus_distance:g} m"
    if suggested is not None:
        return suggested, "the subject"
    return focus_at_point(disparity, (w / 2, h / 2)), "centre of the frame"


def _lens(args, disparity, rng, image_width, suggested_focus=None):
    from ..lens import Lens

    aperture = _aperture(args)
    focus, how = _focus(args, disparity, rng, suggested_focus)
    if args.f_number is None:
        if args.focus_distance is not None:
            raise InputError("--focus-distance", expected="a camera (--f-number ...)", got=args.focus_distance,
                             fix="add --f-number, or use --blur with --focus/--focus-disparity")
        blur = 30.0 if args.blur is None else args.blur
        return Lens(focus_disparity=float(focus), blur=blur, aperture=aperture), how
    if args.blur is not None:
        raise InputError("--blur", expected="either --blur or a camera (--f-number), not both", got=args.blur,
                         fix="drop one of them")
    if rng is None:
        raise InputError("--f-number", expected="a metric depth range to map the camera onto",
                         got="a map without one", fix="pass --depth (a metric depth map), a photo with "
                         "embedded depth, or --depth-range NEAR,FAR with --disparity")
    distance = args.focus_distance if args.focus_distance is not None else rng.depth(focus)
    lens = Lens.from_camera(focal_length=args.focal_length, f_number=args.f_number, focus_distance=distance,
                            sensor_width=args.sensor_width, image_width=image_width, depth_range=rng,
                            aperture=aperture)
    if args.focus_distance is None or any(v is not None for v in (args.focus, args.focus_box,
                                                                    args.focus_disparity, args.focus_mask)):
        lens = lens.with_focus(focus)
    return lens, f"{how}, {distance:.3g} m"


def run(args) -> int:
    from ..io import check_output_path, write_image
    from ..render import render

    inputs = [args.image, args.disparity, args.depth, args.right, args.mask, args.focus_mask]
    check_output_path(args.output, inputs=inputs, force=args.force)
    started = time.perf_counter()
    image = _read_photo(args.image)
    disparity, rng, where, suggested = _disparity(args, image)
    lens, how = _lens(args, disparity, rng, image.shape[1], suggested)
    log.info("depth: %s; focus: %s", where, how)
    out = render(image, disparity, lens, method=args.method, highlights=args.highlights)
    write_image(args.output, out, bits=args.bits)
    seconds = time.perf_counter() - started
    print(f"wrote {args.output} ({image.shape[1]}x{image.shape[0]}, focus disparity {lens.focus_disparity:.3f} "
          f"[{how}], blur {lens.blur:.1f} px, {args.method}, {seconds:.2f} s)")
    return 0
