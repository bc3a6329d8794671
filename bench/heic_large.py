"""A phone-sized HEIC above Pillow's decompression-bomb limit (179 MP) and libheif's memory guard: write one with
pillow-heif (a grid of 512 px tiles, as Samsung and Apple cameras write them; x265's ultrafast preset, since only
the size matters here), then open it the way lensblur
opens every photo (``lensblur.io.read_image``) in a fresh process, printing the time and peak memory of each.

    nice -n 19 python bench/heic_large.py                    # 200 MP (16320 x 12240, a Samsung 200 MP sensor)
    python bench/heic_large.py --megapixels 2                # a quick check of the script
    python bench/heic_large.py --keep /tmp/big.heic          # keep the file

Writing needs about 4 GB and reading about 5 GB at 200 MP (the decoded photo in linear float is 2.4 GB);
lensblur's limit (LENSBLUR_MAX_PIXELS, else set from memory) applies, and ``--limit N`` sets it for the read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0     # kilobytes on Linux


def write(path: Path, megapixels: float) -> dict:
    """Write a smooth, textured photo of ``megapixels`` (4:3) as a tiled HEIC; its size, time and peak memory."""
    import pillow_heif
    from PIL import Image

    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5 / 16) * 16)
    height = int(round(width * 3 / 4 / 16) * 16)
    rng = np.random.default_rng(0)
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    cols = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    photo = np.empty((height, width, 3), np.uint8)
    for c, (a, b) in enumerate(((0.7, 0.3), (0.3, 0.7), (0.5, 0.5))):
        photo[..., c] = np.clip(a * rows + b * cols, 0, 255).astype(np.uint8)
    photo[::7, ::5] = rng.integers(0, 255, (len(range(0, height, 7)), len(range(0, width, 5)), 3), dtype=np.uint8)
    started = time.perf_counter()
    pillow_heif.from_pillow(Image.fromarray(photo)).save(path, quality=80, tile_size=512,
                                                         enc_params={"preset": "ultrafast"})
    return {"size": [width, height], "megapixels": width * height / 1e6, "file_mb": path.stat().st_size / 1e6,
            "write_s": time.perf_counter() - started, "write_peak_mb": _peak_mb()}


def read(path: str) -> dict:
    """Open the photo as ``lensblur render`` does; its time, shape and this process's peak memory."""
    from lensblur.errors import InputError
    from lensblur.io import read_image

    import_peak = _peak_mb()
    started = time.perf_counter()
    try:
        image = read_image(path)
    except InputError as exc:
        return {"refused": str(exc), "read_s": time.perf_counter() - started, "read_peak_mb": _peak_mb()}
    return {"shape": list(image.shape), "read_s": time.perf_counter() - started, "read_peak_mb": _peak_mb(),
            "baseline_mb": import_peak}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=200.0)
    parser.add_argument("--keep", type=Path, default=None, help="write the HEIC here and keep it")
    parser.add_argument("--limit", type=int, default=None, help="LENSBLUR_MAX_PIXELS for the read")
    parser.add_argument("--read-only", dest="read_only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read_only:
        print(json.dumps(read(args.read_only)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "large.heic"
        written = write(path, args.megapixels)
        print(f"wrote {written['size'][0]}x{written['size'][1]} ({written['megapixels']:.1f} MP, "
              f"{written['file_mb']:.1f} MB) in {written['write_s']:.1f} s, peak {written['write_peak_mb']:.0f} MB")
        env = dict(os.environ, PYTHONPATH=str(SRC))
        if args.limit is not None:
            env["LENSBLUR_MAX_PIXELS"] = str(args.limit)
        done = subprocess.run([sys.executable, __file__, "--read-only", str(path)], env=env, check=True,
                              capture_output=True, text=True)
        record = json.loads(done.stdout.strip().splitlines()[-1])
        if "refused" in record:
            print(f"refused after {record['read_s']:.1f} s: {record['refused']}")
        else:
            pixels = record["shape"][0] * record["shape"][1]
            print(f"read_image: {record['shape'][1]}x{record['shape'][0]} linear float in {record['read_s']:.1f} s, "
                  f"peak {record['read_peak_mb']:.0f} MB (the reading process, with Python, numpy, torch: about "
                  f"{(record['read_peak_mb'] - record['baseline_mb']) * 2 ** 20 / pixels:.0f} bytes a pixel "
                  f"above its {record['baseline_mb']:.0f} MB before reading)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
