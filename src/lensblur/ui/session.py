"""What the server keeps for each photo a page dropped: its files, the photo, its depth, previews and full renders.

The page's settings become a render command line (:mod:`lensblur.ui.command`), read by the render command's
parser. The full render is that command itself (``lensblur.cli.render.run``) in a thread, its block progress
caught with :func:`lensblur.render.reporting`. A preview calls what the command calls, in the same order (the
photo read with :func:`lensblur.depth.read_photo` when dropped; the depth, the lens and the method from the
render command's own functions; ``method.predict``) on the photo and map shrunk to about one megapixel, with the
blur scaled by the same factor (the CoC is in pixels of the image rendered).

Everything is written inside one temporary folder the :class:`Workspace` owns and removes.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _optional
from ..errors import InputError, LensblurError
from . import DEFAULT_MAX_MEGAPIXELS, DEFAULT_MAX_UPLOAD_MB, command

__all__ = ["FOCUS_PULL_FRAMES", "FOCUS_PULL_PIXELS", "PREVIEW_PIXELS", "SESSIONS_KEPT", "Job", "Session", "Workspace",
           "preview_size", "shrink"]

log = logging.getLogger(__name__)

PREVIEW_PIXELS = 1_000_000
"""The preview's size: the photo shrunk (never enlarged) to about this many pixels."""

DRAFT_FRACTION = 0.25
"""A draft preview (sent while a slider is being dragged) has this fraction of the preview's pixels."""

FOCUS_PULL_FRAMES = 16
"""Frames of a focus-pull GIF (near to far and back)."""

FOCUS_PULL_MS = 120
"""How long a focus-pull frame shows, in milliseconds."""

FOCUS_PULL_PIXELS = 300_000
"""A focus-pull frame's size: the preview shrunk to about this many pixels."""

_DEPTH_ARGS = ("photo", "disparity", "depth", "depth_from", "depth_model", "right", "mask", "refine_depth",
               "normalize_disparity", "resize_disparity", "depth_scale", "depth_range", "disparity_dir")
"""Every render flag (by ``dest``) the depth may depend on: a change in any of them resolves the depth again."""

SESSIONS_KEPT = 3
"""How many dropped photos the server keeps; the oldest one's files and arrays go first."""

STRENGTHS_KEPT = 4
"""How many highlight strengths' preview inputs a depth keeps (each one the photo and its recovered lights mixed)."""


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (``H x W`` or ``H x W x C``) resampled to ``size`` = (height, width) by
    :func:`lensblur.io.resize_map` (area averaging when shrinking), channel by channel."""
    from ..io import resize_map

    if image.shape[:2] == tuple(size):
        return np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return resize_map(image, size)
    return np.stack([resize_map(image[..., c], size) for c in range(image.shape[2])], axis=-1)


def preview_size(width: int, height: int, pixels: int = PREVIEW_PIXELS) -> tuple[int, int]:
    """(height, width) of the preview of a ``width x height`` photo: about ``pixels`` pixels, never larger."""
    scale = min(1.0, math.sqrt(pixels / float(width * height)))
    return max(1, round(height * scale)), max(1, round(width * scale))


@functools.cache
def _srgb8_table() -> np.ndarray:
    """:func:`lensblur._convert.to_srgb8` of the 65536 levels ``i / 65535``: the display encoder's table."""
    from .._convert import to_srgb8

    return to_srgb8(np.arange(65536, dtype=np.float32) / np.float32(65535))


def display_srgb8(image) -> np.ndarray:
    """Linear RGB to 8-bit sRGB for the page's pictures: :func:`lensblur._convert.to_srgb8` looked up in a table of
    65536 linear levels (a code differs by 1 from the exact curve's for about 0.1 % of values, invisible in a
    JPEG), several times faster than evaluating the curve on every pixel. Files (downloads) never go through it.

    Args:
        image: ``H x W x 3`` numpy, or a ``(1, 3, H, W)`` / ``(3, H, W)`` tensor; values outside [0, 1] clip.

    Returns:
        ``H x W x 3`` ``uint8``.
    """
    if not isinstance(image, np.ndarray):
        image = image.detach().reshape(-1, *image.shape[-2:]).permute(1, 2, 0).to("cpu").numpy()
    levels = np.multiply(image, np.float32(65535), dtype=np.float32)
    np.add(levels, np.float32(0.5), out=levels)
    np.clip(levels, 0, 65535, out=levels)
    return _srgb8_table().take(levels.astype(np.uint16))


