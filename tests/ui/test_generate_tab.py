"""The generate tab over HTTP: ``lensblur generate`` run by the server with a tiny randomly initialised Stable
Diffusion (diffusers' dummy-component style, ``tests/diffusion_dummies.py``) saved as a diffusers folder, as a
downloaded model is."""

from __future__ import annotations

import base64
import io
import json
import shlex
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="the 'diffusion' extra is not installed")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

PROMPT = "a cute baby bunny standing on top of a pile of baby carrots under a spot light"
TINY = {"prompt": PROMPT, "focus": "a pile of carrots", "sigma": 0.5, "alpha": 0.5, "steps": 4, "size": [32, 32],
        "seed": 7, "guidance": 7.5}


@pytest.fixture(scope="module")
def generating(tmp_path_factory, tiny_model):
    from _ui import serving

    from lensblur.ui.session import Workspace

    workspace = Workspace(root=tmp_path_factory.mktemp("ui-generate"), generate_model=str(tiny_model))
    with serving(workspace) as running:
        yield running


def finish(server, job: dict) -> dict:
    deadline = time.monotonic() + 120
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        status, job = server.json(f"/api/generate/{job['id']}")
        assert status == 200, job
    return job


def picture(data_url: str) -> np.ndarray:
    head, _, payload = data_url.partition(",")
    assert head == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.slow      # two generations and the command line's own run: ~15 s on a quiet machine, 80 s under load
def test_generate_tab_runs_the_generate_command(generating, tiny_model, tmp_path, monkeypatch, capsys):
    from lensblur import cli

    status, info = generating.json("/api/info")
    assert status == 200 and info["generate"]["model"] == str(tiny_model) and info["generate"]["message"] is None
    status, job = generating.json("/api/generate", TINY)
    assert status == 200, job
    assert job["command"] == (f"lensblur generate --focus 'a pile of carrots' --sigma 0.5 --alpha 0.5 --model "
                              f"{tiny_model} --baseline --steps 4 --guidance 7.5 --size 32x32 --seed 7 --num-images 1 "
                              f"-o generated/ -q '{PROMPT}'")
    job = finish(generating, job)
    assert job["state"] == "done", job
    baseline, result = job["images"]
    assert (baseline["label"], baseline["focus_prompt"], baseline["global_steps"]) == ("baseline", None, 4)
    assert (result["focus_prompt"], result["sigma"], result["alpha"]) == ("a pile of carrots", 0.5, 0.5)
    assert (result["global_steps"], result["focus_steps"]) == (2, 2)          # sigma 0.5 of 4 steps
    a, b = picture(baseline["image"]), picture(result["image"])
    assert a.shape == b.shape == (32, 32, 3) and not np.array_equal(a, b)    # the focus stage changed the picture

    # the command line the tab shows writes the same files, byte for byte
    monkeypatch.chdir(tmp_path)
    assert cli.main(shlex.split(job["command"])[1:]) == 0
    for shown in job["images"]:
        status, body, headers = generating.request(f"/api/generate/{job['id']}/file/{shown['file']}")
        assert status == 200 and f'filename="{shown["file"]}"' in headers["content-disposition"]
        assert body == (tmp_path / "generated" / shown["file"]).read_bytes()

    # the focus report, whole image and in a box, is lensblur focus-report's
    capsys.readouterr()
    for box in (None, [0, 16, 32, 32]):
        status, report = generating.json(f"/api/generate/{job['id']}/report", {} if box is None else {"box": box})
        assert status == 200, report
        assert [s["image"] for s in report["scores"]] == [f"generated/{baseline['file']}", f"generated/{result['file']}"]
        assert report["scores"][0]["vol_ratio"] is None and report["scores"][1]["vol_ratio"] > 0
        assert cli.main([*shlex.split(report["command"])[1:], "--format", "json"]) == 0
        expected = json.loads(capsys.readouterr().out)["scores"]
        assert report["scores"] == expected
    assert report["command"].endswith("--box focus=0,16,32,32")


