"""``lensblur generate`` and ``lensblur focus-report`` end to end, on a tiny random model saved with
``save_pretrained`` (the same folder layout as a downloaded Stable Diffusion)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from lensblur import cli

PROMPT = "a cute baby bunny standing on top of a pile of baby carrots under a spot light"
TINY = ["--steps", "4", "--size", "32x32", "--num-images", "2", "-q"]


def load(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.fixture
def main(monkeypatch):
    """The real ``lensblur`` entry point, with only this package's commands registered (the other
    subcommands are tested elsewhere and may pull in other extras)."""
    assert cli.COMMANDS["generate"] == "generate" and cli.COMMANDS["focus-report"] == "focus_report"
    monkeypatch.setattr(cli, "COMMANDS", {"generate": "generate", "focus-report": "focus_report"})
    return cli.main


@pytest.fixture
def model_dir(sd_pipe, tmp_path):
    path = tmp_path / "tiny-sd"
    sd_pipe.save_pretrained(path)
    return path


def test_generate_writes_baseline_focus_images_sheet_and_report(main, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["generate", PROMPT, "--focus", "a pile of carrots", "--focus", "a cute rabbit", "--sigma", "0.5",
                 "--model", str(model_dir), "--baseline", "--box", "carrots=0,16,32,32", "-o", str(out), *TINY])
    assert code == 0, capsys.readouterr().err
    written = capsys.readouterr().out.split()
    names = sorted(p.rsplit("/", 1)[-1] for p in written)
    assert names == sorted(["baseline-seed42.png", "baseline-seed43.png",
                            "a-pile-of-carrots-sigma0.5-alpha0-seed42.png", "a-pile-of-carrots-sigma0.5-alpha0-seed43.png",
                            "a-cute-rabbit-sigma0.5-alpha0-seed42.png", "a-cute-rabbit-sigma0.5-alpha0-seed43.png",
                            "sheet.png", "report.md", "report.json", "run.json"])
    base = load(out / "baseline-seed42.png")
    carrots = load(out / "a-pile-of-carrots-sigma0.5-alpha0-seed42.png")
    assert base.shape == (32, 32, 3) and not np.array_equal(base, carrots)
    run = json.loads((out / "run.json").read_text())
    assert [r["global_steps"] for r in run["runs"]] == [4, 2, 2] and run["seeds"] == [42, 43]
    report = json.loads((out / "report.json").read_text())
    assert report["scores"][0]["image"] == "baseline-seed42.png" and report["scores"][0]["vol_ratio"] is None
    assert "| carrots (0,16,32,32) |" in (out / "report.md").read_text()
    assert load(out / "sheet.png").shape[1] > 3 * 32


def test_same_seed_same_bytes_and_image_j_is_seed_plus_j(main, model_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["generate", PROMPT, "--focus", "carrots", "--model", str(model_dir), *TINY]
    assert main([*common, "-o", str(a)]) == 0
    assert main([*common, "-o", str(b), "--num-images", "1", "--seed", "43"]) == 0
    assert (a / "carrots-sigma0.8-alpha0-seed43.png").read_bytes() == (b / "carrots-sigma0.8-alpha0-seed43.png").read_bytes()
    assert main([*common, "-o", str(b), "--num-images", "1", "--seed", "43"]) == 1  # no silent overwrite
    assert main([*common, "-o", str(b), "--num-images", "1", "--seed", "43", "--force"]) == 0


def test_image_to_image_reports_against_the_input(main, model_dir, tmp_path, capsys):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    out = tmp_path / "out"
    code = main(["generate", "A cute rabbit stands with carrots", "--focus", "carrots", "--init-image",
                 str(tmp_path / "in.png"), "--strength", "0.5", "--box", "8,8,24,24", "--model", str(model_dir),
                 "-o", str(out), *TINY])
    assert code == 0, capsys.readouterr().err
    assert load(out / "carrots-sigma0.8-alpha0-seed42.png").shape == (40, 32, 3)
    run = json.loads((out / "run.json").read_text())
    assert (run["runs"][0]["steps_run"], run["runs"][0]["global_steps"]) == (2, 2)  # int(4 * 0.5) = 2; 1.6 -> 2
    assert json.loads((out / "report.json").read_text())["baseline"] == "in.png (input)"
    # --sigma-of schedule: sigma is a step of the whole 4-step schedule, of which image-to-image skips 2
    from lensblur.generate.stages import global_step_count

    code = main(["generate", "A cute rabbit stands with carrots", "--focus", "carrots", "--init-image",
                 str(tmp_path / "in.png"), "--sigma-of", "schedule", "--model", str(model_dir),
                 "-o", str(tmp_path / "schedule"), *TINY])
    assert code == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "schedule" / "run.json").read_text())
    expected = global_step_count(2, sigma=0.8, num_inference_steps=4, sigma_of="schedule")
    assert run["sigma_of"] == "schedule" and run["runs"][-1]["global_steps"] == expected


def test_sigma_sweep_makes_one_column_per_value(main, model_dir, tmp_path):
    out = tmp_path / "fig3"
    assert main(["generate", PROMPT, "--focus", "carrots", "--sweep-sigma", "0.75,0.5,0.25", "--model",
                 str(model_dir), "-o", str(out), *TINY, "--num-images", "1"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert [r["global_steps"] for r in run["runs"]] == [3, 2, 1]
    assert (out / "sheet.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--focus", "carrots"], "prompt: expected the global prompt"),
    ([PROMPT, "--focus", "carrots", "--sigma", "0"], "--sigma: expected a number in (0, 1]"),
    ([PROMPT, "--focus", "carrots", "--sigma", "1.5"], "--sigma: expected a number in (0, 1]"),
    ([PROMPT, "--focus", "carrots", "--alpha", "-1"], "--alpha: expected a number >= 0"),
    ([PROMPT, "--focus", "carrots", "--box", "0,0,64,16"], "--box box 1: expected x0 < x1 <= 32"),
    ([PROMPT, "--size", "30x32"], "--size: expected a multiple of 8 pixels, got 30"),
    ([PROMPT, "--focus", " "], "--focus: expected a non-empty text"),
    ([PROMPT, "--steps", "0"], "--steps: expected a whole number >= 1"),
    ([PROMPT, "--num-images", "0"], "--num-images: expected a whole number >= 1"),
])
def test_bad_input_is_one_line_exit_1(main, model_dir, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    code = main(["generate", *TINY, *argv, "--model", str(model_dir), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and "Traceback" not in err
    assert not out.exists()  # nothing written, not even the folder


def test_global_steps_beyond_the_schedule_are_refused_before_any_model_loads(main, tmp_path, capsys):
    missing = tmp_path / "no-such-model"       # a model error would mean the model was looked for first
    for extra in (["--steps", "4", "--global-steps", "5"],
                  ["--steps", "4", "--global-steps", "3", "--init-image", str(tmp_path / "x.png"), "--strength", "0.5"]):
        if "--init-image" in extra:
            Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
        assert main(["generate", PROMPT, "--focus", "carrots", *extra, "--model", str(missing),
                     "-o", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert "--global-steps: expected" in err and "not found" not in err and not (tmp_path / "o").exists()


def test_image_to_image_with_no_step_to_run_is_refused_before_any_model_loads(main, tmp_path, capsys):
    """int(4 * 0.2) = 0 steps: diffusers would get an empty schedule; the check names --strength instead."""
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    for focus in ([], ["--focus", "carrots"]):
        assert main(["generate", PROMPT, *focus, "--steps", "4", "--init-image", str(tmp_path / "x.png"),
                     "--strength", "0.2", "--model", str(tmp_path / "no-such-model"), "-o", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert "--strength: expected at least one step to run" in err and "0.25" in err
        assert "not found" not in err and "Traceback" not in err and not (tmp_path / "o").exists()


def test_missing_or_wrong_model(main, tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    assert main(["generate", PROMPT, "--model", str(missing), "-o", str(tmp_path / "o"), *TINY]) == 1
    err = capsys.readouterr().err
    assert "not found. Looked in:" in err and str(missing) in err and "hf download CompVis/stable-diffusion-v1-4" in err
    assert "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["generate", PROMPT, "--model", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), *TINY]) == 1
    assert "model_index.json" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    assert main(["generate", PROMPT, "--model", str(tmp_path / "junk.safetensors"), "-o", str(tmp_path / "o"),
                 *TINY]) == 1
    assert "could not be read as a checkpoint" in capsys.readouterr().err


def test_hub_id_is_not_downloaded_without_permission(main, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["generate", PROMPT, "--model", "someone/not-cached-model", "-o", str(tmp_path / "o"), *TINY]) == 1
    err = capsys.readouterr().err
    assert re.search(r"downloads are off: pass (--allow-download|allow_download=True)", err) and "Hugging Face cache" in err


def test_focus_report_markdown_and_json(main, tmp_path, capsys):
    rng = np.random.default_rng(3)
    sharp = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    soft = np.asarray(Image.fromarray(sharp).resize((16, 12)).resize((64, 48), Image.BILINEAR))
    Image.fromarray(soft).save(tmp_path / "base.png")
    Image.fromarray(sharp).save(tmp_path / "sharp.png")
    args = ["focus-report", str(tmp_path / "base.png"), str(tmp_path / "sharp.png"), "--box", "obj=8,8,40,40"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert table.startswith("| image | region | VoL |") and "| obj (8,8,40,40) |" in table and "| baseline |" in table
    assert main([*args, "--format", "json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores[1]["vol_ratio"] > 5 and scores[1]["brenner_ratio"] > 2
    assert main(["focus-report", str(tmp_path / "base.png"), "--box", "0,0,65,10"]) == 1
    assert "expected x0 < x1 <= 64" in capsys.readouterr().err


def test_folder_with_missing_weights_is_a_model_error(main, model_dir, tmp_path, capsys):
    for weights in (model_dir / "unet").glob("*.safetensors"):
        weights.unlink()
    assert main(["generate", PROMPT, "--model", str(model_dir), "-o", str(tmp_path / "o"), *TINY]) == 1
    err = capsys.readouterr().err
    assert "not found. Looked in:" in err and str(model_dir) in err and "Traceback" not in err


def test_single_file_checkpoints_go_to_from_single_file(tmp_path, monkeypatch):
    """The checkpoint family is read from the tensor names (SDXL has a second text encoder under
    conditioner.embedders.1) and the file goes to diffusers' from_single_file, offline, with --config."""
    import diffusers
    import torch
    from safetensors.torch import save_file

    from lensblur.generate.loading import load_text_to_image

    calls = []

    def fake(name):
        return classmethod(lambda cls, path, **kw: calls.append((name, path, kw)) or name)

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_single_file", fake("sd"))
    monkeypatch.setattr(diffusers.StableDiffusionXLPipeline, "from_single_file", fake("sdxl"))
    v1 = tmp_path / "v1.safetensors"
    xl = tmp_path / "xl.safetensors"
    save_file({"cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(2)}, v1)
    save_file({"conditioner.embedders.1.model.ln_final.weight": torch.zeros(2)}, xl)
    assert load_text_to_image(v1, config="cfg-folder") == "sd"
    assert load_text_to_image(xl) == "sdxl"
    assert calls[0] == ("sd", str(v1), {"torch_dtype": None, "local_files_only": True, "config": "cfg-folder"})
    assert calls[1][0] == "sdxl" and calls[1][2]["local_files_only"] is True


def test_flags_of_the_other_mode_are_said_to_be_ignored(main, tmp_path, caplog):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    missing = ["--model", str(tmp_path / "no-such-model"), "-o", str(tmp_path / "o")]
    for strength, size in (("0.7", "64x64"), ("0.5", "512x512")):     # the second pair: the defaults, given
        caplog.clear()
        with caplog.at_level("WARNING"):
            main(["generate", PROMPT, "--strength", strength, *missing])
            main(["generate", PROMPT, "--init-image", str(tmp_path / "x.png"), "--size", size, *missing])
        said = " ".join(record.getMessage() for record in caplog.records)
        assert "--strength is read with --init-image" in said and "--size is text-to-image's" in said


def test_flags_left_out_are_not_said_to_be_ignored(main, tmp_path, caplog):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    missing = ["--model", str(tmp_path / "no-such-model"), "-o", str(tmp_path / "o")]
    with caplog.at_level("WARNING"):
        main(["generate", PROMPT, *missing])
        main(["generate", PROMPT, "--init-image", str(tmp_path / "x.png"), *missing])
    assert "ignored" not in " ".join(record.getMessage() for record in caplog.records)


def test_global_steps_with_sigma_is_refused(main, tmp_path, capsys):
    for other in (["--sigma", "0.8"], ["--sweep-sigma", "0.9,0.8"]):
        assert main(["generate", PROMPT, "--focus", "carrots", "--global-steps", "3", *other,
                     "--model", str(tmp_path / "no-such-model"), "-o", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert f"either --global-steps or {other[0]}" in err and not (tmp_path / "o").exists()
