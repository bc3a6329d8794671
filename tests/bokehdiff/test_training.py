"""Training BokehDiff on tiny random components: only the intended parameters change, the adapters start as
the base model, resume is identical to an uninterrupted run (the sharpness counter included), the loss
falls, the training view and PISA's conditioning, what a checkpoint holds and that it renders as the trainer
did, and ``lensblur train bokehdiff`` then ``lensblur render`` / ``eval`` with its run."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
import torch

pytest.importorskip("peft")
pytest.importorskip("accelerate")

import diffusion_dummies
from lensblur.bokehdiff.pairs import BokehDiffPairs, exposure_scale
from lensblur.bokehdiff.training import (
    VAE_PARTS,
    BokehDiffTrainConfig,
    BokehDiffTrainer,
    cosine_schedule,
    pisa_coc,
)
from lensblur.errors import InputError, ModelNotFoundError
from lensblur.lens import Lens

SIZE = 16


@pytest.fixture(scope="module")
def sd_parts(tokenizer_dir):
    """The tiny SD 1.x components, built once (each trainer gets a deep copy: training changes them)."""
    parts = diffusion_dummies.sd_components(tokenizer_dir)
    return {k: parts[k] for k in ("unet", "vae", "scheduler", "text_encoder", "tokenizer")}


def sd_pipe(parts):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(**copy.deepcopy(parts), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def tiny_convnext():
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    torch.manual_seed(3)
    return ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)]).features


class Pairs(torch.utils.data.Dataset):
    """Two smooth 16 x 16 pairs on two planes, with their lens, as dataset readers give them."""

    def __len__(self):
        return 2

    def __getitem__(self, index):
        y, x = torch.meshgrid(torch.linspace(0, 1, SIZE), torch.linspace(0, 1, SIZE), indexing="ij")
        image = torch.stack([0.5 + 0.4 * torch.sin((9 + index) * x), 0.5 + 0.4 * torch.cos(7 * y), x * y])
        disparity = ((x > 0.5).float() * 0.8 + 0.1)[None]
        target = torch.nn.functional.avg_pool2d(image[None], 3, 1, 1, count_include_pad=False)[0]
        return {"image": image, "target": target, "disparity": disparity,
                "meta": {"id": str(index), "lens": {"blur": 10.0, "focus_disparity": 0.9}}}


def trainer(parts, recipe="released", *, adversarial=True, **overrides):
    settings = {"recipe": recipe, "base_model": "", "lpips_weight": 0.0, "total_steps": 8,
                "discriminator": "custom" if adversarial else "none", "adv_start": 0, **overrides}
    return BokehDiffTrainer(BokehDiffTrainConfig(**settings), pipe=sd_pipe(parts),
                            discriminator_backbone=tiny_convnext() if adversarial else None)


def batch_of(view, index=0):
    return {k: v[None] for k, v in view[index].items() if isinstance(v, torch.Tensor)}


def steps(method, batch, count):
    import accelerate

    accelerator = accelerate.Accelerator()
    method.prepare(accelerator)
    return [method.training_step(batch, accelerator) for _ in range(count)]


def snapshot(method):
    pipe = method.pipeline.base
    parts = {"unet": pipe.unet, "vae": pipe.vae, "text_encoder": pipe.text_encoder, "d": method.discriminator}
    return {f"{p}.{k}": v.detach().clone() for p, m in parts.items() for k, v in m.named_parameters()}


# ------------------------------------------------------------------------------------------ what is trained
@pytest.mark.parametrize("recipe", ["released", "paper"])
def test_only_the_intended_parameters_change(sd_parts, recipe):
    method = trainer(sd_parts, recipe, lr=1e-2, warmup_steps=0)
    before = snapshot(method)
    steps(method, batch_of(BokehDiffPairs(Pairs(), SIZE, flips=False, exposure=False)), 2)
    after = snapshot(method)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    lora = {k for k in before if ".lora_A." in k or ".lora_B." in k}
    if recipe == "released":
        vae = {k for k in before if k.startswith(tuple(f"vae.{p}" for p in VAE_PARTS))}
        assert vae and not any(".lora_" in k for k in vae)
        unet_lora = {k for k in lora if k.startswith("unet.")}
        assert any(k.startswith("unet.up_blocks.") for k in unet_lora)        # the whole UNet
    else:
        vae = {k for k in lora if k.startswith("vae.")}
        assert vae and all(k.startswith(("vae.encoder.mid_block.", "vae.encoder.conv_out.")) for k in vae)
        unet_lora = {k for k in lora if k.startswith("unet.")}
        assert unet_lora and all(k.startswith("unet.down_blocks.") for k in unet_lora)   # the down blocks only
    head = {k for k in before if k.startswith("d.head.")}
    assert changed == unet_lora | vae | head
    # nothing else: base UNet, decoder, quant convs, the encoder's down blocks, text encoder, ConvNeXt backbone
    assert not any(k.startswith(("vae.decoder.", "text_encoder.", "d.backbone.")) for k in changed)
    # and the checkpoint is exactly the trained tensors (and the head's spectral-norm vectors)
    saved = {f"{name}.{k}" for name, module in method.modules().items() for k in module.state_dict()}
    buffers = {f"discriminator.{k}" for k, _ in method.discriminator.head.named_buffers()}
    expected = {k.replace("d.head.", "discriminator.") for k in unet_lora | vae | head}
    assert buffers and saved == expected | buffers


def test_the_adapters_start_as_the_base_model(sd_parts):
    """Gaussian A and zero B (and the paper's encoder LoRA likewise): before any step the adapted model
    renders what the base model renders (to float rounding: values up to 2, two identical calls differ by
    about 2e-6 here)."""
    method = trainer(sd_parts, "paper", adversarial=False)
    batch = batch_of(BokehDiffPairs(Pairs(), SIZE, flips=False, exposure=False))
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for part in (method.pipeline.unet, method.pipeline.vae) for m in part.modules()
              if isinstance(m, BaseTunerLayer)]
    assert any(n.startswith("encoder.") for n, m in method.pipeline.vae.named_modules() if m in layers)
    with torch.no_grad():
        adapted = method.render_batch(batch, torch.Generator().manual_seed(0))[0]
        for layer in layers:
            layer.enable_adapters(False)
        base = method.render_batch(batch, torch.Generator().manual_seed(0))[0]
    assert torch.allclose(adapted, base, rtol=0, atol=1e-5)       # B = 0: the LoRA adds zeros


def test_the_loss_falls_on_one_pair(sd_parts):
    method = trainer(sd_parts, "released", adversarial=False, lr=1e-2, warmup_steps=0, total_steps=1000)
    batch = batch_of(BokehDiffPairs(Pairs(), SIZE, flips=False, exposure=False))
    losses = [log["loss"] for log in steps(method, batch, 10)]
    assert losses[-1] < 0.85 * losses[0], losses
    assert sum(b < a for a, b in itertools.pairwise(losses)) >= 7, losses      # falling, not one lucky step


def test_the_sharpness_counter_counts_pisa_calls_and_the_schedule_is_a_warm_cosine(sd_parts):
    method = trainer(sd_parts, "released", adversarial=False)
    logs = steps(method, batch_of(BokehDiffPairs(Pairs(), SIZE)), 3)
    assert [log["hardness"] for log in logs] == [3.0, 4.0, 5.0]        # one PISA layer in this UNet
    assert method.processor.sharpness.calls == 3 and method.updates == 3
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = cosine_schedule(optimizer, warmup_steps=2, total_steps=6)
    rates = []
    for _ in range(7):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.0, 0.5, 1.0, 0.5 * (1 + np.cos(np.pi / 4)), 0.5, 0.5 * (1 + np.cos(3 * np.pi / 4)),
                                   0.0])


# ------------------------------------------------------------------------------------------ resume
def test_resume_is_identical_to_an_uninterrupted_run(sd_parts, tmp_path):
    """The released recipe (PISA dropout, the jittered occlusion, flips and exposure draws, the discriminator
    head with its spectral-norm state, the adversarial term from step 1): 4 steps at once, or 2 and 2."""
    import safetensors.torch

    from lensblur.train import TrainConfig, train

    view = BokehDiffPairs(Pairs(), SIZE)

    def run(out, total, resume=False):
        method = trainer(sd_parts, "released", lr=1e-2, warmup_steps=1, adv_start=1, total_steps=4)
        train(method, view, out, TrainConfig(steps=total, checkpoint_every=2, log_every=1, progress=False),
              resume=resume)
        return method

    whole = run(tmp_path / "whole", 4)
    run(tmp_path / "parts", 2)
    resumed = run(tmp_path / "parts", 4, resume=True)
    a = safetensors.torch.load_file(str(tmp_path / "whole" / "last.safetensors"))
    b = safetensors.torch.load_file(str(tmp_path / "parts" / "last.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.processor.sharpness.calls == whole.processor.sharpness.calls == 4
    assert (resumed.updates, resumed.forwards) == (whole.updates, whole.forwards) == (4, 4)
    state = torch.load(tmp_path / "parts" / "step-00000004" / "state.pt", weights_only=True)
    assert state["method"]["pisa"]["sharpness"]["calls"] == 4

    def lines(folder):
        return {r["step"]: r for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())}

    whole_log, parts_log = lines(tmp_path / "whole"), lines(tmp_path / "parts")
    assert whole_log == parts_log and "adv" in whole_log[4] and "adv" not in whole_log[1]


# ------------------------------------------------------------------------------------------ data and conditioning
class Ramp(Pairs):
    """One pair whose disparity is different at every pixel (so a window locates itself), target != image."""

    def __getitem__(self, index):
        item = super().__getitem__(index)
        item["disparity"] = (torch.arange(SIZE * SIZE, dtype=torch.float32).view(1, SIZE, SIZE) + 1) / (SIZE * SIZE + 1)
        item["target"] = item["target"] * 0.7
        return item


def _locate(item, full):
    """The flip and window of ``full`` that ``item``'s disparity is."""
    for flip in ([], [-1], [-2], [-1, -2]):
        d = full["disparity"].flip(flip) if flip else full["disparity"]
        for y in range(SIZE - 7):
            for x in range(SIZE - 7):
                if torch.equal(d[..., y:y + 8, x:x + 8], item["disparity"]):
                    return flip, y, x
    raise AssertionError("the disparity window is not a flipped crop of the item's")


def test_the_training_view_crops_flips_and_rescales_consistently():
    """Image, target and disparity share one window and flip; image and target share one exposure factor
    in [0.7, 1.1] on sRGB values, applied to 3 items in 4; the CoC is the item's lens on the window."""
    from lensblur.color import linear_to_srgb

    dataset = Ramp()
    full = dataset[1]
    view = BokehDiffPairs(dataset, 8)
    scaled, flips = 0, set()
    for seed in range(40):
        torch.manual_seed(seed)
        item = view[1]
        assert item["image"].shape == (3, 8, 8) and item["disparity"].shape == (1, 8, 8)
        assert torch.allclose(item["coc"], 10.0 * (item["disparity"] - 0.9))
        assert 2 / 3 <= float(item["coc_ratio"]) <= 1 and float(item["focus_disparity"]) == pytest.approx(0.9)
        flip, y, x = _locate(item, full)
        flips.add(tuple(flip))
        window = {k: (full[k].flip(flip) if flip else full[k])[..., y:y + 8, x:x + 8] for k in ("image", "target")}
        shown, source = linear_to_srgb(item["image"]), linear_to_srgb(window["image"])
        usable = (source > 0.05) & (shown < 0.999)          # neither black nor clipped
        s = float((shown[usable] / source[usable]).median())
        for key in ("image", "target"):
            expected = (linear_to_srgb(window[key]) * s).clamp(0, 1)
            assert torch.allclose(linear_to_srgb(item[key]), expected, atol=1e-4), key
        assert 0.7 - 1e-4 <= s <= 1.1 + 1e-4
        scaled += abs(s - 1) > 1e-4
    assert 22 <= scaled <= 37 and len(flips) == 4          # 3 in 4 rescaled; every flip seen
    assert [exposure_scale(u) for u in (0.0, 0.3, 0.4, 0.999)] == pytest.approx([0.7, 1.0, 1.1, 1.1])
    with pytest.raises(InputError, match="crop: expected a side in pixels, a multiple of 8"):
        BokehDiffPairs(dataset, 12)

    class NoLens(Pairs):
        def __getitem__(self, index):
            item = super().__getitem__(index)
            item["meta"] = {"id": "x"}
            return item

    with pytest.raises(InputError, match="pairs with a lens"):
        BokehDiffPairs(NoLens(), 8)[0]
    coc = BokehDiffPairs(NoLens(), 8, lens={"blur": 4.0, "focus_disparity": 0.5})[0]["coc"]
    assert float(coc.abs().max()) == pytest.approx(4.0 * 0.4)


def test_the_released_coc_under_conditioning():
    """Sheet 3.5 / test 24: with BokehDiff's blur K = 12 times / max(d_f, 1 - d_f), PISA's CoC channel (radius
    / 10) is 1.2 ratio times |d - d_f| under the release's conditioning, and the exact CoC otherwise."""
    times, ratio, focus = 3.0, 0.75, 0.2
    blur = 12 * times / max(focus, 1 - focus)
    d = torch.tensor([0.0, 0.1, 0.5, 1.0]).view(1, 1, 1, 4)
    batch = {"coc": blur * (d - focus), "focus_disparity": torch.tensor([[focus]]),
             "coc_ratio": torch.tensor([[ratio]])}
    assert torch.allclose(pisa_coc(batch, "exact"), blur * (d - focus))
    assert torch.allclose(pisa_coc(batch, "release").abs() / 10, 1.2 * ratio * times * (d - focus).abs())


# ------------------------------------------------------------------------------------------ checkpoints render
def test_a_released_checkpoint_renders_as_the_trainer_does(sd_parts, tmp_path):
    """What ``--lora RUN`` loads (the run's UNet LoRA under peft's names, the encoder's fine-tuned tensors,
    the recorded PISA settings) on a fresh copy of the base gives the trainer's own rendering."""
    import safetensors.torch

    from lensblur.bokehdiff import BokehDiffPipeline
    from lensblur.bokehdiff.loading import apply_unet_lora, apply_vae_encoder, run_unet_lora, run_vae_encoder
    from lensblur.bokehdiff.pisa import PISAProcessor
    from lensblur.train import TrainConfig, train

    method = trainer(sd_parts, "released", adversarial=False, lr=1e-2, warmup_steps=0, distance="pixels")
    train(method, BokehDiffPairs(Pairs(), SIZE), tmp_path / "run", TrainConfig(steps=2, progress=False))
    tensors = safetensors.torch.load_file(str(tmp_path / "run" / "last.safetensors"))
    assert any(k.startswith("unet.") and ".lora_B." in k and v.abs().max() > 0 for k, v in tensors.items())
    image, disparity = Pairs()[0]["image"][None], Pairs()[0]["disparity"][None]
    lens = Lens(focus_disparity=0.9, blur=10.0)
    expected = method.predict(image, disparity, lens)
    fresh = sd_pipe(sd_parts)
    before = BokehDiffPipeline(fresh, processor=PISAProcessor(distance="pixels"))(image, disparity, lens,
                                                                                    output_type="pt").images
    apply_unet_lora(fresh, run_unet_lora(tensors), "run")
    apply_vae_encoder(fresh.vae, run_vae_encoder(tensors, fresh.vae), "run")
    got = BokehDiffPipeline(fresh, processor=PISAProcessor(distance="pixels"))(image, disparity, lens,
                                                                                 output_type="pt").images
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(before, expected, atol=1e-3)       # the training did change the rendering


# ------------------------------------------------------------------------------------------ the command line
def test_cli_train_then_render_and_eval_with_the_run(release, tmp_path, capsys, monkeypatch):
    """``lensblur train bokehdiff`` (paper recipe: down-block LoRA and the encoder's LoRA, merged on loading)
    on a tiny saved SDXL base and lensblur synth pairs, then ``render --lora RUN`` equals the trained method's
    own rendering; ``eval`` passes the same flags to the method (its checks name them); a run whose base moved
    says where it was."""
    import safetensors.torch
    from PIL import Image

    from lensblur import cli
    from lensblur.baselines.trained import load_trained
    from lensblur.io import read_disparity, read_image

    data, run = tmp_path / "synth", tmp_path / "run"
    assert cli.main(["synth", "-o", str(data), "-n", "2", "--size", "32x32", "--samples", "16", "-q",
                     "--preset", "bokehdiff"]) == 0
    capsys.readouterr()
    argv = ["train", "bokehdiff", "--dataset", "synth", "--root", str(data), "--diffusion-model", str(release.base),
            "-o", str(run), "--steps", "2", "--crop", "32", "--recipe", "paper", "--no-lpips", "--discriminator",
            "none", "--lr", "1e-2", "--format", "json", "-q"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["hardness"] == 5.0       # 3 + the 2 PISA calls of step 1
    recorded = json.loads((run / "run.json").read_text())["method_config"]
    assert recorded["base_model"] == str(release.base.resolve()) and recorded["recipe"] == "paper"
    tensors = safetensors.torch.load_file(str(run / "last.safetensors"))
    assert {k.split(".")[0] for k in tensors} == {"unet", "vae"}
    assert all(k.startswith("unet.down_blocks.") for k in tensors if k.startswith("unet."))

    from lensblur.bokehdiff.loading import run_pipeline_options

    options = run_pipeline_options(run)          # a render uses the PISA the run was trained with
    assert options["processor"].occlusion == "paper" and options["processor"].sharpness.hardness == 1e7
    assert options["layers"] == ("down_blocks.1.attentions.0",) and run_pipeline_options(release.lora) == {}

    photo, disparity = data / "pairs" / "000000" / "image.png", data / "pairs" / "000000" / "disparity.png"
    out = tmp_path / "out.png"
    render = ["render", str(photo), "--disparity", str(disparity), "--focus-disparity", "0.5", "--blur", "20",
              "--method", "bokehdiff", "--device", "cpu"]
    assert cli.main([*render, "--lora", str(run), "-o", str(out)]) == 0, capsys.readouterr().err
    method = load_trained(run / "last.safetensors", expected="bokehdiff")
    image = read_image(photo)
    with torch.no_grad():
        own = method.predict(torch.from_numpy(np.moveaxis(image, -1, 0))[None],
                             torch.from_numpy(read_disparity(disparity))[None, None],
                             Lens(focus_disparity=0.5, blur=20.0))[0]
    own8 = np.round(np.asarray(Image.fromarray(_srgb8(own))).astype(float))
    got8 = np.asarray(Image.open(out).convert("RGB")).astype(float)
    assert np.abs(own8 - got8).max() <= 1

    monkeypatch.setattr(cli, "COMMANDS", {"render": "render", "eval": "eval"})
    assert cli.main(["eval", "--method", "bokehdiff", "--lora", str(run), "--device", "cpu", "--dtype", "float16",
                     "--dataset", "synth", "--root", str(data), "-o", str(tmp_path / "results")]) == 1
    assert "--dtype: expected float32 or bfloat16 on the CPU" in capsys.readouterr().err

    moved = tmp_path / "moved.safetensors"
    with safetensors.safe_open(str(run / "last.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
    config = json.loads(meta["config"])
    config["base_model"] = str(tmp_path / "gone")
    safetensors.torch.save_file(tensors, str(moved), metadata={**meta, "config": json.dumps(config)})
    assert cli.main([*render, "--lora", str(moved), "-o", str(tmp_path / "o2.png")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "gone") in err and "--diffusion-model PATH" in err


def _srgb8(linear: torch.Tensor) -> np.ndarray:
    from lensblur._convert import to_srgb8

    return to_srgb8(linear.permute(1, 2, 0).cpu().numpy())


def test_cli_train_refuses_a_missing_base_before_writing(tmp_path, capsys):
    from lensblur import cli

    data = tmp_path / "synth"
    assert cli.main(["synth", "-o", str(data), "-n", "1", "--size", "32x32", "--samples", "16", "-q"]) == 0
    code = cli.main(["train", "bokehdiff", "--dataset", "synth", "--root", str(data), "--diffusion-model",
                     str(tmp_path / "nowhere"), "-o", str(tmp_path / "run"), "--no-lpips", "--discriminator", "none",
                     "--crop", "32", "-q"])
    assert code == 1
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(ModelNotFoundError):
        BokehDiffTrainer(BokehDiffTrainConfig(base_model=str(tmp_path / "nowhere"), lpips_weight=0.0,
                                              discriminator="none"))


def test_a_crop_other_than_the_tile_warns_that_the_release_distance_changes_the_coc_unit(sd_parts, caplog):
    batch = batch_of(BokehDiffPairs(Pairs(), SIZE, flips=False, exposure=False))
    messages = {}
    for distance in ("release", "pixels"):
        method = trainer(sd_parts, "released", adversarial=False, distance=distance)
        tile = method.pipeline.tile_size * method.pipeline.vae_scale_factor
        caplog.clear()
        with caplog.at_level("WARNING", logger="lensblur.bokehdiff.training"):
            steps(method, batch, 2)
        messages[distance] = [r.getMessage() for r in caplog.records if "CoC unit" in r.getMessage()]
    assert tile != SIZE and messages["pixels"] == []
    assert len(messages["release"]) == 1                                # once per run
    assert f"{SIZE / tile:.3g}x the radius" in messages["release"][0]
