"""``import lensblur`` stays light: no heavy optional package is imported as a side effect.

One fresh interpreter (importing torch takes seconds) records which heavy packages are loaded after each
step: ``import lensblur``, then the I/O, metrics and the metrics/focus command modules, then the generation
pipeline's module (diffusers loads only when a pipeline is built), then ``cv2`` itself
(to show that the probe does see a heavy import).
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["diffusers", "transformers", "cv2", "kornia", "open_clip", "h5py", "pillow_heif", "mediapipe",
         "torchvision"]

PROBE = """
import importlib, json, sys
heavy = set({heavy!r})
steps = {steps!r}
seen = {{}}
for name, modules in steps:
    for module in modules:
        importlib.import_module(module)
    seen[name] = sorted({{m.split(".")[0] for m in sys.modules}} & heavy)
print(json.dumps(seen))
"""

STEPS = [
    ("lensblur", ["lensblur"]),
    ("boundary", ["lensblur.io", "lensblur.metrics", "lensblur.lens", "lensblur.color",
                  "lensblur.cli.metrics", "lensblur.cli.focus"]),
    ("generate", ["lensblur.generate", "lensblur.generate.pipeline"]),
    ("cv2", ["cv2"]),
]


def test_import_lensblur_is_light():
    code = PROBE.format(heavy=HEAVY, steps=STEPS)
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["lensblur"] == [], f"import lensblur pulled in {seen['lensblur']}"
    assert seen["boundary"] == [], f"I/O, metrics or the metrics/focus commands pulled in {seen['boundary']}"
    assert seen["generate"] == [], f"the generate package or its pipeline module pulled in {seen['generate']}"
    assert seen["cv2"] == ["cv2"]  # the probe sees a heavy import when there is one


def test_python_dash_m_lensblur_is_the_command():
    result = subprocess.run([sys.executable, "-m", "lensblur", "train", "--help"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and result.stdout.startswith("usage: lensblur train")


def test_the_command_line_parser_imports_neither_torch_nor_numpy():
    """``lensblur --help`` (and any usage error) costs Python's start-up and the parser only: the heavy
    packages load when a command runs (bench/startup.py times it)."""
    probe = ("import sys, lensblur.cli; lensblur.cli.build_parser(); "
             "print(sorted(m for m in ('torch', 'numpy', 'PIL', 'scipy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_named_choices_are_the_implementations_own():
    """lensblur.choices lists names whose implementations live elsewhere; they must stay the same."""
    from lensblur import choices
    from lensblur.depth import _FACTORIES
    from lensblur.eval.runner import EvalOptions
    from lensblur.synth.presets import PRESETS

    assert tuple(_FACTORIES) == choices.DEPTH_SOURCES
    assert tuple(PRESETS) == choices.SYNTH_PRESETS
    for variant in choices.SSIM_VARIANTS:
        EvalOptions(ssim=variant)
    for display in choices.DISPLAYS:
        EvalOptions(display=display)
