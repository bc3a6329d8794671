"""What a tile's missing context costs, and whether ``tile_margin`` wins it back: the trained miniature of
``bench/train_bokehdiff.py`` renders whole held-out frames, larger than its tile, in tiles, scored against the
frames' ground truth (``lensblur synth`` pairs).

The miniature (a small UNet with PISA, trained from scratch on 64-px crops, its "latent" the image's 2 x 2
pixel blocks) plays the part of BokehDiff, its 64-px crop the part of the release's 512-px tile: it runs
the same tiling code as :class:`~lensblur.bokehdiff.BokehDiffPipeline`
(:func:`~lensblur.bokehdiff.tiles.context_tiles` and :func:`~lensblur.bokehdiff.tiles.blend`, the Gaussian
blend of the noise predictions) on each 256-px held-out frame, against ``lensblur synth``'s target:

- ``untiled``: the whole frame in one pass (what tiling approximates; PISA's cost grows with the square of
  the frame's tokens);
- ``release``: 64-px windows, each prediction used to its edges (``tile_margin=0``);
- ``margin M``: 64-px windows of which only the core, at least M latent pixels (2 M px) from each inner
  window edge, is kept (``tile_margin=M``).

Scores (8-bit sRGB, as ``lensblur eval``): PSNR and SSIM over the frame, and over the *seam band*, the pixels
within ``--band`` px of an edge of a release window that lies inside the frame (where a release tile lacks
the light from beyond its edge), and the rest. Identity (the input as the answer) is given for scale.

The release's other tiling detail, SDXL's crop time ids in latent rather than pixel units (``crop_coords=``),
is measured on a miniature trained with time ids (``train_bokehdiff.py --time-ids``: the frame's size, the
random crop's top-left in pixels, the crop's size, as the release trains). ``--crop-coords`` gives each tiled
rendering the tiles' ids as the pipeline computes them (:func:`~lensblur.bokehdiff.tiles.crop_top_left` and
:func:`~lensblur.bokehdiff.tiles.time_ids`: original and target size the whole frame's), with the crop's
top-left

- ``latent``: in latent pixels, the tile's origin (the release; here 1/2 of the pixel offset);
- ``pixels``: in pixels (``crop_coords="pixels"``, the unit training used);
- ``zero``: (0, 0) for every tile, the control for whether the model reads the ids at all;
- ``training``: in pixels with the target size the tile's (exactly the ids of a training crop at that place,
  which no pipeline option gives).

The untiled pass gets the pipeline's ids of an untiled image (crop (0, 0), sizes the frame's). A crop whose
edge is the frame's edge sees the renderer's frame border, and only the crop ids tell the model where the
frame's edge is, so the scores are also given over the *frame border*, the pixels within ``--border`` px of
the frame's edge.

    python bench/train_bokehdiff.py --variants pisa --steps 2000 --lr 3e-3 --pisa-layers all \\
        --save /work/cache/bd-miniature/ckpt                                    # the checkpoint (once)
    python bench/bokehdiff_tiling.py --checkpoint /work/cache/bd-miniature/ckpt/pisa-all-seed0.safetensors
    python bench/bokehdiff_tiling.py --checkpoint CKPT --frames 2 --margins 0,8   # a quick check
    python bench/bokehdiff_tiling.py --margins 0 --crop-coords latent,pixels,zero,training \\
        --checkpoint /work/cache/bd-miniature/ckpt-timeids/pisa-all-timeids-seed0.safetensors   # the crop ids
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

LATENT = 2
"""Pixels per latent pixel of the miniature (its latent is the 2 x 2 pixel blocks)."""


def seam_band(size: tuple[int, int], layout, band: int) -> np.ndarray:
    """``(H, W)`` bool: the pixels within ``band`` px of an edge of a window of ``layout`` (latent
    ``(window, core)`` pairs) that lies inside the frame."""
    h, w = size
    rows, cols = np.zeros(h, bool), np.zeros(w, bool)
    for (y, x, wh, ww), _ in layout:
        for edge, line, n in ((y * LATENT, rows, h), ((y + wh) * LATENT, rows, h), (x * LATENT, cols, w),
                              ((x + ww) * LATENT, cols, w)):
            if 0 < edge < n:
                line[max(0, edge - band):edge + band] = True
    return rows[:, None] | cols[None, :]


CROP_IDS = ("latent", "pixels", "zero", "training")
"""The tiles' crop time ids of ``--crop-coords`` (see the module doc)."""


