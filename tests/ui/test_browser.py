"""The page in a real browser: Debian's headless Chromium driven by Playwright against a live server.

Drops a photo with Google depth inside (the built-in Middlebury example, its ground truth as GDepth), clicks the
near subject, moves the blur slider and picks a hexagonal aperture; the preview must be sharp where the click
was and blurred where the scene is far from it (variance of Laplacian, against the photo's own); the full
render downloaded from the page must be byte for byte the file ``lensblur render`` writes with the command line
the page shows; a corrupt file must give the render command's message in the page. Screenshots of each step go
to the test's temporary folder.

The server runs as ``lensblur ui`` in its own process, as a user starts it (and as ``lensblur render`` runs: the
renderer's last bits depend on torch's thread count, which the test process pins to one).

Without Chromium (or Playwright, or lensblur[ui]) the test is skipped, unless ``LENSBLUR_REQUIRE_BROWSER=1`` (CI), where it fails.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]


def _chromium() -> str:
    """The browser, Playwright and the server's packages, or a skip (a failure when ``LENSBLUR_REQUIRE_BROWSER=1``) that says what is
    missing."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    missing = []
    if found is None:
        missing.append("Debian's chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install 'lensblur[test]')")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        missing.append("the server's packages (pip install 'lensblur[ui]')")
    if missing:
        reason = "the browser test needs " + " and ".join(missing)
        if os.environ.get("LENSBLUR_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (LENSBLUR_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return found


@contextlib.contextmanager
def _lensblur_ui(tmp_path, *extra: str):
    """``lensblur ui EXTRA`` on a free port in a subprocess, its URL; afterwards stopped with Ctrl+C, which must
    remove its temporary folder."""
    from _ui import free_port

    port, scratch = free_port(), tmp_path / "server-tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TMPDIR": str(scratch)}
    process = subprocess.Popen([sys.executable, "-m", "lensblur", "ui", "--port", str(port), "--no-browser", *extra],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/api/info", timeout=5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"lensblur ui did not start: {process.communicate()[0]}")
            time.sleep(0.2)
    yield url
    process.send_signal(signal.SIGINT)
    try:
        output = process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("lensblur ui did not stop on Ctrl+C")
    assert list(scratch.iterdir()) == [], f"lensblur ui left files behind: {output}"


@pytest.fixture
def live(tmp_path):
    """``lensblur ui`` (no Stable Diffusion model) in its own process."""
    _chromium()                     # skip (or fail, in CI) before starting anything
    with _lensblur_ui(tmp_path) as url:
        yield url


def _browser(p, chromium: str, tmp_path):
    return p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=chromium,
                                                args=CHROMIUM_FLAGS, headless=True, accept_downloads=True,
                                                viewport={"width": 1180, "height": 760})


@contextlib.contextmanager
def _generate_page(tmp_path, model):
    """``lensblur ui --generate-model MODEL`` in its own process, and a Chromium page on its Generate tab once the
    model is loaded; the browser is closed afterwards. Skips without Chromium (fails in CI) or diffusers."""
    chromium = _chromium()
    pytest.importorskip("diffusers", reason="the 'diffusion' extra is not installed")
    from playwright.sync_api import sync_playwright

    with _lensblur_ui(tmp_path, "--generate-model", str(model)) as url, sync_playwright() as p:
        context = _browser(p, chromium, tmp_path)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(url + "/")
            page.wait_for_function("() => document.getElementById('gen-model').textContent !== 'none'")
            page.click("#tab-generate")
            yield page
        finally:
            context.close()


