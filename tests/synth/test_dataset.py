"""``lensblur synth`` and the dataset writer: layout, determinism, resume, workers, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lensblur.cli import main
from lensblur.errors import InputError
from lensblur.io import read_image, read_raw
from lensblur.synth import make_scene, trace
from lensblur.synth.dataset import synthesize

SIZE = (64, 48)
FILES = ["image.png", "image16.png", "image.pfm", "disparity.png", "alpha_00.png", "target.png", "target16.png",
         "target.pfm", "params.json"]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_make_scene_is_a_function_of_seed_and_index():
    a, b = make_scene(5, 3, SIZE), make_scene(5, 3, SIZE)
    assert a.params == b.params
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.color, lb.color) and np.array_equal(la.alpha, lb.alpha)
        assert np.array_equal(la.disparity_map(), lb.disparity_map())
    assert make_scene(6, 3, SIZE).params != a.params
    # Layers far to near in disjoint disparity bands; canvas = frame + margin.
    h, w = SIZE[1] + 2 * a.margin, SIZE[0] + 2 * a.margin
    assert all(layer.alpha.shape == (h, w) for layer in a.layers)
    ranges = [(float(x.disparity_map().min()), float(x.disparity_map().max())) for x in a.layers]
    assert all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert a.params["max_coc"] <= a.margin


def test_synth_writes_the_layout_deterministically(tmp_path):
    first = synthesize(tmp_path / "a", 2, size=SIZE, seed=4, samples=64, progress=False)
    synthesize(tmp_path / "b", 2, size=SIZE, seed=4, samples=64, progress=False)
    assert first.written == 2 and first.skipped == 0
    ta, tb = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert ta == tb  # same command, same bytes
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["generator"] == "lensblur.synth" and manifest["generator_version"]
    assert manifest["seed"] == 4 and manifest["size"] == list(SIZE) and manifest["count"] == 2
    pair = tmp_path / "a" / "pairs" / "000001"
    for name in FILES:
        assert (pair / name).is_file(), name
    params = json.loads((pair / "params.json").read_text())
    assert params["index"] == 1 and params["seed"] == 4 and params["size"] == list(SIZE)
    for key in ("blur", "focus_disparity", "aperture", "layers", "lights", "samples"):
        assert key in params
    alphas = sorted(pair.glob("alpha_*.png"))
    assert len(alphas) == len(params["layers"])
    # The files hold the traced scene: compare with a direct trace.
    scene = make_scene(1, 4, SIZE)
    result = trace(scene.layers, blur=scene.blur, focus_disparity=scene.focus_disparity, aperture=scene.aperture,
                   samples=64, margin=scene.margin)
    np.testing.assert_array_equal(read_image(pair / "target.pfm"), result.target)
    np.testing.assert_array_equal(read_image(pair / "image.pfm"), result.image)
    disp, full = read_raw(pair / "disparity.png")
    assert disp.dtype == np.uint16 and disp.shape == (SIZE[1], SIZE[0]) and full == 65535
    np.testing.assert_allclose(disp / 65535.0, result.disparity, atol=1 / 65535)
    png, full = read_raw(pair / "image16.png")
    assert png.dtype == np.uint16 and png.shape == (SIZE[1], SIZE[0], 3)


def test_resume_keeps_complete_pairs_and_redoes_the_rest(tmp_path):
    root = tmp_path / "set"
    synthesize(root, 1, size=SIZE, seed=2, samples=64, progress=False)
    pairs = root / "pairs"
    marker = pairs / "000000" / "target.png"
    marker.write_bytes(b"kept")  # a complete pair is never rewritten
    # An interrupted run: a half-written temporary pair and an incomplete directory without params.json.
    (pairs / ".000001.tmp-abcd").mkdir()
    (pairs / ".000001.tmp-abcd" / "image.png").write_bytes(b"half")
    (pairs / "000002").mkdir()
    (pairs / "000002" / "image.png").write_bytes(b"half")
    report = synthesize(root, 3, size=SIZE, seed=2, samples=64, progress=False)
    assert (report.written, report.skipped) == (2, 1)
    assert marker.read_bytes() == b"kept"
    assert not list(pairs.glob(".*"))
    assert sorted(p.name for p in pairs.iterdir()) == ["000000", "000001", "000002"]
    fresh = tmp_path / "fresh"
    synthesize(fresh, 3, size=SIZE, seed=2, samples=64, progress=False)
    for name in ("000001", "000002"):
        assert _tree(pairs / name) == _tree(fresh / "pairs" / name)
    assert json.loads((root / "manifest.json").read_text())["count"] == 3


def test_resume_refuses_other_settings(tmp_path):
    synthesize(tmp_path, 1, size=SIZE, seed=2, samples=64, progress=False)
    with pytest.raises(InputError, match="seed"):
        synthesize(tmp_path, 1, size=SIZE, seed=3, samples=64, progress=False)


@pytest.mark.slow
def test_workers_give_the_same_bytes(tmp_path):
    synthesize(tmp_path / "one", 3, size=SIZE, seed=9, samples=64, progress=False)
    synthesize(tmp_path / "two", 3, size=SIZE, seed=9, samples=64, workers=2, progress=False)
    assert _tree(tmp_path / "one" / "pairs") == _tree(tmp_path / "two" / "pairs")


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["synth", "-o", str(out), "-n", "1", "--size", "64x48", "--seed", "1", "--samples", "64",
                 "--no-progress", "--format", "json", "--store-layers"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 1 and summary["skipped"] == 0
    assert (out / "pairs" / "000000" / "params.json").is_file()
    assert (out / "pairs" / "000000" / "layers.npz").is_file()


def test_cli_synth_errors(tmp_path, capsys):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["synth", "-o", str(not_a_folder), "-n", "1", "--no-progress"]) == 1
    assert "error: --output: expected a folder" in capsys.readouterr().err
    assert main(["synth", "-o", str(tmp_path / "x"), "-n", "1", "--backgrounds", str(tmp_path / "nope"),
                 "--no-progress"]) == 1
    assert "error: --backgrounds: expected" in capsys.readouterr().err
    assert main(["synth", "-o", str(tmp_path / "y"), "-n", "0", "--no-progress"]) == 1
    assert "error: --count: expected" in capsys.readouterr().err
    # every value is checked before the folder is made: a corrected rerun is then not "other settings"
    for argv, message in ((["--size", "7x5"], "--size: expected a frame from 32x32 to 8192x8192"),
                          (["--size", "100000x100000"], "--size: expected a frame from 32x32"),
                          (["--samples", "1000000"], "--samples: expected at most 16384")):
        assert main(["synth", "-o", str(tmp_path / "z"), "-n", "1", "--no-progress", *argv]) == 1
        assert message in capsys.readouterr().err and not (tmp_path / "z").exists()


def test_photo_backgrounds_and_rgba_cutouts(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    bgs, fgs = tmp_path / "bg", tmp_path / "fg"
    bgs.mkdir()
    fgs.mkdir()
    Image.fromarray((rng.random((60, 80, 3)) * 255).astype(np.uint8)).save(bgs / "photo.png")
    rgba = np.zeros((30, 20, 4), np.uint8)
    rgba[5:25, 4:16] = (200, 50, 50, 255)
    rgba[5:25, 16:18, 3] = 128  # a soft edge
    Image.fromarray(rgba, mode="RGBA").save(fgs / "cut.png")
    Image.fromarray(rgba[..., :3]).save(fgs / "opaque.png")
    root = tmp_path / "set"
    synthesize(root, 2, size=SIZE, seed=1, samples=64, backgrounds=bgs, foregrounds=None, progress=False)
    params = json.loads((root / "pairs" / "000000" / "params.json").read_text())
    assert params["layers"][0]["kind"] == "photo" and params["layers"][0]["source"] == "photo.png"
    (fgs / "opaque.png").unlink()
    synthesize(tmp_path / "set2", 3, size=SIZE, seed=1, samples=64, foregrounds=fgs, progress=False)
    kinds = [layer["kind"] for i in range(3)
             for layer in json.loads((tmp_path / "set2" / "pairs" / f"{i:06d}" / "params.json").read_text())["layers"]]
    assert "cutout" in kinds
    Image.fromarray(rgba[..., :3]).save(fgs / "opaque.png")
    with pytest.raises(InputError, match="RGBA"):
        for i in range(6):
            make_scene(i, 1, SIZE, foregrounds=sorted(fgs.iterdir()))
    # synthesize refuses the folder before writing anything, whichever file a scene would have drawn
    with pytest.raises(InputError, match=r"^foregrounds: expected RGBA cut-outs .* opaque.png with 3 channels"):
        synthesize(tmp_path / "set3", 1, size=SIZE, seed=1, samples=64, foregrounds=fgs, progress=False)
    assert not (tmp_path / "set3").exists()


# ------------------------------------------------------------------------------------ layers, re-tracing
def test_stored_layers_retrace_the_same_pair_and_another_lens(tmp_path):
    """layers.npz holds what the tracer saw: tracing it again with the pair's own lens gives the same target
    to the last bit; another focus changes the target and keeps the all-in-focus image."""
    from lensblur.io import read_image
    from lensblur.synth import load_scene, rerender

    synthesize(tmp_path / "a", 2, size=SIZE, seed=4, samples=64, store_layers=True, progress=False)
    pair = tmp_path / "a" / "pairs" / "000000"
    scene = load_scene(pair)
    params = json.loads((pair / "params.json").read_text())
    assert len(scene.layers) == len(params["layers"]) and scene.margin == params["margin"]
    assert rerender(tmp_path / "a", tmp_path / "same", samples=64) == 2
    for name in ("target.pfm", "image.pfm", "disparity.png"):
        assert (tmp_path / "same" / "pairs" / "000000" / name).read_bytes() == (pair / name).read_bytes()
    focus = 1.0 - params["focus_disparity"] if abs(params["focus_disparity"] - 0.5) > 0.1 else 0.1
    blur = 0.5 * params["blur"]
    rerender(tmp_path / "a", tmp_path / "other", focus_disparity=focus, blur=blur, samples=64)
    other = tmp_path / "other" / "pairs" / "000000"
    other_params = json.loads((other / "params.json").read_text())
    assert other_params["focus_disparity"] == pytest.approx(focus) and "focus_on" not in other_params
    assert (other / "image.pfm").read_bytes() == (pair / "image.pfm").read_bytes()
    assert np.abs(read_image(other / "target.pfm") - read_image(pair / "target.pfm")).max() > 1e-3


def test_rerender_checks_everything_before_writing(tmp_path):
    from lensblur.synth import rerender

    synthesize(tmp_path / "plain", 1, size=SIZE, seed=4, samples=64, progress=False)
    with pytest.raises(InputError, match=r"^source: expected pairs with their layers \(layers.npz\)"):
        rerender(tmp_path / "plain", tmp_path / "out")
    synthesize(tmp_path / "a", 1, size=SIZE, seed=4, samples=64, store_layers=True, progress=False)
    with pytest.raises(InputError, match="^blur: expected a largest CoC within the scene's"):
        rerender(tmp_path / "a", tmp_path / "big", blur=1e4)
    assert not (tmp_path / "big").exists() and not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="^out: expected a new, empty folder"):
        rerender(tmp_path / "a", tmp_path / "a")


# ------------------------------------------------------------------------------------------ bokehdiff preset
def test_bokehdiff_preset_draws_the_released_generators_distributions():
    """Over many scenes: one fronto-parallel foreground above a far tilted background in [0.001, 0.25],
    focus on one of the two, largest CoC 12 * 2^U(-2, 3) at 768 px, circular aperture, no lights."""
    from lensblur.synth.presets import make_bokehdiff_scene

    times, focus_on = [], set()
    for i in range(40):
        scene = make_bokehdiff_scene(i, 3, (96, 96))
        assert len(scene.layers) == 2 and not scene.lights and scene.aperture.blades == 0
        bg, fg = scene.layers
        assert fg.is_flat and not bg.is_flat
        d_bg = bg.disparity_map()
        assert 0.001 - 1e-6 <= d_bg.min() and d_bg.max() <= 0.25 + 1e-6
        assert float(d_bg.max()) <= float(fg.disparity) <= 1.0
        p = scene.params
        assert p["transfer"] == "gamma2.2" and p["preset"] == "bokehdiff"
        f = scene.focus_disparity
        assert f == pytest.approx(float(fg.disparity), abs=1e-6) or p["focus_on"] == "background"
        # K * max(d_f, 1 - d_f) is the largest possible radius, 12 * times scaled from 768 px to 96 px
        assert scene.blur * max(f, 1 - f) == pytest.approx(12 * p["blur_times"] * 96 / 768, rel=1e-5)
        assert scene.margin >= scene.blur * max(f, 1 - f)
        times.append(p["blur_times"])
        focus_on.add(p["focus_on"])
    assert 0.25 <= min(times) and max(times) <= 8.0 and focus_on == {"foreground", "background"}


def test_bokehdiff_preset_files_hold_gamma_22_values(tmp_path):
    """The 8/16-bit files are linear ** (1 / 2.2); the PFM files linear; the dataset reader undoes it."""
    from lensblur.data import SynthDataset

    synthesize(tmp_path, 1, size=SIZE, seed=1, samples=64, preset="bokehdiff", progress=False)
    pair = tmp_path / "pairs" / "000000"
    linear = read_image(pair / "target.pfm")
    codes = read_raw(pair / "target16.png")[0]
    np.testing.assert_allclose(codes / 65535.0, np.clip(linear, 0, 1) ** (1 / 2.2), atol=2e-5)
    item = SynthDataset(tmp_path)[0]
    np.testing.assert_allclose(item["target"].permute(1, 2, 0).numpy(), np.clip(linear, 0, 1), atol=1e-4)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["options"]["preset"] == "bokehdiff"
    with pytest.raises(InputError, match="^preset: expected one of lensblur, bokehdiff"):
        synthesize(tmp_path / "x", 1, size=SIZE, preset="bokehme", progress=False)


def test_cli_rerender(tmp_path, capsys):
    assert main(["synth", "-o", str(tmp_path / "a"), "-n", "1", "--size", "64x48", "--samples", "32", "--store-layers",
                 "-q"]) == 0
    params = json.loads((tmp_path / "a" / "pairs" / "000000" / "params.json").read_text())
    blur = 0.5 * params["blur"]
    assert main(["synth", "--rerender", str(tmp_path / "a"), "-o", str(tmp_path / "b"), "--blur", str(blur),
                 "--samples", "32", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["written"] == 1
    assert json.loads((tmp_path / "b" / "pairs" / "000000" / "params.json").read_text())["blur"] == pytest.approx(blur)
    assert main(["synth", "-o", str(tmp_path / "c"), "-n", "1", "--blur", "3"]) == 1
    assert "lens flags only with --rerender" in capsys.readouterr().err
    assert main(["synth", "--rerender", str(tmp_path / "a"), "-o", str(tmp_path / "d"), "--size", "128x96"]) == 1
    assert "--size: expected no --size with --rerender" in capsys.readouterr().err and not (tmp_path / "d").exists()
