"""The live ``lensblur ui`` server on a free port, in a thread of the test process."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from _ui import Server, free_port


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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from lensblur.ui.session import Workspace

    root = tmp_path_factory.mktemp("ui-server")
    workspace = Workspace(max_upload_bytes=8 * 2**20, max_pixels=4_000_000, preview_pixels=120_000, root=root)
    with serving(workspace) as running:
        yield running
