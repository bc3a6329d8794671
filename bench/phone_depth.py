"""Phone photos with depth inside: for each sample, the format found, the map, the range, the stored focus and
the time to read the depth and render, focused where the file says.

    python bench/phone_depth.py                          # ../shared/samples, full size
    python bench/phone_depth.py --scale 0.25             # a quick check: render a quarter-size copy
    python bench/phone_depth.py --out /tmp/phone         # also write the renders (and the camera's own image)

The render uses what the file stores: the sharp original when there is one (Google Lens Blur), the stored
focus, and the stored blur at infinity when there is one (else ``--blur``, default 30 px at full size).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SAMPLES = ("gdepth_motorola.jpg", "iphone_portrait_depth.jpg", "pug.heic")


def _resize(array: np.ndarray, scale: float) -> np.ndarray:
    import torch

    if scale == 1:
        return array
    h, w = (max(8, round(n * scale)) for n in array.shape[:2])
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    out = torch.nn.functional.interpolate(t, (h, w), mode="area")[0]
    return (out[0] if array.ndim == 2 else out.permute(1, 2, 0)).numpy()


def run(path: Path, *, scale: float, blur: float, out: Path | None) -> dict:
    from lensblur.depth import read_photo, resolve
    from lensblur.io import write_image
    from lensblur.lens import Lens
    from lensblur.render import render

    started = time.perf_counter()
    primary = read_photo(path)
    result = resolve(path, primary)
    read_seconds = time.perf_counter() - started
    photo = result.photo if result.photo is not None else primary
    d = result.details
    focus = result.focus if result.focus is not None else 0.5
    k = (result.blur if result.blur is not None else blur) * scale
    small, disparity = _resize(photo, scale), np.clip(_resize(result.disparity, scale), 0, 1)
    started = time.perf_counter()
    rendered = render(small, disparity, Lens(focus_disparity=float(focus), blur=k))
    render_seconds = time.perf_counter() - started
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_image(out / f"{path.stem}_lensblur.png", rendered)
        write_image(out / f"{path.stem}_camera.png", _resize(primary, scale))
    rng = (f"{result.depth_range.near:.3f}..{result.depth_range.far:.3f} m" if result.depth_range else
           "unknown metric range, as written {:.4g}..{:.4g}".format(*d["file_range"]) if d.get("file_range") else
           "unknown")
    return {"file": path.name, "format": f"{d.get('format')} ({d.get('encoding')})",
            "map": "x".join(map(str, d.get("map_size", []))), "units": d.get("units"), "range": rng,
            "focus": d.get("focus_from") or "none stored (centre)", "blur_px": k,
            "original": d.get("rendered_from"), "size": f"{small.shape[1]}x{small.shape[0]}",
            "read_s": read_seconds, "render_s": render_seconds,
            "apple": d.get("apple") or {}, "heif": d.get("heif")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" /
                        "samples", help="the folder with the samples (default ../shared/samples)")
    parser.add_argument("--scale", type=float, default=1.0, help="render at this fraction of the size (blur scaled)")
    parser.add_argument("--blur", type=float, default=30.0, help="K in px at full size when the file stores none")
    parser.add_argument("--out", type=Path, help="write the renders and the camera's own images here")
    args = parser.parse_args(argv)
    for name in SAMPLES:
        path = args.samples / name
        if not path.is_file():
            print(f"{name}: not found in {args.samples}")
            continue
        r = run(path, scale=args.scale, blur=args.blur, out=args.out)
        print(f"{r['file']}: {r['format']}, map {r['map']}, units {r['units']}, range {r['range']}")
        print(f"  focus: {r['focus']}; blur {r['blur_px']:.1f} px; rendered from {r['original']}")
        if r["apple"] or r["heif"]:
            print(f"  apple: {r['apple']}" + (f"; heif: {r['heif']}" if r["heif"] else ""))
        print(f"  read+upsample {r['read_s']:.2f} s; render {r['size']} {r['render_s']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
