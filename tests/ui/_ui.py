"""Helpers of the ui tests: a live server's URL with small urllib calls, and small test photos."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "depth"))   # the Google-depth JPEG builder (_jpeg.py)


class Server:
    """A running server: its URL, its workspace, and small JSON/bytes helpers over urllib."""

    def __init__(self, url: str, workspace):
        self.url, self.workspace = url, workspace

    def request(self, path: str, data: bytes | None = None, *, method: str | None = None,
                content_type: str = "application/octet-stream") -> tuple[int, bytes, dict]:
        req = urllib.request.Request(self.url + path, data=data, method=method or ("POST" if data is not None
                                                                                   else "GET"))
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=120) as reply:
                return reply.status, reply.read(), dict(reply.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def json(self, path: str, payload=None, *, raw: bytes | None = None, method: str | None = None):
        data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
        status, body, _ = self.request(path, data, method=method,
                                       content_type="application/octet-stream" if raw is not None
                                       else "application/json")
        return status, json.loads(body)


@contextlib.contextmanager
def serving(workspace):
    """``workspace``'s app served by uvicorn on a free port in a thread; stopped afterwards, when its folder
    must be gone."""
    import uvicorn

    from lensblur.ui.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(workspace), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", workspace)
    running.should_exit = True
    thread.join(timeout=10)
    assert not workspace.folder.exists(), "the server left its folder behind"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def scene(height: int = 120, width: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """An 8-bit textured photo and its disparity: a near square (disparity 0.9) on the left half, a far
    background (0.1) elsewhere; fine texture everywhere, so sharpness can be measured in both."""
    rng = np.random.default_rng(7)
    rgb = (rng.random((height, width, 3)) * 200 + 30).astype(np.uint8)
    disparity = np.full((height, width), 0.1, np.float32)
    disparity[height // 5: height - height // 5, width // 10: width // 2 - width // 10] = 0.9
    return rgb, disparity


def png_bytes(values: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")
    return buffer.getvalue()


def gdepth_photo(rgb: np.ndarray, disparity: np.ndarray, *, near: float = 1.0, far: float = 10.0) -> bytes:
    """A JPEG carrying ``disparity`` as Google depth (GDepth RangeInverse: sample 0 = near, inverse depth linear
    in the sample, so lensblur's disparity is ``1 - sample / 255``)."""
    from _jpeg import gdepth_jpeg

    samples = np.round((1.0 - disparity) * 255).astype(np.uint8)
    return gdepth_jpeg(rgb, samples, fmt="RangeInverse", near=near, far=far)
