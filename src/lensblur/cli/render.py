"""``lensblur render``: a photo and its depth -> a photo with lens blur."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from ..choices import IMAGE_SUFFIXES
from ..errors import InputError
from . import _args

log = logging.getLogger(__name__)

_WRITABLE = tuple(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
"""The suffixes lensblur writes (``--output-format``); a photo of another format (``.hif``) is written as .jpg."""
_PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".pfm", ".exr", ".heic", ".heif", ".hif",
                   ".avif")
"""What folders and patterns give as photos."""

EPILOG = """examples:
  lensblur render photo.jpg --disparity disp.png --focus 812,430 --blur 40 --aperture hexagon -o out.jpg
  lensblur render photo.jpg --depth depth.exr --focus-disparity 0.35 --f-number 1.8 --focal-length 50 \\
      --sensor-width 36 --focus-distance 2.0 -o out.png
  lensblur render photo.heic --focus 1200,900 --f-number 1.4 -o out.jpg      # depth inside the photo
  lensblur render lensblur.jpg -o out.jpg     # Google Lens Blur: its sharp original, stored focus and blur
  lensblur render portrait.jpg --depth-from subject --blur 30 -o out.jpg
  lensblur render photo.heic --simulate "85mm f/1.4 full-frame" -o out.heic --quality 90   # the phone look
  lensblur render photo.jpg --disparity d.png --focus 600,400 --blur 30 --method bokehdiff --device cuda \\
      --dtype float16 -o out.png     # SG161222/RealVisXL_V5.0 + zcx65535/bokehdiff from the Hugging Face cache

Several photos (one output each, named OUT/<photo stem>.<the photo's suffix or --output-format>):
  lensblur render a.jpg b.heic shots/ 'more/*.jpg' --disparity-dir maps/ --blur 30 -o out/ --workers 2
  lensblur render 's3://bucket/shots/*.jpg' --disparity-dir s3://bucket/maps -o s3://bucket/out/ \
      --executor ray --ray-address auto
Outputs that exist are skipped (--force renders them again); two photos with the same output name are refused
before any work; a photo that fails is reported at the end, the others are written (exit code 1 if any failed).

Focus: --focus X,Y (median disparity in a 9x9 window), --focus-box, --focus-disparity or --focus-mask;
by default the subject with --depth-from subject, else the focus a phone stored in the photo, else the
centre of the frame. Blur: --blur K gives the CoC radius K * (d - d_focus) pixels (default 30, or the blur
the photo stored); or give a camera (--f-number with --focal-length, --sensor-width, --focus-distance and a
metric depth range), or a full-frame lens at the same framing (--simulate "85mm f/1.4", or
--equivalent-focal 85 --f-number 1.4).
Files: the output keeps the input's colour profile, bit depth, alpha, EXIF, XMP and comment (docs/io.md).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = _args.command(subparsers, "render", help="render bokeh from a photo and its depth", description=__doc__,
                      epilog=EPILOG)
    _args.add_photo(p, many=True, help="all-in-focus photo (PNG, JPEG, TIFF, WebP, PFM, EXR, HEIC); several photos, "
                                       "folders or glob patterns ('shots/*.jpg'), local or fsspec URLs, with "
                                       "-o FOLDER")
    _args.add_output(p, folder=False, metavar="FILE_OR_DIR", urls=True,
                     help="where to write the result: a file for one photo; a folder (created if missing) for "
                          "several photos, a folder or a pattern, or when it ends in / or is a folder already")
    _args.add_progress(p)
    _args.add_depth_source(p, only=("disparity", "depth", "depth_from", "depth_model", "right", "mask",
                                    "refine_depth", "normalize_disparity", "resize_disparity", "depth_scale",
                                    "depth_range", "disparity_dir"),
                           helps={"normalize_disparity": "min-max rescale the --disparity map (or each map of "
                                                         "--disparity-dir) to [0, 1]",
                                  "disparity_dir": "a folder (or URL) of disparity maps, one per photo with the "
                                                   "photo's stem (a.jpg -> DIR/a.png, .npy, .pfm, .tif, .exr, .jpg)"})
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
    _args.add_compute(p, only=("threads", "device", "dtype"))
    o.add_argument("--force", action="store_true",
                   help="allow overwriting an input file; with several photos, render outputs that exist again "
                        "(they are skipped otherwise)")
    o.add_argument("--output-format", choices=_WRITABLE, metavar="EXT",
                   help="with -o FOLDER: the outputs' format, one of " + ", ".join(_WRITABLE) +
                        " (default: the photo's own, .jpg for HEIC/HEIF/AVIF)")
    _args.add_threshold(p)
    _args.add_file_output(p)
    _args.add_format(p, "text", "json", help="how to print what was done: a line, or JSON with the camera used")
    _args.add_executor(p, workers_help="with several photos: local processes, one thread each (default 1)")
    p.set_defaults(run=run, pools=_is_batch, batch=None)    # one photo renders here: no pool to start early
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
    """The disparity map, its metric range (or None), a description of where it came from, the focus its
    source suggests (or None) and the source's :class:`~lensblur.depth.DepthResult` (None for a map file)."""
    from ..geometry import DepthRange
    from ..io import read_depth_as_disparity, read_disparity

    shape = image.shape[:2]
    if args.depth is not None:
        scale = 1.0 if args.depth_scale is None else args.depth_scale
        disparity, rng = read_depth_as_disparity(args.depth, scale=scale, shape=shape,
                                                 resize=args.resize_disparity)
        return disparity, rng, f"depth map {args.depth} ({rng.near:g}..{rng.far:g})", None, None
    rng = DepthRange(*args.depth_range) if args.depth_range else None
    if args.disparity is not None and args.depth_from in (None, "file"):
        disparity = read_disparity(args.disparity, normalize=args.normalize_disparity, shape=shape,
                                   resize=args.resize_disparity)
        return disparity, rng, f"disparity map {args.disparity}", None, None
    from ..depth import resolve

    result = resolve(args.photo, image, source=args.depth_from or "auto", disparity_path=args.disparity,
                     model=args.depth_model, mask=args.mask, right=args.right, refine=args.refine_depth)
    found = result.depth_range or rng
    if found is None and result.relative_range is not None and args.depth_scale is not None:
        near, far = result.relative_range
        found = DepthRange(near=near * args.depth_scale, far=far * args.depth_scale)
    return result.disparity, found, result.source, result.focus, result


