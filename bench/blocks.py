"""How closely the layered renderer's blocks reproduce the whole frame rendered at once.

Large frames are rendered in blocks with margins (``render_layered(..., block=3000)``) to bound memory.
This renders the sample photos (../shared/samples, resized to --width) once as a whole and once in blocks
of --block pixels, and prints the PSNR of the blocks against the whole frame (peak = the frame's maximum),
for the largest CoC at each of --radii pixels and a hexagonal aperture.

    python bench/blocks.py                        # 4 MP, 512 px blocks, 24 and 61 px
    python bench/blocks.py --width 1225 --block 256 --radii 12,31
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=2449, help="photo width in pixels (2449: 4 MP)")
    parser.add_argument("--block", type=int, default=512)
    parser.add_argument("--radii", default="24,61", help="largest CoC radii in pixels, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import lensblur
    from lensblur.io import resize_map
    from lensblur.render.layered import render_layered

    print(f"layered renderer: {args.block} px blocks against the whole frame, PSNR in dB")
    print("| photo | size | max CoC radius | PSNR |")
    print("|---|---|---|---|")
    for name in ("bokehme_3", "bokehme_13"):
        photo = lensblur.read_image(SAMPLES / f"{name}.jpg")
        disparity = lensblur.read_disparity(SAMPLES / f"{name}_disparity16.png")
        width = args.width
        height = round(photo.shape[0] * width / photo.shape[1])
        image = torch.nn.functional.interpolate(torch.from_numpy(photo).permute(2, 0, 1)[None],
                                                size=(height, width), mode="bilinear", align_corners=False)
        disp = torch.from_numpy(np.clip(resize_map(disparity, (height, width)), 0, 1))[None, None].float()
        focus = 0.35
        for radius in (float(v) for v in args.radii.split(",")):
            lens = lensblur.Lens(focus, radius / float((disp - focus).abs().max()), lensblur.Aperture(blades=6))
            whole = render_layered(image, disp, lens, block=max(height, width))
            blocks = render_layered(image, disp, lens, block=args.block)
            mse = float(((whole - blocks) ** 2).mean())
            psnr = 10 * np.log10(float(whole.max()) ** 2 / max(mse, 1e-30))
            print(f"| {name} | {width}x{height} | {radius:.0f} px | {psnr:.1f} |")


if __name__ == "__main__":
    main()
