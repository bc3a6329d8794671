"""Stereo depth on a real pair with ground truth: skimage.data.stereo_motorcycle() (Middlebury 2014).

Prints, for each variant of lensblur.depth.stereo.stereo_disparity (searching 64 px, then over the range
lensblur.depth.stereo.search_range estimates, the default), the bad-pixel rates (share of pixels
with ground truth whose error exceeds 1, 2 and 4 pixels), the end-point error (mean absolute error in
pixels) and the run time. Run: .venv/bin/python bench/depth_stereo.py
"""

from __future__ import annotations

import time

import numpy as np
from skimage.data import stereo_motorcycle

from lensblur.depth.stereo import stereo_disparity


def evaluate(estimate: np.ndarray, truth: np.ndarray) -> dict:
    known = np.isfinite(truth)
    covered = known & np.isfinite(estimate)
    err = np.abs(estimate[covered] - truth[covered])
    return {
        "density": covered.sum() / known.sum(),
        "bad1": float((err > 1).mean()), "bad2": float((err > 2).mean()), "bad4": float((err > 4).mean()),
        "epe": float(err.mean()),
    }


def main() -> None:
    left, right, truth = stereo_motorcycle()
    print(f"stereo_motorcycle {left.shape[1]}x{left.shape[0]}, ground truth on "
          f"{np.isfinite(truth).mean():.1%} of pixels, disparity {truth[np.isfinite(truth)].min():.1f}..{truth[np.isfinite(truth)].max():.1f} px")
    variants = {
        "SGBM + LR check (no fill)": {"fill": False, "wls": False},
        "SGBM + LR check + hole filling": {"fill": True, "wls": False},
        "... + WLS filter (default)": {"fill": True, "wls": True},
        "... with the search range estimated": {"fill": True, "wls": True, "max_disparity": None},
    }
    print(f"{'variant':34s} {'density':>8s} {'bad>1':>7s} {'bad>2':>7s} {'bad>4':>7s} {'EPE px':>7s} {'time s':>7s}")
    for name, options in variants.items():
        t0 = time.perf_counter()
        est = stereo_disparity(left, right, **{"max_disparity": 64, **options})
        dt = time.perf_counter() - t0
        r = evaluate(est, truth)
        print(f"{name:34s} {r['density']:8.1%} {r['bad1']:7.1%} {r['bad2']:7.1%} {r['bad4']:7.1%} "
              f"{r['epe']:7.2f} {dt:7.2f}")


if __name__ == "__main__":
    main()