def _focus(args, disparity, rng, suggested: float | None = None,
           suggested_how: str = "the subject") -> tuple[float, str]:
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
        return suggested, suggested_how
    return focus_at_point(disparity, (w / 2, h / 2)), "centre of the frame"


def _simulated(args):
    """The full-frame camera of --simulate or --equivalent-focal (None without them), checked against the other
    lens flags (--focal-length and --sensor-width still describe the photo's own camera)."""
    from ..io.camera import full_frame, parse_lens

    if args.simulate is None and args.equivalent_focal is None:
        return None
    flag = "--simulate" if args.simulate is not None else "--equivalent-focal"
    for other in ("blur",) + (("f_number", "equivalent_focal") if args.simulate is not None else ()):
        if getattr(args, other) is not None:
            name = "--" + other.replace("_", "-")
            raise InputError(flag, expected=f"a full-frame lens in place of {name}", got=f"{flag} with {name}",
                             fix=f"drop {name}")
    if args.simulate is not None:
        return parse_lens(args.simulate)
    if args.f_number is None:
        raise InputError("--equivalent-focal", expected="an f-number with it", got=args.equivalent_focal,
                         fix="add --f-number, e.g. --equivalent-focal 85 --f-number 1.4")
    return full_frame(args.equivalent_focal, args.f_number)


def _camera(args, image_shape) -> tuple[float, float, str]:
    """The photo's focal length and sensor width (the flags', else the photo's EXIF, else a 50 mm lens on a
    full-frame sensor), and where they came from. The EXIF's sensor goes with the EXIF's lens only."""
    from ..io.camera import read_camera

    h, w = image_shape
    camera = read_camera(args.photo)
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


