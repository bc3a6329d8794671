"""The generate tab's image-to-image (the Refocus tab's photo, or a picture dropped on the tab, as ``--init-image``)
and its step count, over HTTP with the tiny randomly initialised Stable Diffusion of ``test_generate_tab``; and the
pipeline's step reporting it counts with."""

from __future__ import annotations

import base64
import io
import shlex
import time
from urllib.parse import unquote

import numpy as np
import pytest
from _ui import png_bytes
from PIL import Image
from test_generate_tab import PROMPT, TINY, finish, picture

pytest.importorskip("diffusers", reason="the 'diffusion' extra is not installed")
torch = pytest.importorskip("torch")

IMG2IMG = {**TINY, "size": None, "strength": 0.5}


def textured(height: int, width: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((height, width, 3)) * 255).astype(np.uint8)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (and holds none): a decompression bomb's first bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IEND", b""))


def upload_init(server, name: str, data: bytes):
    return server.json(f"/api/generate/init?name={name}", raw=data)


# ------------------------------------------------------------------------------------------ the pipeline's hook
@pytest.fixture
def stage_pipe(tokenizer_dir):
    from diffusers import StableDiffusionPipeline

    import diffusion_dummies
    from lensblur.generate import StageDiffusionPipeline

    pipe = StableDiffusionPipeline(**diffusion_dummies.sd_components(tokenizer_dir), requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return StageDiffusionPipeline.from_pipe(pipe)


def test_reporting_hears_every_step_after_the_switch_and_the_callers_callback(stage_pipe):
    from lensblur.generate.pipeline import reporting

    def run(**extra):
        return stage_pipe(PROMPT, focus_prompt="a pile of carrots", sigma=0.5, alpha=0.0, num_inference_steps=4,
                          height=32, width=32, generator=torch.Generator().manual_seed(1), output_type="np", **extra)

    plain = run().images
    heard, outer, order = [], [], []

    def callback(p, i, t, tensors):
        order.append(("caller", i + 1))
        return tensors

    def inner(step, steps):
        heard.append((step, steps))
        order.append(("report", step))

    with reporting(lambda step, steps: outer.append((step, steps))), reporting(inner):
        out = run(callback_on_step_end=callback)
    assert heard == outer == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert order == [(who, k) for k in range(1, 5) for who in ("caller", "report")]
    assert np.array_equal(out.images, plain) and (out.global_steps, out.focus_steps) == (2, 2)   # the switch stays
    assert not np.array_equal(plain, stage_pipe(PROMPT, num_inference_steps=4, height=32, width=32, output_type="np",
                                                generator=torch.Generator().manual_seed(1)).images)
    heard.clear()
    init = Image.fromarray(textured(32, 32))
    with reporting(inner):           # image-to-image at strength 0.5 runs half of the schedule
        stage_pipe(PROMPT, image=init, strength=0.5, num_inference_steps=4, output_type="np")
    assert heard == [(1, 2), (2, 2)]
    heard.clear()
    run()                            # outside the block nothing is heard
    assert heard == []


@pytest.fixture(scope="module")
def generating(tmp_path_factory, tiny_model):
    from _ui import serving

    from lensblur.ui.session import Workspace

    workspace = Workspace(root=tmp_path_factory.mktemp("ui-img2img"), generate_model=str(tiny_model))
    with serving(workspace) as running:
        yield running


# ------------------------------------------------------------------------------------------ the step count
@pytest.mark.slow      # two generations of 4 steps, each step slowed to 0.4 s so that the polls see it
def test_generate_tab_counts_the_steps_of_both_runs(generating, monkeypatch):
    from diffusers import UNet2DConditionModel

    forward = UNet2DConditionModel.forward

    def slow(self, *args, **kwargs):
        time.sleep(0.4)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", slow)
    status, job = generating.json("/api/generate", TINY)
    assert status == 200, job
    assert (job["step"], job["steps"], job["phase"]) == (0, 8, "loading the model")   # baseline 4 + result 4
    seen = [(job["step"], job["steps"], job["phase"])]
    deadline = time.monotonic() + 120
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        status, job = generating.json(f"/api/generate/{job['id']}")
        assert status == 200, job
        seen.append((job["step"], job["steps"], job["phase"]))
    assert job["state"] == "done", job
    steps = [step for step, _, _ in seen]
    assert steps == sorted(steps) and steps[-1] == 8 and {total for _, total, _ in seen} == {8}
    assert len({s for s in steps if 0 < s < 8}) >= 3, seen           # the count moved while the job ran
    phases = {phase for _, _, phase in seen}
    assert {"baseline (run 1 of 2)", "sigma 0.5 (run 2 of 2)", "done"} <= phases, phases
    assert all(phase.startswith("baseline") for step, _, phase in seen if 0 < step < 4)


# ------------------------------------------------------------------------------------------ image-to-image
@pytest.mark.slow      # two generations and the command line's own run
def test_image_to_image_from_the_refocus_photo_is_the_command_line(generating, tmp_path, monkeypatch, capsys):
    from lensblur import cli

    rgb = textured(32, 48)
    status, photo = generating.json("/api/photo?name=rabbit.png", raw=png_bytes(rgb))
    assert status == 200, photo
    status, init = generating.json(f"/api/generate/init?session={photo['session']}", raw=b"")
    assert status == 200, init
    assert (init["name"], init["size"], init["used"], init["shrunk"], init["file"]) == \
        ("rabbit.png", [48, 32], [48, 32], False, None)
    with Image.open(io.BytesIO(base64.b64decode(init["image"].partition(",")[2]))) as im:
        assert im.size == (48, 32)
    status, job = generating.json("/api/generate", {**IMG2IMG, "init_image": init["id"]})
    assert status == 200, job
    assert job["command"] == (f"lensblur generate --focus 'a pile of carrots' --sigma 0.5 --alpha 0.5 --model "
                              f"{generating.workspace.generator.model} --baseline --steps 4 --guidance 7.5 "
                              f"--init-image rabbit.png --strength 0.5 --seed 7 --num-images 1 -o generated/ -q "
                              f"'{PROMPT}'")
    assert job["steps"] == 4                                  # int(4 * 0.5) = 2 steps in each of the two runs
    job = finish(generating, job)
    assert job["state"] == "done" and job["step"] == job["steps"] == 4, job
    baseline, result = job["images"]
    assert (baseline["steps_run"], result["global_steps"], result["focus_steps"]) == (2, 1, 1)
    a, b = picture(baseline["image"]), picture(result["image"])
    assert a.shape == b.shape == (32, 48, 3) and not np.array_equal(a, b)

    # the command line the tab shows, beside the user's own rabbit.png, writes the same files byte for byte
    (tmp_path / "rabbit.png").write_bytes(png_bytes(rgb))
    monkeypatch.chdir(tmp_path)
    assert cli.main(shlex.split(job["command"])[1:]) == 0
    for shown in job["images"]:
        status, body, _ = generating.request(f"/api/generate/{job['id']}/file/{shown['file']}")
        assert status == 200 and body == (tmp_path / "generated" / shown["file"]).read_bytes()


@pytest.mark.slow      # one generation from the shrunk picture and the command line's own run
def test_a_larger_init_image_is_shrunk_into_the_file_the_command_line_names(generating, tmp_path, monkeypatch):
    from lensblur import cli

    monkeypatch.setattr(generating.workspace.generator, "max_pixels", 1600)   # 48 x 32 = 1536 fits, 56 x 32 not
    rgb = textured(64, 96)
    status, init = upload_init(generating, "big%20photo.png", png_bytes(rgb))
    assert status == 200, init
    assert (init["name"], init["size"], init["used"], init["shrunk"]) == ("big photo-48x32.png", [96, 64], [48, 32],
                                                                          True)
    status, body, headers = generating.request(init["file"])
    assert status == 200 and unquote(headers["content-disposition"]).endswith("big photo-48x32.png")
    with Image.open(io.BytesIO(body)) as im:
        shrunk = np.asarray(im)
    means = rgb.astype(np.float64).reshape(32, 2, 48, 2, 3).mean(axis=(1, 3))     # exactly half: 2 x 2 means
    assert shrunk.shape == (32, 48, 3) and np.abs(shrunk - means).max() <= 0.5 + 1e-6
    status, job = generating.json("/api/generate", {**IMG2IMG, "focus": None, "steps": 2, "strength": 1,
                                                    "init_image": init["id"]})
    assert status == 200, job
    assert "--init-image 'big photo-48x32.png' --strength 1 " in job["command"] and job["steps"] == 2
    job = finish(generating, job)
    assert job["state"] == "done", job
    (tmp_path / "big photo-48x32.png").write_bytes(body)
    monkeypatch.chdir(tmp_path)
    assert cli.main(shlex.split(job["command"])[1:]) == 0
    status, got, _ = generating.request(f"/api/generate/{job['id']}/file/{job['images'][0]['file']}")
    assert got == (tmp_path / "generated" / job["images"][0]["file"]).read_bytes()


def test_bad_init_images_get_the_commands_messages(misconfigured, tmp_path, monkeypatch, capsys):
    from lensblur import cli

    folder = misconfigured.workspace.generator.folder / "init"
    kept = sorted(folder.iterdir()) if folder.exists() else []
    monkeypatch.chdir(tmp_path)
    broken = b"\x89PNG\r\n\x1a\n this is not a picture"
    (tmp_path / "broken.png").write_bytes(broken)
    (tmp_path / "bomb.png").write_bytes(png_header(60000, 60000))
    # a corrupt file, and one over what this machine can decode: the same words as lensblur generate
    # --init-image FILE prints (it reads the file before it loads a model)
    for name, data in (("broken.png", broken), ("bomb.png", png_header(60000, 60000))):
        status, reply = upload_init(misconfigured, name, data)
        assert status == 400
        assert cli.main(["generate", PROMPT, "--model", "m", "--init-image", name, "-o", "out", "-q"]) == 1
        assert capsys.readouterr().err.strip() == f"lensblur generate: error: {reply['error']}"
        assert reply["error"].startswith(f"--init-image: expected {'a readable image file' if name == 'broken.png' else 'an image of at most'}")
    # over the server's own limit (50 MP by default; always under the decoder's, which is at least 89.5 MP)
    status, reply = upload_init(misconfigured, "huge.png", png_header(8000, 7000))
    assert status == 400 and reply["error"] == (
        "--init-image: expected a picture of at most 50 megapixels (the server's limit), got huge.png: 8000x7000 "
        "(56.0 MP). Fix: downscale it, or start lensblur ui with a larger --max-megapixels")
    status, reply = upload_init(misconfigured, "tiny.png", png_bytes(textured(4, 4)))
    assert status == 400 and reply["error"].startswith("--init-image: expected a picture at least 8x8 pixels")
    status, reply = upload_init(misconfigured, "empty.png", b"")
    assert status == 400 and "an empty upload" in reply["error"]
    with monkeypatch.context() as patched:
        patched.setattr(misconfigured.workspace, "max_upload_bytes", 1000)
        status, reply = upload_init(misconfigured, "big.png", png_bytes(textured(64, 64)))
    assert status == 413 and "--max-upload-mb" in reply["error"]
    status, reply = misconfigured.json("/api/generate/init?session=nope", raw=b"")
    assert status == 400 and "drop the photo again" in reply["error"]
    assert (sorted(folder.iterdir()) if folder.exists() else []) == kept      # nothing of them is left

    status, init = upload_init(misconfigured, "fine.png", png_bytes(textured(32, 32)))
    assert status == 200, init
    status, reply = misconfigured.json("/api/generate", {**IMG2IMG, "init_image": init["id"], "strength": 2})
    assert status == 400 and reply["error"].startswith("--strength: expected a number in [0, 1], got 2")
    status, reply = misconfigured.json("/api/generate", {**IMG2IMG, "init_image": init["id"], "strength": 0})
    assert status == 400 and reply["error"].startswith("--strength: expected a number in (0, 1]")
    status, reply = misconfigured.json("/api/generate", {**IMG2IMG, "init_image": init["id"], "strength": 0.1,
                                                         "focus": None})
    assert status == 400 and reply["error"].startswith("--strength: expected at least one step to run")
    status, reply = misconfigured.json("/api/generate", {**TINY, "init_image": "0" * 32})
    assert status == 400 and "choose the init image again" in reply["error"]
    status, reply = misconfigured.json(f"/api/generate/init/{'0' * 32}/file")
    assert status == 400 and "choose the init image again" in reply["error"]
    assert misconfigured.json("/api/info")[0] == 200                  # the server goes on


@pytest.fixture(scope="module")
def misconfigured(tmp_path_factory):
    """A server whose model names nothing: the init images are read and checked all the same."""
    from _ui import serving

    from lensblur.ui.session import Workspace

    root = tmp_path_factory.mktemp("ui-img2img-checks")
    with serving(Workspace(root=root, generate_model=str(root / "no-such-model"))) as running:
        yield running


def test_init_size_crops_or_shrinks_to_multiples_of_8():
    from lensblur.ui.generate import init_size

    assert init_size(517, 389, 1 << 20) == (512, 384)                   # cropped, as lensblur generate crops
    assert init_size(4032, 3024, 1 << 20) == (1176, 880)                # 0.293 x: 1182.4 x 886.8, down to x8
    assert init_size(100, 4000, 1000) == (8, 120)                       # a side held at 8, the other fits
    assert init_size(4000, 100, 1000) == (120, 8)
