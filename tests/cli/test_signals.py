"""``lensblur`` stopped by SIGTERM (a batch scheduler's, or ``kill``) stops as on Ctrl-C: its worker
processes end with it, no temporary file is left, and it exits with 128 + 15."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lensblur.io import write_image


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc (Linux)")
def test_sigterm_ends_a_batch_and_its_workers(tmp_path):
    photos, maps = tmp_path / "photos", tmp_path / "maps"
    photos.mkdir()
    maps.mkdir()
    rng = np.random.default_rng(0)
    for k in range(8):
        write_image(photos / f"p{k}.png", rng.uniform(0, 1, (600, 800, 3)).astype(np.float32))
        np.save(maps / f"p{k}.npy", np.tile(np.linspace(0, 1, 800, dtype=np.float32), (600, 1)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "lensblur", "render", str(photos), "--disparity-dir", str(maps),
               "--blur", "40", "--focus-disparity", "0.5", "-o", f"{out}/", "--workers", "2", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(_children(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _children(process.pid)
    assert len(workers) >= 2, "the batch's worker processes did not start"
    time.sleep(1.0)                                  # the workers are rendering
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM and "lensblur render: terminated" in err, err
    assert "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "worker processes outlived the command"
    assert not out.exists() or not [p.name for p in out.iterdir() if p.name.startswith(".")]    # no temporary file