def _reframed(disparity, rng, distance, focus, focal, sensor, simulated):
    """A full-frame lens at the photo's framing: the camera moved back (or forward) until its lens frames the focal
    plane as the photo's does, and the disparity map, range, focus distance and focus disparity seen from there
    (see lensblur.io.camera)."""
    import numpy as np

    from ..io.camera import FULL_FRAME_DIAGONAL, reframe, same_framing_distance

    h, w = disparity.shape
    equivalent = focal * FULL_FRAME_DIAGONAL * w / (sensor * math.hypot(w, h))     # the photo's 35 mm equivalent
    moved = same_framing_distance(distance, focal_length=focal, focal_length_35mm=equivalent,
                                  equivalent_focal=simulated.focal_length)
    shift = moved - distance
    disparity, moved_range = reframe(disparity, rng, shift)
    focus = float(reframe(np.array([focus]), rng, shift)[0][0])
    source = (f"full frame, framing the photo as its {equivalent:.3g} mm-equivalent lens does from "
              f"{abs(shift):.3g} m {'farther back' if shift >= 0 else 'closer'}")
    return (disparity, moved_range, moved, focus, simulated.focal_length, simulated.sensor_width(w, h), source)


def _check_lens_flags(args) -> None:
    """The lens flags' checks that need no photo (run before any photo is read)."""
    if args.f_number is None and args.simulate is None and args.focus_distance is not None:
        raise InputError("--focus-distance", expected="a camera (--f-number ...)", got=args.focus_distance,
                         fix="add --f-number, or use --blur with --focus/--focus-disparity")
    if args.f_number is not None and args.blur is not None:
        raise InputError("--blur", expected="either --blur or a camera (--f-number), not both", got=args.blur,
                         fix="drop one of them")


def _lens(args, disparity, rng, image_width, suggested_focus=None, result=None):
    from ..lens import Lens

    _check_lens_flags(args)
    aperture = _aperture(args)
    stored = result is not None and result.details.get("focus_from") is not None
    focus, how = _focus(args, disparity, rng, suggested_focus,
                        "the focus stored in the photo" if stored else "the subject")
    simulated = _simulated(args)
    f_number = simulated.f_number if simulated is not None else args.f_number
    if f_number is None:
        if args.blur is None and result is not None and result.blur is not None:
            how += f"; blur {result.blur:.1f} px from the photo's stored blur at infinity"
            return Lens(focus_disparity=float(focus), blur=result.blur, aperture=aperture), how, None, disparity
        blur = 30.0 if args.blur is None else args.blur
        return Lens(focus_disparity=float(focus), blur=blur, aperture=aperture), how, None, disparity
    if rng is None:
        unitless = result is not None and result.relative_range is not None
        raise InputError("--simulate" if args.simulate is not None else "--f-number",
                         expected="a metric depth range to map the camera onto",
                         got=("depth whose units the photo does not say (near/far "
                              f"{result.relative_range[0]:.4g}/{result.relative_range[1]:.4g})") if unitless
                         else "a map without one",
                         fix=("pass --depth-scale S (metres per unit of the photo's depth) or --depth-range "
                              "NEAR,FAR, or drop --f-number to render with --blur or the photo's own blur")
                         if unitless else "pass --depth (a metric depth map), a photo with embedded depth, or "
                         "--depth-range NEAR,FAR with --disparity")
    distance = args.focus_distance if args.focus_distance is not None else rng.depth(focus)
    focal, sensor, source = _camera(args, disparity.shape)
    if simulated is not None:
        disparity, rng, distance, focus, focal, sensor, source = _reframed(disparity, rng, distance, focus, focal,
                                                                           sensor, simulated)
    lens = Lens.from_camera(focal_length=focal, f_number=f_number, focus_distance=distance,
                            sensor_width=sensor, image_width=image_width, depth_range=rng, aperture=aperture)
    if not args.quiet:
        print(f"camera: {focal:.3g} mm, sensor {sensor:.3g} mm ({source}), f/{f_number:g}, focus {distance:.3g} m",
              file=sys.stderr)
    flagged = any(v is not None for v in (args.focus, args.focus_box, args.focus_disparity, args.focus_mask))
    if args.focus_distance is None or flagged:
        lens = lens.with_focus(focus)
    camera = {"focal_length": focal, "sensor_width": sensor, "f_number": f_number, "focus_distance": distance,
              "source": source}
    if args.focus_distance is not None and flagged:
        # Both given: the plane where the focus flag puts it, the blur's scale from the camera's distance.
        return lens, (f"{how}, {rng.depth(lens.focus_disparity):.3g} m in the map; blur scale from the focus "
                      f"distance {distance:.3g} m"), camera, disparity
    return lens, f"{how}, {distance:.3g} m", camera, disparity


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


