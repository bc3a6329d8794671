"""Coarse parallelism and devices: a render on several workers equals the render on one, torch runs on one
thread inside and gets its thread count back, and the device asked for (the CPU here) is where renders run."""

from __future__ import annotations

import gc
import importlib
import threading
import time
import weakref

import numpy as np
import pytest
import torch
from PIL import Image

import lensblur
from lensblur._threads import coarse_parallel, parallel_map, parallel_unordered, worker_count
from lensblur.cli import main
from lensblur.errors import InputError
from lensblur.methods import get_method

render_module = importlib.import_module("lensblur.render")   # the package (lensblur.render is also the function)


def scene(seed: int = 3, size: tuple[int, int] = (120, 176)):
    """A textured photo with a near box, a far slope and a focused middle: layers in front, sharp and behind."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = rng.random((h, w, 3)).astype(np.float32)
    image[20:28, 30:38] = 4.0                                  # a light above 1
    disparity = np.tile(np.linspace(0.0, 0.6, w, dtype=np.float32), (h, 1))
    disparity[40:90, 60:120] = 0.95
    return image, disparity


@pytest.mark.parametrize("blades", [0, 6])
def test_blocks_on_two_workers_equal_blocks_on_one(blades):
    image, disparity = scene()
    lens = lensblur.Lens(0.5, 12.0, lensblur.Aperture(blades=blades))
    # block=48: the frame is cut into several blocks, which two workers render at once.
    one = lensblur.render(image, disparity, lens, block=48, threads=1)
    two = lensblur.render(image, disparity, lens, block=48, threads=2)
    assert one.shape == image.shape and np.isfinite(one).all()
    assert np.array_equal(one, two)
    # The result does not depend on the thread count torch had before the render either.
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        again = lensblur.render(image, disparity, lens, block=48, threads=2)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one, again)


def test_one_frame_on_two_workers_equals_one_worker():
    # One block: the bands of rows are what runs at once.
    image, disparity = scene(5, (200, 96))
    lens = lensblur.Lens(0.4, 10.0)
    assert np.array_equal(lensblur.render(image, disparity, lens, threads=1),
                          lensblur.render(image, disparity, lens, threads=2))


def test_torch_runs_on_one_thread_inside_and_gets_its_count_back():
    before = torch.get_num_threads()
    seen = []
    try:
        torch.set_num_threads(2)
        with coarse_parallel(2) as workers:
            assert workers == 2
            results = parallel_map(lambda i: (seen.append((torch.get_num_threads(), threading.current_thread().name)),
                                              i * i)[1], range(6))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert results == [0, 1, 4, 9, 16, 25]
    assert {count for count, _ in seen} == {1}
    assert all(name.startswith("lensblur") for _, name in seen)      # on the pool, not the caller's thread


def test_maps_run_in_the_caller_without_a_pool_and_nest_inside_workers():
    main_thread = threading.current_thread().name
    assert parallel_map(lambda i: threading.current_thread().name, range(3)) == [main_thread] * 3
    with coarse_parallel(2):
        # Maps called from workers while every worker is busy: no nested pool, no deadlock, results in order.
        inner = parallel_map(lambda i: parallel_map(lambda j: (i, j, threading.current_thread().name), range(3)),
                             range(2))
        done = dict(parallel_unordered(lambda i: i + 10, range(4)))
    assert [[(i, j) for i, j, _ in names] for names in inner] == [[(i, j) for j in range(3)] for i in range(2)]
    assert all(name != main_thread for names in inner for _, _, name in names)
    assert done == {0: 10, 1: 11, 2: 12, 3: 13}


def test_an_idle_worker_helps_a_busy_workers_map():
    # Item 1 of the outer map maps two items, the first of which waits for the second: they finish only if
    # another worker (idle once item 0 is done) takes the second while the mapping worker holds the first.
    second_ran = threading.Event()

    def inner(j):
        if j == 0:
            return second_ran.wait(timeout=10), threading.current_thread().name
        second_ran.set()
        return True, threading.current_thread().name

    with coarse_parallel(2):
        _, helped = parallel_map(lambda i: None if i == 0 else parallel_map(inner, range(2)), range(2))
    (waited, first), (_, second) = helped
    assert waited and first != second


def test_a_helped_map_raises_the_first_failure_and_keeps_to_the_workers():
    running, most = 0, 0
    lock = threading.Lock()

    def item(j):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.002)
            if j in (5, 7):
                raise ValueError(f"item {j}")
            return j
        finally:
            with lock:
                running -= 1

    with coarse_parallel(2):
        assert parallel_map(lambda i: parallel_map(item, range(5)), range(3)) == [list(range(5))] * 3
        with pytest.raises(ValueError, match="item 5"):
            parallel_map(lambda i: parallel_map(item, range(10)) if i else None, range(2))
    assert most <= 2


def test_a_map_whose_items_fail_together_raises_one_failure_naming_the_others():
    def failing(meet):
        def item(j):
            if j < 2:
                meet.wait()                     # both failing items are running when the first one fails
                raise ValueError(f"item {j}")
            return j
        return item

    def failures(error):
        return sorted([str(error)] + [note.rsplit(": ", 1)[-1] for note in getattr(error, "__notes__", [])])

    with coarse_parallel(2):
        with pytest.raises(ValueError) as raised:
            parallel_map(failing(threading.Barrier(2, timeout=10)), range(2))
        assert failures(raised.value) == ["item 0", "item 1"]
        with pytest.raises(ValueError) as raised:
            list(parallel_unordered(failing(threading.Barrier(2, timeout=10)), range(2)))
        assert failures(raised.value) == ["item 0", "item 1"]
        # Inside a worker, helped by the other one once it is idle.
        with pytest.raises(ValueError) as raised:
            inner = failing(threading.Barrier(2, timeout=10))
            parallel_map(lambda i: parallel_map(inner, range(4)) if i == 0 else None, range(2))
        assert failures(raised.value) == ["item 0", "item 1"]


def test_worker_count_follows_torch_the_environment_and_an_explicit_count(monkeypatch):
    monkeypatch.delenv("LENSBLUR_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)          # a batch worker set to one thread renders with one worker
        assert worker_count() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv("LENSBLUR_THREADS", "3")
    assert worker_count() == 3
    assert worker_count(2) == 2
    with pytest.raises(InputError, match="threads"):
        worker_count(0)


# ------------------------------------------------------------------------------------------ devices
def test_render_runs_on_the_device_asked_for(monkeypatch):
    seen = []

    def probe(image, disparity, lens, **options):
        seen.append((image.device.type, disparity.device.type))
        return image

    monkeypatch.setitem(render_module.METHODS, "probe", lambda: probe)
    image, disparity = scene(size=(8, 8))
    for device in ("cpu", torch.device("cpu"), None):
        lensblur.render(image, disparity, lensblur.Lens(0.5, 2.0), method="probe", device=device)
    assert seen == [("cpu", "cpu")] * 3


@pytest.mark.parametrize("method", ["layered", "scatter", "gaussian"])
def test_every_classical_renderer_takes_a_device(method):
    image, disparity = scene(size=(16, 20))
    lens = lensblur.Lens(0.5, 3.0)
    on_cpu = lensblur.render(image, disparity, lens, method=method, device="cpu")
    assert np.array_equal(on_cpu, lensblur.render(image, disparity, lens, method=method))
    renderer = get_method(method, device="cpu")
    assert np.array_equal(renderer.predict(image, disparity=disparity, lens=lens), on_cpu)


def test_a_device_that_is_not_there_is_refused():
    image, disparity = scene(size=(8, 8))
    with pytest.raises(InputError, match="device"):
        lensblur.render(image, disparity, lensblur.Lens(0.5, 2.0), device="toaster")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            lensblur.render(image, disparity, lensblur.Lens(0.5, 2.0), device="cuda")


# ------------------------------------------------------------------------------------------ the command line
@pytest.fixture
def files(tmp_path):
    image, disparity = scene(size=(24, 32))
    photo, disp = tmp_path / "photo.png", tmp_path / "disp.png"
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(photo)
    Image.fromarray(np.round(disparity * 65535).astype(np.uint16)).save(disp)
    return tmp_path, photo, disp


def test_cli_threads_sets_torch_and_device_reaches_the_renderer(files, monkeypatch, capsys):
    tmp, photo, disp = files
    calls = []
    real = render_module.render

    def spy(*args, **kwargs):
        calls.append(kwargs.get("device"))
        return real(*args, **kwargs)

    monkeypatch.setattr(render_module, "render", spy)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        code = main(["render", str(photo), "--disparity", str(disp), "--blur", "4", "--threads", "1",
                     "--device", "cpu", "-o", str(tmp / "out.png")])
        threads_after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert code == 0 and (tmp / "out.png").is_file()
    assert threads_after == 1
    assert calls == ["cpu"]


@pytest.mark.parametrize(("flags", "message"), [(["--threads", "0"], "--threads: expected an integer >= 1"),
                                                (["--device", "toaster"], "--device: expected auto, cpu")])
def test_cli_refuses_bad_threads_and_devices(files, capsys, flags, message):
    tmp, photo, disp = files
    code = main(["render", str(photo), "--disparity", str(disp), "--blur", "4", *flags, "-o", str(tmp / "o.png")])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp / "o.png").exists()


@pytest.mark.parametrize("command", [["depth", "PHOTO", "-o", "OUT.png"], ["synth", "-o", "OUT", "-n", "1"],
                                     ["metrics", "PHOTO", "PHOTO"], ["render", "PHOTO", "-o", "OUT.png"],
                                     ["eval", "--method", "layered", "--dataset", "synth", "--root", "R", "-o", "OUT"]])
def test_torch_commands_take_threads(command):
    from lensblur.cli import build_parser

    assert build_parser().parse_args(command + ["--threads", "3"]).threads == 3


def test_cli_threads_is_set_before_the_command_runs(files, capsys):
    _, photo, _ = files
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        code = main(["metrics", str(photo), str(photo), "--threads", "1"])
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert code == 0 and after == 1


def test_a_finished_map_leaves_nothing_alive_in_the_pools_queue():
    # While the other worker is busy, the mapping worker's helper waits in the pool's queue, cancelled, until a
    # worker is free: it must not keep the map's items and results alive meanwhile (a render's would be GBs).
    class Big:
        pass

    release = threading.Event()
    alive = []

    def busy_then_map(i):
        if i == 0:
            release.wait(timeout=10)
            return None
        items = [Big() for _ in range(4)]
        alive.extend(weakref.ref(item) for item in items)
        results = parallel_map(lambda item: [item], items)
        alive.extend(weakref.ref(result[0]) for result in results)
        del items, results
        gc.collect()
        left = sum(ref() is not None for ref in alive)
        release.set()
        return left

    with coarse_parallel(2):
        assert parallel_map(busy_then_map, range(2)) == [None, 0]
