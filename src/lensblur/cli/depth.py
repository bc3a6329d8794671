"""``lensblur depth PHOTO -o disparity.png``: get a disparity map from whatever the photo comes with.

Translates flags into :func:`lensblur.depth.resolve` and writes the map with
:func:`lensblur.io.write_disparity` (16-bit grey PNG, float PFM or NPY) and, on request, a colour-mapped
preview beside the photo (:func:`lensblur.io.preview_image`). Both files appear whole or not at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from . import _args

__all__ = ["add_parser", "run"]

_EPILOG = """\
examples:
  lensblur depth photo.heic -o disparity.png --preview preview.png   # depth stored in an iPhone photo
  lensblur depth portrait.jpg -o disparity.png                         # Pixel portrait (Dynamic Depth/GDepth)
  lensblur depth left.png --right right.png -o disparity.png           # stereo pair
  lensblur depth photo.jpg --depth-model path/or/cached-id -o disparity.png
  lensblur depth photo.jpg --depth-from subject --mask person.png -o disparity.png
  lensblur depth photo.jpg --disparity rough.png --refine-depth -o refined.png
  lensblur depth lensblur.jpg -o d.png --extract-image original.jpg   # Google Lens Blur: the sharp original

--depth-from auto picks: --disparity, --right, --mask, depth inside the photo, --depth-model or
$LENSBLUR_DEPTH_MODEL, in that order. The map is written as disparity (white = near): a 16-bit grey PNG,
or float32 PFM/NPY. The source used (and the metric range when known) is printed on stdout; for depth
inside a phone photo also its format, map size, units, range, stored focus and original image (all of it
under "details" with --format json). A photo that does not say its depth units (Google Lens Blur) has no
metric range: --depth-scale S (metres per unit) or --depth-range NEAR,FAR gives one.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = _args.command(subparsers, "depth",
                           help="a disparity map from phone depth, a stereo pair, a model or a subject mask",
                           description="Get a disparity map (1 = near) for a photo from whatever it comes with.",
                           epilog=_EPILOG)
    _args.add_photo(parser, help="the photo (JPEG, PNG, HEIC, ...); the left view for stereo")
    _args.add_output(parser, folder=False, metavar="DISPARITY",
                     help="where to write the map: .png (16-bit grey), .pfm or .npy (float32)")
    _args.add_depth_source(parser, only=(*_args.DEPTH_SOURCE, "depth_scale", "depth_range", "extract_image"),
                           helps={"disparity": "an existing disparity map (to refine or reuse)"})
    parser.add_argument("--preview", type=Path, metavar="PREVIEW.png",
                        help="also write the photo beside a colour-mapped map")
    _args.add_format(parser, "text", "json", help="how to print the result")
    _args.add_compute(parser, only=("threads",))
    parser.add_argument("--force", action="store_true", help="allow overwriting an input file")
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..depth import read_photo, resolve
    from ..geometry import DepthRange
    from ..io import check_disparity_output, check_output_path, preview_image, write_disparity, write_image

    inputs = [args.photo, args.right, args.mask, args.disparity]
    output = check_disparity_output(check_output_path(args.output, inputs=inputs, force=args.force),
                                    argument="--output")
    preview = extract = None
    if args.preview:
        preview = check_output_path(args.preview, inputs=inputs, force=args.force, argument="--preview")
        if preview.resolve() == output.resolve():
            raise InputError("--preview", expected="a path different from --output", got=str(preview),
                             fix="name the preview e.g. preview.png")
        _check_image_suffix(preview, "--preview", "preview")
    if args.extract_image:
        extract = check_output_path(args.extract_image, inputs=inputs, force=args.force, argument="--extract-image")
        if extract.resolve() in {output.resolve(), *([preview.resolve()] if preview else [])}:
            raise InputError("--extract-image", expected="a path different from --output and --preview",
                             got=str(extract), fix="name it e.g. original.jpg")
        _check_image_suffix(extract)
    image = read_photo(args.photo)
    result = resolve(args.photo, image, source=args.depth_from or "auto", disparity_path=args.disparity,
                     model=args.depth_model, mask=args.mask, right=args.right, refine=args.refine_depth)
    if extract is not None and result.photo is None:
        raise InputError("--extract-image", expected="a photo holding a sharp original image (Google Lens Blur "
                         "GImage, a Dynamic Depth Original item)", got=f"{args.photo} (none inside)",
                         fix="drop --extract-image; the photo itself is the image to render")
    if result.photo is not None:
        image = result.photo
    rng = result.depth_range or (DepthRange(*args.depth_range) if args.depth_range else None)
    if rng is None and result.relative_range is not None and args.depth_scale is not None:
        rng = DepthRange(near=result.relative_range[0] * args.depth_scale,
                         far=result.relative_range[1] * args.depth_scale)
    if preview is not None:
        preview_pixels = preview_image(image, result.disparity)
    write_disparity(output, result.disparity)
    if preview is not None:
        write_image(preview, preview_pixels)
    if extract is not None:
        _write_original(extract, args.photo, result)
    h, w = result.disparity.shape
    record = {"output": str(output), "width": w, "height": h, "source": result.source,
              "near_m": rng.near if rng else None, "far_m": rng.far if rng else None,
              "focus_disparity": result.focus, "blur_px": result.blur,
              "preview": str(preview) if preview else None,
              "extracted_image": str(extract) if extract else None, "details": result.details or None}
    if args.format == "json":
        print(json.dumps(record))
    else:
        line = f"{output}: {w}x{h} disparity from {result.source}"
        if rng:
            line += f"; disparity 1 = {rng.near:.3f} m, 0 = {rng.far:.3f} m"
        elif result.relative_range is not None:
            line += "; metric range unknown (the photo does not say its units: --depth-scale S or --depth-range)"
        print(line)
        if result.details:
            print(_details_line(result.details))
        if preview:
            print(f"{preview}: preview")
        if extract:
            print(f"{extract}: the original image stored in {args.photo.name}")
    return 0


def _write_original(path: Path, photo: Path, result) -> None:
    """The original as the file stores it, byte for byte, when its format is the one asked for and it needs no
    turn; else the decoded, upright original re-encoded."""
    from ..depth.embedded import stored_original
    from ..io import atomic_path, write_image

    mime = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}.get(path.suffix.lower())
    stored = stored_original(photo) if result.details.get("orientation", 1) == 1 else None
    if stored is not None and stored[1] == mime:
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(stored[0])
        return
    write_image(path, result.photo, quality=97)


def _check_image_suffix(path: Path, flag: str = "--extract-image", example: str = "original") -> None:
    from ..io import IMAGE_SUFFIXES

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(flag, expected=f"a file name ending in one of {', '.join(IMAGE_SUFFIXES)}",
                         got=str(path), fix=f"e.g. {example}.jpg or {example}.png")


def _details_line(details: dict) -> str:
    """What an embedded source used, on one line."""
    w, h = details.get("map_size") or ("?", "?")
    parts = [f"format {details.get('format')} ({details.get('encoding')})", f"map {w}x{h}",
             f"units {details.get('units')}"]
    if details.get("file_range"):
        parts.append("range as written {:.4g}..{:.4g}".format(*details["file_range"]))
    parts.append(f"focus {details.get('focus_from') or 'not stored'}")
    if details.get("blur_px") is not None:
        parts.append(f"stored blur {details['blur_px']:.1f} px")
    parts.append(f"rendered from {details.get('rendered_from')}")
    return "  " + "; ".join(parts)