@dataclass(frozen=True)
class Rendered:
    """What :func:`render_photo` did: the file written, the photo's size, a one-line description and the
    fields of ``--format json`` (the method, depth, lens, camera, profile and metadata)."""

    output: str
    width: int
    height: int
    summary: str
    seconds: float
    details: dict

    def line(self) -> str:
        return f"wrote {self.output} ({self.width}x{self.height}, {self.summary}, {self.seconds:.2f} s)"

    def as_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps({"output": self.output, "width": self.width, "height": self.height,
                           "seconds": round(self.seconds, 3), **self.details}, indent=indent)


def _record(args, lens, camera, where) -> dict:
    """What lensblur did, for the output's XMP (see lensblur.io.metadata)."""
    from .. import __version__

    for path in (args.depth, args.disparity, args.right, args.mask, args.depth_model):
        if path is not None and str(path) in where:     # file names only: no folders in a published photo
            where = where.replace(str(path), Path(str(path)).name)
    record = {"Software": f"lensblur {__version__}", "Method": args.method, "DepthSource": where}
    if lens is not None:
        aperture = lens.aperture
        shape = ("custom" if aperture.kernel is not None else f"{aperture.blades} blades" if aperture.blades
                 else "circle")
        record.update({"FocusDisparity": round(lens.focus_disparity, 4), "Blur": round(lens.blur, 3),
                       "Aperture": shape})
    if camera is not None:
        record.update({"FocalLength": round(camera["focal_length"], 3), "SensorWidth": round(camera["sensor_width"], 3),
                       "FNumber": camera["f_number"], "FocusDistance": round(camera["focus_distance"], 3)})
    if args.highlights is not None:        # as given (a strength of 0 too)
        record["Highlights"] = args.highlights
    return record


def _output_info(args, info, record: dict):
    """The input's :class:`~lensblur.io.ImageInfo` with the metadata to write: stripped, without GPS, or the
    input's with lensblur's record (XMP and the EXIF Software tag)."""
    from ..io import Metadata
    from ..io.metadata import lensblur_xmp

    if args.strip_metadata:
        return info.with_metadata(Metadata())
    metadata = info.metadata.without_gps() if args.strip_gps else info.metadata
    metadata = metadata.with_software(record["Software"])
    return info.with_metadata(Metadata(exif=metadata.exif, xmp=lensblur_xmp(record, metadata.xmp),
                                       comment=metadata.comment))


def photo_depth(args, image):
    """The depth the depth flags give ``image`` (the photo ``args.photo`` as read), as :func:`render_photo` uses it
    (``lensblur ui`` too).

    Returns:
        ``(image, disparity, rng, where, suggested, result)``: the photo to render (the source's own when it
        carries one), the disparity, its metric range or None, where it came from, the focus the source suggests
        or None, and the source's :class:`~lensblur.depth.DepthResult` (None for a map file).
    """
    disparity, rng, where, suggested, result = _disparity(args, image)
    log.info("depth: %s", where)
    if result is not None and result.details and not getattr(args, "quiet", False):
        # In a batch the lines of several photos interleave: each says its photo.
        photo = f"{args.photo}: " if getattr(args, "batch_token", None) else ""
        print(f"{photo}depth: {where}", file=sys.stderr)
        if result.relative_range is not None and rng is None:
            print(f"{photo}depth: the photo does not say its depth units, so the metric range is unknown; "
                  "rendering with a relative blur (--depth-scale S or --depth-range NEAR,FAR for a camera)",
                  file=sys.stderr)
    if result is not None and result.photo is not None:
        image = result.photo
    return image, disparity, rng, where, suggested, result


