"""Where a batch of independent items runs: in this process, in a pool of local processes, or as Ray tasks.

``lensblur render`` (several photos), ``lensblur synth`` and ``lensblur eval`` cut their work into items that
depend on nothing but their own inputs (a photo, a pair index, an image index) and hand them to an
:class:`Executor`. Every executor runs ``fn(shared, item)`` for each item and yields ``(position, result)`` as
items finish, in any order; the caller (the driver) writes results, keeps the resume rules and draws the one
progress bar. Worker processes (local or Ray) run one torch thread each (:func:`lensblur._threads.set_threads`):
parallelism comes from the processes, and a result does not depend on where it was computed.

* ``local`` (the default): ``workers=1`` runs the items here, in order; more workers run them in a pool of
  that many processes, and while they start this process runs items from the end of the list itself, on one
  thread (the results are the same wherever an item runs). On Linux the workers are forked from a server
  process that imported torch once (``forkserver``), so that starting N workers costs one import of torch,
  not N at once; each starts with the environment and CPU affinity the caller has when the map starts, as a
  spawned one would. Elsewhere they are spawned, as Python does by default there. A worker that dies
  (killed, out of memory) stops the map with :class:`WorkerLostError`, and an interrupted map stops its
  workers: each drops the item it is on (its temporary files removed) and the items queued for it. Workers
  whose driver dies without stopping them (killed) do the same on their own.
* ``ray``: one Ray task per item (``num_cpus=1``), on the cluster ``ray.init(address=...)`` connects to:
  ``"auto"`` for the cluster this machine belongs to, ``"host:port"`` for a head node's GCS,
  ``"ray://host:10001"`` for Ray Client, None for a local instance (or an instance already started in this
  process). Workers need lensblur installed and the inputs and outputs where they can reach them (a shared
  folder or fsspec URLs such as ``s3://``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .errors import InputError, LensblurError, check_integer

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "WorkerLostError", "check_shared_location",
           "get_executor"]

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


class Executor:
    """Runs ``fn(shared, item)`` over items (see the module doc). Use as a context manager, or call
    :meth:`close` when done."""

    name = "executor"
    in_process = False

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable, *, shared: Any = None) -> Iterator[tuple[int, Any]]:
        """Run ``fn(shared, item)`` for every item.

        Args:
            fn: a module-level function (it is pickled by reference to reach the workers).
            items: the items, each picklable.
            shared: one value every call receives (sent to each worker once, not once per item).

        Yields:
            ``(position of the item in items, fn's result)``, as items finish.

        Raises:
            Whatever ``fn`` raised, as it raised it; the items still running are abandoned.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- local ----------------------------------------------------------------------------------------------
class WorkerLostError(LensblurError, RuntimeError):
    """A local worker process ended without giving its item's result (killed, or out of memory); the items
    not yet done are not done. ``done`` holds the positions of those that were."""

    def __init__(self, done: set[int], total: int):
        self.done = done
        super().__init__(f"a worker process ended during the work (killed, or out of memory?): {len(done)} of "
                         f"{total} items done, the others not")


_WORKER_STATE: dict[str, Any] = {}


def _pool_context(fn) -> multiprocessing.context.BaseContext:
    """Forkserver on Linux, its server importing torch and ``fn``'s module before it
    forks any worker (nothing in them has started a thread of torch's yet); spawn elsewhere. The server is
    the process's one (:mod:`multiprocessing`'s), started by the first pool and kept for the next ones."""
    # Linux only: on macOS a process that has loaded the system's frameworks (torch's Metal backend) is not
    # safe to fork, which is why Python spawns there by default.
    if not sys.platform.startswith("linux") or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    module = getattr(fn, "__module__", None)
    context.set_forkserver_preload(["torch", *([module] if module and module != "__main__" else [])])
    return context


def start_pool_server() -> None:
    """Start now the server the local pool forks its workers from (Linux; elsewhere nothing), so that its
    import of torch runs while the caller does its own work: a command that will run a pool calls it first.
    The pool then finds the server started (its workers import the pool's function's module themselves); a
    server no pool uses ends with this process."""
    if isinstance(_pool_context(None), multiprocessing.context.ForkServerContext):
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _caller_state() -> tuple[dict[str, str], set[int] | None]:
    """What a worker takes from the caller as the map starts: its environment and its CPU affinity (a
    forked worker would have the forkserver's, from when the server started)."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return dict(os.environ), affinity


def _pool_init(fn, shared, caller: tuple[dict[str, str], set[int] | None], ready) -> None:
    from ._memory import tune_allocator
    from ._threads import single_thread_worker

    environment, affinity = caller
    if environment != dict(os.environ):
        os.environ.clear()
        os.environ.update(environment)
    if affinity is not None and affinity != os.sched_getaffinity(0):
        os.sched_setaffinity(0, affinity)
    # Ctrl-C reaches the whole process group: the driver stops the workers, which should not each report it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_item)
    tune_allocator()        # a process of our own, as the command line's (not done in Ray's workers)
    single_thread_worker()
    _WORKER_STATE["fn"], _WORKER_STATE["shared"] = fn, shared
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        threading.Thread(target=_end_with_driver, args=(parent.sentinel,), name="lensblur-driver-watch",
                         daemon=True).start()
    ready.set()


def _end_with_driver(sentinel) -> None:
    """Once the driver is gone without stopping the pool (killed, or dead on a signal it does not handle),
    nothing will read this worker's results or end it: it ends itself, its item stopped as on the driver's
    SIGTERM (:func:`_stop_item`, its temporary files removed), within a few seconds at most."""
    from multiprocessing.connection import wait as wait_for

    wait_for([sentinel])
    _WORKER_STATE["stopped"] = True          # the items still queued in the pipe are not started
    if _WORKER_STATE.get("busy"):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while _WORKER_STATE.get("busy") and time.monotonic() < deadline:
            time.sleep(0.01)
    os._exit(128 + signal.SIGTERM)


def _pool_call(item: Any) -> Any:
    if _WORKER_STATE.get("stopped"):        # items the pool had queued for this worker before the stop
        raise SystemExit(128 + signal.SIGTERM)
    _WORKER_STATE["busy"] = True
    try:
        return _WORKER_STATE["fn"](_WORKER_STATE["shared"], item)
    finally:
        _WORKER_STATE["busy"] = False


def _stop_item(signum, frame) -> None:
    """A worker's SIGTERM (the driver stopping the pool): the item it is on stops here, unwinding as on an
    error (its temporary files removed), and so do the items queued for it; an idle worker waits for the
    pool's shutdown, which ends it, or for the driver's end (:func:`_end_with_driver`). Killing it outright
    would leave the item's files half-written."""
    _WORKER_STATE["stopped"] = True
    if _WORKER_STATE.get("busy"):
        raise SystemExit(128 + signum)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now: SIGTERM to its workers, each of which abandons its item there (see
    :func:`_stop_item`: the item's temporary files removed as on any error), then the pool shut down with the
    items not started dropped. The workers are signalled through Python 3.14's ``terminate_workers``, or
    before it through the pool's process table, which ``shutdown`` drops, so it is read first."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
    else:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


class LocalExecutor(Executor):
    """Items in this process (``workers=1``) or in a pool of ``workers`` processes, one torch thread each.

    Args:
        workers: processes, >= 1.

    Raises:
        InputError: ``workers`` is not an integer >= 1.
    """

    name = "local"

    def __init__(self, workers: int = 1):
        check_integer("workers", workers, 1, fix="e.g. workers=2 (one per core)")
        self.workers = workers
        self.in_process = workers == 1

    def map(self, fn, items, *, shared=None):
        tasks = list(enumerate(items))
        if not tasks:
            return
        if self.workers == 1 or len(tasks) == 1:
            for position, item in tasks:
                yield position, fn(shared, item)
            return
        yield from _pool_map(fn, tasks, shared, min(self.workers, len(tasks)))


class _Claims:
    """The items of a pool's map not yet taken, ``[left, right)`` of the task list: the pool's submitter
    takes them from the left, this process (while the workers start) from the right."""

    def __init__(self, count: int):
        self._lock = threading.Lock()
        self._left, self._right = 0, count

    def left(self) -> int | None:
        with self._lock:
            if self._left >= self._right:
                return None
            self._left += 1
            return self._left - 1

    def right(self) -> int | None:
        with self._lock:
            if self._left >= self._right:
                return None
            self._right -= 1
            return self._right

    def close(self) -> None:
        """Nothing more is taken (a stop)."""
        with self._lock:
            self._left = self._right


def _pool_map(fn, tasks: list[tuple[int, Any]], shared, workers: int) -> Iterator[tuple[int, Any]]:
    """:meth:`LocalExecutor.map` on a pool of ``workers`` processes.

    A thread submits the items, which starts the workers: with forkserver its first submit waits for the
    server's import of torch (1-2 s on a fresh process), and a spawned worker imports torch itself. Until
    the first worker is ready this process takes items from the end of the list and runs them itself, on one
    thread, so the start-up is not idle time on every core."""
    from ._threads import single_thread

    context = _pool_context(fn)
    ready = context.Event()         # set by the first worker ready for items
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_pool_init,
                               initargs=(fn, shared, _caller_state(), ready))
    claims = _Claims(len(tasks))
    submitted: queue.SimpleQueue = queue.SimpleQueue()
    failed: list[BaseException] = []

    def submit() -> None:
        try:
            while (index := claims.left()) is not None:
                position, item = tasks[index]
                submitted.put((pool.submit(_pool_call, item), position))
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the driver: the pool broke, a stop shut it down
            failed.append(exc)

    submitter = threading.Thread(target=submit, name="lensblur-submit", daemon=True)
    pending: dict = {}
    done: set[int] = set()
    try:
        submitter.start()
        while not ready.is_set() and not failed and (index := claims.right()) is not None:
            position, item = tasks[index]
            with single_thread():
                result = fn(shared, item)
            done.add(position)
            yield position, result
        submitter.join()
        while not submitted.empty():
            future, position = submitted.get()
            pending[future] = position
        if failed and isinstance(failed[0], OSError):      # no process could be started (fork, memory, limits)
            raise InputError("workers", expected="worker processes this machine can start",
                             got=f"{workers} ({type(failed[0]).__name__}: {failed[0]})",
                             fix="fewer workers, or workers=1 (in this process); what was done is kept") from failed[0]
        if failed and not isinstance(failed[0], BrokenProcessPool):
            raise failed[0]
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                position = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise WorkerLostError(done, len(tasks)) from None
                done.add(position)
                yield position, result
        if failed:                          # broken with nothing pending: a worker died as the pool started
            raise WorkerLostError(done, len(tasks))
    except BaseException:       # an item failed, a worker died, or the caller stopped early: stop the rest
        claims.close()
        if submitter.is_alive():
            submitter.join()        # its submit under way, so that the stop sees every worker it started
        _stop(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- Ray ------------------------------------------------------------------------------------------------
def _ray_call(fn, shared, item):
    from ._threads import single_thread_worker

    single_thread_worker()
    return fn(shared, item)


class RayExecutor(Executor):
    """One Ray task per item (one CPU each), at most ``in_flight`` submitted at a time.

    Args:
        address: what ``ray.init(address=...)`` connects to (see the module doc); ignored when Ray is already
            initialised in this process.
        in_flight: tasks submitted ahead of the results (None: twice the cluster's CPUs, at least 4), so that a
            million items do not sit in the driver as a million task specifications.

    Raises:
        MissingDependencyError: Ray is not installed (``lensblur[scale]``).
        InputError: the cluster cannot be reached.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, in_flight: int | None = None):
        from ._optional import require

        self._ray = require("ray", extra="scale", feature="The Ray executor (--executor ray)")
        self._started = False
        if not self._ray.is_initialized():
            _check_reachable(address)
            try:
                self._ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError("ray_address", expected="a Ray cluster to connect to", got=f"{address} ({exc})",
                                 fix="start one (ray start --head) and pass ray_address=auto, or ray_address=HOST:PORT"
                                     " of its head node; leave it out for a local instance") from exc
            self._started = True
        if in_flight is not None:
            check_integer("in_flight", in_flight, 1)
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        self.workers = cpus
        self.in_flight = in_flight or max(4, 2 * cpus)
        self._remote = self._ray.remote(num_cpus=1)(_ray_call)

    def map(self, fn, items, *, shared=None):
        ray = self._ray
        shared_ref = ray.put(shared)
        pending: dict[Any, int] = {}
        source = enumerate(items)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.in_flight:
                try:
                    position, item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pending[self._remote.remote(fn, shared_ref, item)] = position
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            position = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                for other in pending:
                    ray.cancel(other)
                cause = getattr(exc, "cause", None)
                if isinstance(cause, BaseException):
                    raise cause from None
                raise
            yield position, result

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """A ``host:port`` or ``ray://host:port`` address answers on its port: Ray itself retries an address that
    does not for minutes before it gives up."""
    import socket

    if address is None or address == "auto" or ":" not in address:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        return                  # Ray's own error names what is wrong with it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise InputError("ray_address", expected="a Ray cluster to connect to",
                         got=f"{address} (nothing answers there: {exc.strerror or exc})",
                         fix="start one (ray start --head) and pass ray_address=auto, or ray_address=HOST:PORT of its "
                             "head node; leave it out for a local instance") from None


def check_shared_location(location, *, in_process: bool, executor: str, argument: str = "out") -> None:
    """Refuse a ``memory://`` location for worker processes: each would write into its own memory, and the
    driver would find nothing.

    Args:
        location: where the workers write.
        in_process: whether the items run in this process (``Executor.in_process``).
        executor: the executor's name, for the message.
        argument: the name error messages give ``location``.

    Raises:
        InputError: a ``memory://`` location and worker processes.
    """
    if str(location).startswith("memory://") and not in_process:
        raise InputError(argument, expected="a filesystem every worker process sees (memory:// lives in one process)",
                         got=f"{location} with the {executor} executor's worker processes",
                         fix="use one worker (workers=1), or a folder, file:// or an object store URL")


def get_executor(name: str = "local", *, workers: int = 1, address: str | None = None) -> Executor:
    """The executor ``name`` names.

    Args:
        name: ``"local"`` or ``"ray"``.
        workers: the local executor's processes, >= 1 (Ray uses the cluster's CPUs).
        address: the Ray cluster (``"auto"``, ``"host:port"``, ``"ray://host:port"``; None: a local instance).

    Returns:
        The :class:`Executor` (close it when done, or use it in a ``with`` block).

    Raises:
        InputError: an unknown name, bad ``workers``, ``address`` without Ray.
    """
    if name not in EXECUTORS:
        raise InputError("executor", expected=f"one of {', '.join(EXECUTORS)}", got=name, fix="executor=local")
    if name == "ray":
        return RayExecutor(address)
    if address is not None:
        raise InputError("ray_address", expected="a Ray address only with the Ray executor", got=address,
                         fix="add executor=ray, or drop ray_address")
    return LocalExecutor(workers)
