"""Speed and memory of the layered renderer: 1, 4, 12 and 24 megapixels, max CoC radius 1%, 2.5% and 5% of
the width (or a radius in pixels), circle and hexagon apertures, 2 CPU threads (or a GPU). Each case runs in
its own process so that its peak memory is its own.

    python bench/speed.py                                    # the full table
    python bench/speed.py --sizes 12 --radius-px 60 --apertures circle,hexagon   # the 12 MP / 60 px target
    python bench/speed.py --sizes 8 --radius-px 40 --device cuda --repeat 20     # the GPU preview target
    python bench/speed.py --sizes 8 --radius-px 40 --device cuda --dtype float16  # in half precision
    python bench/speed.py --sizes 12 --radius-px 60 --profile     # where one render's time goes, by step
    python bench/speed.py --sizes 1 --radius-px 10 --apertures hexagon --split   # what runs serially

The photo is a real one (bokehme_3 from ../shared/samples with its 16-bit disparity) resized to each size;
the focus sits at disparity 0.35 and ``blur`` is chosen so that the largest CoC in the frame is the stated
radius. Prints seconds (the median of --repeat, after one warm-up render of a small crop), megapixels per
second and the process's peak resident memory (and on a GPU the peak memory torch allocated there). On a
GPU the render is timed on tensors already on the device (``render_tensor``), synchronised.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
APERTURES = {"circle": 0, "hexagon": 6}


def tune_allocator() -> None:
    """What the command line does at its start (``lensblur.tune_allocator``), so that the figures are those of
    ``lensblur render``; ``LENSBLUR_ALLOCATOR=system`` measures without it. A checkout from before it has none."""
    import lensblur

    if hasattr(lensblur, "tune_allocator"):
        lensblur.tune_allocator()


def photo_at(megapixels: float):
    """The sample photo and its disparity resized to ``megapixels`` (3:2), as float32 numpy arrays."""
    import numpy as np
    import torch

    import lensblur
    from lensblur.io import resize_map

    photo = lensblur.read_image(SAMPLES / "bokehme_3.jpg")
    disparity = lensblur.read_disparity(SAMPLES / "bokehme_3_disparity16.png")
    width = round((megapixels * 1e6 * 3 / 2) ** 0.5)
    height = round(width * 2 / 3)
    image = torch.nn.functional.interpolate(torch.from_numpy(photo).permute(2, 0, 1)[None], size=(height, width),
                                            mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    return np.ascontiguousarray(image), np.clip(resize_map(disparity, (height, width)), 0, 1)


def lens_for(disparity, radius: float, blades: int):
    """The lens focused at disparity 0.35 whose largest CoC in ``disparity`` is ``radius`` pixels."""
    import numpy as np

    import lensblur

    focus = 0.35
    return lensblur.Lens(focus, radius / float(np.abs(disparity - focus).max()), lensblur.Aperture(blades=blades))


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def yardstick(repeat: int = 9) -> float:
    """Seconds (median of ``repeat``) of a fixed piece of the renderer's kind of work on one thread: FFTs and a
    2x enlargement of a (1, 4, 1024, 1024) float32 grid. The shared machine's speed moves by 1.6x within an hour:
    two tables compare only where their yardsticks, taken before each, agree."""
    import torch

    torch.set_num_threads(1)
    x = torch.rand(1, 4, 1024, 1024, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        torch.fft.irfft2(torch.fft.rfft2(x) * 0.5, s=x.shape[-2:])
        torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_yardstick() -> None:
    """The machine's speed now (:func:`yardstick`): alone, and two copies at once (whether two cores are free)."""
    cmd = [sys.executable, __file__, "--yardstick"]
    alone = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    pair = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    together = max(json.loads(p.communicate()[0]) for p in pair)
    print(f"machine yardstick (FFTs and an enlargement of a 4 x 1024 x 1024 grid, one thread): {alone * 1e3:.0f} ms "
          f"alone, {together * 1e3:.0f} ms with two at once")


def one_case(megapixels: float, radius: float, blades: int, repeat: int, threads: int, method: str,
             device: str, dtype: str = "float32") -> dict:
    import torch

    import lensblur
    from lensblur._device import resolve_device
    from lensblur.render import render_tensor

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    image, disparity = photo_at(megapixels)
    height, width = disparity.shape
    if radius < 1:
        radius *= width
    lens = lens_for(disparity, radius, blades)
    lensblur.render(image[:256, :256], disparity[:256, :256], lens, method=method, device=dev, dtype=dtype)  # warm-up
    x = torch.from_numpy(image).permute(2, 0, 1)[None].to(dev)
    d = torch.from_numpy(disparity)[None, None].to(dev)
    times = []
    for _ in range(repeat):
        if dev.type == "cpu":
            start = time.perf_counter()
            lensblur.render(image, disparity, lens, method=method, dtype=dtype)
        else:
            _synchronize(dev)
            start = time.perf_counter()
            with torch.inference_mode():
                render_tensor(x, d, lens, method=method, dtype=dtype)
            _synchronize(dev)
        times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    device_mb = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    seconds = statistics.median(times)
    return {"megapixels": width * height / 1e6, "size": f"{width}x{height}", "radius_px": radius, "seconds": seconds,
            "mp_per_s": width * height / 1e6 / seconds, "peak_mb": peak_mb, "device_mb": device_mb}


