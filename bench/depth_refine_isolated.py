"""Does edge-aware refinement fix the bokeh where degraded depth maps break it?

Synthetic scenes with exact disparity: a textured background plane (disparity 0.1) and textured
foreground shapes (disparity 0.9, a disk, a rectangle and a thin bar) of colours distinct from the
background. Each ground-truth map is degraded four ways (Gaussian blur, dilation, erosion, 4x
down-sampling then bilinear up-sampling), then refined with lensblur.depth.refine guided by the photo.
Every map is rendered with lensblur.render.render (layered, focus on the background, blur 12 px), and
compared with the render from the true map by PSNR on the depth-edge band (pixels within 8 px of a depth
edge) and over the whole image. Run: .venv/bin/python bench/depth_refine_isolated.py

bench/depth_refine.py scores the same question against ray-traced truth (render error included); this one
isolates the depth error: the reference is the same renderer fed the exact map.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from lensblur.depth import refine
from lensblur.lens import Lens
from lensblur.metrics import psnr
from lensblur.render import render


def scene(seed: int, h: int = 240, w: int = 320):
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    back = np.stack([0.15 + 0.3 * noise, 0.25 + 0.2 * noise, 0.1 + 0.1 * noise], axis=2)
    fg_mask = np.zeros((h, w), np.uint8)
    cy, cx = rng.integers(60, h - 60), rng.integers(60, w // 2)
    cv2.circle(fg_mask, (int(cx), int(cy)), int(rng.integers(30, 50)), 1, -1)
    x0, y0 = int(rng.integers(w // 2, w - 110)), int(rng.integers(20, h - 120))
    cv2.rectangle(fg_mask, (x0, y0), (x0 + 90, y0 + 100), 1, -1)
    bx = int(rng.integers(20, w - 20))
    cv2.rectangle(fg_mask, (bx, 0), (bx + 6, h - 1), 1, -1)
    fine = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0)
    front = np.stack([0.7 + 0.3 * fine, 0.35 + 0.2 * fine, 0.3 + 0.2 * fine], axis=2)
    m = fg_mask.astype(bool)[..., None]
    image = np.where(m, front, back).astype(np.float32)
    disparity = np.where(fg_mask > 0, 0.9, 0.1).astype(np.float32)
    return image, disparity


def degrade(d: np.ndarray, how: str) -> np.ndarray:
    k = np.ones((9, 9), np.uint8)
    if how == "blurred":
        return cv2.GaussianBlur(d, (0, 0), 4.0)
    if how == "dilated":
        return cv2.dilate(d, k)
    if how == "eroded":
        return cv2.erode(d, k)
    small = cv2.resize(d, (d.shape[1] // 4, d.shape[0] // 4), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (d.shape[1], d.shape[0]), interpolation=cv2.INTER_LINEAR)


def main() -> None:
    lens = Lens(focus_disparity=0.1, blur=12.0)
    rows = {how: [] for how in ("blurred", "dilated", "eroded", "downsampled 4x")}
    t_refine = 0.0
    for seed in range(4):
        image, truth = scene(seed)
        reference = render(image, truth, lens)
        k = np.ones((17, 17), np.uint8)
        band = cv2.dilate(truth, k) != cv2.erode(truth, k)
        for how, results in rows.items():
            bad = np.clip(degrade(truth, how), 0, 1).astype(np.float32)
            t0 = time.perf_counter()
            fixed = refine(image, bad, radius=6)
            t_refine += time.perf_counter() - t0
            out_bad, out_fixed = render(image, bad, lens), render(image, fixed, lens)
            results.append((
                psnr(reference, out_bad, data_range=1.0, mask=band),
                psnr(reference, out_fixed, data_range=1.0, mask=band),
                psnr(reference, out_bad, data_range=1.0), psnr(reference, out_fixed, data_range=1.0),
                float(np.abs(bad - truth)[band].mean()), float(np.abs(fixed - truth)[band].mean()),
            ))
    print("4 scenes 320x240, layered render, focus 0.1, blur 12 px; PSNR (dB) against the render from the true map")
    print(f"{'degradation':16s} {'band deg.':>9s} {'band ref.':>9s} {'all deg.':>9s} {'all ref.':>9s} "
          f"{'MAE deg.':>9s} {'MAE ref.':>9s}")
    for how, values in rows.items():
        mean = np.mean(np.array(values, dtype=np.float64), axis=0)
        print(f"{how:16s} {mean[0]:9.2f} {mean[1]:9.2f} {mean[2]:9.2f} {mean[3]:9.2f} {mean[4]:9.4f} {mean[5]:9.4f}")
    print(f"refine: {1000 * t_refine / 16:.1f} ms per 320x240 map")


if __name__ == "__main__":
    main()
