"""Maps called from inside a worker of the render's pool (lensblur._threads): an idle worker takes their items,
a busy one leaves them to the caller, results keep their order, and the bytes of a render stay those of one
worker."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import lensblur
from lensblur._threads import coarse_parallel, parallel_map, parallel_unordered

TIMEOUT = 10.0


def test_an_idle_worker_takes_the_items_of_a_map_inside_another_worker():
    # The outer map's first item maps over two items that need each other (each waits for the other's event):
    # one by one on the worker that called the map, the first would wait forever. The outer map's second item
    # returns at once, so the second worker is idle and must take the inner map's second item.
    first_ran, second_ran = threading.Event(), threading.Event()
    threads = {}

    def inner(i):
        threads[i] = threading.current_thread().name
        mine, other = (first_ran, second_ran) if i == 0 else (second_ran, first_ran)
        mine.set()
        return i if other.wait(TIMEOUT) else None

    def outer(i):
        return parallel_map(inner, [0, 1]) if i == 0 else "idle"

    with coarse_parallel(2):
        assert parallel_map(outer, [0, 1]) == [[0, 1], "idle"]
    assert threads[0] != threads[1]


def test_a_busy_pool_leaves_the_items_to_the_worker_that_mapped_them():
    # Both workers hold an outer item from before either inner map starts until both are done: no worker is
    # free, so each inner map's items all run on the worker that called it, in order.
    started, done = threading.Barrier(2, timeout=TIMEOUT), threading.Barrier(2, timeout=TIMEOUT)
    seen = {0: [], 1: []}

    def outer(i):
        me = threading.current_thread().name
        started.wait()
        out = parallel_map(lambda k: (seen[i].append(threading.current_thread().name), k * 10 + i)[1], range(5))
        done.wait()
        return me, out

    with coarse_parallel(2):
        results = parallel_map(outer, [0, 1])
    for i, (me, out) in enumerate(results):
        assert out == [k * 10 + i for k in range(5)]
        assert seen[i] == [me] * 5


def test_unordered_inside_a_worker_gives_every_index_once():
    def outer(i):
        return sorted(parallel_unordered(lambda k: k * k + i, range(7)))

    with coarse_parallel(2):
        results = parallel_map(outer, range(4))
    assert results == [[(k, k * k + i) for k in range(7)] for i in range(4)]


def test_an_error_inside_an_offered_map_reaches_the_caller():
    def inner(k):
        if k == 2:
            raise ValueError("item 2")
        return k

    with coarse_parallel(2), pytest.raises(ValueError, match="item 2"):
        parallel_map(lambda i: parallel_map(inner, range(4)), range(2))


def test_a_frame_of_several_blocks_is_the_same_on_one_and_two_workers():
    # 8 blocks of 64 px on two workers, whose maps inside the blocks are taken by whichever worker is free:
    # the bytes must be those of one worker.
    rng = np.random.default_rng(3)
    h, w = 150, 230
    image = rng.random((h, w, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    disparity = np.clip(0.2 + 0.6 * (xx / w) + 0.15 * np.sin(yy / 9.0), 0, 1).astype(np.float32)
    lens = lensblur.Lens(0.5, 14.0, lensblur.Aperture(blades=6))
    one = lensblur.render(image, disparity, lens, block=64, threads=1)
    two = lensblur.render(image, disparity, lens, block=64, threads=2)
    assert one.tobytes() == two.tobytes()