# The steps of a layered render, as (label, the function's file and name in cProfile's terms).
STEPS = [
    ("numpy -> tensor at the boundary", "_convert.py", "image_to_tensor"),
    ("highlights auto", "highlights.py", "recover_highlights"),
    ("per-pixel position between the layers", "layout.py", "fractional_index"),
    ("the blocks (all steps below)", "pipeline.py", "render_one"),
    ("  1. front layers (blurred, on the half-resolution canvas)", "pipeline.py", "composite_front"),
    ("  2. sharp layers (full resolution, on tiles)", "pipeline.py", "composite_sharp"),
    ("  3. back layers", "pipeline.py", "composite_back"),
    ("  4. finish (up-sampling, the fill's remainder)", "pipeline.py", "finish"),
    ("  in 1-3: a run's pooling to its scale", "layout.py", "_pool_run"),
    ("  in 1-3: a layer's share cut from its run (the run's pooling included)", "layout.py", "layer"),
    ("  in 1-3: the blur (FFTs, strips, depthwise)", "convolution.py", "blur"),
    ("    of which FFT convolutions", "convolution.py", "fft_convolve"),
    ("  in 1-3: hidden-part estimates (fill)", "fill.py", "add_fill"),
    ("  in 1-3: compositing on a canvas", "canvas.py", "draw"),
    ("  in 2: the sharp layers' light (their convolutions)", "pipeline.py", "_sharp_light"),
    ("  in 2: the tiles made (positions and photo with their halos)", "canvas.py", ("__init__", "halos")),
    ("  in 2: the canvas moved onto the tiles and back", "canvas.py", ("of", "group", "put_group", "put_back")),
    ("  the front canvas enlarged to full resolution", "canvas.py", "rescaled"),
    ("tensor -> numpy at the boundary", "_convert.py", "tensor_to_image"),
]


def profile_case(megapixels: float, radius: float, blades: int, method: str) -> None:
    """Print where one render's time goes (cProfile, torch and the render on one thread, CPU time)."""
    import cProfile
    import pstats

    import torch

    import lensblur

    torch.set_num_threads(1)
    image, disparity = photo_at(megapixels)
    if radius < 1:
        radius *= disparity.shape[1]
    lens = lens_for(disparity, radius, blades)
    lensblur.render(image[:256, :256], disparity[:256, :256], lens, method=method, threads=1)   # warm-up
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    lensblur.render(image, disparity, lens, method=method, threads=1)
    profiler.disable()
    stats = pstats.Stats(profiler).stats        # (file, line, name) -> (calls, ..., total, cumulative, callers)
    total = sum(v[2] for v in stats.values())
    print(f"{disparity.shape[1]}x{disparity.shape[0]}, largest CoC {radius:.0f} px, blades {blades}, one thread: "
          f"{total:.2f} s of CPU in all")
    print("| step | seconds | share | calls |")
    print("|---|---|---|---|")
    for label, file, name in STEPS:
        names = (name,) if isinstance(name, str) else name
        hits = [v for (f, _, n), v in stats.items() if f.endswith(file) and n in names]
        if hits:
            seconds, calls = sum(v[3] for v in hits), sum(v[1] for v in hits)
            print(f"| {label} | {seconds:.2f} | {seconds / total:.0%} | {calls} |")


def _count_worker_cpu() -> dict[str, float]:
    """Each pool thread's CPU time spent on the items it ran, by thread name, from now on (the standard
    library's thread-pool work item, wrapped; the same for any code that runs work on a ThreadPoolExecutor)."""
    from concurrent.futures import thread

    busy: dict[str, float] = {}
    run = thread._WorkItem.run
    if getattr(run, "counted", None) is not None:
        return run.counted

    def counted_run(self):
        import threading

        start = time.thread_time()
        try:
            return run(self)
        finally:
            name = threading.current_thread().name
            busy[name] = busy.get(name, 0.0) + time.thread_time() - start

    counted_run.counted = busy
    thread._WorkItem.run = counted_run
    return busy