def _no_boost_for_linear(method, photo, info):
    """``method``, or for a linear photo with ``auto`` highlights a copy with none: a floating-point file (PFM,
    EXR, float TIFF: ``info.bits`` 32) or an integer one whose ICC profile is linear (a raw converter's 16-bit
    linear TIFF). Such a photo holds its lights already, even where its values stay at or below 1 (above 1, the
    library itself leaves an image alone)."""
    import dataclasses

    from ..io.icc import has_linear_curve
    from ..methods import ClassicalRenderer

    if not isinstance(method, ClassicalRenderer) or method.highlights != "auto":
        return method
    if info.bits != 32 and (info.input_profile is None or not has_linear_curve(info.input_profile)):
        return method
    log.info("highlights: %s is linear (HDR), its lights are kept as recorded", photo)
    return dataclasses.replace(method, highlights="off")


def render_photo(args, method, *, progress: bool = False) -> Rendered:
    """Render one photo from resolved settings: ``args.photo`` (a path or URL) with its depth (the depth flags,
    or ``args.disparity``, a map of ``--disparity-dir``), its focus and lens, written to ``args.output`` whole or
    not at all. The one path every render takes, one photo or many.

    Args:
        args: the command's settings for this photo.
        method: the method to render with (:func:`lensblur.cli._args.method_from_flags`).
        progress: a progress bar over the renderer's blocks.

    Returns:
        The :class:`Rendered`.

    Raises:
        LensblurError: the photo, its depth or a setting cannot be used.
    """
    from ..io import read_image_info, write_image
    from ..io.files import fetched, staged
    from ..io.icc import describe

    started = time.perf_counter()
    maps = fetched(args.disparity, argument="disparity") if args.disparity is not None else nullcontext()
    with fetched(args.photo, argument="photo") as photo, maps as disparity_file:
        args = argparse.Namespace(**{**vars(args), "photo": photo, "disparity": disparity_file})
        image, info = read_image_info(args.photo, argument="photo")
        disparity = lens = rng = camera = None
        where = "none"
        summary = args.method
        if method.needs_disparity:
            image, disparity, rng, where, suggested, result = photo_depth(args, image)
            if method.needs_lens:
                lens, how, camera, disparity = _lens(args, disparity, rng, image.shape[1], suggested, result)
                log.info("focus: %s", how)
                summary = (f"focus disparity {lens.focus_disparity:.3f} [{how}], blur {lens.blur:.1f} px, "
                           f"{args.method}")
        meta = {"path": str(args.photo)}
        if rng is not None:      # a metric range, for methods that read depth in metres (depth-threshold)
            meta["depth_range"] = rng
        out = _predict_with_progress(_no_boost_for_linear(method, args.photo, info), image, disparity, lens, meta,
                                     progress)
        output_info = _output_info(args, info, _record(args, lens, camera, where))
    with staged(args.output, argument="output") as target:
        write_image(target, out, bits=args.bits, quality=args.quality, info=output_info,
                    output_profile=args.output_profile)
    details = {"method": args.method, "depth": where,
               "focus_disparity": None if lens is None else lens.focus_disparity,
               "blur": None if lens is None else lens.blur, "camera": camera,
               "profile": describe(info.input_profile), "output_profile": args.output_profile,
               "metadata": "stripped" if args.strip_metadata else "without GPS" if args.strip_gps else "carried"}
    return Rendered(str(args.output), image.shape[1], image.shape[0], summary, time.perf_counter() - started,
                    details)


def _is_batch(args) -> bool:
    """Several photos, a folder or a pattern, or an output folder (an existing one, or a name ending in /).
    Found once per run (the early start of a pool asks it before ``run``; for a URL it asks the filesystem)."""
    if getattr(args, "batch", None) is None:
        args.batch = _find_batch(args)
    return args.batch


