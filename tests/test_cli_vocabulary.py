"""The command line speaks one vocabulary: a concept has one spelling and one set of choices in every
subcommand, old spellings still parse (hidden, for one release), and errors name the flags users typed."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from lensblur.cli import _args, _build, build_parser, main, message
from lensblur.depth import SOURCES
from lensblur.errors import InputError

# The smallest argv each subcommand accepts.
MINIMAL = {
    "render": ["p.png", "-o", "o.png"],
    "depth": ["p.png", "-o", "d.png"],
    "metrics": ["a.png", "b.png"],
    "focus": ["a.png"],
    "focus-report": ["a.png"],
    "demo": [],
    "eval": ["--method", "identity", "--dataset", "synth", "--root", "r", "-o", "results"],
    "synth": ["-o", "data", "-n", "1"],
    "generate": ["a prompt", "-o", "out"],
    "data": ["check", "synth", "r"],
    "train": ["pix2pix", "--dataset", "synth", "--root", "r", "-o", "runs/x"],
    "convert": ["vae.ckpt", "-o", "vae.safetensors"],
    "ui": [],
}

# Every old spelling kept as a hidden alias: command -> {old: new}.
ALIASES = {
    "render": {"--model": "--depth-model", "--refine": "--refine-depth", "--normalize": "--normalize-disparity"},
    "depth": {"--model": "--depth-model", "--refine": "--refine-depth"},
    "demo": {"--out": "--output"},
    "eval": {"--out": "--output", "--normalize": "--normalize-disparity"},
    "synth": {"--out": "--output"},
}

WRITES_ONE_FILE = {"render", "depth", "convert"}
WRITES_A_FOLDER = {"demo", "eval", "synth", "generate", "train"}
FORMATS = {"depth": ("text", "json"), "focus": ("text", "json"), "metrics": ("text", "json"), "render": ("text", "json"),
           "synth": ("text", "json"), "focus-report": ("markdown", "json"), "eval": ("markdown", "json"),
           "train": ("text", "json")}
LONG_RUNNING = {"eval", "synth", "generate", "train", "render"}

# Spellings that name different things in different commands, on purpose.
DIFFERENT_CONCEPTS = {
    "--focus": "a pixel to focus on (render) vs a focus prompt (generate)",
    "--box": "one box (metrics), repeatable boxes (focus), repeatable named boxes (focus-report, generate)",
    "--model": "the diffusion model (generate) vs the old spelling of --depth-model (render, depth)",
    "--workers": "data-loading workers (eval, default 0) vs tracing processes (synth, default 1)",
}


@pytest.fixture(scope="module")
def commands() -> dict[str, argparse.ArgumentParser]:
    return _build()[1]


def _visible(parser):
    return [a for a in parser._actions if a.help is not argparse.SUPPRESS]


def _hidden_aliases(parser):
    return [a for a in parser._actions if isinstance(a, _args._Deprecated)]


def test_every_command_has_a_minimal_argv(commands):
    assert set(commands) == set(MINIMAL)
    for name, argv in MINIMAL.items():
        build_parser().parse_args([name, *argv])


def test_the_hidden_aliases_are_the_listed_ones(commands):
    found = {name: {a.option_strings[0]: a.target.option_strings[-1] for a in _hidden_aliases(p)}
             for name, p in commands.items()}
    assert {k: v for k, v in found.items() if v} == ALIASES


def _value(action) -> list[str]:
    if action.nargs == 0:
        return []
    if action.choices:
        return [str(list(action.choices)[-1])]
    return ["x.png"]


@pytest.mark.parametrize(("command", "old", "new"),
                         [(c, o, n) for c, aliases in ALIASES.items() for o, n in aliases.items()])
def test_an_old_spelling_parses_to_the_same_value_with_a_note(commands, capsys, command, old, new):
    parser = build_parser()
    action = next(a for a in _hidden_aliases(commands[command]) if old in a.option_strings)
    argv = list(MINIMAL[command])
    if new == "--output" and "-o" in argv:               # the alias stands in for the required -o
        i = argv.index("-o")
        with_new, with_old = argv[:i] + [new, argv[i + 1]] + argv[i + 2:], argv[:i] + [old, argv[i + 1]] + argv[i + 2:]
    else:
        value = _value(action)
        with_new, with_old = argv + [new, *value], argv + [old, *value]
    expected = parser.parse_args([command, *with_new])
    assert capsys.readouterr().err == ""
    got = parser.parse_args([command, *with_old])
    assert vars(got) == vars(expected)
    err = capsys.readouterr().err
    assert f"{old} is deprecated" in err and new in err
    assert old not in commands[command].format_help().replace(new, "")  # hidden from --help


def test_demo_output_alias_overrides_the_default(capsys):
    assert build_parser().parse_args(["demo", "--out", "elsewhere"]).output == build_parser().parse_args(
        ["demo", "-o", "elsewhere"]).output
    assert str(build_parser().parse_args(["demo"]).output) == "out/demo"


def test_a_required_output_is_still_required_and_both_spellings_clash(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["synth", "-n", "1"])
    err = capsys.readouterr().err
    assert "-o/--output is required" in err and "--out" not in err.replace("--output", "")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["synth", "-n", "1", "-o", "a", "--out", "b"])


def test_one_spelling_means_one_thing_in_every_command(commands):
    """A flag taken by several commands parses the same way in all of them (``--format``'s choices are
    each command's own: see the next tests)."""
    seen: dict[str, tuple[str, argparse.Action]] = {}
    differences = []
    for name, parser in commands.items():
        for action in _visible(parser):
            for flag in action.option_strings:
                if flag in DIFFERENT_CONCEPTS or flag in ("-h", "--help"):
                    continue
                if flag not in seen:
                    seen[flag] = (name, action)
                    continue
                first, other = seen[flag]
                shape = ["dest", "type", "nargs", "const", "option_strings"]
                shape += ["choices"] if flag != "--format" else []
                mine, theirs = ({k: getattr(a, k) for k in shape} | {"class": type(a)} for a in (action, other))
                if mine != theirs:
                    differences.append((flag, first, name, {k for k in mine if mine[k] != theirs[k]}))
    assert differences == []


def test_depth_from_offers_the_library_sources_everywhere(commands):
    offered = {name: tuple(a.choices) for name, p in commands.items() for a in p._actions
               if "--depth-from" in a.option_strings}
    assert set(offered) == {"render", "depth"}
    assert set(offered.values()) == {tuple(SOURCES)}


def test_output_is_o_output_wherever_a_command_writes(commands):
    for name, parser in commands.items():
        actions = [a for a in _visible(parser) if a.dest == "output"]
        if name not in WRITES_ONE_FILE | WRITES_A_FOLDER:
            assert not actions, name
            continue
        (action,) = actions
        assert action.option_strings == ["-o", "--output"], name
        assert action.metavar == ("DIR" if name in WRITES_A_FOLDER else action.metavar), name
        assert not [a for a in parser._actions if "--out" in a.option_strings and a.help is not argparse.SUPPRESS]


def test_format_is_offered_the_same_way(commands):
    for name, parser in commands.items():
        actions = [a for a in parser._actions if "--format" in a.option_strings]
        if name not in FORMATS:
            assert not actions, name
            continue
        (action,) = actions
        assert tuple(action.choices) == FORMATS[name] and action.default == FORMATS[name][0], name
        assert [f for f in _args.FORMATS if f in action.choices] == list(action.choices)  # one order


def test_progress_flags_in_every_long_running_command(commands):
    for name in LONG_RUNNING:
        parser = commands[name]
        flags = {f for a in _visible(parser) for f in a.option_strings}
        assert {"--no-progress", "-q", "--quiet"} <= flags, name
        argv = MINIMAL[name]
        assert _args.show_progress(parser.parse_args(argv))
        assert not _args.show_progress(parser.parse_args([*argv, "--no-progress"]))
        assert not _args.show_progress(parser.parse_args([*argv, "-q"]))


def test_photo_is_the_positional_of_render_and_depth(commands):
    for name in ("render", "depth"):
        (positional,) = [a for a in commands[name]._actions if not a.option_strings]
        assert (positional.dest, positional.metavar) == ("photo", "PHOTO")


def test_small_parsers():
    assert _args.floats("0.9, 0.8,0.7") == [0.9, 0.8, 0.7]
    assert _args.named_box("carrots=1,2,3.4,5") == ("carrots", (1, 2, 3, 5))
    assert _args.named_box("1,2,3,4") == (None, (1, 2, 3, 4))
    for bad in ("", "a,b"):
        with pytest.raises(argparse.ArgumentTypeError):
            _args.floats(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        _args.named_box("x=1,2,3")


# ------------------------------------------------------------------------------------------ flags in messages
@pytest.mark.parametrize(("command", "argument", "flag"), [
    ("render", "focus_disparity", "--focus-disparity"),
    ("render", "cat_eye", "--cat-eye"),
    ("render", "focus", "--focus"),
    ("depth", "source", "--depth-from"),
    ("depth", "model", "--depth-model"),
    ("depth", "depth model", "--depth-model"),
    ("depth", "refine", "--refine-depth"),
    ("depth", "image_path", "PHOTO"),
    ("render", "image", "PHOTO"),
    ("generate", "image", "--init-image"),
    ("generate", "model", "--model"),
    ("generate", "num_inference_steps", "--steps"),
    ("generate", "prompt", "prompt"),
    ("eval", "edge_band", "--edge-band"),
    ("eval", "out_dir", "--output"),
    ("synth", "out", "--output"),
    ("metrics", "out", "OUT"),
    ("render", "point", "--focus"),
    ("render", "kernel", "--aperture"),
    ("render", "aperture kernel", None),      # not a flag: left as the library wrote it
    ("metrics", "focus_disparity", None),     # no such flag in this command
    ("render", "--blur", None),               # already a flag
])
def test_flag_for_a_python_argument(commands, command, argument, flag):
    assert _args.flag_for(commands[command], argument) == flag


def test_message_names_the_flag_and_writes_the_fix_in_flags(commands):
    exc = InputError("focus_disparity", expected="a disparity in [0, 1]", got=1.5, fix="pass focus_disparity=0.5")
    assert message(exc, commands["render"]) == ("--focus-disparity: expected a disparity in [0, 1], got 1.5. "
                                                "Fix: pass --focus-disparity 0.5")
    assert message(exc, commands["metrics"]) == str(exc)        # no such flag there: as the library wrote it
    exc = InputError("prompt", expected="a text", got="a=b", fix="e.g. prompt='a bunny', focus_prompt='carrots'")
    assert message(exc, commands["generate"]) == ("prompt: expected a text, got a=b. "     # positional; got as is
                                                  "Fix: e.g. prompt='a bunny', --focus 'carrots'")


@pytest.mark.parametrize(("command", "fix", "expected"), [
    ("generate", "pass allow_download=True", "pass --allow-download"),
    ("generate", "allow_download=False is the default", "allow_download=False is the default"),
    ("generate", "sigma=0.8 and scheduler=ddim", "--sigma 0.8 and --scheduler ddim"),
    ("depth", "model=PATH_OR_ID or disparity_path=FILE", "--depth-model PATH_OR_ID or --disparity FILE"),
    ("eval", "e.g. --method=layered or blur=30", "e.g. --method=layered or --blur 30"),
    ("render", "focus_at_point(disparity, (x, y)), x=3", "focus_at_point(disparity, (x, y)), x=3"),
    ("render", "use Aperture(blades=6) or blades=6", "use Aperture(blades=6) or --blades 6"),   # a call stays Python
    ("render", "a smaller Lens(blur=...)", "a smaller Lens(blur=...)"),
])
def test_in_flags(commands, command, fix, expected):
    assert _args.in_flags(fix, commands[command]) == expected


def test_a_missing_models_way_to_get_it_is_written_in_flags(commands):
    from lensblur.errors import ModelNotFoundError

    exc = ModelNotFoundError("The depth model 'x'", looked_in=["/nowhere"], how_to_get="pass model=PATH_OR_ID")
    assert "pass --depth-model PATH_OR_ID" in _args.cli_message(exc, commands["render"])


def test_a_library_error_is_printed_with_the_flag(tmp_path, capsys):
    photo, disp = tmp_path / "p.png", tmp_path / "d.png"
    Image.fromarray(np.full((8, 10, 3), 128, np.uint8)).save(photo)
    Image.fromarray(np.full((8, 10), 30000, np.uint16)).save(disp)
    code = main(["render", str(photo), "--disparity", str(disp), "--focus-disparity", "1.5", "-o",
                 str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("lensblur render: error: --focus-disparity: expected"), err
    assert "focus_disparity:" not in err


def test_a_library_fix_is_printed_in_flags(tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((8, 10, 3), 128, np.uint8)).save(photo)
    assert main(["render", str(photo), "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lensblur render: error: --depth-from: expected a way to get depth"), err
    assert "--disparity FILE" in err and "--depth-model PATH_OR_ID" in err and "disparity_path=" not in err


def test_render_fixes_name_flags_and_not_python_calls(tmp_path, capsys):
    """The aperture, focus and blur refusals of the library read as the command line takes them."""
    photo, disp = tmp_path / "p.png", tmp_path / "d.png"
    Image.fromarray(np.full((8, 10, 3), 128, np.uint8)).save(photo)
    Image.fromarray(np.linspace(0, 65535, 80).reshape(8, 10).astype(np.uint16)).save(disp)
    base = ["render", str(photo), "--disparity", str(disp), "-o", str(tmp_path / "o.png")]
    for extra, said in ((["--aperture", "octagonx"], ("Fix: e.g. --aperture hexagon, or an image of the aperture's "
                                                     "shape, e.g. --aperture iris.png")),
                        (["--focus-disparity", "2"], "Fix: pass e.g. --focus-disparity 0.5 (1 is the nearest"),
                        # the largest CoC for a 10 px wide photo is 5 px; at focus 0 the map reaches 1: blur 5
                        (["--focus-disparity", "0", "--blur", "60"], "Fix: e.g. --blur 5 (the most for this map")):
        assert main([*base, *extra]) == 1
        err = capsys.readouterr().err
        assert said in err and not any(call in err for call in ("Aperture(", "Lens(", "focus_at_point(")), err
    assert not (tmp_path / "o.png").exists()


def test_an_options_check_of_the_library_reads_in_flags(capsys):
    """EvalOptions checks its own values (named as Python arguments, fix included) before any data is read."""
    code = main(["eval", *MINIMAL["eval"], "--limit", "0"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("lensblur eval: error: --limit: expected an integer >= 1, got 0."), err
    assert "Fix: e.g. --limit 1" in err


def test_data_check_reports_a_dataset_folder_and_errors_name_its_arguments(tmp_path, capsys):
    root = tmp_path / "synth"
    assert main(["synth", "-o", str(root), "-n", "1", "--size", "64x48", "--samples", "16", "-q"]) == 0
    capsys.readouterr()
    assert main(["data", "check", "synth", str(root), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    pair = next((root / "pairs").iterdir())
    (pair / "target16.png").unlink()
    (pair / "image.png").write_text("not an image")
    assert main(["data", "check", "synth", str(root)]) == 1           # a pair short of its files: bad input
    out = capsys.readouterr().out
    assert f"complete pairs missing files: {pair.name} (target16.png)" in out, out
    assert f"pair files that cannot be read: {pair.name}/image.png" in out
    shutil.rmtree(pair)
    assert main(["data", "check", "synth", str(root)]) == 1           # a folder short of its manifest
    capsys.readouterr()
    assert main(["data", "check", "synth", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lensblur data: error: ROOT: expected"), err


@pytest.mark.parametrize(("argv", "message"), [
    (["render", "p.png", "-o", "o.png", "--blur", "abc"], "lensblur render: error: --blur: expected a number, got 'abc'"),
    (["render", "p.png", "-o", "o.png", "--blades", "2.5"], "--blades: expected a whole number, got '2.5'"),
    (["render", "p.png", "-o", "o.png", "--focus-box", "1,2,3"], "--focus-box: expected a box X0,Y0,X1,Y1"),
    (["render", "p.png", "--blur", "3"], "the following arguments are required: -o/--output"),
    (["render", "p.png", "-o", "o.png", "--focus"], "--focus: expected a value after it"),
    (["render", "p.png", "-o", "o.png", "--depth-scale", "-1"], "--depth-scale: expected a number > 0, got '-1'"),
    (["depth", "p.png", "-o", "o.png", "--depth-scale", "nan"], "--depth-scale: expected a number > 0, got 'nan'"),
])
def test_usage_errors_are_one_line_in_the_house_style_with_exit_code_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err
    assert err.count("\n") == 1 and "usage:" not in err and "--help lists the options" in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--blades", "6", "--rotation", "inf"], "--rotation: expected a finite number of degrees, got inf"),
    (["--right", "MISSING.png"], "--right: expected an existing file, got"),
    (["-o", "OUT.xyz"], "--output: expected a file name ending in one of"),
])
def test_bad_values_name_their_flag(tmp_path, capsys, extra, message):
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "p.png")
    Image.fromarray(np.full((8, 10), 30000, np.uint16)).save(tmp_path / "d.png")
    extra = [e.replace("MISSING", str(tmp_path / "missing")).replace("OUT", str(tmp_path / "o")) for e in extra]
    depth = [] if "--right" in extra else ["--disparity", str(tmp_path / "d.png")]
    code = main(["render", str(tmp_path / "p.png"), *depth, "--blur", "3", "-o", str(tmp_path / "o.png"), *extra])
    assert code == 1 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "p.png"]     # nothing written


def test_a_value_with_a_leading_minus_is_a_value_not_a_flag(tmp_path, capsys):
    """``--focus -1,-1`` reaches the library's check ("a point inside the image"), not argparse's
    "expected one argument"."""
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "p.png")
    Image.fromarray(np.full((8, 10), 30000, np.uint16)).save(tmp_path / "d.png")
    code = main(["render", str(tmp_path / "p.png"), "--disparity", str(tmp_path / "d.png"), "--focus", "-1,-1",
                 "-o", str(tmp_path / "o.png")])
    assert code == 1 and "--focus: expected a point inside the 10x8 image" in capsys.readouterr().err
    assert build_parser().parse_args(["render", "p.png", "-o", "o.png", "--rotation", "-30"]).rotation == -30


def test_help_screens_show_text_not_docstring_markup(commands):
    for name, parser in commands.items():
        text = parser.format_help()
        assert "``" not in text and ":func:`" not in text and ":class:`" not in text, name


def test_depth_flags_the_source_does_not_read_are_said_to_be_ignored(tmp_path, caplog):
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "p.png")
    Image.fromarray(np.full((8, 10), 30000, np.uint16)).save(tmp_path / "d.png")
    base = ["render", str(tmp_path / "p.png"), "--disparity", str(tmp_path / "d.png"), "-o", str(tmp_path / "o.png"),
            "--force", "--no-progress"]
    with caplog.at_level("WARNING"):
        assert main([*base, "--blur", "3", "--depth-scale", "2", "--depth-range", "1,10", "--right", "r.png"]) == 0
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "--right is read by --depth-from stereo" in said and "--depth-scale scales --depth" in said
    assert "--depth-range is read by a camera" in said
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert main([*base, "--f-number", "2", "--depth-range", "1,10"]) == 0
    assert not [r for r in caplog.records if "ignored" in r.getMessage()]
