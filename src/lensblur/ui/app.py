"""The web server of ``lensblur ui``: a Starlette app serving the page (``static/``) and a small JSON API.

Routes (every ``/api`` answer is JSON; an error is ``{"error": message}`` with status 400 for a user's mistake,
413 for an upload over the limit, 500 for a fault, and the server goes on):

* ``GET /``: the page; ``GET /static/...``: its script and style (nothing from the internet);
* ``GET /api/info``: the methods, aperture shapes and limits;
* ``POST /api/photo?name=NAME``: the photo as the request's body; a new session, its size, EXIF camera and depth;
* ``POST /api/session/ID/file/ROLE?name=NAME``: a disparity map, a right view or an aperture image;
  ``DELETE`` the same path removes it;
* ``POST /api/session/ID/depth``, ``.../preview``, ``.../render``, ``.../focus-pull`` with the page's settings as
  JSON: the depth (and its colour-mapped picture), a preview, the start of a full-resolution render or of a
  focus pull (``?format=gif`` or ``mp4``);
* ``GET /api/session/ID/job/JOB``: a render's progress; ``.../job/JOB/file``: its file, to download;
* ``POST /api/generate`` with the generate tab's settings: start ``lensblur generate`` (:mod:`lensblur.ui.generate`);
  ``GET /api/generate/JOB``: its state and its steps done (``step`` of ``steps``, over every run), and once done
  its images; ``POST .../JOB/report`` with ``{"box": [x0, y0, x1, y1]}`` (or ``{}``: the whole image): the focus
  report; ``GET .../JOB/file/NAME``: a file it wrote;
* ``POST /api/generate/init?name=NAME`` with a picture as the body, or ``?session=ID`` (the photo dropped on the
  Refocus tab): an init image for image-to-image, read as ``--init-image`` reads it; ``GET
  /api/generate/init/INIT/file``: the file the command line names (the picture shrunk to the tab's limit).

Uploads are the request's raw body (no multipart parsing), streamed into the workspace's folder and cut off at the
size limit.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from .._optional import require
from ..errors import InputError, LensblurError
from .session import Session, Workspace

__all__ = ["STATIC", "create_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
"""The page's files."""

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def host_name(header: str) -> str:
    """The name in an HTTP ``Host`` header, without its port: ``127.0.0.1:7860`` -> ``127.0.0.1``, an IPv6
    literal kept in its brackets (``[::1]:7860`` -> ``[::1]``), lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[: end + 1] if end > 0 else header
    return header.split(":", 1)[0]


class LoopbackHosts:
    """ASGI middleware: answer only requests addressed to a loopback name (``127.0.0.1``, ``localhost``,
    ``[::1]``), so a web page elsewhere cannot reach the server through a name that resolves to this machine
    (DNS rebinding). Starlette's own TrustedHostMiddleware cuts an IPv6 literal at its first colon."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or [])
            if host_name(headers.get(b"host", b"").decode("latin-1")) not in _LOOPBACK_NAMES:
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("Invalid host header", status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)

SETTINGS_BYTES = 65536
"""The largest settings object a page may send (a few hundred bytes in practice)."""


def method_list() -> list[dict]:
    """The methods the page offers: every name of :func:`lensblur.methods.available_methods`, the classical
    renderers first; the others need a model (a checkpoint, or weights in the Hugging Face cache)."""
    from ..methods import available_methods
    from ..render import METHODS as RENDERERS

    names = [n for n in available_methods() if n != "identity"]
    classical = sorted(n for n in names if n in RENDERERS)
    return ([{"name": n, "classical": True} for n in ["layered", *[c for c in classical if c != "layered"]]] +
            [{"name": n, "classical": False} for n in names if n not in RENDERERS])


def upload_status(exc: BaseException) -> int:
    """The status of a refused upload: 413 when it is over the size limit (:meth:`Workspace.too_large`'s error),
    400 for any other refusal (an empty body, a bad file)."""
    too_large = isinstance(exc, InputError) and exc.argument == "upload" and "at most" in str(exc.expected)
    return 413 if too_large else 400


def message(exc: BaseException, session: Session | None = None) -> str:
    """What the page shows for ``exc``: a lensblur error as ``lensblur render`` prints it, anything else as an
    internal error."""
    if not isinstance(exc, LensblurError):
        return f"internal error ({type(exc).__name__}: {exc}); the server goes on"
    if session is not None:
        return session.explain(exc)
    from ..cli._args import cli_message
    from .command import render_parser

    return cli_message(exc, render_parser())


