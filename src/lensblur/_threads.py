"""How many threads lensblur's torch work uses: the cores this process may really run on, not the machine's.

torch's default is the machine's core count, which is wrong inside a container with a CPU quota or a process
pinned to some cores (``taskset``, a batch scheduler), and which collapses when another program competes for the
cores. The policy here: an explicit number wins, then ``LENSBLUR_THREADS``, then the cores available to this
process (its affinity mask, capped by the cgroup CPU quota). Worker processes of a batch take one thread each.

How the threads are used matters as much as how many there are. torch parallelises each operation on its own
(intra-op threads that meet at a barrier after every operation); a renderer runs thousands of operations, and
when another program holds one of the cores every barrier waits for the thread the system has parked, so a
render on two threads can take ten times as long as alone. lensblur's renderers instead run torch on one thread
and parallelise coarse, independent pieces of work (the blocks of a frame, bands of rows) on a small pool of
Python threads (:func:`coarse_parallel`, :func:`parallel_map`; torch releases the GIL inside its kernels): a
busy core then only slows the piece that runs on it.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from .errors import InputError, check_integer

__all__ = ["ENVIRONMENT_VARIABLE", "available_cores", "coarse_parallel", "parallel_bands", "parallel_map",
           "parallel_unordered", "resolve_threads", "set_threads", "single_thread_worker", "worker_count"]

ENVIRONMENT_VARIABLE = "LENSBLUR_THREADS"

# Rows per band of a pass over a whole image (a band of a 4000 px wide RGB float32 image is about 3 MB).
BAND_ROWS = 64

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_quota(root: Path = _CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup, in cores (``None`` when there is none or it cannot be read).
    cgroup v2 keeps ``"QUOTA PERIOD"`` (or ``"max PERIOD"``) in ``cpu.max``; v1 keeps them in two files."""
    try:
        fields = (root / "cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cores(*, cgroup_root: Path = _CGROUP_ROOT) -> int:
    """The number of cores this process may run on: its affinity mask, capped by the cgroup CPU quota
    (rounded up, so a quota of 1.5 cores gives 2 threads), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def resolve_threads(threads: int | None = None) -> int:
    """The thread count to use: ``threads`` if given, else ``LENSBLUR_THREADS``, else :func:`available_cores`.

    Raises:
        InputError: ``threads`` or ``LENSBLUR_THREADS`` is not an integer >= 1.
    """
    if threads is not None:
        check_integer("threads", threads, 1, fix="pass a thread count such as 1 or 2, or leave it out to use "
                                                 "the cores available to this process")
        return threads
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value:
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            raise InputError(ENVIRONMENT_VARIABLE, expected="an integer >= 1", got=value,
                             fix=f"set {ENVIRONMENT_VARIABLE}=1 (or 2, ...), or unset it to use the available cores")
        return count
    return available_cores()


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count by :func:`resolve_threads`'s rule and return it.

    Raises:
        InputError: as :func:`resolve_threads`.
    """
    import torch

    count = resolve_threads(threads)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def single_thread_worker() -> None:
    """Make this process a one-thread worker of a batch (a local pool's or Ray's): torch on one thread and
    every render in it on one worker, whatever ``LENSBLUR_THREADS`` the parent had (it is set to 1 here)."""
    os.environ[ENVIRONMENT_VARIABLE] = "1"
    set_threads(1)


def worker_count(threads: int | None = None) -> int:
    """How many pieces of coarse work a render runs at once: 1 inside a :func:`single_thread` block, else
    ``threads`` if given, else ``LENSBLUR_THREADS``,
    else torch's thread count (what :func:`set_threads` or the caller's ``torch.set_num_threads`` chose, so a
    batch worker set to one thread stays on one) capped by :func:`available_cores`.

    Raises:
        InputError: as :func:`resolve_threads`.
    """
    import torch

    if _SINGLE.get():
        return 1
    if threads is not None or os.environ.get(ENVIRONMENT_VARIABLE, "").strip():
        return resolve_threads(threads)
    return max(1, min(torch.get_num_threads(), available_cores()))


# Whether this thread is inside a single_thread block.
_SINGLE: contextvars.ContextVar[bool] = contextvars.ContextVar("lensblur_single_thread", default=False)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Within the block, in this thread, torch runs on one thread and every render on one worker, whatever
    ``threads`` or ``LENSBLUR_THREADS`` ask for (a batch's driver working on an item beside its one-thread
    workers); torch's thread count is restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    token = _SINGLE.set(True)
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        _SINGLE.reset(token)
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


# The pool of the enclosing coarse_parallel block (None outside one, and in its workers) and its size.
_POOL: contextvars.ContextVar[ThreadPoolExecutor | None] = contextvars.ContextVar("lensblur_pool", default=None)
_WORKERS: contextvars.ContextVar[int] = contextvars.ContextVar("lensblur_workers", default=1)


@contextlib.contextmanager
def coarse_parallel(threads: int | None = None, *, device=None) -> Iterator[int]:
    """Within the block, torch runs on one thread and :func:`parallel_map` / :func:`parallel_unordered` spread
    their items over :func:`worker_count` Python threads; torch's thread count is restored afterwards.

    On another device than the CPU nothing changes (the device runs the operations; the work is queued in
    order) and the maps run their items one by one. Nested blocks run one by one too; a map called from inside
    a worker runs on that worker, helped by any worker that falls idle. Yields the number of workers.

    Args:
        threads: the number of workers, or None for :func:`worker_count`'s rule.
        device: the device the work runs on (None: the CPU).

    Raises:
        InputError: as :func:`resolve_threads`.
    """
    import torch

    if _POOL.get() is not None:
        yield _WORKERS.get()
        return
    workers = worker_count(threads)
    if device is not None and torch.device(device).type != "cpu":
        yield 1
        return
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="lensblur") if workers > 1 else None
    token, count = _POOL.set(pool), _WORKERS.set(workers)
    try:
        yield workers
    finally:
        _POOL.reset(token)
        _WORKERS.reset(count)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


