"""Batch rendering throughput: ``lensblur render FOLDER -o OUT/ --workers N`` against one photo on one thread.

Makes --photos photos of --megapixels MP from the built-in example (each cropped at another offset and
flipped every other time, so that no two are the same), with their disparity maps, then measures

* the single-thread rate: ``lensblur render photo --disparity map --threads 1 -o out`` of one photo in this
  process, photos per second: the mean time of 2 x --repeats photos spread over the set, half of them before
  the batch and half after (after one warm-up). ``--threads 1`` matters:
  the command line sets torch's threads by lensblur's policy, so without it the "single" render ran on every
  core (the work of a 2 MP photo spread over both cores), which made the ideal too high (this is why the
  ratio read 0.70);
* the pool's start-up: the batch's pool of --workers processes each importing the renderer and answering
  once (in a process of its own): the time the batch's driver renders photos itself, on one thread, before
  its workers take over;
* the batch rate: one ``lensblur render`` over the whole folder with ``--workers`` processes (default: the
  cores this process may use), photos per second of wall time, pool start-up included;

and prints both, the ideal (cores x the single-thread rate) and the ratio. The target is a ratio of at least
0.9. Run it on a quiet machine:

    python bench/batch.py                                  # 50 photos of 2 MP, one worker per core
    python bench/batch.py --photos 5 --megapixels 0.1      # a quick check that it runs
    python bench/batch.py --rounds 3                       # three rounds and their median: the machine drifts
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def make_photos(folder: Path, count: int, megapixels: float) -> None:
    """``count`` photos of about ``megapixels`` MP in ``folder/photos`` and their maps in ``folder/maps``."""
    import torch

    from lensblur.examples import motorcycle
    from lensblur.io import write_image

    image, disparity = motorcycle()
    h, w = disparity.shape
    scale = (megapixels * 1e6 / (0.8 * h * 0.8 * w)) ** 0.5   # each photo is a 80 % crop, resized
    out_h, out_w = max(32, round(0.8 * h * scale)), max(32, round(0.8 * w * scale))
    (folder / "photos").mkdir()
    (folder / "maps").mkdir()
    for k in range(count):
        dy = (k * 7) % (h - int(0.8 * h))
        dx = (k * 13) % (w - int(0.8 * w))
        crop = slice(dy, dy + int(0.8 * h)), slice(dx, dx + int(0.8 * w))
        stack = torch.from_numpy(np.concatenate([image[crop], disparity[crop][..., None]], axis=2))
        stack = torch.nn.functional.interpolate(stack.permute(2, 0, 1)[None], size=(out_h, out_w), mode="bilinear",
                                                align_corners=False)[0].permute(1, 2, 0).numpy()
        if k % 2:
            stack = stack[:, ::-1]
        write_image(folder / "photos" / f"photo{k:03d}.png", np.ascontiguousarray(stack[..., :3]))
        np.save(folder / "maps" / f"photo{k:03d}.npy", np.clip(np.ascontiguousarray(stack[..., 3]), 0, 1))


_STARTUP = """
import sys, time
from lensblur.executor import LocalExecutor

def first_photo_ready(shared, item):
    import lensblur.cli.render  # what a batch worker imports before its first photo
    import lensblur.render.layered  # noqa: F401

if __name__ == "__main__":
    start = time.perf_counter()
    list(LocalExecutor(int(sys.argv[1])).map(first_photo_ready, range(int(sys.argv[1]))))
    print(time.perf_counter() - start)
