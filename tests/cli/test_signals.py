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
from processes import alive, descendants  # tests/ is on sys.path: its conftest.py is the root one


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc (Linux)")
def test_sigterm_ends_a_batch_and_its_workers(tmp_path):
    photos, maps = tmp_path / "photos", tmp_path / "maps"
    photos.mkdir()
    maps.mkdir()
    rng = np.random.default_rng(0)
    for k in range(12):      # about a second each on a worker: the signal comes while they render
        write_image(photos / f"p{k}.pfm", rng.uniform(0, 1, (1200, 1600, 3)).astype(np.float32))
        np.save(maps / f"p{k}.npy", np.tile(np.linspace(0, 1, 1600, dtype=np.float32), (1200, 1)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "lensblur", "render", str(photos), "--disparity-dir", str(maps),
               "--blur", "40", "--focus-disparity", "0.5", "-o", f"{out}/", "--workers", "2", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60                # the workers are rendering once a first photo is written
    def rendered() -> list[str]:
        return [p.name for p in out.iterdir() if not p.name.startswith(".")] if out.is_dir() else []

    while not rendered() and time.monotonic() < deadline:
        time.sleep(0.05)
    below = descendants(process.pid)
    assert len(below) >= 2, "the batch's worker processes did not start"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM and "lensblur render: terminated" in err, err
    assert "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in below) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in below), "worker processes outlived the command"
    assert len(rendered()) < 12, "the batch ended before the signal"
    assert not out.exists() or not [p.name for p in out.iterdir() if p.name.startswith(".")]    # no temporary file


@pytest.mark.parametrize(("signal_error", "said", "code"), [
    ("KeyboardInterrupt", "interrupted", 130),
    ("_Terminated", "terminated", 128 + signal.SIGTERM),
])
def test_an_error_raised_while_an_interruption_unwinds_is_that_interruption(monkeypatch, capsys, signal_error,
                                                                             said, code):
    """A library's cleanup broken by the signal (tqdm releasing a lock it had not taken) raises an error of its
    own while the Ctrl-C or SIGTERM unwinds: the command still says it was stopped, with the signal's code."""
    from lensblur import cli
    from lensblur.cli import render

    interruption = KeyboardInterrupt if signal_error == "KeyboardInterrupt" else cli._Terminated

    def broken_cleanup(args):
        try:
            raise interruption()
        finally:
            raise RuntimeError("cannot release un-acquired lock")

    monkeypatch.setattr(render, "run", broken_cleanup)
    assert cli.main(["render", "photo.png", "-o", "out.png"]) == code
    err = capsys.readouterr().err
    assert f"lensblur render: {said}" in err and "Traceback" not in err
