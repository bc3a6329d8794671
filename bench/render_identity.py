"""Are renders byte-identical to the recorded ones? The guard for changes that must not change a render.

Runs ``lensblur render`` on the sample photos (../shared/samples) with each renderer and the options that
take different code paths (circle, hexagon, cat-eye, highlights, 16-bit output, a focus mask, the phone
depth of a HEIC), and the layered renderer on the whole frame and in blocks. Each output file's bytes
(and each block render's float32 bytes) are hashed with SHA-256 and compared with the hashes recorded in
``bench/render_identity.json``.

    python bench/render_identity.py             # compare with the record; exit 1 on any difference
    python bench/render_identity.py --record    # record the current code's hashes (on a known-good main)
    python bench/render_identity.py --only mpib # the cases whose name contains "mpib"

The record was re-made at the merge of clipped-light recovery on by default (highlights auto), files that keep
their profile and metadata (lensblur's XMP record in every output), and the coarse-parallel renderer (whose
bytes no longer depend on the thread count); the one before it dated from 541c5f5. It was re-made again with
the enlargements by phases (``grid.resample``: renders moved by at most 7e-5 in linear light, one 8-bit code
on a few pixels of millions), and for blocks of 3000 px (the three frames larger than 1536 px are fewer blocks; the
blocks' seams moved by at most 7e-4 in linear light).

The hashes are those of one machine's kernels: torch picks its FFT, convolution and vector code by processor,
and on another processor (an AMD EPYC with AVX-512, against the machine of the earlier record) the same code
rounds differently, so gives other bytes. On a new machine, record on a known-good main first, then compare.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parents[0].parent / "shared" / "samples"
RECORD = HERE / "render_identity.json"

B3 = ["bokehme_3.jpg", "--disparity", "bokehme_3_disparity16.png"]
B13 = ["bokehme_13.jpg", "--disparity", "bokehme_13_disparity16.png"]
MPIB = ["mpib_new_11.jpg", "--disparity", "mpib_new_11_disparity8.jpg"]

# name -> (arguments of `lensblur render` after the photo, with sample file names; output suffix)
CLI_CASES: dict[str, tuple[list[str], str]] = {
    "b3-circle": (B3 + ["--focus-disparity", "0.35", "--blur", "40"], ".png"),
    "b3-hexagon": (B3 + ["--focus", "800,450", "--blur", "40", "--aperture", "hexagon"], ".png"),
    "b3-hexagon-jpeg": (B3 + ["--focus-disparity", "0.35", "--blur", "25", "--aperture", "hexagon"], ".jpg"),
    "b13-circle-16bit": (B13 + ["--focus", "480,400", "--blur", "30", "--bits", "16"], ".png"),
    "b13-cat-eye": (B13 + ["--focus-disparity", "0.6", "--blur", "30", "--cat-eye", "0.6",
                           "--blades", "7", "--curvature", "0.4", "--rotation", "10"], ".png"),
    "b13-focus-mask": (B13 + ["--focus-mask", "bokehme_13_disparity16.png", "--blur", "20"], ".png"),
    "mpib-highlights": (MPIB + ["--focus-box", "800,500,1100,800", "--blur", "35", "--highlights", "0.7"], ".png"),
    "mpib-circle-small": (MPIB + ["--focus-disparity", "0.5", "--blur", "6"], ".png"),
    "b3-gaussian": (B3 + ["--focus-disparity", "0.35", "--blur", "30", "--method", "gaussian"], ".png"),
    "pug-heic-embedded": (["pug.heic", "--focus", "2000,1500", "--blur", "30"], ".jpg"),
}

# name -> (photo, disparity, focus disparity, largest CoC radius, blades, cat-eye, block or a method name);
# the scatter reference is slow, so it renders a 320 x 240 crop.
BLOCK_CASES = {
    "b3-scatter-crop-cat-eye": ("bokehme_3.jpg", "bokehme_3_disparity16.png", 0.35, 8.0, 6, 0.5, "scatter"),
    "b3-blocks-circle": ("bokehme_3.jpg", "bokehme_3_disparity16.png", 0.35, 45.0, 0, 0.0, 384),
    "b13-blocks-hexagon": ("bokehme_13.jpg", "bokehme_13_disparity16.png", 0.5, 35.0, 6, 0.0, 320),
    "mpib-blocks-cat-eye": ("mpib_new_11.jpg", "mpib_new_11_disparity8.jpg", 0.4, 30.0, 6, 0.5, 512),
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_cli_case(args: list[str], suffix: str, folder: Path) -> str:
    from lensblur.cli import main

    photo, *rest = args
    out = folder / f"out{suffix}"
    argv = ["render", str(SAMPLES / photo)]
    for a in rest:
        argv.append(str(SAMPLES / a) if (SAMPLES / a).is_file() else a)
    code = main(argv + ["-o", str(out)])
    if code != 0:
        raise SystemExit(f"lensblur render {' '.join(argv)} exited with {code}")
    data = out.read_bytes()
    out.unlink()
    return _sha(data)


def run_block_case(photo: str, disparity: str, focus: float, radius: float, blades: int, cat_eye: float,
                   block: int | str) -> str:
    import lensblur
    from lensblur.render import render

    image = lensblur.read_image(SAMPLES / photo)
    disp = lensblur.read_disparity(SAMPLES / disparity)
    if isinstance(block, str):
        image, disp = image[300:540, 600:920], disp[300:540, 600:920]
    blur = radius / float(np.abs(disp - focus).max())
    lens = lensblur.Lens(focus, blur, lensblur.Aperture(blades=blades, cat_eye=cat_eye))
    out = render(image, disp, lens, method=block) if isinstance(block, str) else render(image, disp, lens, block=block)
    return _sha(np.ascontiguousarray(out, dtype=np.float32).tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="write the current hashes to the record")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not SAMPLES.is_dir():
        raise SystemExit(f"the sample photos are not at {SAMPLES}")

    recorded = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    hashes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cli_args, suffix) in CLI_CASES.items():
            if args.only in name:
                start = time.perf_counter()
                hashes[name] = run_cli_case(cli_args, suffix, Path(tmp))
                print(f"{name}: {hashes[name][:16]} ({time.perf_counter() - start:.1f} s)", flush=True)
    for name, case in BLOCK_CASES.items():
        if args.only in name:
            start = time.perf_counter()
            hashes[name] = run_block_case(*case)
            print(f"{name}: {hashes[name][:16]} ({time.perf_counter() - start:.1f} s)", flush=True)

    if args.record:
        RECORD.write_text(json.dumps({**recorded, **hashes}, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(hashes)} hashes in {RECORD}")
        return 0
    changed = [name for name, value in hashes.items() if recorded.get(name) != value]
    for name in changed:
        print(f"DIFFERENT: {name} (recorded {recorded.get(name, 'nothing')[:16]})")
    print(f"{len(hashes) - len(changed)} identical, {len(changed)} different")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
