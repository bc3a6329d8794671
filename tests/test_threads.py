"""The thread policy: explicit count, then LENSBLUR_THREADS, then the cores this process may run on."""

import os
import subprocess
import sys

import pytest

from lensblur._threads import available_cores, resolve_threads, set_threads
from lensblur.errors import InputError


def test_explicit_count_wins(monkeypatch):
    monkeypatch.setenv("LENSBLUR_THREADS", "3")
    assert resolve_threads(1) == 1


def test_environment_variable_is_used(monkeypatch):
    monkeypatch.setenv("LENSBLUR_THREADS", "3")
    assert resolve_threads() == 3


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_environment_variable_is_refused(monkeypatch, value):
    monkeypatch.setenv("LENSBLUR_THREADS", value)
    with pytest.raises(InputError, match="LENSBLUR_THREADS"):
        resolve_threads()


@pytest.mark.parametrize("value", [0, 1.5, True])
def test_bad_count_is_refused(value):
    with pytest.raises(InputError, match="threads"):
        resolve_threads(value)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity masks are a Linux feature")
def test_affinity_mask_is_respected():
    # A child process pinned to one core must see one core, whatever the machine has.
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from lensblur._threads import set_threads; print(set_threads())")
    env = {**os.environ}
    env.pop("LENSBLUR_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "1"


@pytest.mark.parametrize(("cpu_max", "expected"), [("150000 100000\n", 2), ("100000 100000\n", 1), ("max 100000\n", None)])
def test_cgroup_v2_quota_caps_the_cores(tmp_path, cpu_max, expected):
    (tmp_path / "cpu.max").write_text(cpu_max)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores(cgroup_root=tmp_path) == min(cores, expected or cores)


def test_cgroup_v1_quota_caps_the_cores(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cores(cgroup_root=tmp_path) == 1


def test_set_threads_sets_torch():
    import torch

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity masks are a Linux feature")
def test_a_render_pinned_to_one_core_uses_one_worker():
    # torch is told 3 threads; the renderer's workers follow the mask, and torch gets its 3 back.
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); import torch; "
            "torch.set_num_threads(3); from lensblur._threads import coarse_parallel\n"
            "with coarse_parallel() as workers:\n    inside = torch.get_num_threads()\n"
            "print(workers, inside, torch.get_num_threads())")
    env = {**os.environ}
    env.pop("LENSBLUR_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["1", "1", "3"]


def test_a_batch_worker_renders_on_one_thread_whatever_the_parent_set():
    # A parent with LENSBLUR_THREADS=2 must not give each one-thread worker process two render workers.
    code = ("from lensblur._threads import single_thread_worker, worker_count; import torch; "
            "single_thread_worker(); print(torch.get_num_threads(), worker_count())")
    env = {**os.environ, "LENSBLUR_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["1", "1"]
