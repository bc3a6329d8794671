"""The allocator's tuning (lensblur._memory): freed memory is kept for reuse, by every thread, on glibc.

Each case runs in a fresh interpreter (the tuning is the process's) and reads the process's resident memory
from /proc/self/statm around a 200 MB array made and freed, so what is asserted is what the system sees.
"""

import os
import subprocess
import sys

import pytest

GLIBC = hasattr(os, "confstr") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
pytestmark = pytest.mark.skipif(not GLIBC, reason="the tuning is glibc's (elsewhere it does nothing)")

# Resident megabytes before, with and after a 200 MB array made in one thread and then, freed, in another.
CHILD = """
import threading
import numpy as np
from lensblur import _memory
print(_memory.tune_allocator())
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
def made_and_freed(out):
    a = np.ones(25_000_000)     # 200 MB
    out.append(rss())
for _ in range(2):
    out = [rss()]
    thread = threading.Thread(target=made_and_freed, args=(out,))
    thread.start()
    thread.join()
    out.append(rss())
    print(*out)
"""


def run(code: str, **env: str) -> list[str]:
    environment = {key: value for key, value in os.environ.items() if key != "LENSBLUR_ALLOCATOR"} | env
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    return done.stdout.split("\n")


def test_tuned_the_freed_memory_is_kept_and_reused_by_the_next_thread():
    tuned, first, second = run(CHILD)[:3]
    assert tuned == "True"
    before, held, after = map(float, first.split())
    assert held - before > 190            # the array is resident while it lives
    assert after > held - 10              # freed, it stays in the process
    before, held, after = map(float, second.split())
    assert held < before + 10             # another thread's array of the same size reuses it


def test_opted_out_the_allocator_is_the_system_one():
    tuned, first = run(CHILD, LENSBLUR_ALLOCATOR="system")[:2]
    assert tuned == "False"
    before, held, after = map(float, first.split())
    assert held - before > 190
    assert after < held - 190             # glibc's default: a block this large is unmapped when freed


def test_the_command_line_tunes_its_process_before_it_runs_the_command():
    code = ("from lensblur import _memory\nfrom lensblur.cli import main\nprint(_memory.tuned())\n"
            "main([])\nprint(_memory.tuned())")
    assert run(code)[:2] == ["False", "True"]
