"""``lensblur render --method bokehdiff`` end to end on the tiny stand-in of the release (a base saved with
``save_pretrained``, a LoRA in diffusers' format, the pickle VAE encoder), and each bad input's one message."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lensblur import cli

FLAGS = ["--method", "bokehdiff", "--device", "cpu"]


@pytest.fixture
def main(monkeypatch):
    """The real ``lensblur`` entry point with only ``render`` registered."""
    monkeypatch.setattr(cli, "COMMANDS", {"render": "render"})
    return cli.main


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    photo, disparity = tmp_path / "photo.png", tmp_path / "d.png"
    Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(photo)
    x = np.arange(48)[None, :].repeat(32, 0)
    Image.fromarray((65535 * (0.5 + 0.4 * np.sin(x / 5.0))).astype(np.uint16)).save(disparity)
    return photo, disparity


def test_render_bokehdiff_writes_what_the_library_renders(main, inputs, release, tmp_path, capsys):
    from lensblur.depth import read_photo
    from lensblur.io import read_disparity, read_image, write_image
    from lensblur.lens import Lens, focus_at_point
    from lensblur.methods import get_method

    photo, disparity = inputs
    out = tmp_path / "out.png"
    code = main(["render", str(photo), "--disparity", str(disparity), "--focus", "20,16", "--blur", "300", *FLAGS,
                 "--diffusion-model", str(release.base), "--lora", str(release.lora), "--vae-encoder",
                 str(release.ckpt), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "bokehdiff" in capsys.readouterr().out
    image, d = read_photo(photo), read_disparity(disparity)
    method = get_method("bokehdiff", model=str(release.base), lora=str(release.lora), device="cpu")
    expected = tmp_path / "expected.png"
    write_image(expected, method.predict(image, disparity=d, lens=Lens(focus_at_point(d, (20, 16)), 300.0)))
    assert np.array_equal(read_image(out), read_image(expected))


def error_of(main, capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("lensblur render: error: "), err
    return err


def test_a_missing_base_model(main, inputs, release, tmp_path, capsys):
    photo, disparity = inputs
    err = error_of(main, capsys, ["render", str(photo), "--disparity", str(disparity), *FLAGS, "--diffusion-model",
                                  str(tmp_path / "nowhere"), "--lora", str(release.lora), "-o", str(tmp_path / "o.png")])
    assert str(tmp_path / "nowhere") in err and "hf download SG161222/RealVisXL_V5.0" in err


def test_a_missing_lora(main, inputs, release, tmp_path, capsys):
    photo, disparity = inputs
    err = error_of(main, capsys, ["render", str(photo), "--disparity", str(disparity), *FLAGS, "--diffusion-model",
                                  str(release.base), "--lora", str(tmp_path / "lora.safetensors"),
                                  "-o", str(tmp_path / "o.png")])
    assert "BokehDiff LoRA" in err and "hf download zcx65535/bokehdiff" in err


def test_a_lora_for_another_base(main, inputs, release, tmp_path, capsys):
    photo, disparity = inputs
    err = error_of(main, capsys, ["render", str(photo), "--disparity", str(disparity), *FLAGS, "--diffusion-model",
                                  str(release.base), "--lora", str(release.other_lora), "--vae-encoder", "none",
                                  "-o", str(tmp_path / "o.png")])
    assert "--lora: expected a LoRA for this base model's UNet" in err and "--diffusion-model SG161222" in err


def test_a_disparity_of_the_wrong_size(main, inputs, release, tmp_path, capsys):
    photo, _ = inputs
    small = tmp_path / "small.png"
    Image.fromarray(np.full((16, 24), 30000, np.uint16)).save(small)
    err = error_of(main, capsys, ["render", str(photo), "--disparity", str(small), *FLAGS, "--diffusion-model",
                                  str(release.base), "--lora", str(release.lora), "-o", str(tmp_path / "o.png")])
    assert "--disparity" in err and "24x16" in err


def test_an_image_too_large_for_the_device(main, inputs, release, tmp_path, capsys, monkeypatch):
    from lensblur.bokehdiff import pipeline

    monkeypatch.setattr(pipeline, "_free_bytes", lambda device: 2**20)
    photo, disparity = inputs
    err = error_of(main, capsys, ["render", str(photo), "--disparity", str(disparity), *FLAGS, "--diffusion-model",
                                  str(release.base), "--lora", str(release.lora), "-o", str(tmp_path / "o.png")])
    assert "PHOTO: expected an image whose attention fits in the 0.00 GiB free on cpu" in err
    assert "--tile auto" in err and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(("flags", "named"), [
    (["--dtype", "float16"], "--dtype: expected float32 or bfloat16 on the CPU"),
    (["--tile-margin", "32"], "--tile-margin: expected latent pixels, an integer in [0, 31]"),
    (["--diffusion-model", "x", "--method", "layered"], "--diffusion-model: expected an option that method layered"),
    (["--lora", "x", "--method", "layered"], "--lora: expected an option that method layered"),
])
def test_options_are_named_by_their_flags(main, inputs, tmp_path, capsys, flags, named):
    photo, disparity = inputs
    err = error_of(main, capsys, ["render", str(photo), "--disparity", str(disparity), *FLAGS, *flags,
                                  "-o", str(tmp_path / "o.png")])
    assert named in err, err


def test_convert_writes_the_same_tensors_as_safetensors(monkeypatch, release, tmp_path, capsys):
    import datetime

    import torch

    from lensblur.bokehdiff.loading import read_vae_encoder

    monkeypatch.setattr(cli, "COMMANDS", {"convert": "convert"})
    out = tmp_path / "vae-encoder.safetensors"
    assert cli.main(["convert", str(release.ckpt), "-o", str(out)]) == 0
    assert f"({len(release.encoder)} tensors)" in capsys.readouterr().out
    converted = read_vae_encoder(out)
    assert converted.keys() == release.encoder.keys()
    assert all(torch.equal(converted[k], v) for k, v in release.encoder.items())
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"encoder.conv_in.weight": torch.zeros(1), "made": datetime.date(2025, 7, 23)}, unsafe)
    assert cli.main(["convert", str(unsafe), "-o", str(tmp_path / "x.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "CHECKPOINT: expected a state dict" in err and "vae_encoder" not in err, err
    assert not (tmp_path / "x.safetensors").exists()
    assert cli.main(["convert", str(release.ckpt), "-o", str(tmp_path / "x.bin")]) == 1
    assert "--output: expected a .safetensors file name" in capsys.readouterr().err
    assert cli.main(["convert", str(tmp_path), "-o", str(tmp_path / "x.safetensors")]) == 1
    assert "CHECKPOINT: expected a checkpoint file of tensors (.ckpt, .pt, .bin), got" in capsys.readouterr().err
    tied = tmp_path / "tied.pt"                 # two names, one tensor (tied weights)
    weight = torch.arange(6.0).reshape(2, 3)
    torch.save({"embed.weight": weight, "head.weight": weight}, tied)
    assert cli.main(["convert", str(tied), "-o", str(tmp_path / "tied.safetensors")]) == 0
    back = read_vae_encoder(tmp_path / "tied.safetensors")
    assert back.keys() == {"embed.weight", "head.weight"} and all(torch.equal(v, weight) for v in back.values())
