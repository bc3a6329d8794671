"""The server's API over HTTP (a live server on a free port; urllib, since httpx is not installed)."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from _ui import gdepth_photo, png_bytes, scene
from PIL import Image

from lensblur.ui.command import one_photo, parse_render, render_tokens


def decode(data_url: str) -> np.ndarray:
    head, _, payload = data_url.partition(",")
    assert head == "data:image/jpeg;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as im:
        return np.asarray(im.convert("RGB"))


def test_tokens_are_the_render_commands_own_flags():
    tokens = render_tokens({"mode": "camera", "f_number": 1.8, "focus": {"point": [12.7, 30]}, "aperture": "blades",
                            "blades": 7, "rotation": -15, "curvature": 0.25, "cat_eye": 0.3, "highlights": 0.5,
                            "method": "scatter"}, {"photo": "p.jpg"}, "p-lensblur.jpg")
    assert tokens == ["p.jpg", "--focus", "12,30", "--f-number", "1.8", "--blades", "7", "--rotation=-15",
                      "--curvature", "0.25", "--cat-eye", "0.3", "--highlights", "0.5", "--method", "scatter",
                      "-o", "p-lensblur.jpg"]
    args = one_photo(parse_render(tokens))
    assert str(args.photo) == "p.jpg"
    assert (args.focus, args.f_number, args.blades, args.rotation, args.method) == ((12, 30), 1.8, 7, -15, "scatter")
    with pytest.raises(ValueError, match="blur"):
        render_tokens({"blur": "lots"}, {"photo": "p.jpg"}, "o.jpg")


def test_photo_with_depth_preview_render_and_download(server, tmp_path):
    rgb, disparity = scene()
    status, info = server.json("/api/photo?name=holiday.jpg", raw=gdepth_photo(rgb, disparity))
    assert status == 200, info
    assert (info["width"], info["height"]) == (180, 120) and "depth_error" not in info
    # GDepth stores near and far without units: no metric range until a depth scale is given
    assert info["depth"]["depth_range"] is None and "GDepth" in info["depth"]["source"]
    sid = info["session"]
    # focus on the near square: it stays sharp, the far background blurs
    settings = {"focus": {"point": [50, 60]}, "blur": 24}
    status, reply = server.json(f"/api/session/{sid}/preview", settings)
    assert status == 200, reply
    assert abs(reply["focus_disparity"] - 0.9) < 0.02
    assert reply["command"] == "lensblur render holiday.jpg --focus 50,60 --blur 24 -o holiday-lensblur.jpg"
    out = decode(reply["image"]).astype(np.float64)
    before = decode(info["before"]).astype(np.float64)
    h, w = out.shape[:2]
    near = (slice(h // 5 + 4, h - h // 5 - 4), slice(w // 10 + 4, w // 2 - w // 10 - 4))
    far = (slice(4, h - 4), slice(w // 2 + 8, w - 4))
    assert np.abs(out[near] - before[near]).mean() < 3           # in focus: unchanged
    assert out[far].std() < 0.5 * before[far].std()              # out of focus: the texture is gone
    # a draft (while a slider is dragged): a quarter of the preview's pixels, the same command line
    status, draft = server.json(f"/api/session/{sid}/preview", {**settings, "draft": True})
    assert status == 200 and draft["draft"] and not reply["draft"] and draft["command"] == reply["command"]
    assert abs(draft["size"][0] * draft["size"][1] / (reply["size"][0] * reply["size"][1]) - 0.25) < 0.02
    # a box around the far background; a camera (the photo's metric range) with a custom aperture image
    status, reply = server.json(f"/api/session/{sid}/preview", {"focus": {"box": [100, 10, 170, 110]}})
    assert status == 200 and abs(reply["focus_disparity"] - 0.1) < 0.02
    assert "--focus-box 100,10,170,110" in reply["command"]
    shape = np.zeros((9, 9), np.uint8)
    shape[2:7, 2:7] = 255
    status, reply = server.json(f"/api/session/{sid}/file/aperture?name=..%2Fsquare%20shape.png", raw=png_bytes(shape))
    assert status == 200 and reply["name"] == "square shape.png"
    camera = {"mode": "camera", "f_number": 2, "focal_length": 35, "focus": {"distance": 2.0}, "aperture": "custom"}
    status, reply = server.json(f"/api/session/{sid}/preview", camera)
    assert status == 400 and reply["error"].startswith("--f-number: expected a metric depth range")
    status, reply = server.json(f"/api/session/{sid}/preview", {**camera, "depth_scale": 1})
    assert status == 200, reply
    assert reply["command"] == ("lensblur render holiday.jpg --depth-scale 1 --f-number 2 --focal-length 35 "
                                "--focus-distance 2 --aperture 'square shape.png' -o holiday-lensblur.jpg")
    assert reply["depth"]["depth_range"] == [1.0, 10.0]
    assert abs(reply["focus_distance"] - 2.0) < 1e-6
    # full resolution, then the file
    status, job = server.json(f"/api/session/{sid}/render", settings)
    assert status == 200, job
    while job["state"] == "running":
        time.sleep(0.05)
        status, job = server.json(f"/api/session/{sid}/job/{job['id']}")
    assert job["state"] == "done", job
    assert job["total"] >= 1 and job["done"] == job["total"]          # the layered renderer's blocks, all done
    status, body, headers = server.request(f"/api/session/{sid}/job/{job['id']}/file")
    assert status == 200 and 'filename="holiday-lensblur.jpg"' in headers["content-disposition"]
    with Image.open(io.BytesIO(body)) as im:
        assert im.format == "JPEG" and im.size == (180, 120)


def test_bad_inputs_are_messages_and_the_server_goes_on(server):
    status, reply = server.json("/api/photo?name=broken.jpg", raw=b"\xff\xd8 not really a jpeg")
    assert status == 400 and reply["error"].startswith("PHOTO: expected a readable image file, got broken.jpg")
    # a photo without depth: the ways to give it, in the command line's words
    rgb, disparity = scene()
    status, info = server.json("/api/photo?name=plain.png", raw=png_bytes(rgb))
    assert status == 200
    assert "--disparity FILE" in info["depth_error"] and "--right RIGHT_IMAGE" in info["depth_error"]
    sid = info["session"]
    status, reply = server.json(f"/api/session/{sid}/preview", {})
    assert status == 400 and reply["error"].startswith("--depth-from: expected a way to get depth")
    # ... then its disparity map dropped beside it
    status, reply = server.json(f"/api/session/{sid}/file/disparity?name=plain-disparity.png",
                                raw=png_bytes(np.round(disparity * 255).astype(np.uint8)))
    assert status == 200 and reply["name"] == "plain-disparity.png"
    status, reply = server.json(f"/api/session/{sid}/preview", {"focus": {"point": [170, 5]}})
    assert status == 200, reply
    assert abs(reply["focus_disparity"] - 0.1) < 0.01
    assert "--disparity plain-disparity.png --focus 170,5" in reply["command"]
    # a point outside the photo: the render command's message
    status, reply = server.json(f"/api/session/{sid}/preview", {"focus": {"point": [500, 5]}})
    assert status == 400 and reply["error"].startswith("--focus: expected a point inside the 180x120 image")
    # a camera without a metric range
    status, reply = server.json(f"/api/session/{sid}/preview", {"mode": "camera"})
    assert status == 400 and "--depth-range" in reply["error"]
    # too many pixels, too many bytes, a session that does not exist
    status, reply = server.json("/api/photo?name=huge.png", raw=png_bytes(np.zeros((2100, 2000, 3), np.uint8)))
    assert status == 400 and "at most 4 megapixels" in reply["error"] and "4200000" not in reply["error"]
    status, reply = server.json("/api/photo?name=big.png", raw=b"\0" * (9 * 2**20))
    assert status == 413 and "at most 8 MB" in reply["error"]
    status, reply = server.json("/api/photo?name=empty.png", raw=b"")    # refused, but not for its size
    assert status == 400 and "an empty upload" in reply["error"]
    status, reply = server.json("/api/session/nope/preview", {})
    assert status == 400 and "drop the photo again" in reply["error"]
    status, reply = server.json(f"/api/session/{sid}/preview", raw=b"not json")
    assert status == 400
    status, reply = server.json(f"/api/session/{sid}/preview", {"method": "x" * 70000})
    assert status == 400 and "bytes of settings" in reply["error"]
    status, reply = server.json(f"/api/session/{sid}/preview", {"method": "no-such-method"})
    assert status == 400 and reply["error"].startswith("--method: expected one of")
    # still serving
    status, info = server.json("/api/info")
    assert status == 200 and info["methods"][0] == {"name": "layered", "classical": True}


def test_page_and_files_stay_local(server):
    status, body, _ = server.request("/")
    page = body.decode()
    assert status == 200 and "/static/app.js" in page
    for name in ("/static/app.js", "/static/style.css"):
        status, text, _ = server.request(name)
        assert status == 200
        page += text.decode()
    assert "http://" not in page and "https://" not in page        # nothing is loaded from the internet
    every = [p for p in server.workspace.folder.rglob("*") if p.is_file()]
    assert every, "uploads are kept in the workspace"
    assert all(server.workspace.folder in p.parents for p in every)


def test_focus_pull_sweeps_near_to_far_and_back(server):
    rgb, disparity = scene()
    status, info = server.json("/api/photo?name=pull.jpg", raw=gdepth_photo(rgb, disparity))
    assert status == 200, info
    sid = info["session"]
    status, job = server.json(f"/api/session/{sid}/focus-pull", {"blur": 20})
    assert status == 200 and job["total"] == 16, job
    while job["state"] == "running":
        time.sleep(0.05)
        status, job = server.json(f"/api/session/{sid}/job/{job['id']}")
    assert job["state"] == "done" and job["done"] == 16, job
    status, body, headers = server.request(f"/api/session/{sid}/job/{job['id']}/file")
    assert status == 200 and 'filename="pull-focus-pull.gif"' in headers["content-disposition"]
    frames = []
    with Image.open(io.BytesIO(body)) as gif:
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.float64))
    assert len(frames) == 16
    h, w = frames[0].shape[:2]
    near = (slice(h // 5 + 3, h - h // 5 - 3), slice(w // 10 + 3, w // 2 - w // 10 - 3))
    far = (slice(3, h - 3), slice(w // 2 + 6, w - 3))

    def detail(frame, region):
        return np.abs(np.diff(frame[region], axis=1)).mean()

    # first frame focused near (the square sharp, the background soft), the ninth far (the other way round)
    assert detail(frames[0], near) > 2 * detail(frames[8], near)
    assert detail(frames[8], far) > 2 * detail(frames[0], far)


def test_ui_command_checks_its_flags(capsys):
    from lensblur.cli import main

    assert main(["ui", "--port", "0", "--no-browser"]) == 1
    assert "--port: expected a port from 1 to 65535, got 0" in capsys.readouterr().err
    assert main(["ui", "--max-megapixels", "-3", "--no-browser"]) == 1
    assert "--max-megapixels: expected a positive number" in capsys.readouterr().err


def test_focus_pull_as_mp4(server, tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb, disparity = scene()
    status, info = server.json("/api/photo?name=pull.jpg", raw=gdepth_photo(rgb, disparity))
    sid = info["session"]
    status, reply = server.json(f"/api/session/{sid}/focus-pull?format=webm", {})
    assert status == 400 and "gif or mp4" in reply["error"]
    status, job = server.json(f"/api/session/{sid}/focus-pull?format=mp4", {"blur": 20})
    assert status == 200, job
    while job["state"] == "running":
        time.sleep(0.05)
        status, job = server.json(f"/api/session/{sid}/job/{job['id']}")
    assert job["state"] == "done" and job["file"] == "pull-focus-pull.mp4", job
    status, body, _ = server.request(f"/api/session/{sid}/job/{job['id']}/file")
    assert status == 200 and body[4:8] == b"ftyp"                  # an ISO media (MP4) file
    video = tmp_path / "pull.mp4"
    video.write_bytes(body)
    capture = cv2.VideoCapture(str(video))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 16


def test_only_loopback_host_names_are_answered():
    # IPv6 literals keep their brackets (Starlette's own host check cut "[::1]:7860" at its first colon).
    import asyncio

    from lensblur.ui.app import LoopbackHosts, host_name

    assert host_name("127.0.0.1:7860") == "127.0.0.1" and host_name("[::1]:7860") == "[::1]"
    assert host_name("LocalHost") == "localhost" and host_name("[::1]") == "[::1]"

    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def status(host: bytes) -> int:
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b""}

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", host)]}
        asyncio.run(LoopbackHosts(inner)(scope, receive, send))
        return sent[0]["status"]

    assert [status(h) for h in (b"127.0.0.1:7860", b"localhost:7860", b"[::1]:7860")] == [200, 200, 200]
    assert [status(h) for h in (b"evil.example:7860", b"127.0.0.1.evil.example", b"")] == [400, 400, 400]


def test_a_port_in_use_or_a_host_not_here_is_refused_before_the_page_is_announced(capsys):
    import socket

    from lensblur.cli import main

    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port), "--no-browser"]) == 1
        captured = capsys.readouterr()
        assert f"--port: expected a port free for this program, got {port}" in captured.err
        assert "serving" not in captured.out
    assert main(["ui", "--host", "no-such-host.invalid", "--no-browser"]) == 1
    assert "--host: expected an address or name of this machine" in capsys.readouterr().err


def test_a_generate_model_that_is_not_there_is_refused_before_the_page_is_announced(tmp_path, capsys):
    from lensblur.cli import main

    pytest.importorskip("uvicorn")
    for model, said in ((tmp_path / "no-such-model", "does not exist"),
                        (tmp_path, "no model_index.json")):          # a folder, but not a diffusers model
        assert main(["ui", "--no-browser", "--generate-model", str(model)]) == 1
        captured = capsys.readouterr()
        assert said in captured.err and "--generate-model sd-v1-4" in captured.err    # the fix in flags
        assert "serving" not in captured.out


def test_a_hub_id_not_in_the_cache_is_fetched_at_start_only_with_allow_download(tmp_path, capsys, monkeypatch):
    """Without --allow-download an id that is not cached is refused with the flag as the fix; with it, the id's
    model_index.json and then its files are fetched (diffusers' DiffusionPipeline.download, which loads nothing)
    before the port is bound. The hub is replaced by recorders: this machine has no network to it."""
    import json
    import socket

    from lensblur.cli import main

    pytest.importorskip("uvicorn")
    diffusers = pytest.importorskip("diffusers")
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["ui", "--no-browser", "--allow-download"]) == 1
    assert "--allow-download: expected --generate-model, the Hugging Face id to fetch" in capsys.readouterr().err
    assert main(["ui", "--no-browser", "--generate-model", "someone/not-cached-model"]) == 1
    err = capsys.readouterr().err
    assert "downloads are off: pass --allow-download" in err and "allow_download" not in err

    index = tmp_path / "model_index.json"
    index.write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    fetched = []

    def hub_download(repo_id, filename, *, local_files_only):
        fetched.append((filename, repo_id, local_files_only))
        return str(index)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub_download)
    monkeypatch.setattr(diffusers.DiffusionPipeline, "download",
                        classmethod(lambda cls, repo_id, **kwargs: fetched.append(("files", repo_id))))
    with socket.socket() as taken:                  # the port check comes after the fetch: the run stops there
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--no-browser", "--port", str(port), "--generate-model", "someone/not-cached-model",
                     "--allow-download"]) == 1
    assert fetched == [("model_index.json", "someone/not-cached-model", False), ("files", "someone/not-cached-model")]
    assert "--port: expected a port free for this program" in capsys.readouterr().err

    def refused(cls, repo_id, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(diffusers.DiffusionPipeline, "download", classmethod(refused))
    assert main(["ui", "--no-browser", "--generate-model", "someone/not-cached-model", "--allow-download"]) == 1
    err = capsys.readouterr().err
    assert "The files of Hugging Face model 'someone/not-cached-model' not found" in err
    assert "OSError: connection refused" in err and "Traceback" not in err