def _find_batch(args) -> bool:
    from ..io.files import is_url

    if len(args.photo) > 1:
        return True
    spec = str(args.photo[0])
    if not is_url(spec) and (Path(spec).is_dir() or not Path(spec).exists() and any(c in spec for c in "*?[")):
        return True     # a folder, or a pattern (a file whose name holds [ or * is that file)
    if is_url(spec):
        from ..io.files import url_filesystem

        fs, path = url_filesystem(spec, argument="photo")
        if fs.isdir(path) or not fs.exists(path) and any(c in path for c in "*?["):
            return True
    out = str(args.output)
    return out.endswith(("/", os.sep)) or (not is_url(out) and Path(out).is_dir())


def _inputs(args) -> list:
    return [args.disparity, args.depth, args.right, args.mask, args.focus_mask, args.checkpoint, args.lora,
            args.vae_encoder]


def _checked_method(args, *, batch: bool = False):
    """Every check that needs no photo, then the method (a warning for flags it does not read)."""
    from ..io import check_write_options

    _check_lens_flags(args)
    _aperture(args)
    _simulated(args)
    if args.device is not None:     # a device that is not there, refused before any photo is read
        from .._device import resolve_device

        resolve_device(args.device)
    if not batch:     # a batch checks each output's options in _plan
        check_write_options(str(args.output), bits=args.bits, quality=args.quality,
                            output_profile=args.output_profile, argument="--output")
    method = _args.method_from_flags(args, highlights=args.highlights)
    unused = _unused(args, method)
    if unused:
        log.warning("%s does not read %s: ignored", args.method, ", ".join(unused))
    for note in _ignored_depth_flags(args):
        log.warning(note)
    return method


def _ignored_depth_flags(args) -> list[str]:
    """The depth flags given that the depth source chosen does not read, each said once before the work."""
    from_map = args.disparity is not None and args.depth_from in (None, "file")
    camera = args.f_number is not None or args.simulate is not None
    notes = []
    if from_map and args.right is not None:
        notes.append("--right is read by --depth-from stereo; with a --disparity map it is ignored")
    if from_map and args.depth_scale is not None:
        notes.append("--depth-scale scales --depth or a photo's embedded depth; with a --disparity map it is "
                     "ignored (--depth-range gives a map its metres)")
    if args.depth_range is not None and not camera:
        notes.append("--depth-range is read by a camera (--f-number, --simulate); with --blur it is ignored")
    return notes


def run(args) -> int:
    _args.check_workers(args)
    batch = _is_batch(args)
    if args.output_format is not None and not batch:
        raise InputError("--output-format", expected="-o FOLDER (several photos)", got=args.output_format,
                         fix="drop it: the suffix of -o FILE gives the format")
    if batch:
        return _run_batch(args)
    from ..io import check_output_path
    from ..io.files import is_url

    args = argparse.Namespace(**{**vars(args), "photo": args.photo[0] if is_url(args.photo[0]) else Path(args.photo[0])})
    if args.ray_address is not None or args.executor != "local":
        raise InputError("--executor", expected="several photos (-o FOLDER) to spread over workers",
                         got=args.executor if args.executor != "local" else args.ray_address,
                         fix="drop --executor/--ray-address for one photo")
    if args.disparity_dir is not None:
        args.disparity = _maps_by_stem(args, [args.photo])[0]
    if not is_url(str(args.output)):
        check_output_path(args.output, inputs=[args.photo, *_inputs(args)], force=args.force)
    method = _checked_method(args)
    rendered = render_photo(args, method, progress=_args.show_progress(args))
    print(rendered.as_json() if args.format == "json" else rendered.line())
    return 0


# -- several photos -------------------------------------------------------------------------------------
def _stem(location) -> str:
    return Path(str(location).rstrip("/").rsplit("/", 1)[-1]).stem


def _output_name(photo, output_format: str | None) -> str:
    """``<stem>.<suffix>``: ``output_format``, else the photo's suffix when lensblur writes it, else .jpg."""
    name = str(photo).rstrip("/").rsplit("/", 1)[-1]
    suffix = Path(name).suffix.lower().lstrip(".")
    return f"{Path(name).stem}.{output_format or (suffix if suffix in _WRITABLE else 'jpg')}"