def jpeg_data_url(image, *, quality: int = 92) -> str:
    """Linear RGB ``image`` (as :func:`display_srgb8` takes it) as an sRGB JPEG ``data:`` URL for the page (display
    only, not a result file)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(display_srgb8(image)).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Job:
    """A full-resolution render running in its own thread.

    Attributes:
        id: the job's id.
        output: the file it writes.
        done, total: the renderer's block progress (0 of 0 until it reports).
        state: ``running``, ``done`` or ``failed``.
        error: the message when it failed.
        seconds: how long it took.
    """

    id: str
    output: Path
    done: int = 0
    total: int = 0
    state: str = "running"
    error: str | None = None
    seconds: float | None = None

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = int(done), int(total)

    def status(self) -> dict:
        return {"id": self.id, "state": self.state, "done": self.done, "total": self.total, "error": self.error,
                "seconds": self.seconds, "file": self.output.name}


@dataclass
class _Depth:
    image: np.ndarray              # the photo to render (the depth source's own when it carries one)
    small: np.ndarray              # ... at the preview's size
    draft_image: np.ndarray        # ... at the draft's size
    disparity: np.ndarray
    depth_range: object
    where: str
    suggested: float | None
    result: object                 # the source's DepthResult (None for a map file)
    preview: np.ndarray            # the map at the preview's size
    draft: np.ndarray              # the map at the draft preview's size
    version: int
    inputs: dict = field(default_factory=dict)   # (size, device, highlights) -> the renderer's input tensors
    pull: tuple | None = None      # the photo and map at a focus-pull frame's size
    bases: dict = field(default_factory=dict)    # (size, device) -> the photo, recovered at strength 1, the map
    provisional: dict = field(default_factory=dict)  # (size, device, strength) -> inputs while the search runs


@dataclass
class Session:
    """One dropped photo: its folder, its files by role, the photo and (once resolved) its depth.

    Attributes:
        id: the session's id (in the page's URLs).
        folder: where its uploads and renders are written (inside the workspace's folder).
        files: role -> uploaded file (see :data:`lensblur.ui.command.FILE_ROLES`).
        names: role -> the file's name as the user's browser gave it (what the shown command line says).
        image: the photo, ``H x W x 3`` linear RGB, as ``lensblur render`` reads it.
        small: the photo at the preview's size.
        draft: the photo at the draft preview's size (:data:`DRAFT_FRACTION` of the preview's pixels).
    """

    id: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    image: np.ndarray | None = None
    small: np.ndarray | None = None
    draft: np.ndarray | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    depth: _Depth | None = None
    depth_key: tuple | None = None
    methods: dict = field(default_factory=dict, repr=False)
    jobs: dict[str, Job] = field(default_factory=dict)
    lights: tuple | None = None    # (the full-size photo searched, the Future of its lights recovered at strength 1)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def output_name(self) -> str:
        """The result's file name: the photo's stem + ``-lensblur`` in the photo's format (HEIC included), or
        JPEG for a format lensblur does not write."""
        from ..io import IMAGE_SUFFIXES

        photo = Path(self.names["photo"])
        suffix = photo.suffix.lower() if photo.suffix.lower() in IMAGE_SUFFIXES else ".jpg"
        return f"{photo.stem}-lensblur{suffix}"

    def tokens(self, settings: dict, *, shown: bool) -> list[str]:
        """The render command's arguments for ``settings``: with the server's files (to run), or with the files'
        own names (``shown``, the command line the page prints)."""
        files = self.names if shown else {role: str(path) for role, path in self.files.items()}
        output = self.output_name() if shown else str(self.folder / "out" / self.output_name())
        return command.render_tokens(settings, files, output)

    def explain(self, exc: BaseException) -> str:
        """An error as ``lensblur render`` prints it, with the server's folder left out of file names."""
        from ..cli._args import cli_message

        text = cli_message(exc, command.render_parser()) if isinstance(exc, LensblurError) else str(exc)
        return self.unpath(text)

    def unpath(self, text: str) -> str:
        """``text`` with the server's copies of files named as the user named them."""
        roles = "|".join((*command.FILE_ROLES, "out"))
        return re.sub(re.escape(str(self.folder)) + rf"/(?:(?:{roles})/)?", "", text)