@pytest.fixture(scope="module")
def misconfigured(tmp_path_factory):
    """A server whose --generate-model names nothing: every check before the model loads still runs."""
    from _ui import serving

    from lensblur.ui.session import Workspace

    root = tmp_path_factory.mktemp("ui-misconfigured")
    with serving(Workspace(root=root, generate_model=str(root / "no-such-model"))) as running:
        yield running


def test_generate_tab_refuses_bad_settings(misconfigured, server):
    status, reply = misconfigured.json("/api/generate", {**TINY, "prompt": "  "})
    assert status == 400 and "expected some text" in reply["error"]
    status, reply = misconfigured.json("/api/generate", {**TINY, "sigma": 3})
    assert status == 400 and reply["error"].startswith("--sigma: expected a number in [0, 1], got 3")
    status, reply = misconfigured.json("/api/generate", {**TINY, "sigma": 0})
    assert status == 400 and reply["error"].startswith("--sigma:")            # the command's own check
    status, reply = misconfigured.json("/api/generate", {**TINY, "size": [30, 32]})
    assert status == 400 and "multiples of 8" in reply["error"]
    status, reply = misconfigured.json("/api/generate", raw=b"not json")
    assert status == 400
    status, reply = misconfigured.json("/api/generate/nope")
    assert status == 400 and "generate again" in reply["error"]
    from lensblur.ui.generate import GenerateJob

    jobs = misconfigured.workspace.generator.jobs                 # one generation at a time
    jobs["busy"] = GenerateJob("busy", misconfigured.workspace.folder / "busy", "lensblur generate ...")
    status, reply = misconfigured.json("/api/generate", TINY)
    assert status == 400 and "one generation at a time" in reply["error"]
    del jobs["busy"]
    # a model that is not there: the loader's message (where it looked, how to get one), in the tab
    status, job = misconfigured.json("/api/generate", TINY)
    assert status == 200, job
    job = finish(misconfigured, job)
    assert job["state"] == "failed" and "no-such-model" in job["error"] and "hf download" in job["error"]
    status, reply = misconfigured.json(f"/api/generate/{job['id']}/report", {})
    assert status == 400 and "a finished generation" in reply["error"]
    # a server without a model says how to configure one
    status, info = server.json("/api/info")
    assert info["generate"]["model"] is None and "--generate-model" in info["generate"]["message"]
    status, reply = server.json("/api/generate", TINY)
    assert status == 400 and "--generate-model PATH" in reply["error"]
    for running in (misconfigured, server):                  # both still serve
        assert running.json("/api/info")[0] == 200


@pytest.mark.slow      # a tiny Stable Diffusion saved and loaded, one generation
def test_generate_tab_baseline_only_and_its_checks(generating):
    status, job = generating.json("/api/generate", {**TINY, "focus": None, "steps": 2})
    job = finish(generating, job)
    assert job["state"] == "done" and [i["label"] for i in job["images"]] == ["baseline"]
    status, reply = generating.json(f"/api/generate/{job['id']}/report", {"box": [0, 0, 40, 8]})
    assert status == 400 and "inside the 32x32 image" in reply["error"]
    status, _, _ = generating.request(f"/api/generate/{job['id']}/file/..%2Frun.json")
    assert status in (400, 404)
    status, reply = generating.json(f"/api/generate/{job['id']}/file/run.json")
    assert status == 400 and "a file of this generation" in reply["error"]


@pytest.mark.slow      # one generation of 2 steps
def test_settings_left_out_take_the_commands_defaults(generating):
    """A request without sigma (a client of the API leaving it to the command) runs at lensblur generate's
    default sigma, as the command line does without --sigma."""
    from lensblur.choices import DEFAULT_SIGMA

    settings = {key: value for key, value in TINY.items() if key != "sigma"}
    status, job = generating.json("/api/generate", {**settings, "steps": 2})
    assert status == 200, job
    job = finish(generating, job)
    assert job["state"] == "done" and [i["label"] for i in job["images"]] == ["baseline", f"sigma {DEFAULT_SIGMA:g}"]
    assert "--sigma" not in job["command"]
