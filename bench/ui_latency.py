"""Latency of the ``lensblur ui`` preview: what a click or a slider costs before the page shows the new picture.

    python bench/ui_latency.py                         # 1 and 4 MP previews, blur 30 px, 5 clicks each
    python bench/ui_latency.py --previews 0.25 --repeat 2 --blur 10     # a quick check

The photo is the built-in example (``lensblur.examples.motorcycle``, a real photo with ground-truth disparity)
enlarged to 8 MP, dropped on a server's workspace with its disparity map, exactly as the page does it; each
"click" focuses on another point (the depth stays resolved, as it does in the page) and runs
``Workspace.preview``: the render command line parsed, the lens built, the preview rendered by the layered
renderer with the blur scaled to the preview, and the JPEG the page receives encoded. The photo's tensors and its
recovered highlights are kept by the session from the first click on, as the page's session keeps them (the
warm-up click, not counted in the medians, makes them: its time is printed as "first"; its highlights are the
shrunk photo's while the search for the lights at full size, started with the depth, runs, and the bench waits
for that search, "lights found" after the first click began, before the timed clicks). Prints, per preview size,
the medians of the render alone, of the encoding (sRGB and JPEG) and of the whole request (without the network,
which is local), the best request, the first, and when the lights were found.
Threads: torch's default unless --threads is given.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--previews", default="1,4", help="preview sizes in megapixels (default 1,4)")
    parser.add_argument("--photo-megapixels", type=float, default=8.0, help="the dropped photo's size (default 8)")
    parser.add_argument("--blur", type=float, default=30.0, help="blur K at the photo's full size (default 30)")
    parser.add_argument("--aperture", default="hexagon", help="aperture shape (default hexagon)")
    parser.add_argument("--repeat", type=int, default=5, help="clicks per size (default 5), after one warm-up")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from lensblur.examples import motorcycle
    from lensblur.io import resize_map, write_disparity, write_image
    from lensblur.ui.session import Workspace, shrink

    if args.threads:
        torch.set_num_threads(args.threads)
    image, disparity = motorcycle()
    scale = (args.photo_megapixels * 1e6 / (image.shape[0] * image.shape[1])) ** 0.5
    size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
    image, disparity = shrink(image, size), np.clip(resize_map(disparity, size), 0.0, 1.0)
    print(f"photo {size[1]}x{size[0]} ({size[0] * size[1] / 1e6:.1f} MP), blur {args.blur:g} px at full size, "
          f"{args.aperture}, {torch.get_num_threads()} torch threads")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        photo, depth = Path(scratch) / "photo.png", Path(scratch) / "photo-disparity.png"
        write_image(photo, image)
        write_disparity(depth, disparity)
        print(f"{'preview':>10} {'pixels':>10} {'render median':>14} {'encode median':>14} {'request median':>15} "
              f"{'request best':>13} {'first':>9} {'lights found':>13}")
        for megapixels in (float(v) for v in args.previews.split(",")):
            workspace = Workspace(preview_pixels=int(megapixels * 1e6), max_pixels=10**9)
            try:
                session = workspace.new_session()
                for role, source in (("photo", photo), ("disparity", depth)):
                    path = workspace.upload_path(session, role, source.name)
                    path.write_bytes(source.read_bytes())
                    if role == "photo":
                        workspace.add_photo(session, path, source.name)
                    else:
                        session.files[role], session.names[role] = path, path.name
                renders, encodes, requests = [], [], []
                for i in range(args.repeat + 1):
                    x, y = int(rng.integers(0, size[1])), int(rng.integers(0, size[0]))
                    settings = {"focus": {"point": [x, y]}, "blur": args.blur, "aperture": args.aperture}
                    started = time.perf_counter()
                    reply = workspace.preview(session, settings)
                    if not i:              # the first one resolves the depth and warms up; the lights'
                        first = time.perf_counter() - started         # search at full size starts with the depth
                        session.lights[1].result()
                        search = time.perf_counter() - started
                    else:
                        requests.append(time.perf_counter() - started)
                        renders.append(reply["render_seconds"])
                        encodes.append(reply["encode_seconds"])
                w, h = reply["size"]
                print(f"{megapixels:>8g}MP {w:>5}x{h:<4} {statistics.median(renders) * 1e3:>11.0f} ms "
                      f"{statistics.median(encodes) * 1e3:>11.0f} ms {statistics.median(requests) * 1e3:>12.0f} ms "
                      f"{min(requests) * 1e3:>10.0f} ms {first * 1e3:>6.0f} ms {search * 1e3:>10.0f} ms")
            finally:
                workspace.close()


if __name__ == "__main__":
    main()
