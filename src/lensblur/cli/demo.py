"""``lensblur demo``: render the built-in example (a real photo with ground-truth disparity)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from . import _args

EPILOG = """examples:
  lensblur demo                     # writes into out/demo/
  lensblur demo -o /tmp/demo --blur 30

Writes: focal_stack.png (near, middle and far focus side by side), focus_pull.gif (an animated focus
pull from far to near), apertures.png (circle vs hexagon with recovered highlights), and each render as
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


def _label(image: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, 0, 8 + 7 * len(text), 18], fill=(0, 0, 0))
    draw.text((4, 3), text, fill=(255, 255, 255))
    return np.asarray(im)


def _srgb8(image: np.ndarray) -> np.ndarray:
    import torch

    from ..color import linear_to_srgb

    return np.round(linear_to_srgb(torch.from_numpy(image)).numpy() * 255).astype(np.uint8)


def _sheet(tiles: list[np.ndarray], gap: int = 8) -> np.ndarray:
    h = tiles[0].shape[0]
    spacer = np.full((h, gap, 3), 255, np.uint8)
    parts = []
    for tile in tiles:
        parts += [tile, spacer]
    return np.concatenate(parts[:-1], axis=1)


def _save(path: Path, array: np.ndarray, written: list[Path]) -> None:
    from PIL import Image

    from ..io import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    written.append(path)


def run(args) -> int:
    from PIL import Image

    from ..examples import motorcycle
    from ..io import atomic_path
    from ..lens import Aperture, Lens
    from ..render import render

    started = time.perf_counter()
    args.output.mkdir(parents=True, exist_ok=True)
    image, disparity = motorcycle()
    written: list[Path] = []
    near, middle, far = (float(np.percentile(disparity, q)) for q in (90, 50, 10))

    tiles = []
    for name, focus in (("near", near), ("middle", middle), ("far", far)):
        out = _srgb8(render(image, disparity, Lens(focus_disparity=focus, blur=args.blur)))
        _save(args.output / f"focus_{name}.png", out, written)
        tiles.append(_label(out, f"focus {name} (d={focus:.2f})"))
    _save(args.output / "focal_stack.png", _sheet(tiles), written)

    frames = []
    for focus in np.linspace(far, near, args.frames):
        out = _srgb8(render(image, disparity, Lens(focus_disparity=float(focus), blur=args.blur)))
        frames.append(Image.fromarray(out).resize((out.shape[1] // 2, out.shape[0] // 2), Image.LANCZOS))
    frames += frames[-2:0:-1]
    gif = args.output / "focus_pull.gif"
    with atomic_path(gif) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    written.append(gif)

    tiles = []
    for name, aperture in (("circle", Aperture()), ("hexagon", Aperture(blades=6, rotation=90.0))):
        lens = Lens(focus_disparity=near, blur=args.blur * 1.5, aperture=aperture)
        out = _srgb8(render(image, disparity, lens, highlights=0.6))
        _save(args.output / f"aperture_{name}.png", out, written)
        tiles.append(_label(out, f"{name} aperture, highlights 0.6"))
    _save(args.output / "apertures.png", _sheet(tiles), written)

    seconds = time.perf_counter() - started
    for path in written:
        print(f"wrote {path}")
    h, w = disparity.shape
    print(f"demo: {len(written)} files from the {w}x{h} Middlebury 'Motorcycle' photo "
          f"({3 + args.frames + 2} renders) in {seconds:.1f} s")
    return 0