def border_band(size: tuple[int, int], border: int) -> np.ndarray:
    """``(H, W)`` bool: the pixels within ``border`` px of the frame's edge."""
    h, w = size
    rows, cols = np.arange(h), np.arange(w)
    return (np.minimum(rows, h - 1 - rows) < border)[:, None] | (np.minimum(cols, w - 1 - cols) < border)[None, :]


def tile_ids(kind: str, size: tuple[int, int]):
    """A window -> its six time ids for the ``--crop-coords`` choice ``kind``, on a frame of ``size`` pixels,
    through the pipeline's own functions where it has one."""
    from lensblur.bokehdiff.tiles import crop_top_left, time_ids

    def ids(window):
        if kind == "zero":
            return time_ids(size, (0, 0))
        crop = crop_top_left(window, LATENT, "latent" if kind == "latent" else "pixels")
        if kind == "training":
            return [*size, *crop, window[2] * LATENT, window[3] * LATENT]
        return time_ids(size, crop)

    return ids


def render(method, item: dict, layout, ids=None) -> torch.Tensor:
    """The miniature's rendering of a whole held-out frame: untiled (``layout`` None) or with the noise
    prediction blended over ``layout``'s cores; ``ids`` a window -> its time ids (:func:`tile_ids`), for a
    miniature with time ids; linear RGB ``(3, H, W)``."""
    from lensblur.bokehdiff.tiles import blend
    from lensblur.color import linear_to_srgb, srgb_to_linear

    lens = item["meta"]["lens"]
    disparity = item["disparity"][None]
    coc = lens["blur"] * (disparity - lens["focus_disparity"])
    model = method.model
    z = F.pixel_unshuffle(linear_to_srgb(item["image"][None]) * 2 - 1, LATENT)
    generator = torch.Generator().manual_seed(0)

    def predict(window):
        y, x, h, w = window
        pixels = (..., slice(y * LATENT, (y + h) * LATENT), slice(x * LATENT, (x + w) * LATENT))
        return model.noise(z[..., y:y + h, x:x + w], disparity[pixels], coc[pixels], generator,
                           None if ids is None else torch.tensor(ids(window), dtype=torch.float32))

    with method.scoring(), torch.no_grad():
        eps = predict((0, 0, *z.shape[-2:])) if layout is None else blend(predict, layout, tuple(z.shape))
        out = model.one_step(z, eps)
    return srgb_to_linear((out.clamp(-1, 1) + 1) / 2)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="a trained miniature (bench/train_bokehdiff.py --save)")
    parser.add_argument("--data", type=Path, help="the synthetic set (default: train_bokehdiff's cache folder)")
    parser.add_argument("--pairs", type=int, default=400, help="the set's size (as trained)")
    parser.add_argument("--held-out", type=int, default=40, help="the held-out pairs, the set's last (as trained)")
    parser.add_argument("--frames", type=int, help="score only the first FRAMES held-out frames")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--margins", default="0,4,8", help="tile_margin values, in latent pixels (2 px each)")
    parser.add_argument("--band", type=int, default=2, help="the seam band's half-width in pixels")
    parser.add_argument("--border", type=int, default=8, help="the frame border's width in pixels")
    parser.add_argument("--crop-coords", default="latent",
                        help=f"for a checkpoint with time ids: the tiles' crop ids, comma-separated, of "
                             f"{', '.join(CROP_IDS)} (each with each margin)")
    parser.add_argument("--untiled", action=argparse.BooleanOptionalAction, default=True,
                        help="also render each frame whole")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from train_bokehdiff import load_renderer, make_pairs

    from lensblur.bokehdiff.tiles import context_tiles
    from lensblur.eval.runner import display_8bit
    from lensblur.metrics import psnr, ssim

    method = load_renderer(args.checkpoint)
    crop = method.settings["crop"]
    tile = crop // LATENT
    _, held_out = make_pairs(args.data, args.pairs, args.size, args.data_seed, args.held_out, "bokehdiff", 256)
    count = len(held_out) if args.frames is None else min(args.frames, len(held_out))
    latent = (args.size // LATENT, args.size // LATENT)
    frame = (args.size, args.size)
    margins = [int(m) for m in args.margins.split(",") if m != ""]
    with_ids = bool(method.settings.get("time_ids", False))
    kinds = [k for k in args.crop_coords.split(",") if k] if with_ids else [None]
    if any(k not in CROP_IDS for k in kinds if k is not None):
        parser.error(f"--crop-coords: choose from {', '.join(CROP_IDS)}")
    layouts = {}
    for m in margins:
        for kind in kinds:
            name = "release" if m == 0 else f"margin {m} ({m * LATENT} px)"
            if kind is not None:
                name += f", crop ids {kind}"
            layouts[name] = (context_tiles(*latent, tile, m), None if kind is None else tile_ids(kind, frame))
    if args.untiled:
        layouts = {"untiled": (None, tile_ids("zero", frame) if with_ids else None), **layouts}
    band = seam_band(frame, context_tiles(*latent, tile, 0), args.band)
    border = border_band(frame, args.border)
    print(f"checkpoint {args.checkpoint.name} ({method.settings['variant']}, PISA layers "
          f"{method.settings['layers']}, {method.settings['steps']} steps, time ids: {'yes' if with_ids else 'no'}); "
          f"{count} held-out frames of {args.size} px; tile {crop} px ({tile} latents); seam band: within "
          f"{args.band} px of a release window edge, {band.mean() * 100:.0f} % of the frame; frame border: within "
          f"{args.border} px of the frame's edge, {border.mean() * 100:.0f} %; {torch.get_num_threads()} thread(s)")
    rows = {name: {"psnr": [], "ssim": [], "psnr_band": [], "ssim_band": [], "psnr_border": [], "psnr_rest": [],
                   "seconds": 0.0, "changed": []}
            for name in ("identity", *layouts)}
    reference = next((n for n, (layout, _) in layouts.items() if layout is not None), None)
    for i in range(count):
        item = held_out[i]
        target = display_8bit(item["target"].permute(1, 2, 0))
        rendered = {}
        for name, row in rows.items():
            start = time.perf_counter()
            out = item["image"] if name == "identity" else render(method, item, *layouts[name])
            row["seconds"] += time.perf_counter() - start
            shown = display_8bit(out.permute(1, 2, 0))
            row["psnr"].append(psnr(target, shown, data_range=1.0))
            row["ssim"].append(ssim(target, shown, data_range=1.0))
            row["psnr_band"].append(psnr(target, shown, data_range=1.0, mask=band))
            row["ssim_band"].append(ssim(target, shown, data_range=1.0, mask=band))
            row["psnr_border"].append(psnr(target, shown, data_range=1.0, mask=border))
            row["psnr_rest"].append(psnr(target, shown, data_range=1.0, mask=~band))
            rendered[name] = shown
        for name, row in rows.items():
            if reference is not None:
                row["changed"].append(float(np.abs(np.asarray(rendered[name], np.float64)
                                                   - np.asarray(rendered[reference], np.float64)).mean()) * 255)
        print(f"  frame {i + 1}/{count}: " + ", ".join(f"{n} {r['psnr'][-1]:.2f}" for n, r in rows.items()),
              flush=True)
    print("| rendering | UNet passes per frame | PSNR | SSIM | PSNR, seam band | SSIM, seam band | PSNR, frame border "
          "| PSNR, the rest | s per frame |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        passes = "-" if name == "identity" else (1 if layouts[name][0] is None else len(layouts[name][0]))
        print(f"| {name} | {passes} | {np.mean(row['psnr']):.2f} | {np.mean(row['ssim']):.4f} | "
              f"{np.mean(row['psnr_band']):.2f} | {np.mean(row['ssim_band']):.4f} | {np.mean(row['psnr_border']):.2f} "
              f"| {np.mean(row['psnr_rest']):.2f} | {row['seconds'] / count:.2f} |")
    if reference is not None and count > 1:
        # Paired over the same frames: how far each rendering is from the first tiled one, in score and in values.
        print(f"paired against '{reference}' over {count} frames: PSNR difference (mean +- standard error; frame "
              f"border) and mean |difference| of the 8-bit values")
        base = rows[reference]
        for name, row in rows.items():
            if name == reference:
                continue
            d = np.array(row["psnr"]) - np.array(base["psnr"])
            e = np.array(row["psnr_border"]) - np.array(base["psnr_border"])
            print(f"  {name}: {d.mean():+.3f} +- {d.std(ddof=1) / np.sqrt(len(d)):.3f} dB; border {e.mean():+.3f} "
                  f"+- {e.std(ddof=1) / np.sqrt(len(e)):.3f} dB; |difference| {np.mean(row['changed']):.3f} of 255")


if __name__ == "__main__":
    main()