class Workspace:
    """The server's state: its temporary folder, the sessions (newest last) and the upload limits.

    Args:
        max_upload_bytes: the largest file the server takes.
        max_pixels: the largest photo, in pixels.
        preview_pixels: the preview's size in pixels.
        root: the parent of the temporary folder (the system's temporary folder when None).
        generate_model: the Stable Diffusion model of the generate tab (what ``lensblur generate --model``
            takes), or None.
    """

    def __init__(self, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20,
                 max_pixels: int = DEFAULT_MAX_MEGAPIXELS * 1_000_000, preview_pixels: int = PREVIEW_PIXELS,
                 root: str | Path | None = None, generate_model: str | None = None):
        from .generate import Generator

        self.folder = Path(tempfile.mkdtemp(prefix="lensblur-ui-", dir=root))
        self.generator = Generator(self.folder / "generate", generate_model)
        self.max_upload_bytes = int(max_upload_bytes)
        self.max_pixels = int(max_pixels)
        self.preview_pixels = int(preview_pixels)
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._searches = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lensblur-lights")

    # ---------------------------------------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Remove the folder and everything in it."""
        self._searches.shutdown(wait=False, cancel_futures=True)
        self.sessions.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def session(self, session_id: str) -> Session:
        """The session ``session_id``.

        Raises:
            InputError: there is none (it expired: the server keeps the last few photos).
        """
        found = self.sessions.get(str(session_id))
        if found is None:
            raise InputError("session", expected="a photo dropped on this server", got=session_id,
                             fix="drop the photo again (the server keeps the last few photos)")
        return found

    # ---------------------------------------------------------------------------------------------- uploads
    def limits(self) -> dict:
        return {"max_upload_mb": self.max_upload_bytes / 2**20, "max_megapixels": self.max_pixels / 1e6,
                "preview_megapixels": self.preview_pixels / 1e6}

    def too_large(self, size: int | None) -> InputError | None:
        """The error for an upload of ``size`` bytes over the limit (None when it fits)."""
        if size is not None and size > self.max_upload_bytes:
            return InputError("upload", expected=f"a file of at most {self.limits()['max_upload_mb']:g} MB",
                              got=f"{size / 2**20:.1f} MB", fix="shrink the file, or start lensblur ui with a "
                              "larger --max-upload-mb")
        return None

    def new_session(self) -> Session:
        """A new, empty session with its own folder; the oldest ones beyond :data:`SESSIONS_KEPT` are removed."""
        with self._lock:
            session_id = uuid.uuid4().hex
            folder = self.folder / session_id
            (folder / "out").mkdir(parents=True)
            self.sessions[session_id] = Session(session_id, folder)
            while len(self.sessions) > SESSIONS_KEPT:
                _, old = self.sessions.popitem(last=False)
                _forget(old)
            return self.sessions[session_id]

    def drop(self, session: Session) -> None:
        """Forget ``session`` and remove its folder."""
        with self._lock:
            self.sessions.pop(session.id, None)
        _forget(session)

    def upload_path(self, session: Session, role: str, name: str) -> Path:
        """Where an upload of ``role`` named ``name`` is stored (its own sub-folder, so names never collide)."""
        if role not in command.FILE_ROLES:
            raise InputError("role", expected=f"one of {', '.join(command.FILE_ROLES)}", got=role,
                             fix="upload a photo, disparity, right view or aperture image")
        folder = session.folder / role
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        return folder / command.file_name(name, role)

    def check_pixels(self, path: Path) -> None:
        """Refuse a photo of more than ``max_pixels`` pixels, from its header where Pillow can read one (before
        decoding it)."""
        from PIL import Image

        from ..depth import register_heif

        try:
            register_heif()
        except LensblurError:
            pass
        try:
            with Image.open(path) as im:
                width, height = im.size
        except Exception:  # noqa: BLE001 - not a format Pillow opens lazily: read_photo says what is wrong
            return
        self._check_size(width, height)

    def _check_size(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise InputError("photo", expected=f"a photo of at most {self.max_pixels / 1e6:g} megapixels",
                             got=f"{width}x{height} ({width * height / 1e6:.1f} MP)",
                             fix="downscale the photo, or start lensblur ui with a larger --max-megapixels")

    def add_photo(self, session: Session, path: Path, name: str) -> dict:
        """Read the photo ``path`` into ``session`` as ``lensblur render`` reads it.

        Returns:
            What the page needs: the session id, the size, the preview size, the EXIF camera, the before image.

        Raises:
            InputError: the file is too large, cannot be read, or is not a photo.
        """
        from ..depth import read_photo
        from ..io.camera import read_camera

        self.check_pixels(path)
        image = read_photo(path)
        self._check_size(image.shape[1], image.shape[0])
        session.files["photo"], session.names["photo"] = path, command.file_name(name, "photo")
        session.image = image
        session.small = shrink(image, preview_size(image.shape[1], image.shape[0], self.preview_pixels))
        h, w = session.small.shape[:2]
        session.draft = shrink(session.small, preview_size(w, h, max(1, int(w * h * DRAFT_FRACTION))))
        camera = read_camera(path)
        return {"session": session.id, "width": session.width, "height": session.height,
                "preview": [int(session.small.shape[1]), int(session.small.shape[0])],
                "focal_length": camera.focal_length,
                "sensor_width": camera.sensor_width(session.width, session.height),
                "name": session.names["photo"], "output": session.output_name(),
                "before": jpeg_data_url(session.small)}

    # ---------------------------------------------------------------------------------------------- rendering
    def _prepare(self, session: Session, settings: dict, *, raw: bool = False):
        """The render command's args (for one photo; as the parser gives them to ``run`` with ``raw``), method,
        depth and full-resolution lens for ``settings``."""
        from ..cli import _args
        from ..cli import render as render_command

        if session.image is None:
            raise InputError("photo", expected="a photo", got="none", fix="drop a photo first")
        run_args = command.parse_render(session.tokens(settings, shown=False), command.render_parser())
        args = command.one_photo(run_args)
        key = (args.method, args.checkpoint, args.highlights)
        method = session.methods.get(key)
        if method is None:
            method = _args.method_from_flags(args, highlights=args.highlights)
            session.methods.clear()
            session.methods[key] = method
        depth = lens = None
        if method.needs_disparity:
            depth = self._depth(session, args)
            if method.needs_lens:
                lens = render_command._lens(args, depth.disparity, depth.depth_range, depth.image.shape[1],
                                            depth.suggested, depth.result)[0]
        return run_args if raw else args, method, depth, lens

    def _depth(self, session: Session, args) -> _Depth:
        """The depth the render command would read for ``args`` (kept until a depth setting changes)."""
        from ..cli import render as render_command

        key = tuple(repr(getattr(args, name, None)) for name in _DEPTH_ARGS)
        if session.depth is None or session.depth_key != key:
            image, disparity, rng, where, suggested, result = render_command.photo_depth(args, session.image)
            version = (session.depth.version + 1) if session.depth else 1
            if image is session.image:
                small, draft = session.small, session.draft
            else:
                small, draft = shrink(image, session.small.shape[:2]), shrink(image, session.draft.shape[:2])
            preview = shrink(disparity, small.shape[:2])
            session.depth = _Depth(image, small, draft, disparity, rng, where, suggested, result, preview,
                                   shrink(preview, draft.shape[:2]), version)
            session.depth_key = key
            self.lights(session, image)           # the search starts now, while the page asks for a preview
        return session.depth

    def lights(self, session: Session, image: np.ndarray) -> Future:
        """The search for the lights of ``image`` (the photo at full size): a Future of the photo with its lights
        recovered at strength 1 (None when the recovery changes nothing), started in the workspace's search thread
        the first time and kept with the session while its depth source gives the same photo."""
        if session.lights is None or session.lights[0] is not image:
            session.lights = image, self._searches.submit(_search_lights, image)
        return session.lights[1]

    def depth_info(self, session: Session, settings: dict) -> dict:
        """Resolve the depth for ``settings`` (the same way a render does) and describe it for the page."""
        with session.lock:
            args = command.one_photo(command.parse_render(session.tokens(settings, shown=False),
                                                          command.render_parser()))
            depth = self._depth(session, args)
        return self._describe(session, depth)

    def _describe(self, session: Session, depth: _Depth) -> dict:
        rng = depth.depth_range
        return {"source": session.unpath(depth.where), "version": depth.version,
                "depth_range": None if rng is None else [rng.near, rng.far]}

    def depth_image(self, session: Session) -> str:
        """The map at the preview's size, colour-mapped as ``lensblur depth --preview`` draws it."""
        from ..io import preview_image

        if session.depth is None:
            raise InputError("depth", expected="a resolved depth map", got="none", fix="drop a photo with depth")
        small = session.depth.small
        pair = preview_image(small, session.depth.preview, max_width=2 * small.shape[1])
        return jpeg_data_url(pair[:, small.shape[1]:])

    def preview(self, session: Session, settings: dict) -> dict:
        """Render the preview for ``settings`` (a smaller draft when ``settings["draft"]`` is true: what the page
        asks for while a slider is being dragged).

        Returns:
            The preview (a JPEG data URL), the command line, the focus and blur, the depth's description and the
            time each step took (``prepare_seconds``: the command line read, the lens; ``render_seconds``;
            ``encode_seconds``: sRGB and JPEG).
        """
        from ..lens import Lens

        with session.lock:
            started = time.perf_counter()
            args, method, depth, lens = self._prepare(session, settings)
            draft = bool(settings.get("draft"))
            kind = "draft" if draft else "preview"
            small = self._arrays(session, depth, kind)[0]
            width = session.width if depth is None else depth.image.shape[1]
            scale = small.shape[1] / width
            small_lens = None if lens is None else Lens(focus_disparity=lens.focus_disparity,
                                                        blur=lens.blur * scale, aperture=lens.aperture)
            prepared = time.perf_counter()
            out, provisional = self._render(session, args, method, depth, kind, small_lens)
            rendered = time.perf_counter()
            image = jpeg_data_url(out)
            encoded = time.perf_counter()
        reply = {"image": image, "command": command.command_line(session.tokens(settings, shown=True)),
                 "method": args.method, "render_seconds": rendered - prepared, "draft": draft,
                 "prepare_seconds": prepared - started, "encode_seconds": encoded - rendered,
                 "size": [int(small.shape[1]), int(small.shape[0])], "lights": "searching" if provisional else "done"}
        if lens is not None:
            reply.update(focus_disparity=lens.focus_disparity, blur=lens.blur, preview_blur=small_lens.blur)
            if depth.depth_range is not None:
                reply["focus_distance"] = float(depth.depth_range.depth(lens.focus_disparity))
        if depth is not None:
            reply["depth"] = self._describe(session, depth)
        return reply

    @staticmethod
    def _arrays(session: Session, depth: _Depth | None, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The photo and map at the size of ``kind``: ``preview``, ``draft`` or ``pull`` (a focus-pull frame)."""
        if depth is None:
            return (session.draft if kind == "draft" else session.small), None
        if kind == "draft":
            return depth.draft_image, depth.draft
        if kind == "pull":
            if depth.pull is None:
                size = preview_size(depth.small.shape[1], depth.small.shape[0], FOCUS_PULL_PIXELS)
                depth.pull = shrink(depth.small, size), shrink(depth.preview, size)
            return depth.pull
        return depth.small, depth.preview

    def _render(self, session: Session, args, method, depth: _Depth | None, kind: str, lens, *, wait: bool = False):
        """The picture of ``kind`` (see :meth:`_arrays`) by ``method`` with ``lens``.

        A classical renderer's ``predict`` is ``lensblur.render.render``: the clipped lights recovered
        (:func:`~lensblur.render.highlights.recover_highlights`), then ``render_tensor``. Neither the recovery nor
        the tensors change while the depth and the highlight strength stay, so they are made once and kept with the
        depth (:meth:`_inputs`); each preview runs ``render_tensor`` on them with ``highlights="off"``. Other
        methods get ``method.predict`` on the shrunk arrays.

        Returns:
            ``H x W x 3`` numpy, or ``(1, 3, H, W)`` tensor (both linear RGB), and whether it is provisional (its
            highlights not yet from the full-size search; never with ``wait``).
        """
        import torch

        from ..methods import ClassicalRenderer
        from ..render import render_tensor

        if depth is None or type(method) is not ClassicalRenderer:
            image, maps = self._arrays(session, depth, kind)
            return method.predict(image, disparity=maps, lens=lens, meta=self._meta(session, args, depth)), False
        x, d, provisional = self._inputs(session, depth, kind, method, wait=wait)
        with torch.inference_mode():
            return render_tensor(x, d, lens, method=method.name, highlights="off"), provisional

    def _inputs(self, session: Session, depth: _Depth, kind: str, method, *, wait: bool = False) -> tuple:
        """The photo (its lights recovered as ``method`` asks) and map of ``kind`` as ``(1, C, H, W)`` tensors on
        ``method``'s device, kept with the depth, and whether they are provisional.

        The lights are searched for on the photo at its full size, as ``lensblur render`` does (:meth:`lights`,
        once per photo, in a thread started when the depth is read), and the recovered photo is shrunk (area
        averaging keeps each light's energy): on the shrunk photo itself a small light's edge is soft, and the
        recovery would take it for a bright surface and leave it, so the preview's highlights would not be the
        render's. Another strength ``s`` is ``photo + s * (recovered - photo)``, as
        :func:`~lensblur.render.highlights.recover_highlights` defines the strength (each light gets its recorded
        energy plus ``s`` times the missing part), so moving the highlights slider costs no new search. The last
        :data:`STRENGTHS_KEPT` strengths are kept. Until the search is done (unless ``wait``), the inputs are
        provisional: the recovery run on the shrunk photo, as previews were made before.
        """
        import torch

        from .._convert import disparity_to_tensor, image_to_tensor
        from .._device import resolve_device
        from ..render.highlights import highlight_strength, recover_highlights

        key = (kind, method.device, method.highlights)
        if key in depth.inputs:
            return (*depth.inputs[key], False)
        device = torch.device("cpu") if method.device is None else resolve_device(method.device)
        search = self.lights(session, depth.image)
        if not wait and not search.done():
            if key not in depth.provisional:
                image, maps = self._arrays(session, depth, kind)
                with torch.inference_mode():
                    depth.provisional[key] = (recover_highlights(image_to_tensor(image, device=device),
                                                                 method.highlights),
                                              disparity_to_tensor(maps, device=device))
            return (*depth.provisional[key], True)
        base = depth.bases.get((kind, method.device))
        if base is None:
            image, maps = self._arrays(session, depth, kind)
            lit = search.result()
            with torch.inference_mode():
                lifted = None if lit is None else image_to_tensor(shrink(lit, image.shape[:2]), device=device)
                base = image_to_tensor(image, device=device), lifted, disparity_to_tensor(maps, device=device)
            depth.bases[(kind, method.device)] = base
            depth.provisional.clear()
        x, lifted, d = base
        strength = highlight_strength(method.highlights)
        if lifted is not None and strength == 1.0:
            x = lifted
        elif lifted is not None and strength != 0.0:
            with torch.inference_mode():
                x = torch.lerp(x, lifted, float(strength))
        for old in [k for k in depth.inputs if k[0] == kind][:-STRENGTHS_KEPT + 1 or None]:    # the oldest go
            del depth.inputs[old]
        depth.inputs[key] = x, d
        return x, d, False

    def _meta(self, session: Session, args, depth) -> dict:
        meta = {"path": str(args.photo)}
        if depth is not None and depth.depth_range is not None:
            meta["depth_range"] = depth.depth_range
        return meta

    def start_render(self, session: Session, settings: dict) -> Job:
        """Start the full-resolution render of ``settings`` in a thread: ``lensblur render`` itself (its ``run``)
        with the command line the page shows, the server's copies of the files standing in for the user's. The
        settings are checked (depth, lens, method, output) before the thread starts."""
        from ..io import check_output_path

        with session.lock:
            args, _, _, _ = self._prepare(session, settings, raw=True)
        check_output_path(args.output, inputs=[*args.photo, args.disparity, args.right], force=False)
        job = Job(uuid.uuid4().hex, Path(args.output))
        session.jobs = {job.id: job}
        thread = threading.Thread(target=self._run, args=(session, job, args), name=f"lensblur-render-{job.id[:8]}",
                                  daemon=True)
        thread.start()
        return job

    def _run(self, session: Session, job: Job, args) -> None:
        from ..cli import render as render_command
        from ..render import reporting

        def work():
            with reporting(job.progress):
                render_command.run(args)       # prints its "wrote ..." line in the server's log

        _finish(session, job, work, "render")

    def start_focus_pull(self, session: Session, settings: dict, *, frames: int = FOCUS_PULL_FRAMES,
                         fmt: str = "gif") -> Job:
        """Start a focus-pull GIF (``fmt="gif"``) or MP4 (``"mp4"``, MPEG-4 through OpenCV) in a thread: ``frames``
        renders at the preview's lens settings, shrunk to at most
        :data:`FOCUS_PULL_PIXELS`, the focus sweeping from the nearest to the farthest part of the scene (the
        2nd and 98th percentiles of the map) and back. Each frame is the preview of ``settings`` focused with
        ``--focus-disparity``, so a camera's blur follows its focus distance as ``lensblur render`` computes it."""
        if fmt not in ("gif", "mp4"):
            raise InputError("format", expected="gif or mp4", got=fmt, fix="ask for format=gif or format=mp4")
        if fmt == "mp4":
            _optional.cv2("writing MP4 focus pulls", extra="io")
        with session.lock:
            _, method, depth, _ = self._prepare(session, settings)
        if depth is None or not method.needs_lens:
            raise InputError("method", expected="a method that renders a lens", got=method.name,
                             fix="pick a classical renderer for a focus pull")
        near, far = (float(v) for v in np.percentile(depth.preview, [98, 2]))
        sweep = np.linspace(near, far, max(2, frames // 2 + 1))
        stops = [*sweep, *sweep[-2:0:-1]]
        output = session.folder / "out" / f"{Path(session.names['photo']).stem}-focus-pull.{fmt}"
        job = Job(uuid.uuid4().hex, output, total=len(stops))
        session.jobs = {job.id: job}
        search = self.lights(session, depth.image)
        thread = threading.Thread(target=self._focus_pull, args=(session, job, dict(settings), stops, search),
                                  name=f"lensblur-pull-{job.id[:8]}", daemon=True)
        thread.start()
        return job

    def _focus_pull(self, session: Session, job: Job, settings: dict, stops: list[float], search: Future) -> None:
        from PIL import Image

        from .._convert import tensor_to_image, to_srgb8
        from ..io import atomic_path
        from ..lens import Lens

        def work():
            search.result()              # the lights at full size, waited for without holding the session's lock
            frames = []
            for i, stop in enumerate(stops):
                with session.lock:
                    args, method, depth, lens = self._prepare(session, {**settings, "focus": {"disparity": stop}})
                    scale = self._arrays(session, depth, "pull")[0].shape[1] / depth.image.shape[1]
                    frame_lens = Lens(focus_disparity=lens.focus_disparity, blur=lens.blur * scale,
                                      aperture=lens.aperture)
                    out = self._render(session, args, method, depth, "pull", frame_lens, wait=True)[0]
                frames.append(Image.fromarray(to_srgb8(out if isinstance(out, np.ndarray) else tensor_to_image(out))))
                job.progress(i + 1, len(stops))
            with atomic_path(job.output) as tmp:
                if job.output.suffix == ".mp4":
                    _write_mp4(tmp, frames, fps=1000 / FOCUS_PULL_MS)
                else:
                    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=FOCUS_PULL_MS,
                                   loop=0)

        _finish(session, job, work, "focus pull")


def _forget(session: Session) -> None:
    """Remove a session's folder, and its light search if it has not started (searches run one at a time)."""
    if session.lights is not None:
        session.lights[1].cancel()
    shutil.rmtree(session.folder, ignore_errors=True)


def _search_lights(image: np.ndarray) -> np.ndarray | None:
    """``image`` (full size) with its clipped lights recovered at strength 1, on the CPU; None when the recovery
    changes nothing (no lights, or an HDR photo). On Linux the search thread lowers its own priority (nice 19, this
    thread and the threads it starts only), so the previews it runs beside go first and it takes the time
    between them."""
    import torch

    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass

    from .._convert import image_to_tensor, tensor_to_image
    from ..render.highlights import recover_highlights

    with torch.inference_mode():
        full = image_to_tensor(image)
        lit = recover_highlights(full, 1.0)
        return None if lit is full else tensor_to_image(lit)


def _finish(session: Session, job: Job, work, what: str) -> None:
    """Run a job's ``work`` in its thread: the job ends ``done`` with its time, or ``failed`` with the message
    the page shows (an unexpected error is logged with its traceback; the server goes on)."""
    started = time.perf_counter()
    try:
        work()
        job.seconds = time.perf_counter() - started
        job.state = "done"
    except Exception as exc:     # every failure becomes the job's message in the page
        if not isinstance(exc, LensblurError):
            log.exception("%s failed", what)
        job.error = session.explain(exc)
        job.state = "failed"


def _write_mp4(path: Path, frames: list, *, fps: float) -> None:
    """Write PIL ``frames`` as an MPEG-4 video (OpenCV's ``mp4v``), cropped to even sides as codecs want."""
    cv2 = _optional.cv2("writing MP4 focus pulls", extra="io")
    width, height = frames[0].size
    width, height = width - width % 2, height - height % 2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write MP4 video to {path}")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(np.asarray(frame)[:height, :width, ::-1]))
    finally:
        writer.release()
