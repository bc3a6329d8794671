"""The page's second tab: stage diffusion (``lensblur generate``) with the Stable Diffusion model the server was
started with (``lensblur ui --generate-model PATH``, what ``lensblur generate --model`` takes).

As for renders, the page's settings become a command line (:func:`generate_tokens`) read by the generate command's
own parser, and the run *is* that command (``lensblur.cli.generate.run``) in a thread of the server, writing into
the server's folder: the global prompt alone (the baseline, ``--baseline``) and the stage-diffusion result, one
seed. The focus report is :func:`lensblur.generate.report.report_files` on those two files, the function ``lensblur
focus-report`` and ``generate --box`` score with, for the box the user drags (the whole image without one).
"""

from __future__ import annotations

import base64
import json
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

__all__ = ["GENERATE_JOBS_KEPT", "MAX_GENERATE_PIXELS", "MAX_STEPS", "GenerateJob", "Generator", "generate_tokens"]

MAX_GENERATE_PIXELS = 1024 * 1024
"""The largest image the tab generates (width x height)."""

MAX_STEPS = 200
"""The most denoising steps the tab runs."""

GENERATE_JOBS_KEPT = 3
"""How many generations the server keeps (the oldest one's files go first)."""

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


def generate_tokens(settings: Mapping, model: str, output: str) -> list[str]:
    """The ``lensblur generate`` arguments (after ``generate``) for the tab's ``settings``.

    Args:
        settings: ``prompt`` (required), ``focus`` (the focus prompt; none: the baseline only), ``sigma``,
            ``alpha``, ``steps``, ``guidance``, ``size`` ([width, height]), ``seed``, ``negative_prompt``.
        model: the ``--model`` the server was started with.
        output: the ``-o`` folder.

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
    size = settings.get("size")
    if size is not None:
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise InputError("size", expected="[width, height]", got=size, fix="pick a size such as 512x512")
        width, height = (int(float(command._number({"size": v}, "size", low=8, high=4096))) for v in size)
        if width % 8 or height % 8 or width * height > MAX_GENERATE_PIXELS:
            raise InputError("size", expected=f"multiples of 8, at most {MAX_GENERATE_PIXELS / 2**20:g} MP",
                             got=f"{width}x{height}", fix="pick a size such as 512x512")
        tokens += ["--size", f"{width}x{height}"]
    seed = command._number(settings, "seed", low=0, high=2**32 - 1)
    if seed is not None:
        tokens += ["--seed", str(int(float(seed)))]
    if negative:
        command._flag(tokens, "--negative-prompt", negative)
    tokens += ["--num-images", "1", "-o", str(output), "-q"]
    return tokens + (["--", prompt] if prompt.startswith("-") else [prompt])


@dataclass
class GenerateJob:
    """One generation running in its thread.

    Attributes:
        id: the job's id.
        folder: the folder the command writes into.
        command: the command line the tab shows (the output folder as ``generated/``).
        state: ``running``, ``done`` or ``failed``.
        error: the message when it failed.
        seconds: how long it took.
        runs: the command's ``run.json`` runs (label, focus prompt, sigma, alpha, files), the baseline first.
    """

    id: str
    folder: Path
    command: str
    state: str = "running"
    error: str | None = None
    seconds: float | None = None
    runs: list = field(default_factory=list)

    def files(self) -> list[str]:
        return [name for run in self.runs for name in run["files"]]

    def status(self) -> dict:
        reply = {"id": self.id, "state": self.state, "error": self.error, "seconds": self.seconds,
                 "command": self.command}
        if self.state == "done":
            reply["images"] = [{"label": run["label"], "focus_prompt": run["focus_prompt"], "sigma": run["sigma"],
                                "alpha": run["alpha"], "global_steps": run["global_steps"],
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
    """

    def __init__(self, folder: Path, model: str | None):
        self.folder, self.model = Path(folder), (str(model) if model else None)
        self.jobs: OrderedDict[str, GenerateJob] = OrderedDict()
        self._lock = threading.Lock()

    def info(self) -> dict:
        """What the tab needs: the model (None: :data:`NO_MODEL` says how to configure one) and the defaults."""
        from ..choices import DEFAULT_ALPHA, DEFAULT_SIGMA

        return {"model": self.model, "message": None if self.model else NO_MODEL, "sigma": DEFAULT_SIGMA,
                "alpha": DEFAULT_ALPHA, "max_steps": MAX_STEPS, "max_megapixels": MAX_GENERATE_PIXELS / 2**20}

    def explain(self, exc: BaseException) -> str:
        """An error as ``lensblur generate`` prints it, with the server's folder left out."""
        from ..cli._args import cli_message

        text = cli_message(exc, command.command_parser("generate")) if isinstance(exc, LensblurError) else str(exc)
        return text.replace(str(self.folder) + "/", "")

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

        if self.model is None:
            raise InputError("generate", expected="a Stable Diffusion model", got="none", fix=NO_MODEL)
        with self._lock:
            if any(job.state == "running" for job in self.jobs.values()):
                raise InputError("generate", expected="one generation at a time", got="one running",
                                 fix="wait for it to finish")
            job_id = uuid.uuid4().hex
            folder = self.folder / job_id
            tokens = generate_tokens(settings, self.model, str(folder))
            args = command.parse_render(tokens, command.command_parser("generate"))
            generate_command._check(args)
            shown = generate_tokens(settings, self.model, "generated/")
            job = GenerateJob(job_id, folder, command.command_line(shown, "generate"))
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

        started = time.perf_counter()
        try:
            generate_command.run(args)            # prints the files it wrote in the server's log
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
