"""``lensblur render``: a photo and its depth -> a photo with lens blur."""

from __future__ import annotations

import argparse
import logging
import sys
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
  lensblur render photo.jpg --disparity d.png --focus 600,400 --blur 30 --method bokehdiff --device cuda \\
      --dtype float16 -o out.png     # SG161222/RealVisXL_V5.0 + zcx65535/bokehdiff from the Hugging Face cache

Focus: --focus X,Y (median disparity in a 9x9 window), --focus-box, --focus-disparity or --focus-mask;
by default the subject with --depth-from subject, else the centre of the frame. Blur: --blur K gives the CoC radius K * (d - d_focus) pixels; or give
a camera (--f-number with --focal-length, --sensor-width, --focus-distance and a metric depth range).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = _args.command(subparsers, "render", help="render bokeh from a photo and its depth", description=__doc__,
                      epilog=EPILOG)
    _args.add_photo(p, help="all-in-focus photo (PNG, JPEG, TIFF, WebP, PFM, EXR, HEIC)")
    _args.add_output(p, folder=False)
    _args.add_progress(p)
    _args.add_depth_source(p, only=("disparity", "depth", "depth_from", "depth_model", "right", "mask",
                                    "refine_depth", "normalize_disparity", "resize_disparity", "depth_scale",
                                    "depth_range"),
                           helps={"normalize_disparity": "min-max rescale the --disparity map to [0, 1]"})
    _args.add_lens(p, helps={"blur": "CoC scale K in pixels: blur radius K * |d - d_focus| (default 30 without "
                                     "a camera)"})
    o = p.add_argument_group("output")
    o.add_argument("--method", default="layered",
                   help="layered (default), scatter (slow reference), gaussian, depth-threshold (the third "
                        "paper's blur beyond a depth threshold), a trained method with --checkpoint (pix2pix, "
                        "cyclegan), or bokehdiff (one-step diffusion; --lora takes a lensblur train bokehdiff run "
                        "too); see lensblur.methods")
    o.add_argument("--checkpoint", help="a trained method's weights (RUN/last.safetensors of lensblur train; for "
                                        "depth-threshold a depth run, whose network then gives the depth)")
    _args.add_diffusion(p)
    _args.add_compute(p)
    o.add_argument("--bits", type=int, default=8, choices=[8, 16], help="bits per channel for PNG/TIFF")
    o.add_argument("--force", action="store_true", help="allow overwriting an input file")
    _args.add_threshold(p)
    p.set_defaults(run=run)
    return p


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


def _disparity(args, image):
    """The disparity map, its metric range (or None), a description of where it came from and the focus
    its source suggests (or None)."""
    from ..geometry import DepthRange
    from ..io import read_depth_as_disparity, read_disparity

    shape = image.shape[:2]
    if args.depth is not None:
        disparity, rng = read_depth_as_disparity(args.depth, scale=args.depth_scale, shape=shape,
                                                 resize=args.resize_disparity)
        return disparity, rng, f"depth map {args.depth} ({rng.near:g}..{rng.far:g})", None
    rng = DepthRange(*args.depth_range) if args.depth_range else None
    if args.disparity is not None and args.depth_from in (None, "file"):
        disparity = read_disparity(args.disparity, normalize=args.normalize_disparity, shape=shape,
                                   resize=args.resize_disparity)
        return disparity, rng, f"disparity map {args.disparity}", None
    from ..depth import resolve

    result = resolve(args.photo, image, source=args.depth_from or "auto", disparity_path=args.disparity,
                     model=args.depth_model, mask=args.mask, right=args.right, refine=args.refine_depth)
    return result.disparity, result.depth_range or rng, result.source, result.focus


def _focus(args, disparity, rng, suggested: float | None = None) -> tuple[float, str]:
    from ..io import read_mask
    from ..lens import focus_at_point, focus_in_box, focus_in_mask

    h, w = disparity.shape
    if args.focus_disparity is not None:
        return args.focus_disparity, f"disparity {args.focus_disparity:g}"
    if args.focus is not None:
        return focus_at_point(disparity, args.focus), f"point {args.focus[0]:g},{args.focus[1]:g}"
    if args.focus_box is not None:
        return focus_in_box(disparity, args.focus_box, argument="--focus-box"), "box"
    if args.focus_mask is not None:
        mask = read_mask(args.focus_mask, (h, w), argument="--focus-mask")
        return focus_in_mask(disparity, mask, argument="--focus-mask"), f"mask {args.focus_mask}"
    if args.focus_distance is not None and rng is not None:
        return rng.disparity(args.focus_distance), f"distance {args.focus_distance:g} m"
    if suggested is not None:
        return suggested, "the subject"
    return focus_at_point(disparity, (w / 2, h / 2)), "centre of the frame"