def _decode(data_url: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(data_url.partition(",")[2]))) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def _motorcycle_photo(folder: Path) -> tuple[Path, np.ndarray]:
    """The built-in example as a JPEG with its ground-truth disparity inside (GDepth), and that disparity as
    the file stores it."""
    pytest.importorskip("skimage")
    from _ui import gdepth_photo

    from lensblur._convert import to_srgb8
    from lensblur.examples import motorcycle
    from lensblur.io import resize_map
    from lensblur.ui.session import shrink

    image, disparity = motorcycle()
    size = (image.shape[0] // 2, image.shape[1] // 2)            # 370 x 250: a quick render
    image, disparity = shrink(image, size), np.clip(resize_map(disparity, size), 0.0, 1.0)
    path = folder / "motorcycle.jpg"
    path.write_bytes(gdepth_photo(to_srgb8(image), disparity, near=1.0, far=5.0))
    stored = 1.0 - np.round((1.0 - disparity) * 255) / 255
    return path, stored.astype(np.float32)


def _drop(page, files: list[tuple[str, bytes, str]]) -> None:
    """Drop ``files`` ((name, bytes, MIME type)) on the page's drop zone as a browser does when files are dragged
    from the desktop: dragenter, dragover and drop events carrying a DataTransfer of File objects, built in the
    page from the bytes."""
    page.evaluate("""(files) => {
        const transfer = new DataTransfer();
        for (const [name, data, type] of files) {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], name, { type }));
        }
        const zone = document.getElementById("drop");
        for (const kind of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
    }""", [[name, base64.b64encode(data).decode(), kind] for name, data, kind in files])


def _wait_preview(page, count: int) -> None:
    page.wait_for_function(f"() => !state.inFlight && !state.pending && !state.shownDraft && !state.searching && "
                           f"!state.lightsTimer && state.previews >= {count}", timeout=120_000)


@pytest.mark.slow      # 26 to 35 s on the shared 2-core machine under load: two lensblur processes and a browser
def test_page_in_chromium(live, tmp_path):
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    from lensblur.metrics import variance_of_laplacian

    photo, disparity = _motorcycle_photo(tmp_path)
    h, w = disparity.shape
    # click where the 9 x 9 window is flat (a clean focus), on the depth most of the scene shares (a large
    # region in focus to measure)
    levels = np.round(disparity * 255).astype(int)
    share = np.convolve(np.bincount(levels.ravel(), minlength=256), np.ones(9), mode="same")   # within 4 levels
    ys, xs = np.mgrid[12:h - 12:2, 12:w - 12:2]
    flat = [(share[levels[y, x]], x, y) for y, x in zip(ys.ravel(), xs.ravel())
            if np.ptp(disparity[y - 4:y + 5, x - 4:x + 5]) < 0.01]
    _, cx, cy = max(flat)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        context = _browser(p, chromium, tmp_path)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(live + "/")
            page.wait_for_function("() => document.getElementById('method').options.length > 0")
            page.screenshot(path=shots / "1-empty.png")
            # without a Stable Diffusion model the generate tab says how to configure one
            page.click("#tab-generate")
            assert "lensblur ui --generate-model PATH" in page.text_content("#gen-message")
            assert page.is_disabled("#gen-run") and page.is_hidden("#refocus-tab")
            page.click("#tab-refocus")

            # 1. drop the photo (drag and drop, as from the desktop): its embedded depth is found
            _drop(page, [(photo.name, photo.read_bytes(), "image/jpeg")])
            page.wait_for_function("() => document.getElementById('depth-source').textContent.includes('depth:')")
            assert "GDepth" in page.text_content("#depth-source")
            assert "near 1, far 5" in page.text_content("#depth-source")
            page.screenshot(path=shots / "2-dropped.png")

            # 2. drag a focus box, then click what should be sharp (the preview's pixels map to the photo's)
            box = page.locator("#after").bounding_box()

            def at(x, y):
                return box["x"] + (x + 0.5) / w * box["width"], box["y"] + (y + 0.5) / h * box["height"]

            page.mouse.move(*at(40, 30))
            page.mouse.down()
            page.mouse.move(*at(80, 60), steps=4)
            page.mouse.up()
            _wait_preview(page, 1)
            assert "--focus-box 40,30,81,61" in page.text_content("#command")
            page.mouse.click(*at(cx, cy))
            _wait_preview(page, 2)
            assert f"--focus {cx},{cy}" in page.text_content("#command")
            page.screenshot(path=shots / "3-focused.png")

            # 3. drag the blur slider, pick a hexagonal aperture
            page.fill("#blur", "24")
            page.select_option("#aperture", "hexagon")
            page.wait_for_function("() => document.getElementById('command').textContent.includes('hexagon')")
            _wait_preview(page, 3)
            command = page.text_content("#command")
            assert command == (f"lensblur render motorcycle.jpg --focus {cx},{cy} --blur 24 --aperture hexagon "
                               "-o motorcycle-lensblur.jpg")
            after = _decode(page.get_attribute("#after", "src"))
            before = _decode(page.get_attribute("#before", "src"))
            page.fill("#split", "40")
            page.evaluate("window.scrollTo(0, 0)")        # the controls scrolled the page; show the photo whole
            page.check("#show-depth")
            page.screenshot(path=shots / "4-depth.png")
            page.uncheck("#show-depth")
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=shots / "4-preview.png")

            # the clicked region is sharp, the rest of the scene blurred: variance of Laplacian on the preview
            import cv2

            from lensblur.io import resize_map

            small = resize_map(disparity, after.shape[:2])
            focus = float(np.median(disparity[cy - 4:cy + 5, cx - 4:cx + 5]))
            coc = 24 * np.abs(small - focus) * after.shape[1] / w
            # sharp: CoC under a pixel, and no pixel within 6 px that blurs (its blur would spill over)
            sharp = (cv2.dilate((coc >= 1).astype(np.uint8), np.ones((13, 13), np.uint8)) == 0)
            blurred = coc > 8
            assert sharp.sum() > 2000 and blurred.sum() > 5000, (sharp.sum(), blurred.sum())
            kept = [variance_of_laplacian(after, data_range=255, mask=m) /
                    variance_of_laplacian(before, data_range=255, mask=m) for m in (sharp, blurred)]
            assert kept[0] > 0.5, kept        # in focus: most of the detail is still there
            assert kept[1] < 0.1, kept        # far from the focal plane: the detail is gone

            # 4. the full render, downloaded, against lensblur render with the command line the page shows
            page.click("#render")
            page.wait_for_selector("#download:not([hidden])", timeout=60_000)
            with page.expect_download() as download:
                page.click("#download")
            downloaded = tmp_path / "downloaded.jpg"
            download.value.save_as(downloaded)
            assert download.value.suggested_filename == "motorcycle-lensblur.jpg"
            page.screenshot(path=shots / "5-rendered.png")

            # 5. a corrupt file, through the file input: the render command's message, in the page
            page.set_input_files("#photo-input", files=[{"name": "broken.jpg", "mimeType": "image/jpeg",
                                                         "buffer": b"\xff\xd8\xff\xe0 this is not a photo"}])
            page.wait_for_selector("#error:not([hidden])")
            assert page.text_content("#error").startswith("PHOTO: expected a readable image file, got broken.jpg")
            assert page.is_visible("#download")           # the photo before stays, with its render
            page.screenshot(path=shots / "6-corrupt.png")

            # 6. a photo without depth and its disparity map dropped together: the one named like a map is the map
            from _ui import png_bytes, scene

            rgb, near_far = scene()
            _drop(page, [("street-disparity.png", png_bytes(np.round(near_far * 255).astype(np.uint8)), "image/png"),
                         ("street.png", png_bytes(rgb), "image/png")])
            page.wait_for_function("() => document.getElementById('disparity-name').textContent === "
                                   "'street-disparity.png'")
            page.wait_for_function("() => document.getElementById('command').textContent.startsWith("
                                   "'lensblur render street.png --disparity street-disparity.png')", timeout=60_000)
            assert page.text_content("#drop-text").startswith("street.png: 180x120")
            assert page.is_hidden("#error")
            page.screenshot(path=shots / "7-dropped-pair.png")
        finally:
            context.close()

    argv = shlex.split(command)
    assert argv[:2] == ["lensblur", "render"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "lensblur", *argv[1:]], check=False, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "motorcycle-lensblur.jpg").read_bytes() == downloaded.read_bytes()
    assert len(list(shots.glob("*.png"))) == 8


