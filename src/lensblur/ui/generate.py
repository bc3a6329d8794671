"""The page's second tab: stage diffusion (``lensblur generate``) with the Stable Diffusion model the server was
started with (``lensblur ui --generate-model PATH``, what ``lensblur generate --model`` takes).

As for renders, the page's settings become a command line (:func:`generate_tokens`) read by the generate command's
own parser, and the run *is* that command (``lensblur.cli.generate.run``) in a thread of the server, writing into
the server's folder: the global prompt alone (the baseline, ``--baseline``) and the stage-diffusion result, one
seed. The focus report is :func:`lensblur.generate.report.report_files` on those two files, the function ``lensblur
focus-report`` and ``generate --box`` score with, for the box the user drags (the whole image without one).

Image-to-image starts from an init image (``--init-image``, ``--strength``): the photo dropped on the Refocus tab or
a picture dropped on this tab, read when it arrives by the command's own reader (so a bad file gets the command's
message at once). One larger than the tab's limit is shrunk to fit into a PNG the tab offers for download, and the
command line names that file. The steps are counted through :func:`lensblur.generate.pipeline.reporting` (the
pipeline's ``callback_on_step_end``), over every run of the job.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError, LensblurError
from . import command

__all__ = ["GENERATE_JOBS_KEPT", "INITS_KEPT", "MAX_GENERATE_PIXELS", "MAX_STEPS", "GenerateJob", "Generator",
           "InitImage", "generate_tokens", "init_size"]

MAX_GENERATE_PIXELS = 1024 * 1024
"""The largest image the tab generates (width x height)."""

MAX_STEPS = 200
"""The most denoising steps the tab runs."""

GENERATE_JOBS_KEPT = 3
"""How many generations the server keeps (the oldest one's files go first)."""

INITS_KEPT = 3
"""How many init images the server keeps (the oldest one goes first, unless a running generation reads it)."""

NO_MODEL = ("no Stable Diffusion model is configured: start the server with lensblur ui --generate-model PATH, "
            "where PATH is what lensblur generate --model takes (a diffusers folder, a .safetensors/.ckpt "
            "checkpoint, or a Hugging Face id already in the local cache)")
"""What the tab says when the server has no model."""


def _text(settings: Mapping, key: str, *, required: bool = False) -> str | None:
    value = settings.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(key, expected="some text", got="nothing", fix=f"type the {key.replace('_', ' ')}")
        return None
    if not isinstance(value, str) or len(value) > 2000:
        raise InputError(key, expected="text of at most 2000 characters", got=type(value).__name__,
                         fix=f"type a shorter {key.replace('_', ' ')}")
    return value.strip()


def generate_tokens(settings: Mapping, model: str, output: str, init_image: str | None = None, *,
                    max_pixels: int = MAX_GENERATE_PIXELS) -> list[str]:
    """The ``lensblur generate`` arguments (after ``generate``) for the tab's ``settings``.

    Args:
        settings: ``prompt`` (required), ``focus`` (the focus prompt; none: the baseline only), ``sigma``,
            ``alpha``, ``steps``, ``guidance``, ``size`` ([width, height]; text-to-image only), ``strength``
            (image-to-image only), ``seed``, ``negative_prompt``.
        model: the ``--model`` the server was started with.
        output: the ``-o`` folder.
        init_image: the ``--init-image`` file (image-to-image), or None (text-to-image).
        max_pixels: the largest ``size`` (width x height).

    Returns:
        The tokens: one seed, the baseline beside the result (``--baseline``), no progress bars.

    Raises:
        InputError: a setting of the wrong type or out of the tab's range (named by its setting).
    """
    prompt = _text(settings, "prompt", required=True)
    focus = _text(settings, "focus")
    negative = _text(settings, "negative_prompt")
    tokens: list[str] = []
    if focus:
        command._flag(tokens, "--focus", focus)
    command._flag(tokens, "--sigma", command._number(settings, "sigma", low=0.0, high=1.0))
    command._flag(tokens, "--alpha", command._number(settings, "alpha", low=0.0, high=100.0))
    tokens += ["--model", str(model), "--baseline"]
    steps = command._number(settings, "steps", low=1, high=MAX_STEPS)
    if steps is not None:
        tokens += ["--steps", str(int(float(steps)))]
    command._flag(tokens, "--guidance", command._number(settings, "guidance", low=0.0, high=100.0))
    size = None if init_image is not None else settings.get("size")
    if init_image is not None:
        tokens += ["--init-image", str(init_image)]
        command._flag(tokens, "--strength", command._number(settings, "strength", low=0.0, high=1.0))
    if size is not None:
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise InputError("size", expected="[width, height]", got=size, fix="pick a size such as 512x512")
        width, height = (int(float(command._number({"size": v}, "size", low=8, high=4096))) for v in size)
        if width % 8 or height % 8 or width * height > max_pixels:
            raise InputError("size", expected=f"multiples of 8, at most {max_pixels / 2**20:g} MP",
                             got=f"{width}x{height}", fix="pick a size such as 512x512")
        tokens += ["--size", f"{width}x{height}"]
    seed = command._number(settings, "seed", low=0, high=2**32 - 1)
    if seed is not None:
        tokens += ["--seed", str(int(float(seed)))]
    if negative:
        command._flag(tokens, "--negative-prompt", negative)
    tokens += ["--num-images", "1", "-o", str(output), "-q"]
    return tokens + (["--", prompt] if prompt.startswith("-") else [prompt])


def init_size(width: int, height: int, max_pixels: int = MAX_GENERATE_PIXELS) -> tuple[int, int]:
    """(width, height) a ``width x height`` init image runs at: its own size cropped to multiples of 8 (what
    ``lensblur generate`` does) when that is at most ``max_pixels``, else shrunk to fit, each side a multiple of 8
    (at least 8).

    Args:
        width, height: the picture's size.
        max_pixels: the tab's limit.

    Returns:
        The size: at most ``max_pixels`` (unless even 8 x 8 is more), each side at most the picture's.
    """
    if (width - width % 8) * (height - height % 8) <= max_pixels:
        return width - width % 8, height - height % 8
    scale = math.sqrt(max_pixels / float(width * height))
    w, h = max(8, int(width * scale) // 8 * 8), max(8, int(height * scale) // 8 * 8)
    if w * h > max_pixels:                 # a side held at 8: the other one takes what is left
        w, h = (w, max(8, max_pixels // w // 8 * 8)) if w == 8 else (max(8, max_pixels // h // 8 * 8), h)
    return w, h


@dataclass
class InitImage:
    """A picture the tab's image-to-image starts from.

    Attributes:
        id: its id (what the tab's settings send as ``init_image``).
        path: the file ``--init-image`` reads (the server's copy, or the shrunk PNG).
        name: what the command line shown calls that file (the dropped file's own name, or the shrunk PNG's).
        size: (width, height) of the picture as dropped.
        used: (width, height) the generation runs at.
        shrunk: whether ``path`` is the picture shrunk to the tab's limit (a file the tab offers for download).
        picture: the picture the generation starts from, 8-bit display values (for the tab's thumbnail).
    """

    id: str
    path: Path
    name: str
    size: tuple[int, int]
    used: tuple[int, int]
    shrunk: bool
    picture: object = field(repr=False, default=None)

    def describe(self) -> dict:
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(self.picture).save(buffer, format="JPEG", quality=90)
        return {"id": self.id, "name": self.name, "size": list(self.size), "used": list(self.used),
                "shrunk": self.shrunk, "file": f"/api/generate/init/{self.id}/file" if self.shrunk else None,
                "image": "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()}


@dataclass
class GenerateJob:
    """One generation running in its thread.

    Attributes:
        id: the job's id.
        folder: the folder the command writes into.
        command: the command line the tab shows (the output folder as ``generated/``).
        planned: the runs, in order: (label, denoising steps it runs), the baseline first.
        init: the id of the init image it reads, or None.
        source: what image-to-image starts from, in words (the file the command line names, the strength).
        state: ``running``, ``done`` or ``failed``.
        error: the message when it failed.
        seconds: how long it took.
        runs: the command's ``run.json`` runs (label, focus prompt, sigma, alpha, files), the baseline first.
        step: the denoising steps done, over every run.
        finished: how many runs have run all their steps.
    """

    id: str
    folder: Path
    command: str
    planned: list = field(default_factory=list)
    init: str | None = None
    source: str | None = None
    state: str = "running"
    error: str | None = None
    seconds: float | None = None
    runs: list = field(default_factory=list)
    step: int = 0
    finished: int = 0

    @property
    def steps(self) -> int:
        """The denoising steps of the whole job (every run's)."""
        return sum(count for _, count in self.planned)

    def progress(self, step: int, steps: int) -> None:
        """Step ``step`` of the ``steps`` the current run runs is done (what the pipeline reports)."""
        if self.finished >= len(self.planned):
            return
        label, planned = self.planned[self.finished]
        if steps != planned:                       # a scheduler with its own step arithmetic: what diffusers runs
            self.planned[self.finished] = (label, int(steps))
        before = sum(count for _, count in self.planned[:self.finished])
        self.step = before + min(int(step), int(steps))
        if step >= steps:
            self.finished += 1

    def phase(self) -> str:
        """What the job is doing, in words."""
        if self.state != "running":
            return self.state
        if self.finished >= len(self.planned):
            return "writing the files"
        if self.finished == 0 and self.step == 0:
            return "loading the model"
        label = self.planned[self.finished][0]
        return f"{label} (run {self.finished + 1} of {len(self.planned)})"

    def files(self) -> list[str]:
        return [name for run in self.runs for name in run["files"]]

    def status(self) -> dict:
        reply = {"id": self.id, "state": self.state, "error": self.error, "seconds": self.seconds,
                 "command": self.command, "step": self.step, "steps": self.steps, "phase": self.phase(),
                 "source": self.source}
        if self.state == "done":
            reply["images"] = [{"label": run["label"], "focus_prompt": run["focus_prompt"], "sigma": run["sigma"],
                                "alpha": run["alpha"], "steps_run": run["steps_run"],
                                "global_steps": run["global_steps"],
                                "focus_steps": run["focus_steps"], "file": run["files"][0],
                                "image": "data:image/png;base64," + base64.b64encode(
                                    (self.folder / run["files"][0]).read_bytes()).decode()}
                               for run in self.runs]
        return reply


class Generator:
    """The generate tab's jobs, in ``folder`` (inside the server's temporary folder), with the server's model.

    Args:
        folder: where the runs write (created on the first run; removed with the server's folder).
        model: what ``lensblur generate --model`` takes, or None (the tab then says how to configure one).
        max_pixels: the largest image the tab generates (text-to-image size, init images shrunk to fit).
    """

    def __init__(self, folder: Path, model: str | None, *, max_pixels: int = MAX_GENERATE_PIXELS):
        self.folder, self.model = Path(folder), (str(model) if model else None)
        self.max_pixels = int(max_pixels)
        self.jobs: OrderedDict[str, GenerateJob] = OrderedDict()
        self.inits: OrderedDict[str, InitImage] = OrderedDict()
        self._lock = threading.Lock()

    def info(self) -> dict:
        """What the tab needs: the model (None: :data:`NO_MODEL` says how to configure one) and the defaults."""
        from ..choices import DEFAULT_ALPHA, DEFAULT_SIGMA, DEFAULT_STRENGTH

        return {"model": self.model, "message": None if self.model else NO_MODEL, "sigma": DEFAULT_SIGMA,
                "alpha": DEFAULT_ALPHA, "strength": DEFAULT_STRENGTH, "max_steps": MAX_STEPS,
                "max_megapixels": self.max_pixels / 2**20}

    def explain(self, exc: BaseException) -> str:
        """An error as ``lensblur generate`` prints it, with the server's folder left out (an init image named as
        the user named it)."""
        from ..cli._args import cli_message

        text = cli_message(exc, command.command_parser("generate")) if isinstance(exc, LensblurError) else str(exc)
        return re.sub(re.escape(str(self.folder)) + r"/(?:init/[0-9a-f]{32}/)?", "", text)

    # -------------------------------------------------------------------------------------------- init images
    def init_path(self, name: str) -> Path:
        """Where a new init image named ``name`` is stored (a folder of its own, named by the init's id)."""
        folder = self.folder / "init" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder / command.file_name(name, "init.png")

    def add_init(self, path: Path, *, max_pixels: int | None = None) -> InitImage:
        """Read ``path`` (from :meth:`init_path`) as ``lensblur generate --init-image`` reads it, and keep it.

        A picture whose sides cropped to multiples of 8 (as the command crops them) fit :attr:`max_pixels` is used
        as it is; a larger one is shrunk (area averaging of its display values, :func:`init_size`) into an 8-bit
        PNG beside it, ``STEM-WxH.png``, the file the command line then names.

        Args:
            path: the file.
            max_pixels: the largest picture the server decodes (the header is checked first), or None.

        Returns:
            The init image.

        Raises:
            InputError: the file is over ``max_pixels``, cannot be read (the command's message, under
                ``--init-image``), or is smaller than 8 x 8.
        """
        from .._convert import quantize
        from ..io import read_display
        from ..io.image import open_pillow
        from .session import shrink

        try:
            if max_pixels is not None:
                try:
                    with open_pillow(path, argument="init_image") as im:
                        width, height = im.size
                except InputError:
                    raise
                except Exception:  # noqa: BLE001 - not a format Pillow opens lazily: read_display says what is wrong
                    width = height = 0
                if width * height > max_pixels:
                    raise InputError("init_image", expected=f"a picture of at most {max_pixels / 1e6:g} megapixels "
                                     "(the server's limit)", got=f"{path.name}: {width}x{height} "
                                     f"({width * height / 1e6:.1f} MP)",
                                     fix="downscale it, or start lensblur ui with a larger --max-megapixels")
            display = read_display(path)                 # the command's reader, as generate.run reads it
            height, width = display.shape[:2]
            if width < 8 or height < 8:
                raise InputError("init_image", expected="a picture at least 8x8 pixels", got=path.name,
                                 fix="pass a larger image")
            used = init_size(width, height, self.max_pixels)
            shrunk = used != (width - width % 8, height - height % 8)
            if shrunk:
                from PIL import Image

                from ..io import atomic_path

                codes = quantize(shrink(display, used[::-1]), 8)
                target = path.with_name(f"{path.stem}-{used[0]}x{used[1]}.png")
                with atomic_path(target) as tmp:
                    Image.fromarray(codes).save(tmp, format="PNG")
            else:
                codes, target = quantize(display[:used[1], :used[0]], 8), path
        except BaseException:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise
        init = InitImage(path.parent.name, target, target.name, (width, height), used, shrunk, codes)
        with self._lock:
            self.inits[init.id] = init
            busy = {job.init for job in self.jobs.values() if job.state == "running"}
            for old in [k for k in self.inits if k not in busy][:max(0, len(self.inits) - INITS_KEPT)]:
                shutil.rmtree(self.inits.pop(old).path.parent, ignore_errors=True)
        return init

    def init(self, init_id) -> InitImage:
        """The init image ``init_id``.

        Raises:
            InputError: there is none (the server keeps the last few).
        """
        found = self.inits.get(str(init_id))
        if found is None:
            raise InputError("init_image", expected="a picture dropped on this tab (or the Refocus tab's photo)",
                             got=init_id, fix="choose the init image again (the server keeps the last few)")
        return found

    def job(self, job_id: str) -> GenerateJob:
        found = self.jobs.get(str(job_id))
        if found is None:
            raise InputError("job", expected="a generation of this server", got=job_id,
                             fix="generate again (the server keeps the last few)")
        return found

    def start(self, settings: Mapping) -> GenerateJob:
        """Start ``lensblur generate`` for ``settings`` in a thread (one generation at a time).

        Raises:
            InputError: no model is configured, a generation is running, or the settings are refused (by
                :func:`generate_tokens`, the command's parser or its checks, before the thread starts).
        """
        from ..cli import generate as generate_command
        from ..generate.stages import steps_run

        if self.model is None:
            raise InputError("generate", expected="a Stable Diffusion model", got="none", fix=NO_MODEL)
        with self._lock:
            if any(job.state == "running" for job in self.jobs.values()):
                raise InputError("generate", expected="one generation at a time", got="one running",
                                 fix="wait for it to finish")
            init = None if settings.get("init_image") in (None, "") else self.init(settings["init_image"])
            job_id = uuid.uuid4().hex
            folder = self.folder / job_id
            tokens = generate_tokens(settings, self.model, str(folder), None if init is None else str(init.path),
                                     max_pixels=self.max_pixels)
            args = command.parse_render(tokens, command.command_parser("generate"))
            generate_command._check(args)     # also: at least one step to run, for a baseline alone too
            per_run = steps_run(args.steps, image_to_image=init is not None, strength=generate_command._strength(args))
            runs, _, _ = generate_command._plan(args, folder)
            shown = generate_tokens(settings, self.model, "generated/", None if init is None else init.name,
                                    max_pixels=self.max_pixels)
            job = GenerateJob(job_id, folder, command.command_line(shown, "generate"),
                              planned=[(label, per_run) for label, *_ in runs],
                              init=None if init is None else init.id,
                              source=None if init is None else f"{init.name} at strength {generate_command._strength(args):g}")
            self.jobs[job_id] = job
            while len(self.jobs) > GENERATE_JOBS_KEPT:
                _, old = self.jobs.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
        threading.Thread(target=self._run, args=(job, args), name=f"lensblur-generate-{job_id[:8]}",
                         daemon=True).start()
        return job

    def _run(self, job: GenerateJob, args) -> None:
        import logging

        from ..cli import generate as generate_command
        from ..generate.pipeline import reporting

        started = time.perf_counter()
        try:
            with reporting(job.progress):
                generate_command.run(args)        # prints the files it wrote in the server's log
            job.runs = json.loads((job.folder / "run.json").read_text())["runs"]
            job.seconds = time.perf_counter() - started
            job.state = "done"
        except Exception as exc:     # every failure becomes the job's message in the tab
            if not isinstance(exc, LensblurError):
                logging.getLogger(__name__).exception("generate failed")
            job.error = self.explain(exc)
            job.state = "failed"

    def report(self, job_id: str, box=None) -> dict:
        """The focus report of a finished job: the baseline and the result scored in ``box`` ([x0, y0, x1, y1],
        x1 and y1 exclusive) or the whole image, with the ``lensblur focus-report`` command that gives it.

        Raises:
            InputError: the job is not done, or the box is not inside the images.
        """
        from ..generate.report import Region, report_files
        from ..geometry import parse_box

        job = self.job(job_id)
        if job.state != "done":
            raise InputError("job", expected="a finished generation", got=job.state, fix="wait for it")
        names = job.files()
        region = None
        if box is not None:
            from PIL import Image

            with Image.open(job.folder / names[0]) as im:
                shape = im.size[::-1]
            if not isinstance(box, (list, tuple)) or isinstance(box, str):
                raise InputError("box", expected="[x0, y0, x1, y1]", got=box, fix="drag a box on the result")
            region = Region("focus", parse_box(box, shape, argument="box"))
        scores = report_files([job.folder / name for name in names], None if region is None else [region])
        shown = [*[f"generated/{name}" for name in names], *(["--box", "focus=" + ",".join(map(str, region.box))] if region
                                                           else [])]
        named = {str(job.folder / name): f"generated/{name}" for name in names}    # as the command line names them
        return {"scores": [{**asdict(s), "image": named[s.image], "box": None if s.box is None else list(s.box)}
                           for s in scores],
                "command": command.command_line(shown, "focus-report")}

    def file(self, job_id: str, name: str) -> Path:
        """A file a finished job wrote (only those its ``run.json`` lists)."""
        job = self.job(job_id)
        if name not in job.files():
            raise InputError("file", expected="a file of this generation", got=name, fix="pick one from the tab")
        return job.folder / name
