"""How many threads lensblur's torch work uses: the cores this process may really run on, not the machine's.

torch's default is the machine's core count, which is wrong inside a container with a CPU quota or a process
pinned to some cores (``taskset``, a batch scheduler), and which collapses when another program competes for the
cores. The policy here: an explicit number wins, then ``LENSBLUR_THREADS``, then the cores available to this
process (its affinity mask, capped by the cgroup CPU quota). Worker processes of a batch take one thread each.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import InputError, check_integer

__all__ = ["ENVIRONMENT_VARIABLE", "available_cores", "resolve_threads", "set_threads"]

ENVIRONMENT_VARIABLE = "LENSBLUR_THREADS"

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
