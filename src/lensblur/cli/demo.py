"""``lensblur demo``: render the built-in example (a real photo with ground-truth disparity)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import _args

# White pixels between (and around) the renders of a contact sheet.
SHEET_GAP = 8

EPILOG = """examples:
  lensblur demo                     # writes into out/demo/
  lensblur demo -o /tmp/demo --blur 30

Writes: focal_stack.png (near, middle and far focus side by side), focus_pull.gif (an animated focus
pull from far to near), apertures.png (circle vs hexagon, clipped lights recovered as by default), and each render as
its own PNG.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = _args.command(subparsers, "demo", help="render the built-in example into a folder", description=__doc__,
                      epilog=EPILOG)
    _args.add_output(p, folder=True, required=False, default=Path("out/demo"), old=("--out",))
    _args.add_lens(p, only=("blur",), defaults={"blur": 36.0},
                   helps={"blur": "CoC scale K in pixels: blur radius K * |d - d_focus| (default 36)"})
    p.add_argument("--frames", type=int, default=12, help="frames of the focus pull (default 12)")
    p.set_defaults(run=run)
    return p


def _save(path: Path, array, written: list[Path]) -> None:
    from PIL import Image

    from ..io import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    written.append(path)


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from .._convert import to_srgb8
    from ..errors import check_integer
    from ..examples import motorcycle
    from ..io import atomic_path, contact_sheet, make_folder
    from ..lens import Aperture, Lens
    from ..render import render

    check_integer("--frames", args.frames, 1, fix="e.g. --frames 12")     # every check before the folder is made
    Lens(focus_disparity=0.5, blur=args.blur)
    started = time.perf_counter()
    make_folder(args.output, argument="--output")
    image, disparity = motorcycle()
    written: list[Path] = []
    near, middle, far = (float(np.percentile(disparity, q)) for q in (90, 50, 10))

    tiles, titles = [], []
    for name, focus in (("near", near), ("middle", middle), ("far", far)):
        out = to_srgb8(render(image, disparity, Lens(focus_disparity=focus, blur=args.blur)))
        _save(args.output / f"focus_{name}.png", out, written)
        tiles.append(out)
        titles.append(f"focus {name} (d={focus:.2f})")
    written.append(contact_sheet([tiles], args.output / "focal_stack.png", column_titles=titles, gap=SHEET_GAP))

    frames = []
    for focus in np.linspace(far, near, args.frames):
        out = to_srgb8(render(image, disparity, Lens(focus_disparity=float(focus), blur=args.blur)))
        frames.append(Image.fromarray(out).resize((out.shape[1] // 2, out.shape[0] // 2), Image.LANCZOS))
    frames += frames[-2:0:-1]
    gif = args.output / "focus_pull.gif"
    with atomic_path(gif) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    written.append(gif)

    tiles, titles = [], []
    for name, aperture in (("circle", Aperture()), ("hexagon", Aperture(blades=6, rotation=90.0))):
        lens = Lens(focus_disparity=near, blur=args.blur * 1.5, aperture=aperture)
        out = to_srgb8(render(image, disparity, lens))
        _save(args.output / f"aperture_{name}.png", out, written)
        tiles.append(out)
        titles.append(f"{name} aperture")
    written.append(contact_sheet([tiles], args.output / "apertures.png", column_titles=titles, gap=SHEET_GAP))

    seconds = time.perf_counter() - started
    for path in written:
        print(f"wrote {path}")
    h, w = disparity.shape
    print(f"demo: {len(written)} files from the {w}x{h} Middlebury 'Motorcycle' photo "
          f"({3 + args.frames + 2} renders) in {seconds:.1f} s")
    return 0