def _maps_by_stem(args, photos) -> list:
    """Each photo's map in ``--disparity-dir`` (same stem), refused before any work when one is missing."""
    from ..data.ebb import _DISPARITY_SUFFIXES  # the maps eval's --disparity-dir reads, in the same order
    from ..io.files import join_location, location_exists

    folder = args.disparity_dir
    if not location_exists(folder, argument="disparity_dir"):
        raise InputError("--disparity-dir", expected="an existing folder of disparity maps", got=folder,
                         fix="check the path")
    maps, missing = [], []
    for photo in photos:
        stem = _stem(photo)
        found = next((c for c in (join_location(folder, stem + s) for s in _DISPARITY_SUFFIXES)
                      if location_exists(c, argument="disparity_dir")), None)
        maps.append(found)
        if found is None:
            missing.append(stem)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError("--disparity-dir", expected="a map for every photo (same stem, one of "
                         f"{', '.join(_DISPARITY_SUFFIXES)})", got=f"none in {folder} for {shown}",
                         fix="add the maps, or render those photos with another depth source")
    return maps


_ONE_FILE_FLAGS = {"disparity": "--disparity", "depth": "--depth", "right": "--right", "mask": "--mask",
                   "focus_mask": "--focus-mask"}


@dataclass(frozen=True)
class _Job:
    photo: object
    output: object
    disparity: object


def _plan(args) -> tuple[list[_Job], list]:
    """The photos to render and the ones skipped (their output exists), every check done before any render."""
    from ..io import check_output_path, check_write_options
    from ..io.files import expand_inputs, is_url, join_location, local_path, location_exists

    photos = expand_inputs(args.photo, _PHOTO_SUFFIXES, argument="photo")     # a pattern matching none: said first
    out = str(args.output)
    if not out.endswith(("/", os.sep)) and Path(out).suffix.lower().lstrip(".") in _WRITABLE and not (
            not is_url(out) and Path(out).is_dir()):
        raise InputError("--output", expected="a folder for several photos, a folder or a pattern", got=out,
                         fix=f"pass -o {Path(out).with_suffix('')}/ (outputs are named OUT/<photo stem>.<suffix>)")
    one_file = [flag for dest, flag in _ONE_FILE_FLAGS.items() if getattr(args, dest, None) is not None]
    if one_file and len(photos) > 1:
        raise InputError(one_file[0], expected="a source that gives each photo its own map (--disparity-dir DIR, "
                         "--depth-from embedded|model|subject ...)", got=f"one file for {len(photos)} photos",
                         fix="pass --disparity-dir DIR (maps with the photos' stems), or render one photo at a time")
    outputs, by_name = [], {}
    for photo in photos:
        name = _output_name(photo, args.output_format)
        if name.casefold() in by_name:
            first = by_name[name.casefold()]
            given = _output_name(first, args.output_format)
            names = f"both give {name}" if given == name else f"give {given} and {name}, which differ only in case"
            raise InputError("--output", expected="photos with different output names (OUT/<stem>.<suffix>)",
                             got=f"{first} and {photo} {names}", fix="rename one, or render them into different folders")
        by_name[name.casefold()] = photo
        check_write_options(name, bits=args.bits, quality=args.quality, output_profile=args.output_profile)
        outputs.append(join_location(args.output, name))
    maps = _maps_by_stem(args, photos) if args.disparity_dir is not None else [args.disparity] * len(photos)
    folder = local_path(args.output)
    if folder is not None and folder.is_dir():      # else it is made, and checked, when the work starts
        # A batch never writes over what it reads (its photos, their maps), --force or not: there --force means
        # rendering existing outputs again.
        read = {}       # every local file the batch reads, by its resolved path, each resolved once
        for source in (*photos, *maps, *_inputs(args)):
            local = local_path(source) if source is not None else None
            if local is not None:
                read.setdefault(local.resolve(), source)
        for output in outputs:
            out = check_output_path(local_path(output), argument="output").resolve()
            if out in read:
                raise InputError("--output", expected="a folder where no output is one of the batch's inputs",
                                 got=f"{output} would overwrite {read[out]}",
                                 fix="choose another -o folder (a batch never writes over the photos and maps "
                                     "it reads, --force or not)")
    jobs, skipped = [], []
    for photo, output, disparity in zip(photos, outputs, maps):
        if not args.force and location_exists(output, argument="output"):
            skipped.append(output)
        else:
            jobs.append(_Job(photo, output, disparity))
    return jobs, skipped


