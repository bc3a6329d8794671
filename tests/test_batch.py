"""``lensblur render`` over several photos: the same bytes as one render per photo, a bad photo reported and
the others written, outputs that exist kept unless --force, collisions and missing maps refused before any
work, fsspec URLs in and out."""

from __future__ import annotations

import sys

import fsspec
import numpy as np
import pytest

from lensblur.cli import main
from lensblur.io import read_image, write_image

H, W = 40, 56


@pytest.fixture
def shots(tmp_path):
    """Three photos (a.png, b.jpg, c.png) and their disparity maps in maps/ (same stems)."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "shots"
    maps = tmp_path / "maps"
    folder.mkdir()
    maps.mkdir()
    for k, name in enumerate(("a.png", "b.jpg", "c.png")):
        image = rng.uniform(0.0, 1.0, (H, W, 3)).astype(np.float32)
        image[H // 3: 2 * H // 3, W // 3: 2 * W // 3] = 1.0      # a bright block: visible bokeh
        write_image(folder / name, image)
        disparity = np.tile(np.linspace(0.0, 1.0, W, dtype=np.float32), (H, 1))
        disparity[:, :W // 2] = 0.2 * k
        np.save(maps / (name.rsplit(".", 1)[0] + ".npy"), disparity)
    return folder, maps


LENS = ["--blur", "6", "--focus-disparity", "0.5", "--no-progress"]


def _single(photo, disparity, out) -> bytes:
    assert main(["render", str(photo), "--disparity", str(disparity), *LENS, "-o", str(out)]) == 0
    return out.read_bytes()


def test_batch_equals_single_renders_and_survives_a_corrupt_photo(shots, tmp_path, capsys):
    folder, maps = shots
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")      # corrupt, between a/b and c
    np.save(maps / "bad.npy", np.zeros((H, W), np.float32))
    out = tmp_path / "out"
    code = main(["render", str(folder / "a.png"), str(folder / "bad.png"), str(folder / "b.jpg"),
                 str(folder / "c.png"), "--disparity-dir", str(maps), *LENS, "-o", f"{out}/", "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert "bad.png" in captured.err and "3 rendered, 0 skipped (output exists), 1 failed" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "c.png"]     # OUT/<stem>.<suffix>
    for name in ("a.png", "b.jpg", "c.png"):
        stem = name.rsplit(".", 1)[0]
        assert (out / name).read_bytes() == _single(folder / name, maps / f"{stem}.npy", tmp_path / f"one-{name}")


def test_folder_and_glob_inputs_skip_existing_outputs_unless_forced(shots, tmp_path, capsys):
    folder, maps = shots
    out = tmp_path / "out"
    assert main(["render", str(folder), "--disparity-dir", str(maps), *LENS, "-o", str(out) + "/"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "c.png"]
    first = (out / "a.png").read_bytes()
    (out / "a.png").write_bytes(b"kept")
    capsys.readouterr()
    # out is a folder now: a pattern into it, no trailing slash needed
    assert main(["render", str(folder / "*.png"), "--disparity-dir", str(maps), *LENS, "-o", str(out)]) == 0
    assert "0 rendered, 2 skipped" in capsys.readouterr().out
    assert (out / "a.png").read_bytes() == b"kept"
    assert main(["render", str(folder / "*.png"), "--disparity-dir", str(maps), *LENS, "-o", str(out),
                 "--force"]) == 0
    assert "2 rendered, 0 skipped" in capsys.readouterr().out
    assert (out / "a.png").read_bytes() == first


def test_a_batch_never_writes_over_its_photos_or_maps_even_forced(shots, tmp_path, capsys):
    folder, maps = shots
    for name in ("a.png", "c.png"):                       # maps saved as PNGs where the outputs would go
        write_image(maps / name, np.full((H, W, 3), 0.5, np.float32))
        (maps / name.replace(".png", ".npy")).unlink()
    before = {p.name: p.read_bytes() for p in maps.iterdir()}
    photos = [str(folder / "a.png"), str(folder / "c.png")]
    for flags in ([], ["--force"]):
        code = main(["render", *photos, "--disparity-dir", str(maps), *LENS, "-o", f"{maps}/", *flags])
        assert code == 1 and "would overwrite" in capsys.readouterr().err
    code = main(["render", str(folder), "--disparity-dir", str(maps), *LENS, "-o", f"{folder}/", "--force"])
    assert code == 1 and "would overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in maps.iterdir()} == before


def test_output_format_names_every_output(shots, tmp_path):
    folder, maps = shots
    out = tmp_path / "out"
    assert main(["render", str(folder), "--disparity-dir", str(maps), *LENS, "-o", f"{out}/",
                 "--output-format", "tif"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "b.tif", "c.tif"]
    pytest.importorskip("pillow_heif")
    heic = tmp_path / "heic"
    assert main(["render", str(folder), "--disparity-dir", str(maps), *LENS, "-o", f"{heic}/",
                 "--output-format", "heic"]) == 0
    assert sorted(p.name for p in heic.iterdir()) == ["a.heic", "b.heic", "c.heic"]
    again = tmp_path / "again"          # a HEIC photo stays HEIC
    assert main(["render", str(heic / "a.heic"), "--disparity", str(maps / "a.npy"), *LENS, "-o", f"{again}/"]) == 0
    assert [p.name for p in again.iterdir()] == ["a.heic"] and read_image(again / "a.heic").shape == (H, W, 3)


def test_two_photos_with_one_output_name_are_refused_before_any_work(shots, tmp_path, capsys):
    folder, maps = shots
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.png").write_bytes((folder / "a.png").read_bytes())
    out = tmp_path / "out"
    code = main(["render", str(folder / "a.png"), str(other / "a.png"), "--disparity-dir", str(maps), *LENS,
                 "-o", f"{out}/"])
    err = capsys.readouterr().err
    assert code == 1 and "--output" in err and "both give a.png" in err
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--disparity-dir", "MAPS"], "expected a map for every photo"),     # none for d.png
    (["--disparity", "MAPS/a.npy"], "--disparity: expected a source that gives each photo its own map"),
    (["--disparity-dir", "MAPS", "--blur", "3", "--f-number", "2"], "--blur: expected either"),
    (["--disparity-dir", "MAPS", "--executor", "local", "--ray-address", "auto"], "--ray-address"),
    (["--disparity-dir", "MAPS", "--device", "cuda"], "--device: expected a device that exists"),
    (["--disparity-dir", "MAPS", "--workers", "0"], "--workers: expected an integer >= 1, got 0"),
    (["--disparity-dir", "MAPS", "--method", "scatter", "--dtype", "float16"], "dtype"),
    (["--disparity-dir", "MAPS", "--workers", "2", "-o", "memory://batch-refused/"], "memory:// lives in one"),
])
def test_bad_arguments_are_refused_before_any_render(shots, tmp_path, capsys, extra, message):
    folder, maps = shots
    if "every photo" in message:
        write_image(folder / "d.png", np.full((H, W, 3), 0.5, np.float32))
    out = tmp_path / "out"
    extra = [e.replace("MAPS", str(maps)) for e in extra]
    code = main(["render", str(folder), "--no-progress", "-o", f"{out}/", *extra])
    assert code == 1
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1, err      # one line, not one per photo
    assert not out.exists()                                       # not even the folder
    assert not fsspec.filesystem("memory").exists("/batch-refused")


def test_one_photo_goes_into_a_new_folder_named_with_a_slash_and_a_file_url_folder_is_made(shots, tmp_path):
    folder, maps = shots
    assert main(["render", str(folder / "a.png"), "--disparity-dir", str(maps), *LENS,
                 "-o", f"{tmp_path / 'new'}/"]) == 0
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["a.png"]
    assert main(["render", str(folder / "a.png"), "--disparity-dir", str(maps), *LENS,
                 "-o", f"file://{tmp_path / 'by-url' / 'deeper'}/"]) == 0
    assert (tmp_path / "by-url" / "deeper" / "a.png").read_bytes() == (tmp_path / "new" / "a.png").read_bytes()


def test_a_photo_named_twice_two_ways_is_rendered_once_and_json_is_one_object_per_line(shots, tmp_path, capsys,
                                                                                        monkeypatch):
    import json

    folder, maps = shots
    monkeypatch.chdir(folder)
    (folder / "bad.png").write_bytes(b"not an image")
    np.save(maps / "bad.npy", np.zeros((H, W), np.float32))
    code = main(["render", "a.png", str(folder / "a.png"), "bad.png", "--disparity-dir", str(maps), *LENS,
                 "-o", f"{tmp_path / 'out'}/", "--format", "json"])
    assert code == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["output"] for line in lines[:-1]] == [str(tmp_path / "out" / "a.png")]
    assert lines[-1]["rendered"] == 1 and lines[-1]["skipped"] == []
    assert [f["photo"] for f in lines[-1]["failed"]] == ["bad.png"]


def test_an_output_file_for_several_photos_is_refused(shots, tmp_path, capsys):
    folder, _ = shots
    code = main(["render", str(folder), *LENS, "-o", str(tmp_path / "out.jpg")])
    assert code == 1 and "--output: expected a folder for several photos" in capsys.readouterr().err
    assert not (tmp_path / "out.jpg").exists()


def test_missing_input_is_refused(tmp_path, capsys):
    code = main(["render", str(tmp_path / "nope.png"), str(tmp_path / "nope2.png"), *LENS, "-o", f"{tmp_path}/o/"])
    assert code == 1 and "existing files, folders or glob patterns" in capsys.readouterr().err


def test_memory_urls_in_and_out_give_the_local_bytes(shots, tmp_path):
    folder, maps = shots
    fs = fsspec.filesystem("memory")
    for path in folder.iterdir():
        fs.pipe_file(f"/batch-in/{path.name}", path.read_bytes())
    for path in maps.iterdir():
        fs.pipe_file(f"/batch-maps/{path.name}", path.read_bytes())
    try:
        assert main(["render", "memory://batch-in/", "--disparity-dir", "memory://batch-maps", *LENS,
                     "-o", "memory://batch-out/"]) == 0
        local = tmp_path / "out"
        assert main(["render", str(folder), "--disparity-dir", str(maps), *LENS, "-o", f"{local}/"]) == 0
        for name in ("a.png", "b.jpg", "c.png"):
            assert fs.cat_file(f"/batch-out/{name}") == (local / name).read_bytes()
    finally:
        for root in ("/batch-in", "/batch-maps", "/batch-out"):
            if fs.exists(root):
                fs.rm(root, recursive=True)


def test_a_url_pattern_is_a_batch_and_a_bracketed_file_name_is_one_photo(shots, tmp_path):
    folder, maps = shots
    fs = fsspec.filesystem("memory")
    try:
        fs.pipe_file("/pattern-in/a.png", (folder / "a.png").read_bytes())
        assert main(["render", "memory://pattern-in/*.png", "--disparity-dir", str(maps), *LENS,
                     "-o", str(tmp_path / "out")]) == 0
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
    finally:
        fs.rm("/pattern-in", recursive=True)
    odd = folder / "a[1].png"
    odd.write_bytes((folder / "a.png").read_bytes())
    assert main(["render", str(odd), "--disparity", str(maps / "a.npy"), *LENS, "-o", str(tmp_path / "x.png")]) == 0
    assert (tmp_path / "x.png").read_bytes() == (tmp_path / "out" / "a.png").read_bytes()


def test_a_map_of_the_wrong_size_in_the_disparity_folder_is_that_flags_error(shots, tmp_path, capsys):
    folder, maps = shots
    np.save(maps / "c.npy", np.zeros((H // 2, W // 2), np.float32))
    code = main(["render", str(folder), "--disparity-dir", str(maps), *LENS, "-o", f"{tmp_path / 'out'}/"])
    err = capsys.readouterr().err
    assert code == 1 and f"{folder / 'c.png'}: --disparity-dir: expected the image's size" in err, err
    assert "Fix: pass --resize-disparity" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool forks from a server on Linux only")
def test_a_batch_starts_its_pool_server_before_its_own_work_and_one_photo_starts_none(shots):
    """The server's import of torch overlaps the driver's; a single photo renders in the driver, no server."""
    import subprocess

    folder, maps = shots
    probe = ("import os, sys, time; from lensblur.cli import _build; from lensblur.cli._args import start_pool_early; "
             "args = _build()[1]['render'].parse_args(sys.argv[1:]); start_pool_early(args); time.sleep(0.5); "
             "print(len([p for p in os.listdir('/proc') if p.isdigit() and "
             "open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1] == str(os.getpid())]))")
    common = ["--disparity-dir", str(maps), "--blur", "10", "--workers", "2"]
    runs = {"batch": [str(folder), *common, "-o", f"{folder.parent / 'out'}/"],
            "one photo": [str(folder / "a.png"), *common, "-o", str(folder.parent / "one.png")]}
    children = {name: int(subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                                         check=True).stdout) for name, argv in runs.items()}
    assert children["batch"] >= 1 and children["one photo"] == 0, children


def test_whether_a_run_is_a_batch_is_found_once_though_the_pool_start_asks_it_first(shots, tmp_path, monkeypatch):
    """The early start of the pool's server asks render whether it will batch, and render asks again: for a
    URL that is the filesystem's answer each time, so it is found once."""
    from lensblur.cli import render as render_command

    folder, maps = shots
    asked = []
    find = render_command._find_batch
    monkeypatch.setattr(render_command, "_find_batch", lambda args: asked.append(args.photo) or find(args))
    assert main(["render", folder.as_uri(), "--disparity-dir", str(maps), *LENS, "-o", f"{tmp_path / 'out'}/",
                 "--workers", "2"]) == 0
    assert len(asked) == 1 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.jpg", "c.png"]
