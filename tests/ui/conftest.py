"""The live ``lensblur ui`` server on a free port, in a thread of the test process."""

from __future__ import annotations

import pytest
from _ui import serving


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from lensblur.ui.session import Workspace

    root = tmp_path_factory.mktemp("ui-server")
    workspace = Workspace(max_upload_bytes=8 * 2**20, max_pixels=4_000_000, preview_pixels=120_000, root=root)
    with serving(workspace) as running:
        yield running
