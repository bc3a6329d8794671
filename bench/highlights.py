"""Recovered highlights against ray-traced truth: ``off``, the former near-white boost, and ``auto``.

Scenes are ``lensblur.synth.make_scene`` scenes (lensblur's preset: a background and 1..4 foreground layers,
tilted planes, circle or 5..9-blade apertures, largest CoC 0.8..5 % of the longer side). The scenes *with
lights* are the scene indices of seed ``--seed`` whose background got HDR lights (1..12 discs of radius
0.6..3 px, 5..50x white, tinted), taken in index order until ``--scenes`` of them; the scenes *without* are
indices 0.. of the same seed made with ``lights=False``. Each renderer (``layered``) sees what a camera
gives: the all-in-focus image clipped to white and quantised to 8-bit sRGB (as ``image.png`` of a synth
pair) and the ground-truth disparity; the truth is the traced HDR target. Scores are PSNR on 8-bit sRGB
(what a viewer shows: both images clipped to white), over the frame and inside the lights' CoC discs (the
union of discs of radius ``|CoC| + 1.5`` px around each light, the CoC of the background at the light).
The frame's PSNR is the mean over the scenes; the discs' is the PSNR of all disc pixels of the row's scenes
pooled (one scene's discs may be small enough to match exactly, an infinite PSNR no mean can hold).

    python bench/highlights.py --scenes 2 --sizes 96x64            # the tiny check
    python bench/highlights.py --scenes 24 --sizes 256x192,512x384 --threads 1   # the real run
    python bench/highlights.py --sheet docs/images/highlights.png                 # the docs' contact sheet

Targets (issue 17): without lights ``auto`` equals ``off`` or is within 0.05 dB; with lights ``auto`` gains
at least 4 dB inside the discs and 1 dB overall over ``off``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def _display(linear: np.ndarray) -> np.ndarray:
    from lensblur._convert import encode_srgb, quantize

    return quantize(encode_srgb(np.clip(linear, 0.0, 1.0)), 8).astype(np.float64) / 255.0


def _camera(linear: np.ndarray) -> np.ndarray:
    """The all-in-focus image as an 8-bit sRGB photo holds it, decoded back to linear RGB."""
    from lensblur._convert import decode_srgb, encode_srgb, quantize

    return decode_srgb(quantize(encode_srgb(np.clip(linear, 0.0, 1.0)), 8), 255.0)


def _discs(scene, disparity_bg: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[:h, :w] + 0.5
    mask = np.zeros((h, w), bool)
    for light in scene.lights:
        x, y = light["x"], light["y"]
        iy, ix = min(h - 1, max(0, int(y))), min(w - 1, max(0, int(x)))
        radius = abs(scene.blur * (float(disparity_bg[iy, ix]) - scene.focus_disparity)) + 1.5
        mask |= (xx - x) ** 2 + (yy - y) ** 2 <= radius * radius
    return mask


def _scenes(seed: int, count: int, size, lights: bool):
    from lensblur.synth import make_scene

    index = 0
    while count:
        scene = make_scene(index, seed, size, lights=lights)
        index += 1
        if lights and not scene.lights:
            continue
        count -= 1
        yield index - 1, scene


def _night(scene):
    """The scene at night: every layer's colour at 15 % except the HDR lights (values above 1), as lit
    windows and street lights stay bright when the daylight goes."""
    import dataclasses

    from lensblur.synth.tracer import Layer

    layers = []
    for layer in scene.layers:
        color = np.where(layer.color > 1.0, layer.color, layer.color * 0.15).astype(np.float32)
        layers.append(Layer(color=color, alpha=layer.alpha, disparity=layer.disparity, name=layer.name,
                            info=layer.info))
    return dataclasses.replace(scene, layers=layers)


def write_sheet(path, samples) -> None:
    """A before/after contact sheet: a crop of the sample photo ``mpib_new_11.jpg`` (daylight, sky through
    foliage: clipped, but no lights) and a synth night scene, each as the photo, ``off``, the old boost,
    ``auto`` (and the ray-traced truth for the synth scene)."""
    from PIL import Image

    import lensblur
    from lensblur._convert import to_srgb8
    from lensblur.io import contact_sheet, read_disparity, read_image
    from lensblur.render.highlights import boost_near_white
    from lensblur.synth import make_scene, trace

    def variants(photo, disparity, lens):
        old = boost_near_white(torch.from_numpy(photo).permute(2, 0, 1)[None], strength=0.6)[0]
        return [photo, lensblur.render(photo, disparity, lens, highlights="off"),
                lensblur.render(old.permute(1, 2, 0).numpy(), disparity, lens, highlights="off"),
                lensblur.render(photo, disparity, lens, highlights="auto")]

    def tile(linear, size=(256, 192)):
        return np.asarray(Image.fromarray(to_srgb8(linear)).resize(size, Image.LANCZOS))

    photo = read_image(samples / "mpib_new_11.jpg")
    disparity = read_disparity(samples / "mpib_new_11_disparity8.jpg", shape=photo.shape[:2])
    crop = (slice(0, 360), slice(420, 900))
    rows = [[tile(x) for x in variants(np.ascontiguousarray(photo[crop]), np.ascontiguousarray(disparity[crop]),
                                         lensblur.Lens(0.9, 30.0, lensblur.Aperture(blades=6)))]]
    scene = _night(make_scene(8, 17, (320, 240), lights=True, max_coc=(0.04, 0.05)))
    truth = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity, aperture=scene.aperture,
                  margin=scene.margin)
    lens = lensblur.Lens(scene.focus_disparity, scene.blur, scene.aperture)
    rows.append([tile(x) for x in variants(_camera(truth.image), truth.disparity, lens)] + [tile(truth.target)])
    contact_sheet(rows, path, column_titles=["photo", "off", "old boost 0.6", "auto (default)", "traced truth"],
                  row_titles=["mpib_new_11 crop", "synth, at night"], gap=6)
    from lensblur.io import atomic_path

    with Image.open(path) as sheet:             # 256 colours: small enough to sit in the repository
        small = sheet.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_path(path) as tmp:
        small.save(tmp, format="PNG", optimize=True)
    print(f"wrote {path}")


def main() -> None:
    import lensblur
    from lensblur.metrics import psnr
    from lensblur.render.highlights import CLIP_LEVEL, boost_near_white
    from lensblur.synth import trace

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=24, help="scenes with lights, and as many without")
    parser.add_argument("--sizes", default="256x192,512x384")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--old-strength", type=float, default=0.6, help="strength of the former boost (demo's 0.6)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sheet", metavar="PNG", help="write the docs' before/after contact sheet instead")
    parser.add_argument("--samples", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "samples"),
                        help="the sample photos' folder (for --sheet)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.sheet:
        write_sheet(Path(args.sheet), Path(args.samples))
        return
    variants = ("off", "old boost", "auto")
    started = time.perf_counter()
    table = []
    for size_text in args.sizes.split(","):
        w, h = (int(v) for v in size_text.split("x"))
        for lights in (True, False):
            scores = {v: [] for v in variants}
            identical = 0
            clipped = 0
            pooled = {v: np.zeros(2) for v in variants}
            for index, scene in _scenes(args.seed, args.scenes, (w, h), lights):
                truth = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity,
                              aperture=scene.aperture, margin=scene.margin)
                m = scene.margin
                disparity_bg = scene.layers[0].disparity_map()[m: m + h, m: m + w]
                discs = _discs(scene, disparity_bg, (h, w)) if lights else None
                photo = _camera(truth.image)
                clipped += int((photo.max(axis=2) >= CLIP_LEVEL).any())
                lens = lensblur.Lens(scene.focus_disparity, scene.blur, scene.aperture)
                target = _display(truth.target)
                old = boost_near_white(torch.from_numpy(photo).permute(2, 0, 1)[None], strength=args.old_strength)
                outs = {
                    "off": lensblur.render(photo, truth.disparity, lens, highlights="off"),
                    "old boost": lensblur.render(old[0].permute(1, 2, 0).numpy(), truth.disparity, lens,
                                                 highlights="off"),
                    "auto": lensblur.render(photo, truth.disparity, lens, highlights="auto"),
                }
                identical += int(np.array_equal(outs["off"], outs["auto"]))
                for v in variants:
                    shown = _display(outs[v])
                    inside = psnr(target, shown, data_range=1.0, mask=discs) if lights and discs.any() else np.nan
                    scores[v].append((psnr(target, shown, data_range=1.0), inside))
                    if lights and discs.any():
                        pooled[v] += ((target - shown)[discs] ** 2).sum(), discs.sum() * 3
                print(f"{w}x{h} scene {index} ({len(scene.lights)} lights, blur {scene.blur:.1f}, focus "
                      f"{scene.focus_disparity:.2f}, {scene.params['focus_on']}): "
                      + ", ".join(f"{v} {scores[v][-1][0]:.2f}/{scores[v][-1][1]:.2f}" for v in variants), flush=True)
            table.append((f"{w}x{h}", "with lights" if lights else "without lights", scores, identical, clipped,
                          pooled))
    print(f"\nseed {args.seed}, {args.scenes} scenes per row, layered renderer, old boost strength "
          f"{args.old_strength}; PSNR (dB) on 8-bit sRGB against the traced truth; {time.perf_counter() - started:.0f} s\n")
    print("| size | scenes | PSNR off | PSNR old boost | PSNR auto | in discs off | in discs old | in discs auto "
          "| auto == off | with clipped pixels |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, kind, scores, identical, clipped, pooled in table:
        mean = {v: np.mean([s[0] for s in scores[v]]) for v in variants}
        n = len(scores["off"])
        inside = [f"{10 * np.log10(pooled[v][1] / pooled[v][0]):.2f}" if pooled[v][0] > 0 else "-"
                  for v in variants]
        print(f"| {size} | {kind} | {mean['off']:.2f} | {mean['old boost']:.2f} | {mean['auto']:.2f} | "
              + " | ".join(inside) + f" | {identical}/{n} | {clipped}/{n} |")


if __name__ == "__main__":
    main()
