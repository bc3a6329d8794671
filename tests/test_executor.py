"""lensblur.executor: the local pool and Ray tasks give the results this process gives (synth's bytes, eval's
scores), one torch thread per worker, and a worker's InputError reaches the driver as itself."""

from __future__ import annotations

import csv
import filecmp
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lensblur.data import SynthDataset
from lensblur.errors import InputError
from lensblur.eval import EvalOptions, Identity, evaluate, get_method
from lensblur.executor import LocalExecutor, WorkerLostError, get_executor
from lensblur.synth.dataset import synthesize
from processes import alive, descendants  # tests/ is on sys.path: its conftest.py is the root one

NO_PERCEPTUAL = {"lpips": "n/a (test)", "dists": "n/a (test)"}
TINY = {"size": (48, 32), "samples": 16, "seed": 5, "progress": False}


def _square_and_threads(shared, item):
    import torch

    return shared * item * item, torch.get_num_threads()


def _where(shared, item):
    """Which process ran the item, on how many torch threads and render workers; 0.3 s of work."""
    import os
    import time

    import torch

    from lensblur._threads import worker_count

    time.sleep(0.3)
    return os.getpid(), torch.get_num_threads(), worker_count()


def _refuse(shared, item):
    if item == 2:
        raise InputError("blur", expected="a number >= 0", got=item, fix="blur=30")
    return item


def _die_on_two(shared, item):
    import os
    import time

    if item == 2:
        os._exit(1)             # as a worker the system killed (out of memory, SIGKILL)
    time.sleep(0.2 * item)      # the others finish after it has died
    return item


def _environment_and_affinity(shared, item):
    import os

    return os.environ.get("LENSBLUR_TEST_MARK"), tuple(sorted(os.sched_getaffinity(0)))


def _write_slowly(folder, item):
    """An item that writes its output through ``atomic_path`` for about 0.5 s, or as long as it is let."""
    import time
    from pathlib import Path

    from lensblur.io.files import atomic_path

    with atomic_path(Path(folder) / f"item{item}.txt") as tmp:
        tmp.write_text("partial")
        end = time.monotonic() + 0.5
        while time.monotonic() < end:       # Python work: a stop reaches it at once
            pass
        tmp.write_text("whole")
    return item


def _same_tree(a, b) -> None:
    compare = filecmp.dircmp(a, b)
    assert not compare.left_only and not compare.right_only and not compare.diff_files, (a, b)
    _, mismatch, errors = filecmp.cmpfiles(a, b, compare.common_files, shallow=False)
    assert not mismatch and not errors
    for sub in compare.common_dirs:
        _same_tree(a / sub, b / sub)