@pytest.mark.slow      # a tiny Stable Diffusion saved, a server that loads diffusers, two generations: ~20 s
def test_generate_tab_in_chromium(tmp_path, tiny_model):
    model = tiny_model
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with _generate_page(tmp_path, model) as page:
        assert page.is_hidden("#gen-message") and page.text_content("#gen-model") == str(model)
        page.fill("#gen-prompt", "a cute baby bunny standing on top of a pile of baby carrots")
        page.fill("#gen-focus", "a pile of baby carrots")
        page.fill("#gen-sigma", "0.5")
        page.fill("#gen-alpha", "0.5")
        page.fill("#gen-steps", "4")
        page.fill("#gen-size", "32x32")
        page.click("#gen-run")
        page.wait_for_selector("#gen-status[data-done]", timeout=120_000)
        assert page.is_hidden("#error")
        command = page.text_content("#gen-command")
        assert command.startswith("lensblur generate --focus 'a pile of baby carrots' --sigma 0.5 --alpha 0.5 "
                                  f"--model {model} --baseline --steps 4")
        sizes = page.evaluate("() => ['gen-baseline', 'gen-result'].map((id) => "
                              "[document.getElementById(id).naturalWidth, document.getElementById(id).naturalHeight])")
        assert sizes == [[32, 32], [32, 32]]
        assert "2 layout + 2 focus steps" in page.text_content("#gen-result-caption")
        # The report is the page's second request, made once the generation is done: wait for it to be shown.
        page.wait_for_selector("#gen-report[data-box='whole']", timeout=60_000)
        rows = page.locator("#gen-report tbody tr")
        assert rows.count() == 2 and "whole image" in rows.nth(0).text_content()
        assert "baseline" in rows.nth(0).text_content()
        page.screenshot(path=shots / "1-generated.png")

        # a box dragged on the result: the report of that region, and its focus-report command line
        box = page.locator("#gen-result").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.95, steps=4)
        page.mouse.up()
        page.wait_for_function("() => document.getElementById('gen-report').dataset.box !== 'whole'")
        region = page.get_attribute("#gen-report", "data-box")
        assert region == "8,16,24,30", region
        assert page.text_content("#gen-report-command").endswith(f"--box focus={region}")
        page.screenshot(path=shots / "2-report.png")
        with page.expect_download() as download:
            page.click("#gen-downloads a >> nth=1")
        assert download.value.suggested_filename.endswith("-seed42.png")