def _camera(args, image_shape) -> tuple[float, float, str]:
    """The focal length and sensor width to render with (the flags', else the photo's EXIF, else a 50 mm lens on
    a full-frame sensor), and where they came from. The EXIF's sensor goes with the EXIF's lens only."""
    from ..io.camera import read_camera

    camera = read_camera(args.photo)
    h, w = image_shape
    exif_sensor = camera.sensor_width(w, h)
    focal = args.focal_length if args.focal_length is not None else camera.focal_length or 50.0
    if args.sensor_width is not None:
        sensor = args.sensor_width
    elif args.focal_length is None and exif_sensor is not None:
        sensor = exif_sensor
    else:
        sensor = 36.0
    focal_from = "given" if args.focal_length is not None else "EXIF" if camera.focal_length else "default"
    sensor_from = ("given" if args.sensor_width is not None else
                   "EXIF 35 mm equivalent" if sensor == exif_sensor and exif_sensor is not None else "default")
    source = f"focal length {focal_from}, sensor {sensor_from}"
    if args.focal_length is None and camera.focal_length and exif_sensor is None and args.sensor_width is None:
        log.warning("the EXIF gives a %.3g mm lens but no 35 mm equivalent: assuming a 36 mm sensor, which may "
                    "blur far more than the camera would; pass --sensor-width", camera.focal_length)
    return focal, sensor, source


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
    focal, sensor, source = _camera(args, disparity.shape)
    lens = Lens.from_camera(focal_length=focal, f_number=args.f_number, focus_distance=distance,
                            sensor_width=sensor, image_width=image_width, depth_range=rng, aperture=aperture)
    print(f"camera: {focal:.3g} mm, sensor {sensor:.3g} mm ({source}), f/{args.f_number:g}, focus {distance:.3g} m",
          file=sys.stderr)
    if args.focus_distance is None or any(v is not None for v in (args.focus, args.focus_box,
                                                                    args.focus_disparity, args.focus_mask)):
        lens = lens.with_focus(focus)
    return lens, f"{how}, {distance:.3g} m"


_DEPTH_FLAGS = {"disparity": "--disparity", "depth": "--depth", "depth_from": "--depth-from",
                "depth_model": "--depth-model", "right": "--right", "mask": "--mask"}
_LENS_FLAGS = {"blur": "--blur", "f_number": "--f-number", "focus": "--focus", "focus_box": "--focus-box",
               "focus_disparity": "--focus-disparity", "focus_mask": "--focus-mask",
               "focus_distance": "--focus-distance"}


def _unused(args, method) -> list[str]:
    """The depth and lens flags given that ``method`` does not read."""
    flags = {} if method.needs_disparity else dict(_DEPTH_FLAGS)
    if not method.needs_lens:
        flags.update(_LENS_FLAGS)
    return [flag for dest, flag in flags.items() if getattr(args, dest, None) is not None]


def _predict_with_progress(method, image, disparity, lens, meta, show: bool):
    """``method.predict`` with a progress bar on stderr (a terminal only, and not with -q/--no-progress) for
    renderers that report their blocks."""
    import sys

    from tqdm.auto import tqdm

    from ..render import reporting

    bar = tqdm(desc="render", unit="block", file=sys.stderr, leave=False, disable=None if show else True)

    def advance(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        with reporting(advance):
            return method.predict(image, disparity=disparity, lens=lens, meta=meta)
    finally:
        bar.close()


def run(args) -> int:
    from ..depth import read_photo
    from ..io import check_output_path, write_image

    inputs = [args.photo, args.disparity, args.depth, args.right, args.mask, args.focus_mask, args.checkpoint,
              args.lora, args.vae_encoder]
    check_output_path(args.output, inputs=inputs, force=args.force)
    method = _args.method_from_flags(args, highlights=args.highlights or None)
    unused = _unused(args, method)
    if unused:
        log.warning("%s does not read %s: ignored", args.method, ", ".join(unused))
    started = time.perf_counter()
    image = read_photo(args.photo)
    disparity = lens = rng = None
    summary = args.method
    if method.needs_disparity:
        disparity, rng, where, suggested = _disparity(args, image)
        log.info("depth: %s", where)
        if method.needs_lens:
            lens, how = _lens(args, disparity, rng, image.shape[1], suggested)
            log.info("focus: %s", how)
            summary = f"focus disparity {lens.focus_disparity:.3f} [{how}], blur {lens.blur:.1f} px, {args.method}"
    meta = {"path": str(args.photo)}
    if rng is not None:      # a metric range, for methods that read depth in metres (depth-threshold)
        meta["depth_range"] = rng
    out = _predict_with_progress(method, image, disparity, lens, meta, _args.show_progress(args))
    write_image(args.output, out, bits=args.bits)
    seconds = time.perf_counter() - started
    print(f"wrote {args.output} ({image.shape[1]}x{image.shape[0]}, {summary}, {seconds:.2f} s)")
    return 0
