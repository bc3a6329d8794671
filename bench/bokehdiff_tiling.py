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

The release's other tiling detail, SDXL's crop time ids in latent rather than pixel units
(``crop_coords=``), cannot be measured on this miniature: it has no time ids. It needs the released weights
on a GPU.

    python bench/train_bokehdiff.py --variants pisa --steps 2000 --lr 3e-3 --pisa-layers all \\
        --save /work/cache/bd-miniature/ckpt                                    # the checkpoint (once)
    python bench/bokehdiff_tiling.py --checkpoint /work/cache/bd-miniature/ckpt/pisa-all-seed0.safetensors
    python bench/bokehdiff_tiling.py --checkpoint CKPT --frames 2 --margins 0,8   # a quick check
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


def render(method, item: dict, layout) -> torch.Tensor:
    """The miniature's rendering of a whole held-out frame: untiled (``layout`` None) or with the noise
    prediction blended over ``layout``'s cores; linear RGB ``(3, H, W)``."""
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
        return model.noise(z[..., y:y + h, x:x + w], disparity[pixels], coc[pixels], generator)

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
    margins = [int(m) for m in args.margins.split(",") if m != ""]
    layouts = {("release" if m == 0 else f"margin {m} ({m * LATENT} px)"): context_tiles(*latent, tile, m)
               for m in margins}
    if args.untiled:
        layouts = {"untiled": None, **layouts}
    band = seam_band((args.size, args.size), context_tiles(*latent, tile, 0), args.band)
    print(f"checkpoint {args.checkpoint.name} ({method.settings['variant']}, PISA layers "
          f"{method.settings['layers']}, {method.settings['steps']} steps); {count} held-out frames of "
          f"{args.size} px; tile {crop} px ({tile} latents); seam band: within {args.band} px of a release window "
          f"edge, {band.mean() * 100:.0f} % of the frame; {torch.get_num_threads()} thread(s)")
    rows = {name: {"psnr": [], "ssim": [], "psnr_band": [], "ssim_band": [], "psnr_rest": [], "seconds": 0.0}
            for name in ("identity", *layouts)}
    for i in range(count):
        item = held_out[i]
        target = display_8bit(item["target"].permute(1, 2, 0))
        for name, row in rows.items():
            start = time.perf_counter()
            out = item["image"] if name == "identity" else render(method, item, layouts[name])
            row["seconds"] += time.perf_counter() - start
            shown = display_8bit(out.permute(1, 2, 0))
            row["psnr"].append(psnr(target, shown, data_range=1.0))
            row["ssim"].append(ssim(target, shown, data_range=1.0))
            row["psnr_band"].append(psnr(target, shown, data_range=1.0, mask=band))
            row["ssim_band"].append(ssim(target, shown, data_range=1.0, mask=band))
            row["psnr_rest"].append(psnr(target, shown, data_range=1.0, mask=~band))
        print(f"  frame {i + 1}/{count}: " + ", ".join(f"{n} {r['psnr'][-1]:.2f}" for n, r in rows.items()),
              flush=True)
    print("| rendering | UNet passes per frame | PSNR | SSIM | PSNR, seam band | SSIM, seam band | PSNR, the rest "
          "| s per frame |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        passes = "-" if name == "identity" else (1 if layouts[name] is None else len(layouts[name]))
        print(f"| {name} | {passes} | {np.mean(row['psnr']):.2f} | {np.mean(row['ssim']):.4f} | "
              f"{np.mean(row['psnr_band']):.2f} | {np.mean(row['ssim_band']):.4f} | {np.mean(row['psnr_rest']):.2f} "
              f"| {row['seconds'] / count:.2f} |")


if __name__ == "__main__":
    main()
