"""The Generate tab's image-to-image and step count in a real browser: Debian's headless Chromium driven by
Playwright against ``lensblur ui --generate-model`` (the tiny randomly initialised model) in its own process.

A photo dropped on the Refocus tab becomes the init image; the progress bar counts the steps of both runs and
ends full; the result downloaded from the tab is byte for byte what ``lensblur generate`` writes with the
command line the tab shows, run beside the photo; a corrupt picture chosen on the tab gets the command's
message; a picture dropped on the tab becomes the init image. Screenshots go to the test's temporary folder.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
from _ui import png_bytes, scene
from test_browser import ROOT, _drop, _generate_page


@pytest.mark.slow      # a server that loads diffusers, one generation in the browser and one on the command line
def test_image_to_image_and_its_steps_in_chromium(tmp_path, tiny_model):
    rgb, _ = scene(48, 64)
    photo = png_bytes(rgb)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with _generate_page(tmp_path, tiny_model) as page:
        assert page.is_disabled("#gen-init-photo")             # no photo on the Refocus tab yet
        page.click("#tab-refocus")
        _drop(page, [("street.png", photo, "image/png")])
        page.wait_for_function("() => document.getElementById('drop-text').textContent.startsWith('street.png')")

        # 1. the Refocus tab's photo as the init image, at strength 0.5
        page.click("#tab-generate")
        page.click("#gen-init-photo")
        page.wait_for_selector("#gen-init:not([hidden])")
        assert page.text_content("#gen-init-name") == "street.png: 64x48"
        assert page.is_disabled("#gen-size") and page.is_visible("#gen-size-note")
        page.fill("#gen-prompt", "a street in the rain")
        page.fill("#gen-focus", "the street")
        page.fill("#gen-sigma", "0.5")
        page.fill("#gen-steps", "4")
        page.fill("#gen-strength", "0.5")
        page.click("#gen-run")
        page.wait_for_selector("#gen-status[data-done]", timeout=120_000)
        assert page.is_hidden("#error")

        # 2. the bar counted the steps of both runs (int(4 x 0.5) = 2 each) and ends full
        bar = page.evaluate("() => { const b = document.getElementById('gen-progress'); "
                            "return [b.value, b.max, b.hidden]; }")
        assert bar == [4, 4, False], bar
        assert page.text_content("#gen-step") == "step 4 of 4"
        command = page.text_content("#gen-command")
        assert "--init-image street.png --strength 0.5 " in command and "--size" not in command
        assert "from street.png at strength 0.5" in page.text_content("#gen-result-caption")
        sizes = page.evaluate("() => ['gen-baseline', 'gen-result'].map((id) => "
                              "[document.getElementById(id).naturalWidth, document.getElementById(id).naturalHeight])")
        assert sizes == [[64, 48], [64, 48]]
        page.screenshot(path=shots / "1-image-to-image.png", full_page=True)
        with page.expect_download() as download:
            page.click("#gen-downloads a >> nth=1")
        result = tmp_path / "downloaded.png"
        download.value.save_as(result)
        name = download.value.suggested_filename

        # 3. a corrupt picture chosen on the tab: the command's message, and the init image before stays
        page.set_input_files("#gen-init-input", files=[{"name": "broken.png", "mimeType": "image/png",
                                                        "buffer": b"\x89PNG\r\n\x1a\n not a picture"}])
        page.wait_for_selector("#error:not([hidden])")
        assert page.text_content("#error").startswith("--init-image: expected a readable image file, got "
                                                      "broken.png")
        assert page.text_content("#gen-init-name") == "street.png: 64x48"
        page.screenshot(path=shots / "2-corrupt.png", full_page=True)

        # 4. a picture dropped on the Generate tab becomes the init image (the Refocus tab keeps its photo)
        wide = png_bytes(np.ascontiguousarray(np.concatenate([rgb, rgb[:, :37]], axis=1)))
        _drop(page, [("wide.png", wide, "image/png")])
        page.wait_for_function("() => document.getElementById('gen-init-name').textContent.startsWith('wide')")
        assert page.text_content("#gen-init-name") == "wide.png: 101x48 (the command crops it to 96x48)"
        assert page.is_visible("#generate-tab") and page.text_content("#drop-text").startswith("street.png")
        page.click("#gen-init-clear")
        assert page.is_hidden("#gen-init") and not page.is_disabled("#gen-size")

    # the command line the tab showed, run beside the user's photo, writes the downloaded file byte for byte
    (tmp_path / "street.png").write_bytes(photo)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "lensblur", *shlex.split(command)[1:]], check=False, cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "generated" / name).read_bytes() == result.read_bytes()
    assert len(list(shots.glob("*.png"))) == 2
