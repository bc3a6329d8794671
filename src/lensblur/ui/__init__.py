"""``lensblur ui``: a local web page to drop a photo, click what should be sharp and drag the aperture.

* :mod:`~lensblur.ui.command`: the page's settings as a ``lensblur render`` command line, read back by the render
  command's own parser (so the command line the page shows reproduces its render);
* :mod:`~lensblur.ui.session`: the server's temporary folder, the dropped photos, their depth, previews and full
  renders, each step calling what ``lensblur render`` calls;
* :mod:`~lensblur.ui.generate`: the generate tab, ``lensblur generate`` run with the server's model;
* :mod:`~lensblur.ui.app`: the Starlette app (the page in ``static/`` and a small JSON API);
* :func:`serve`: run it with uvicorn.

Starlette and uvicorn are imported only when the server starts (``lensblur[ui]``).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import webbrowser

from .._optional import require
from ..errors import InputError

__all__ = ["DEFAULT_MAX_MEGAPIXELS", "DEFAULT_MAX_UPLOAD_MB", "serve"]

DEFAULT_MAX_UPLOAD_MB = 200
"""The largest upload the server takes by default, in megabytes (``lensblur ui --max-upload-mb``)."""

DEFAULT_MAX_MEGAPIXELS = 50
"""The largest photo the server takes by default, in megapixels (``lensblur ui --max-megapixels``)."""

log = logging.getLogger(__name__)


def serve(*, host: str = "127.0.0.1", port: int = 7860, open_browser: bool = True, max_upload_mb: float | None = None,
          max_megapixels: float | None = None, log_level: str = "warning", generate_model: str | None = None,
          allow_download: bool = False) -> None:
    """Serve the page until interrupted; the server's temporary folder is removed on the way out.

    Args:
        host: the address to bind (loopback by default; another address exposes the page to the network).
        port: the port.
        open_browser: open the page in the default browser once the server listens.
        max_upload_mb: the largest upload in megabytes (default :data:`DEFAULT_MAX_UPLOAD_MB`).
        max_megapixels: the largest photo (default :data:`DEFAULT_MAX_MEGAPIXELS`).
        log_level: uvicorn's log level.
        generate_model: the Stable Diffusion model of the generate tab (what ``lensblur generate --model`` takes);
            None: the tab says how to configure one.
        allow_download: fetch ``generate_model``, a Hugging Face id, into the Hugging Face cache before the page
            is announced (the tab itself loads from the cache only).

    Raises:
        MissingDependencyError: Starlette or uvicorn is not installed (``lensblur[ui]``).
        InputError: the port is taken (or not allowed), or the host is not an address of this machine; found
            before the page is announced.
        ModelNotFoundError: ``generate_model`` names no Stable Diffusion model (found without loading its
            weights, before the page is announced), or its files could not be fetched.
    """
    from .app import create_app
    from .session import Workspace

    uvicorn = require("uvicorn", extra="ui", feature="lensblur ui")
    if generate_model is not None:      # a model that is not there is said at start, not at the first generation
        from ..generate.loading import fetch_text_to_image, find_text_to_image

        if allow_download:
            fetch_text_to_image(generate_model)
        else:
            find_text_to_image(generate_model)
    sock = _bound(host, port)
    workspace = Workspace(max_upload_bytes=int((max_upload_mb or DEFAULT_MAX_UPLOAD_MB) * 2**20),
                          max_pixels=int((max_megapixels or DEFAULT_MAX_MEGAPIXELS) * 1e6),
                          generate_model=generate_model)
    try:
        app = create_app(workspace, host=host)
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on")
        server = uvicorn.Server(config)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        if open_browser:
            def opener():
                while not server.started and not server.should_exit:
                    threading.Event().wait(0.1)
                if server.started:
                    webbrowser.open(url)

            threading.Thread(target=opener, daemon=True).start()
        print(f"lensblur ui: serving {url} (Ctrl+C to stop); files stay in {workspace.folder}", flush=True)
        server.run(sockets=[sock])
    finally:
        sock.close()
        workspace.close()


def _bound(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server to listen on, or an error naming which of the two is wrong."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise InputError("host", expected="an address or name of this machine", got=f"{host} ({exc.strerror})",
                         fix="e.g. host=127.0.0.1 (this machine only) or host=0.0.0.0 (the network too)") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise InputError("port", expected="a port free for this program", got=f"{port} ({exc.strerror})",
                             fix="pick another, e.g. port=7861") from None
        raise InputError("host", expected="an address of this machine", got=f"{host} ({exc.strerror})",
                         fix="e.g. host=127.0.0.1 (this machine only) or host=0.0.0.0 (the network too)") from None
    return sock