"""


def pool_startup(workers: int) -> float:
    """Seconds for the batch's pool (``lensblur.executor.LocalExecutor``) of ``workers`` processes to start and
    each import the renderer: in a process of its own, so that the batch measured here starts its pool as a
    fresh ``lensblur render`` does (a forkserver, where the pool uses one, stays for the process's next pools)."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="lensblur-bench-startup-") as tmp:
        script = Path(tmp) / "startup.py"
        script.write_text(_STARTUP)
        done = subprocess.run([sys.executable, str(script), str(workers)], capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def stop_pool_server() -> None:
    """Stop the server the last round's pool forked its workers from, so that every round's batch starts its
    own as a fresh ``lensblur render`` does (Python keeps it for the process's next pools). Its stop is
    private to :mod:`multiprocessing` (``ForkServer._stop``, Python 3.8 on); without it the rounds after the
    first find the server running."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def main() -> None:
    from lensblur._threads import available_cores

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--megapixels", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=available_cores(), help="batch processes (default: cores)")
    parser.add_argument("--blur", type=float, default=30.0, help="CoC scale K in pixels (30)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="single-photo renders timed before the batch, and as many after, each of another photo (5)")
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of single photos, batch, single photos; the ratio printed last is their "
                             "median (1)")
    args = parser.parse_args()

    from lensblur._threads import set_threads
    from lensblur.cli import main as lensblur

    lens = ["--blur", str(args.blur), "--focus-disparity", "0.5", "--no-progress"]
    with tempfile.TemporaryDirectory(prefix="lensblur-bench-batch-") as tmp:
        root = Path(tmp)
        make_photos(root, args.photos, args.megapixels)
        first = root / "photos" / "photo000.png"
        set_threads(1)

        def single_times(indices) -> list[float]:
            times = []
            for k in indices:
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    code = lensblur(["render", str(root / "photos" / f"photo{k:03d}.png"), "--disparity",
                                     str(root / "maps" / f"photo{k:03d}.npy"), *lens, "--threads", "1",
                                     "-o", str(root / f"single{k}.png")])
                assert code == 0, "the single render failed"
                times.append(time.perf_counter() - start)
            return times

        # The photos' depth differs, and so does their cost: the single renders are photos spread over the
        # whole set, and their mean time is what one photo costs (as the batch's rate is the mean over all).
        # Half of them run before the batch and half after, so that a machine drifting slower or faster
        # during the run moves the two rates alike.
        count = max(1, min(args.repeats, (args.photos - 1) // 2))
        spread = [1 + round(i * (args.photos - 2) / max(1, 2 * count - 1)) for i in range(2 * count)]
        single_times([0])                                   # warm-up
        from lensblur.io import read_image

        h, w = read_image(first).shape[:2]
        cores = min(args.workers, available_cores()) if args.executor == "local" else args.workers
        print(f"batch render: {args.photos} photos of {w}x{h} ({w * h / 1e6:.2f} MP), blur {args.blur:g} px, "
              f"{args.executor} executor, {args.workers} workers, {available_cores()} cores available")
        ratios = []
        for round_ in range(args.rounds):
            if round_:
                stop_pool_server()
            before = single_times(spread[0::2])
            startup = pool_startup(args.workers) if args.executor == "local" else None
            out = root / f"out{round_}"
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                code = lensblur(["render", str(root / "photos"), "--disparity-dir", str(root / "maps"), *lens,
                                 "-o", f"{out}/", "--workers", str(args.workers), "--executor", args.executor])
            wall = time.perf_counter() - start
            assert code == 0, "the batch failed"
            after = single_times(spread[1::2])
            written = len(list(out.iterdir()))
            assert written == args.photos, f"{written} outputs for {args.photos} photos"
            single = len(before + after) / sum(before + after)
            batch = args.photos / wall
            ideal = cores * single
            ratios.append(batch / ideal)
            if args.rounds > 1:
                print(f"round {round_ + 1} of {args.rounds}:")
            print(f"single photo, 1 thread: {single:.3f} photos/s ({1 / single:.3f} s per photo, --threads 1; the "
                  f"mean of {len(before)} before the batch, {statistics.mean(before):.3f} s, and {len(after)} after, "
                  f"{statistics.mean(after):.3f} s)")
            print(f"batch:                  {batch:.3f} photos/s ({wall:.2f} s wall, pool start-up included)")
            if startup is not None:
                print(f"pool start-up:          {startup:.2f} s ({startup / wall:.0%} of the batch's wall time, which "
                      f"the driver spends rendering photos itself)")
            print(f"ideal ({cores} x single):  {ideal:.3f} photos/s")
            print(f"ratio batch / ideal:    {batch / ideal:.2f}")
    ratio = statistics.median(ratios)
    which = "" if args.rounds == 1 else f", the median of {args.rounds} rounds ({', '.join(f'{r:.2f}' for r in ratios)})"
    print(f"ratio: {ratio:.2f}{which} (target >= 0.90: {'met' if ratio >= 0.9 else 'not met'})")


if __name__ == "__main__":
    main()