def split_case(megapixels: float, radius: float, blades: int, method: str, threads: int, repeat: int) -> None:
    """Print how much of a render's CPU time runs on the calling thread (serially) and how much on each worker,
    and the wall time that split allows on ``threads`` free cores: evenly shared (the calling thread's CPU plus
    the rest over ``threads``), and as the workers shared it (the calling thread's plus the busiest worker's:
    in a frame of several blocks the calling thread waits while the workers run, so this is the render's
    critical path; in a frame of one block the calling thread works beside them, and it is an upper bound).
    CPU times hardly depend on what else runs on the machine, so this reads the same on a shared machine as on
    a quiet one (within some 10-20%); the wall time needs a quiet one."""
    import statistics

    import torch

    import lensblur

    torch.set_num_threads(threads)
    image, disparity = photo_at(megapixels)
    if radius < 1:
        radius *= disparity.shape[1]
    lens = lens_for(disparity, radius, blades)
    lensblur.render(image[:256, :256], disparity[:256, :256], lens, method=method, threads=threads)   # warm-up
    busy = _count_worker_cpu()
    calling, every, wall, busiest, idlest = [], [], [], [], []
    for _ in range(repeat):
        busy.clear()
        start, own, cpu = time.perf_counter(), time.thread_time(), time.process_time()
        lensblur.render(image, disparity, lens, method=method, threads=threads)
        wall.append(time.perf_counter() - start)
        calling.append(time.thread_time() - own)
        every.append(time.process_time() - cpu)
        # a pool's threads are named by their number in it; the render's pools reuse the numbers
        per_worker: dict[str, float] = {}
        for name, seconds in busy.items():
            number = name.rsplit("_", 1)[-1]
            per_worker[number] = per_worker.get(number, 0.0) + seconds
        work = sorted(per_worker.values()) or [0.0]
        busiest.append(work[-1])
        idlest.append(work[0] if len(work) == threads else 0.0)
    serial, total = statistics.median(calling), statistics.median(every)
    most, least = statistics.median(busiest), statistics.median(idlest)
    balanced = serial + (total - serial) / threads
    as_shared = serial + most if threads > 1 else total
    print(f"{disparity.shape[1]}x{disparity.shape[0]}, largest CoC {radius:.0f} px, blades {blades}, {threads} workers, "
          f"median of {repeat}: CPU {total:.3f} s in all, {serial:.3f} s on the calling thread ({serial / total:.0%}), "
          f"the busiest worker {most:.3f} s, the least busy {least:.3f} s; on {threads} free cores at best "
          f"{balanced:.3f} s (evenly shared), {as_shared:.3f} s as shared (calling thread + busiest worker); wall "
          f"here {statistics.median(wall):.3f} s")


def main() -> None:
    tune_allocator()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,12,24", help="megapixels, comma-separated")
    parser.add_argument("--radii", default="0.01,0.025,0.05", help="max CoC radius as a fraction of the width")
    parser.add_argument("--radius-px", default=None, help="max CoC radii in pixels instead, comma-separated")
    parser.add_argument("--apertures", default="circle", help="circle and/or hexagon, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", default="layered")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--dtype", default="float32", help="float32, float16 or bfloat16 (render(..., dtype=))")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--yardstick", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--split", action="store_true",
                        help="print how much of a render's CPU time runs on the calling thread and how much on the "
                             "workers (the first size, radius and aperture; --threads workers, --repeat renders)")
    parser.add_argument("--profile", action="store_true",
                        help="print where the time of one render goes, by step (the first size, radius and "
                             "aperture; one thread, CPU time) instead of timing")
    args = parser.parse_args()
    if args.profile:
        radius = float(args.radius_px.split(",")[0]) if args.radius_px else float(args.radii.split(",")[0])
        profile_case(float(args.sizes.split(",")[0]), radius, APERTURES[args.apertures.split(",")[0]], args.method)
        return
    if args.split:
        radius = float(args.radius_px.split(",")[0]) if args.radius_px else float(args.radii.split(",")[0])
        split_case(float(args.sizes.split(",")[0]), radius, APERTURES[args.apertures.split(",")[0]], args.method,
                   args.threads, args.repeat)
        return
    if args.yardstick:
        print(json.dumps(yardstick()))
        return
    if args.case:
        mp, radius, blades = args.case.split(":")
        print(json.dumps(one_case(float(mp), float(radius), int(blades), args.repeat, args.threads, args.method,
                                  args.device, args.dtype)))
        return
    radii = ([(float(v), "") for v in args.radius_px.split(",")] if args.radius_px else
             [(float(v), f"{float(v):.1%} ") for v in args.radii.split(",")])
    print(f"lensblur {args.method} renderer on {args.device} in {args.dtype}, {args.threads} threads, median of "
          f"{args.repeat}")
    print_yardstick()
    print("| size | MP | aperture | max CoC radius | seconds | MP/s | peak memory |")
    print("|---|---|---|---|---|---|---|")
    for mp in (float(v) for v in args.sizes.split(",")):
        for radius, label in radii:
            for aperture in args.apertures.split(","):
                cmd = [sys.executable, __file__, "--case", f"{mp}:{radius}:{APERTURES[aperture]}", "--repeat",
                       str(args.repeat), "--threads", str(args.threads), "--method", args.method, "--device",
                       args.device, "--dtype", args.dtype]
                done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
                if done.returncode != 0:
                    last = (done.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"| {mp} MP | | {aperture} | {label} | failed: {last} | | |", flush=True)
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                memory = f"{r['peak_mb'] / 1024:.2f} GB"
                if r["device_mb"] is not None:
                    memory += f" (device {r['device_mb'] / 1024:.2f} GB)"
                print(f"| {r['size']} | {r['megapixels']:.1f} | {aperture} | {label}({r['radius_px']:.0f} px) "
                      f"| {r['seconds']:.2f} | {r['mp_per_s']:.2f} | {memory} |", flush=True)


if __name__ == "__main__":
    main()