_WORKER_METHODS: dict[str, object] = {}


def _render_job(shared, job: _Job):
    """One photo of a batch, in a worker: ``("ok", Rendered)`` or ``("failed", the error)``; a failure stays
    with its photo and the batch goes on."""
    args, method = shared
    if method is None:      # a worker process: build the method once per process
        method = _WORKER_METHODS.get(args.batch_token)
        if method is None:
            method = _WORKER_METHODS[args.batch_token] = _args.method_from_flags(
                args, highlights=args.highlights)
    settings = argparse.Namespace(**{**vars(args), "photo": job.photo, "output": job.output,
                                     "disparity": job.disparity})
    try:
        return "ok", render_photo(settings, method)
    except Exception as exc:        # noqa: BLE001 - reported with its photo at the end of the batch
        from ..errors import LensblurError

        if isinstance(exc, InputError) and exc.argument == "disparity" and args.disparity_dir is not None:
            # The photo's map came from --disparity-dir: its error is that flag's.
            return "failed", InputError("disparity_dir", expected=exc.expected, got=exc.got, fix=exc.fix)
        if isinstance(exc, LensblurError):
            return "failed", exc
        return "failed", RuntimeError(f"{type(exc).__name__}: {exc}")


def _run_batch(args) -> int:
    """Several photos. With ``--format json`` the output is JSON Lines: one object per photo rendered, then
    one with the counts and the failures."""
    import json

    from tqdm.auto import tqdm

    from ..executor import WorkerLostError, check_shared_location
    from ..io import make_folder
    from ..io.files import local_path
    from . import _build

    _check_lens_flags(args)     # the cheap checks first, then the photos and their maps, then the method
    _aperture(args)
    if args.ray_address is not None and args.executor != "ray":
        raise InputError("--ray-address", expected="--executor ray as well", got=args.ray_address,
                         fix="add --executor ray")
    method = _checked_method(args, batch=True)
    jobs, skipped = _plan(args)
    check_shared_location(args.output, in_process=args.executor == "local" and args.workers == 1,
                          executor=args.executor, argument="output")
    executor = _args.executor_from_flags(args)
    shared_args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "run"},
                                     batch_token=uuid.uuid4().hex)
    parser = _build()[1]["render"]
    failures, written = [], 0
    bar = tqdm(total=len(jobs), desc="render", unit="photo", file=sys.stderr,
               disable=None if _args.show_progress(args) else True)
    try:
        with executor:
            folder = local_path(args.output)
            if folder is not None:
                make_folder(folder, argument="output")
            shared = (shared_args, method if executor.in_process else None)
            for position, (status, result) in executor.map(_render_job, jobs, shared=shared):
                if status == "ok":
                    written += 1
                    bar.write(result.as_json(indent=None) if args.format == "json" else result.line(),
                              file=sys.stdout)
                else:
                    failures.append((jobs[position].photo, result))
                bar.update(1)
    except WorkerLostError as stopped:     # the photos not done are reported as such; a rerun renders them
        lost = RuntimeError("not rendered: a worker process ended during the batch (killed, or out of memory?); "
                            "run the command again to render what is left")
        failures += [(job.photo, lost) for position, job in enumerate(jobs) if position not in stopped.done]
    finally:
        bar.close()
    for output in skipped:
        log.info("kept %s (exists; --force renders it again)", output)
    messages = [(photo, _args.cli_message(exc, parser) if isinstance(exc, InputError) else str(exc))
                for photo, exc in failures]
    if args.format == "json":
        print(json.dumps({"rendered": written, "skipped": [str(output) for output in skipped],
                          "failed": [{"photo": str(photo), "error": text} for photo, text in messages]}))
    else:
        print(f"{written} rendered, {len(skipped)} skipped (output exists), {len(failures)} failed")
    for photo, text in messages:
        print(f"lensblur render: error: {photo}: {text}", file=sys.stderr)
    return 1 if failures else 0