def _scores(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


# -- local ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_local_pool_gives_every_result_once_with_one_thread_per_worker():
    with LocalExecutor(2) as pool:
        got = dict(pool.map(_square_and_threads, range(6), shared=3))
    assert got == {k: (3 * k * k, 1) for k in range(6)}
    assert dict(LocalExecutor(1).map(_square_and_threads, range(3), shared=3)).keys() == {0, 1, 2}


@pytest.mark.slow
def test_this_process_runs_items_on_one_thread_while_the_workers_start(monkeypatch):
    """The driver takes items from the end of the list until a worker is ready (it cannot be before the
    map has started), each on one thread whatever LENSBLUR_THREADS says; its threads are restored after."""
    import torch

    monkeypatch.setenv("LENSBLUR_THREADS", "2")
    torch.set_num_threads(2)
    got = dict(LocalExecutor(2).map(_where, range(8)))
    assert sorted(got) == list(range(8))
    here = [position for position, (pid, _, _) in got.items() if pid == os.getpid()]
    assert here and sorted(here) == list(range(8 - len(here), 8)), got      # the last items
    assert len(here) < 8, got                                        # the workers took the others
    assert {(threads, workers) for _, threads, workers in got.values()} == {(1, 1)}
    assert torch.get_num_threads() == 2


def test_a_pool_that_cannot_start_its_workers_is_said_in_terms_of_workers(monkeypatch):
    """Starting a worker fails (fork refused: too many processes, no memory): the map stops with an error
    about ``workers`` and its fix, not the system's traceback from inside the pool."""
    from concurrent.futures import ProcessPoolExecutor

    def refused(self, *args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ProcessPoolExecutor, "submit", refused)
    with pytest.raises(InputError, match=r"workers: expected worker processes this machine can start, got 2 "
                                         r"\(BlockingIOError: .*Fix: fewer workers, or workers=1"):
        dict(LocalExecutor(2).map(_square_and_threads, range(6), shared=3))


@pytest.mark.slow
def test_a_worker_that_dies_stops_the_map_with_an_error_instead_of_a_hang():
    got = []
    with pytest.raises(WorkerLostError, match="a worker process ended during the work") as raised:
        for position, value in LocalExecutor(2).map(_die_on_two, range(6)):
            got.append(position)
    assert 2 not in got and raised.value.done == set(got) and len(got) < 6


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity masks are a Linux feature")
def test_workers_take_the_callers_environment_and_affinity_as_the_map_starts(monkeypatch):
    """Pool workers may be forked from a server started by an earlier map; they still start with what the
    caller has now, as spawned ones would."""
    list(LocalExecutor(2).map(_square_and_threads, range(2), shared=1))        # a pool before the change
    before = os.sched_getaffinity(0)
    monkeypatch.setenv("LENSBLUR_TEST_MARK", "now")
    try:
        os.sched_setaffinity(0, {min(before)})
        got = dict(LocalExecutor(2).map(_environment_and_affinity, range(4)))
    finally:
        os.sched_setaffinity(0, before)
    assert set(got.values()) == {("now", (min(before),))}


@pytest.mark.slow
def test_a_stopped_map_abandons_its_items_and_leaves_no_temporary_file(tmp_path):
    """What a Ctrl-C or SIGTERM in the driver does: the generator is closed while items run. The workers
    drop their items there (the items' temporary files removed) and the ones queued; nothing runs on."""
    started = None
    for position, _ in LocalExecutor(2).map(_write_slowly, range(12), shared=str(tmp_path)):
        started = time.monotonic()
        break                               # the caller stops after the first result
    stopped_in = time.monotonic() - started
    time.sleep(1.0)                         # anything still running would write now
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.startswith(".")], names                 # no temporary file left
    assert len(names) < 6, names            # the queued items did not run (12 items of 0.5 s on 2 workers)
    assert all((tmp_path / n).read_text() == "whole" for n in names)
    assert stopped_in < 3, stopped_in


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc (Linux)")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM to its group"])
def test_workers_end_with_a_driver_that_dies_without_stopping_them(tmp_path, how):
    """A program killed outright (SIGKILL, the out-of-memory killer), or dead on a SIGTERM it does not handle
    (sent to its process group, as a shell or a scheduler sends it), cannot stop its pool: the workers see
    the driver's end and end themselves, their items' temporary files removed. Before, they waited forever."""
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_executor import _write_slowly\nfrom lensblur.executor import LocalExecutor\n"
        "if __name__ == '__main__':\n"
        f"    for position, _ in LocalExecutor(2).map(_write_slowly, range(40), shared={str(out)!r}):\n"
        "        print(position, flush=True)\n")
    driver = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    below: list[int] = []
    try:
        for _ in range(8):          # 0.5 s items: the workers are at work (the driver takes some first)
            assert driver.stdout.readline(), "the driver ended early"
        below = descendants(driver.pid)
        if how == "SIGKILL":
            driver.kill()
        else:
            os.killpg(driver.pid, signal.SIGTERM)
        driver.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in below) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in below if alive(pid)]
    finally:
        for pid in [driver.pid, *below]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        driver.stdout.close()
    assert below and not left, (below, left)
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".")], names         # no temporary file left
    assert 8 <= len(names) < 40 and all((out / n).read_text() == "whole" for n in names)


def test_a_ray_address_where_nothing_answers_is_refused_at_once():
    import socket

    from lensblur.executor import _check_reachable

    with socket.socket() as probe:      # a port nothing listens on: bound, never listened
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        started = time.monotonic()
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            with pytest.raises(InputError, match="ray_address: expected a Ray cluster to connect to.*nothing answers"):
                _check_reachable(address)
    assert time.monotonic() - started < 5
    _check_reachable("auto")            # left to Ray: the cluster this machine belongs to
    _check_reachable(None)


@pytest.mark.slow
def test_a_workers_input_error_reaches_the_driver_as_itself():
    with pytest.raises(InputError, match=r"blur: expected a number >= 0, got 2. Fix: blur=30"):
        list(LocalExecutor(2).map(_refuse, range(4)))


def test_executor_arguments_are_checked():
    with pytest.raises(InputError, match="executor: expected one of local, ray"):
        get_executor("dask")
    with pytest.raises(InputError, match="ray_address: expected a Ray address only with the Ray executor"):
        get_executor("local", address="auto")
    with pytest.raises(InputError, match="workers"):
        get_executor("local", workers=0)


@pytest.mark.slow
def test_synth_in_a_pool_equals_synth_in_this_process(tmp_path):
    synthesize(tmp_path / "one", 3, **TINY)
    synthesize(tmp_path / "pool", 3, executor=LocalExecutor(2), **TINY)
    _same_tree(tmp_path / "one" / "pairs", tmp_path / "pool" / "pairs")