def create_app(workspace: Workspace, *, host: str = "127.0.0.1"):
    """The Starlette application over ``workspace``.

    Args:
        workspace: the server's folder, sessions and limits; closed when the app shuts down.
        host: the address the server binds; on a loopback address only requests for a loopback host name are
            served (a page on another site cannot reach the server through its own DNS name).

    Returns:
        The ASGI app.

    Raises:
        MissingDependencyError: Starlette is not installed (``lensblur[ui]``).
    """
    require("starlette", extra="ui", feature="lensblur ui")
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def failure(exc: BaseException, session: Session | None = None, status: int = 400) -> JSONResponse:
        if not isinstance(exc, LensblurError):
            log.exception("request failed")
            status = 500
        return JSONResponse({"error": message(exc, session)}, status_code=status)

    async def guarded(work, session: Session | None = None):
        try:
            return JSONResponse(await run_in_threadpool(work))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the page
            return failure(exc, session)

    def generate_failure(exc: BaseException, status: int = 400) -> JSONResponse:
        if not isinstance(exc, LensblurError):
            log.exception("request failed")
            return JSONResponse({"error": message(exc)}, status_code=500)
        return JSONResponse({"error": workspace.generator.explain(exc)}, status_code=status)

    async def generate_guarded(work):
        try:
            return JSONResponse(await run_in_threadpool(work))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the tab
            return generate_failure(exc)

    async def settings_of(request) -> dict:
        body = await request.body()
        if len(body) > SETTINGS_BYTES:
            raise InputError("settings", expected=f"at most {SETTINGS_BYTES} bytes of settings", got=len(body),
                             fix="reload the page")
        try:
            settings = json.loads(body or b"{}")
        except ValueError:
            settings = None
        if not isinstance(settings, dict):
            raise InputError("settings", expected="a JSON object", got="something else", fix="reload the page")
        return settings

    async def receive(request, path: Path) -> None:
        """Stream the request's body into ``path``, refusing it past the size limit."""
        written, error = 0, None
        fh = await run_in_threadpool(open, path, "wb")
        try:
            async for chunk in request.stream():     # read to the end, so that the client gets the answer
                written += len(chunk)
                error = error or workspace.too_large(written)
                if error is None:
                    await run_in_threadpool(fh.write, chunk)
        except BaseException:
            fh.close()
            path.unlink(missing_ok=True)
            raise
        fh.close()
        if error is not None:
            path.unlink(missing_ok=True)
            raise error
        if written == 0:
            path.unlink(missing_ok=True)
            raise InputError("upload", expected="a file", got="an empty upload", fix="drop the file again")

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def info(request):
        from .command import APERTURES

        return JSONResponse({"methods": method_list(), "apertures": list(APERTURES), "limits": workspace.limits(),
                             "generate": workspace.generator.info()})

    async def photo(request):
        session = workspace.new_session()
        name = request.query_params.get("name") or "photo.jpg"
        try:
            path = workspace.upload_path(session, "photo", name)
            await receive(request, path)
            reply = await run_in_threadpool(workspace.add_photo, session, path, name)
        except Exception as exc:  # noqa: BLE001 - a bad photo leaves nothing behind
            workspace.drop(session)
            return failure(exc, session, upload_status(exc))
        try:
            reply["depth"] = await run_in_threadpool(depth_reply, session, {})
        except Exception as exc:
            if not isinstance(exc, LensblurError):
                log.exception("depth failed")
            reply["depth_error"] = message(exc, session)
        return JSONResponse(reply)

    def depth_reply(session: Session, settings: dict) -> dict:
        reply = workspace.depth_info(session, settings)
        reply["image"] = workspace.depth_image(session)
        return reply

    def lookup(request) -> Session:
        return workspace.session(request.path_params["session"])

    async def upload(request):
        try:
            session = lookup(request)
            role = request.path_params["role"]
            if role == "photo":
                raise InputError("role", expected="a disparity map, right view or aperture image", got="photo",
                                 fix="drop a new photo on the page to start again")
            path = workspace.upload_path(session, role, request.query_params.get("name") or role)
            if request.method == "DELETE":
                session.files.pop(role, None)
                session.names.pop(role, None)
                return JSONResponse({"removed": role})
            await receive(request, path)
            session.files[role] = path
            session.names[role] = path.name
            return JSONResponse({"role": role, "name": path.name})
        except Exception as exc:  # noqa: BLE001
            return failure(exc, None, upload_status(exc))

    async def depth(request):
        try:
            session, settings = lookup(request), await settings_of(request)
        except Exception as exc:  # noqa: BLE001
            return failure(exc)
        return await guarded(lambda: depth_reply(session, settings), session)

    async def preview(request):
        try:
            session, settings = lookup(request), await settings_of(request)
        except Exception as exc:  # noqa: BLE001
            return failure(exc)
        return await guarded(lambda: workspace.preview(session, settings), session)

    async def render(request):
        try:
            session, settings = lookup(request), await settings_of(request)
        except Exception as exc:  # noqa: BLE001
            return failure(exc)
        return await guarded(lambda: workspace.start_render(session, settings).status(), session)

    async def focus_pull(request):
        try:
            session, settings = lookup(request), await settings_of(request)
        except Exception as exc:  # noqa: BLE001
            return failure(exc)
        fmt = request.query_params.get("format", "gif")
        return await guarded(lambda: workspace.start_focus_pull(session, settings, fmt=fmt).status(), session)

    def job_of(request):
        session = lookup(request)
        job = session.jobs.get(request.path_params["job"])
        if job is None:
            raise InputError("job", expected="a render of this photo", got=request.path_params["job"],
                             fix="start the render again")
        return job

    async def job(request):
        try:
            return JSONResponse(job_of(request).status())
        except Exception as exc:  # noqa: BLE001
            return failure(exc)

    async def job_file(request):
        try:
            found = job_of(request)
            if found.state != "done":
                raise InputError("job", expected="a finished render", got=found.state, fix="wait for the render")
        except Exception as exc:  # noqa: BLE001
            return failure(exc)
        return FileResponse(found.output, filename=found.output.name, content_disposition_type="attachment")

    async def generate(request):
        try:
            settings = await settings_of(request)
        except Exception as exc:  # noqa: BLE001
            return generate_failure(exc)
        return await generate_guarded(lambda: workspace.generator.start(settings).status())

    async def generate_job(request):
        return await generate_guarded(lambda: workspace.generator.job(request.path_params["job"]).status())

    async def generate_report(request):
        try:
            settings = await settings_of(request)
        except Exception as exc:  # noqa: BLE001
            return generate_failure(exc)
        return await generate_guarded(lambda: workspace.generator.report(request.path_params["job"],
                                                                         settings.get("box")))

    async def generate_init(request):
        generator, path = workspace.generator, None
        try:
            session_id = request.query_params.get("session")
            if session_id:
                session = workspace.session(session_id)
                if "photo" not in session.files:
                    raise InputError("session", expected="a dropped photo", got="none", fix="drop a photo first")
                path = generator.init_path(session.names["photo"])
                await run_in_threadpool(shutil.copyfile, session.files["photo"], path)
            else:
                path = generator.init_path(request.query_params.get("name") or "init.png")
                await receive(request, path)
        except Exception as exc:  # noqa: BLE001 - a bad upload leaves nothing behind
            if path is not None:
                shutil.rmtree(path.parent, ignore_errors=True)
            return generate_failure(exc, upload_status(exc))
        return await generate_guarded(lambda: generator.add_init(path, max_pixels=workspace.max_pixels).describe())

    async def generate_init_file(request):
        try:
            path = workspace.generator.init(request.path_params["init"]).path
        except Exception as exc:  # noqa: BLE001
            return generate_failure(exc)
        return FileResponse(path, filename=path.name, content_disposition_type="attachment")

    async def generate_file(request):
        try:
            path = workspace.generator.file(request.path_params["job"], request.path_params["name"])
        except Exception as exc:  # noqa: BLE001
            return generate_failure(exc)
        return FileResponse(path, filename=path.name, content_disposition_type="attachment")

    @asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            workspace.close()

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/photo", photo, methods=["POST"]),
        Route("/api/session/{session}/file/{role}", upload, methods=["POST", "DELETE"]),
        Route("/api/session/{session}/depth", depth, methods=["POST"]),
        Route("/api/session/{session}/preview", preview, methods=["POST"]),
        Route("/api/session/{session}/render", render, methods=["POST"]),
        Route("/api/session/{session}/focus-pull", focus_pull, methods=["POST"]),
        Route("/api/session/{session}/job/{job}", job),
        Route("/api/session/{session}/job/{job}/file", job_file),
        Route("/api/generate", generate, methods=["POST"]),
        Route("/api/generate/init", generate_init, methods=["POST"]),
        Route("/api/generate/init/{init}/file", generate_init_file),
        Route("/api/generate/{job}", generate_job),
        Route("/api/generate/{job}/report", generate_report, methods=["POST"]),
        Route("/api/generate/{job}/file/{name}", generate_file),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = []
    if host in LOOPBACK:
        middleware.append(Middleware(LoopbackHosts))
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