# In a worker of a coarse_parallel block, its pool and the pool's size (the pool's threads do not see the
# context the block set).
_WORKER = threading.local()


def _in_mode(pool: ThreadPoolExecutor, workers: int, inference: bool, fn: Callable, item: object) -> object:
    """``fn(item)`` on a worker of ``pool``, in the inference mode of the thread that mapped it (thread-local in
    torch: a worker would refuse to change the caller's tensors in place)."""
    import torch

    outer = getattr(_WORKER, "pool", None)
    _WORKER.pool = pool, workers
    try:
        with torch.inference_mode(inference):
            return fn(item)
    finally:
        _WORKER.pool = outer


def _submit(pool: ThreadPoolExecutor, fn: Callable, item: object) -> Future:
    import torch

    return pool.submit(_in_mode, pool, _WORKERS.get(), torch.is_inference_mode_enabled(), fn, item)


def _shared_map(pool: ThreadPoolExecutor, workers: int, fn: Callable, items: list) -> list:
    """``[fn(item) for item in items]`` from inside a worker of ``pool``: the worker takes the items one after
    another itself, and any other worker that falls idle meanwhile (its own work done, none queued before)
    takes some too. The worker never waits for work that has not started, so maps nest without deadlock, and
    only idle workers join in, so no more work is in flight than there are workers."""
    import torch

    results: list = [None] * len(items)
    errors: dict[int, Exception] = {}
    lock = threading.Lock()
    taken = 0

    def drain() -> None:
        nonlocal taken
        while True:
            with lock:
                index = taken
                if index >= len(items):
                    return
                taken += 1
            try:
                results[index] = fn(items[index])
            except Exception as error:  # noqa: BLE001 - re-raised by the mapping worker, the first item's
                with lock:
                    errors[index] = error
                    taken = len(items)

    # The pool's queue keeps a cancelled helper until a worker is free to drop it: the helpers reach the items
    # only through this list, emptied once the map is done, so the queue does not keep them alive.
    share = [drain]
    inference = torch.is_inference_mode_enabled()
    helpers = [pool.submit(_in_mode, pool, workers, inference, _help, share)
               for _ in range(min(workers, len(items)) - 1)]
    drain()
    # Helpers that have not started are dropped; those that have finish the item they hold.
    for helper in helpers:
        if not helper.cancel():
            helper.result()
    share.clear()
    if errors:
        first = errors.pop(min(errors))
        _note(first, errors.values())
        raise first
    return results


def _note(error: Exception, others: Iterable[BaseException | None]) -> None:
    """Name on ``error``, the failure a map raises (its first item's), the other items' own failures."""
    for other in others:
        if other is not None and other is not error:
            error.add_note(f"another item failed too: {type(other).__name__}: {other}")


def _note_the_rest(error: Exception, futures: Iterable[Future]) -> None:
    """After ``error`` from one of a map's ``futures``: drop those not started, wait for those running (the
    block's pool waits for them anyway when it shuts down) and name their failures on ``error``."""
    futures = [future for future in futures if not future.cancel()]
    _note(error, (future.exception() for future in futures))


def _help(share: list[Callable[[], None]]) -> None:
    """A helper of :func:`_shared_map`: take items while the map still has some."""
    for drain in list(share):
        drain()


def parallel_map(fn: Callable, items: Iterable) -> list:
    """``[fn(item) for item in items]``, on the workers of the enclosing :func:`coarse_parallel` block when
    there is one, else one by one. Called from one of its workers, the worker runs the items itself, helped
    by the workers that fall idle (:func:`_shared_map`). Each runs in the caller's inference mode. The results
    are in order, and the same as one by one whenever ``fn``'s items are independent."""
    pool = _POOL.get()
    items = list(items)
    if len(items) < 2:
        return [fn(item) for item in items]
    worker = getattr(_WORKER, "pool", None)
    if worker is not None:
        return _shared_map(*worker, fn, items)
    if pool is None:
        return [fn(item) for item in items]
    futures = [_submit(pool, fn, item) for item in items]
    try:
        return [future.result() for future in futures]
    except Exception as error:
        _note_the_rest(error, futures)
        raise
    finally:
        for future in futures:
            future.cancel()


def parallel_bands(fn: Callable[[slice], object], rows: int, band: int = BAND_ROWS) -> list:
    """``fn(rows)`` for the slices of ``band`` rows that cover ``0:rows`` (the last one shorter), in order, on
    the workers of the enclosing :func:`coarse_parallel` block as :func:`parallel_map`: a pass over a whole
    image by bands, so that each band's intermediate results stay in the processor's cache."""
    return parallel_map(fn, [slice(y, min(rows, y + band)) for y in range(0, rows, band)])


def parallel_unordered(fn: Callable, items: Iterable) -> Iterator[tuple[int, object]]:
    """``(index, fn(item))`` for each of ``items``, as they finish (on the workers of the enclosing
    :func:`coarse_parallel` block, as :func:`parallel_map`), so the caller can use each result at once."""
    pool = _POOL.get()
    items = list(items)
    if pool is None or len(items) < 2:
        for index, item in enumerate(items):
            yield index, fn(item)
        return
    futures = {_submit(pool, fn, item): index for index, item in enumerate(items)}
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as error:
                _note_the_rest(error, futures)
                raise
            yield futures[future], result
    finally:
        for future in futures:
            future.cancel()