def test_synth_into_a_memory_url_resumes_and_holds_the_local_bytes(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    try:
        report = synthesize("memory://synth-test", 2, **TINY)
        assert (report.written, report.skipped) == (2, 0)
        fs.rm("/synth-test/pairs/000001/params.json")          # an interrupted upload: no params.json
        report = synthesize("memory://synth-test", 2, **TINY)
        assert (report.written, report.skipped) == (1, 1)
        synthesize(tmp_path / "local", 2, **TINY)
        for name in ("image.png", "target.pfm", "disparity.png", "params.json"):
            assert fs.cat_file(f"/synth-test/pairs/000001/{name}") == (tmp_path / "local/pairs/000001" / name).read_bytes()
        with pytest.raises(InputError, match="memory:// lives in one process"):
            synthesize("memory://synth-test2", 2, executor=LocalExecutor(2), **TINY)
    finally:
        for root in ("/synth-test", "/synth-test2"):
            if fs.exists(root):
                fs.rm(root, recursive=True)


@pytest.mark.slow
def test_eval_in_a_pool_writes_the_rows_this_process_writes(tmp_path):
    data = synthesize(tmp_path / "data", 3, **TINY).root
    options = EvalOptions(progress=False)
    here = evaluate(SynthDataset(data), get_method("layered"), tmp_path / "here", dataset_name="synth",
                    options=options, perceptual=NO_PERCEPTUAL)
    with LocalExecutor(2) as pool:
        there = evaluate(SynthDataset(data), get_method("layered"), tmp_path / "pool", dataset_name="synth",
                         options=options, perceptual=NO_PERCEPTUAL, executor=pool)
    assert _scores(tmp_path / "here" / "per_image.csv") == _scores(tmp_path / "pool" / "per_image.csv")
    assert [r["id"] for r in _scores(tmp_path / "pool" / "per_image.csv")] == ["000000", "000001", "000002"]
    assert here["metrics"] == there["metrics"] and math.isfinite(here["metrics"]["psnr"])


# -- Ray ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    import sys

    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])     # this module is not importable there
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_executor_equals_the_local_one_on_synth_and_eval(ray_cluster, tmp_path):
    with get_executor("ray") as tasks:
        assert dict(tasks.map(_square_and_threads, range(5), shared=2)) == {k: (2 * k * k, 1) for k in range(5)}
        with pytest.raises(InputError, match="blur: expected a number >= 0, got 2"):
            list(tasks.map(_refuse, range(4)))

        synthesize(tmp_path / "local", 3, **TINY)
        report = synthesize(tmp_path / "ray", 3, executor=tasks, **TINY)
        assert report.written == 3
        _same_tree(tmp_path / "local" / "pairs", tmp_path / "ray" / "pairs")
        assert (tmp_path / "local/manifest.json").read_bytes() == (tmp_path / "ray/manifest.json").read_bytes()
        assert synthesize(tmp_path / "ray", 3, executor=tasks, **TINY).skipped == 3     # the same resume rule

        options = EvalOptions(progress=False)
        for name, method in (("identity", Identity()), ("layered", get_method("layered"))):
            local = evaluate(SynthDataset(tmp_path / "local"), method, tmp_path / f"e-{name}-local",
                             dataset_name="synth", options=options, perceptual=NO_PERCEPTUAL)
            remote = evaluate(SynthDataset(tmp_path / "local"), method, tmp_path / f"e-{name}-ray",
                              dataset_name="synth", options=options, perceptual=NO_PERCEPTUAL, executor=tasks)
            assert _scores(tmp_path / f"e-{name}-local/per_image.csv") == _scores(tmp_path / f"e-{name}-ray/per_image.csv")
            assert local["metrics"] == remote["metrics"]
        # a batch render on Ray tasks writes the bytes the in-process batch writes
        from lensblur.cli import main

        photos, maps = tmp_path / "photos", tmp_path / "maps"
        photos.mkdir()
        maps.mkdir()
        for k in range(2):
            pair = tmp_path / f"local/pairs/00000{k}"
            (photos / f"p{k}.png").write_bytes((pair / "image.png").read_bytes())
            (maps / f"p{k}.png").write_bytes((pair / "disparity.png").read_bytes())
        common = ["render", str(photos), "--blur", "4", "--focus-disparity", "0.5", "--disparity-dir", str(maps),
                  "--no-progress"]
        assert main([*common, "-o", f"{tmp_path}/r-here/"]) == 0
        assert main([*common, "-o", f"{tmp_path}/r-ray/", "--executor", "ray"]) == 0
        _same_tree(tmp_path / "r-here", tmp_path / "r-ray")
    assert ray_cluster.is_initialized()          # the executor leaves an instance it did not start running


@pytest.mark.parametrize("command", [
    ["synth", "-n", "1", "--size", "48x32"],
    ["eval", "--method", "identity", "--dataset", "synth", "--root", "DATA"],
    ["render", "DATA/a.png", "DATA/b.png"],
])
def test_a_ray_address_without_the_ray_executor_is_refused_before_work(tmp_path, capsys, command):
    from lensblur.cli import main

    data = tmp_path / "data"
    synthesize(data, 1, **TINY)
    (data / "a.png").write_bytes((data / "pairs/000000/image.png").read_bytes())
    (data / "b.png").write_bytes((data / "pairs/000000/image.png").read_bytes())
    out = tmp_path / "out"
    argv = [c.replace("DATA", str(data)) for c in command] + ["-o", f"{out}/", "--ray-address", "auto",
                                                              "--no-progress"]
    assert main(argv) == 1
    assert "--ray-address: expected --executor ray as well" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
