"""Does BokehDiff's design learn on this CPU? A small UNet with PISA, trained from scratch with the one-step
formula on 64 x 64 crops of `lensblur synth` pairs, scored on held-out pairs against identity, beside the same
run with PISA replaced by plain attention (the paper's "w/o CoC" ablation in miniature: without PISA the
network has no depth at all, since depth reaches BokehDiff only through PISA).

What is the same as BokehDiff (lensblur.bokehdiff):

- the one-step formula at t = 499 on SD's noise schedule: ``z0 = (z - sqrt(1 - abar) eps) / sqrt(abar)``, with
  the input taken as z_t and no noise added;
- a diffusers ``UNet2DConditionModel`` with PISA (:class:`~lensblur.bokehdiff.pisa.PISAProcessor`) on the
  self-attention of ``down_blocks.1.attentions.0`` (``--pisa-layers all``: also the up block's), 4 x 5
  occlusion samples in training and 5 x 7 when scoring, a fixed context standing for the fixed prompt;
- the data's make-up: `lensblur synth --preset bokehdiff` frames, trained on random crops (the release: 512-px
  crops of 768-px renders; here 64-px crops of 256-px frames, so that the preset's blur, scaled to the frame,
  reaches 1 to 32 px and is visible in a crop);
- the training view (:class:`~lensblur.bokehdiff.pairs.BokehDiffPairs`: flips and exposure rescaling), the
  pixel losses (:func:`~lensblur.bokehdiff.training.pixel_losses`: MSE and the edge loss), AdamW (0.9, 0.95),
  weight decay 1e-2, the warm cosine schedule, gradient clipping at 1, and the shared loop.

What is made to fit minutes on a CPU, and why:

- from scratch, every weight trained: there is no pretrained model here (no LoRA, no VAE);
- no VAE: the "latent" is the image's 2 x 2 pixel blocks (``pixel_unshuffle``, 12 x 32 x 32), lossless, so
  nothing has to learn to encode;
- an identity start: the noise prediction is ``eps = c z + UNet(z)`` with ``c = (1 - sqrt(abar)) /
  sqrt(1 - abar)`` and the UNet's last convolution zeroed, so that the untrained model returns its input
  exactly (the one-step formula maps ``eps = c z`` to ``z0 = z``; ``eps = 0`` would give ``z / sqrt(abar)``,
  1.9 z) and training learns the blur as a residual, as a LoRA starts from its base;
- PISA measures distances in pixels (``distance="pixels"``: its disk is the CoC's), since the release's
  51.2-units-per-side scale is calibrated on 512-px tiles; no PISA dropout;
- the soft CoC edge at the scoring hardness (1e7) from the first step (``--hardness inference``, default):
  the release's counter (``3 + calls``, ``--hardness release``) is a curriculum over 120 000 steps that ends at
  ln H = 12.4; a run of a few hundred steps ends near ln H = 6, where an in-focus source (its CoC below the
  4-px token) still gives half its energy to its neighbours, against 2.5 % at 1e7, so the network would be
  trained on one mask and scored on another (``--hardness release`` also scores PISA at its last hardness);
- losses: MSE + the release's edge loss; no LPIPS and no adversarial term (their VGG-16 and ConvNeXt weights
  are not on this machine);
- the held-out frames are scored on their non-overlapping 64-px windows (16 per 256-px frame), and the mean
  PSNR is also given apart for the windows whose largest CoC reaches a token (4 px) and for the others, where
  the right answer is nearly the input.

SDXL's time ids (``--time-ids``): the UNet also gets SDXL's added conditioning (``addition_embed_type="text_time"``,
:data:`TIME_EMBED_DIM` sinusoidal features per id, a fixed pooled embedding standing for the fixed prompt's), and
each training crop gets the release's time ids: original size (the frame's side), the crop's top-left in pixels
(of the crop before its flips, as the release's loader records it) and target size (the crop's side). The crops
themselves are the same draws as without ``--time-ids``. The held-out windows get their own ids (their origin in
the frame). ``bench/bokehdiff_tiling.py --crop-coords`` then asks what the release's latent-unit crop ids at
inference cost such a model.

Variants (``--variants``): ``pisa``; ``plain`` (every attention layer plain, the disparity and CoC unused);
``no-coc`` (PISA without its CoC mask: softmax over queries and occlusion only, the paper's exact "w/o CoC").

    python bench/train_bokehdiff.py --variants pisa,plain --steps 400 --threads 1     # docs/bokehdiff.md's table
    python bench/train_bokehdiff.py --variants pisa,plain,no-coc --steps 2000 --threads 2   # the next measurement
    python bench/train_bokehdiff.py --variants pisa,plain --pisa-layers all         # PISA on every layer
    python bench/train_bokehdiff.py --pairs 24 --held-out 4 --size 64 --steps 3 --width 8   # a check that it runs
    python bench/train_bokehdiff.py --variants pisa --steps 2000 --lr 3e-3 --pisa-layers all --time-ids \\
        --save /work/cache/bd-miniature/ckpt-timeids          # for bokehdiff_tiling.py --crop-coords

CPU per training step of 8 at width 16 on this machine (process time, one thread): about 0.17 s plain, 0.20 s
with PISA on the release's layer and 0.26 s on all three (docs/bokehdiff.md, "PISA's training step"); the 400
256-px pairs take about 9 CPU minutes to synthesise the first time (kept in a cache folder, or ``--data``) and
are decoded once into memory. ``--seed`` sets the networks' start, crops and jitter, ``--data-seed`` the pairs;
``--save DIR`` keeps each trained variant for ``bench/bokehdiff_tiling.py``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TIMESTEP = 499
VARIANTS = ("pisa", "plain", "no-coc")
LAYERS = {"release": ("down_blocks.1.attentions.0",), "all": ("down_blocks.1.attentions.0", "up_blocks.0.attentions")}
"""Where PISA runs: the release's block, or every self-attention layer of the small UNet (all at 1/4 of the
crop: 16 x 16 tokens of 4 px for 64-px crops)."""
TIME_EMBED_DIM = 16
"""Sinusoidal features per SDXL time id (SDXL: 256), with ``--time-ids``."""
POOLED_DIM = 32
"""The fixed pooled text embedding's size, with ``--time-ids`` (SDXL: 1280)."""


def time_ids(frame: tuple[int, int], top_left: tuple[int, int], crop: tuple[int, int]) -> list[float]:
    """The release's training time ids of a crop: original size ``frame`` ``(H, W)``, the crop's ``top_left``
    ``(y, x)`` in pixels, target size ``crop`` ``(h, w)``."""
    return [float(v) for v in (*frame, *top_left, *crop)]


class PlacedFrames(torch.utils.data.Dataset):
    """Each item with ``where``, a ``(2, H, W)`` map of its pixels' ``(y, x)``, which random crops cut with the
    rest, so that a crop's top-left can be read from it afterwards (the crops' draws are unchanged)."""

    def __init__(self, dataset):
        self.dataset, self.grids = dataset, {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        h, w = item["image"].shape[-2:]
        if (h, w) not in self.grids:
            self.grids[h, w] = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"))
        item["where"] = self.grids[h, w]
        return item


class _ReadCorner:
    """Random crops of :class:`PlacedFrames` items with the crop's top-left moved into ``meta``."""

    def __init__(self, crops):
        self.crops = crops

    def __getitem__(self, index: int) -> dict:
        item = self.crops[index]
        where = item.pop("where")
        item["meta"] = {**item.get("meta", {}), "crop_top_left": (int(where[0, 0, 0]), int(where[1, 0, 0]))}
        return item


class TimeIdPairs(torch.utils.data.Dataset):
    """:class:`~lensblur.bokehdiff.pairs.BokehDiffPairs` of ``dataset`` with each item's release time ids
    (:func:`time_ids`) as ``time_ids``, ``(6,)``."""

    def __init__(self, dataset, crop: int):
        from lensblur.bokehdiff.pairs import BokehDiffPairs

        self.pairs = BokehDiffPairs(PlacedFrames(dataset), crop)
        self.pairs.crops = _ReadCorner(self.pairs.crops)
        self.dataset, self.crop = dataset, crop

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        item = self.pairs[index]
        frame = tuple(self.dataset[index]["image"].shape[-2:])
        item["time_ids"] = torch.tensor(time_ids(frame, item["meta"]["crop_top_left"], (self.crop, self.crop)))
        return item


def make_pairs(folder: Path | None, pairs: int, size: int, seed: int, held_out: int, preset: str, samples: int):
    """The synthetic set in ``folder`` (default: a cache folder named by its settings), made or completed,
    split into (training, held-out) subsets."""
    from torch.utils.data import Subset

    from lensblur.data import SynthDataset
    from lensblur.synth.dataset import synthesize

    folder = folder or Path(tempfile.gettempdir()) / "lensblur-bench" / f"synth-{preset}-{size}px-{pairs}-seed{seed}"
    start = time.perf_counter()
    synthesize(folder, pairs, size=(size, size), seed=seed, samples=samples, preset=preset, progress=False)
    print(f"data: {pairs} pairs at {size}x{size} ({preset} preset) in {folder} ({time.perf_counter() - start:.0f} s)")
    dataset = InMemory(SynthDataset(folder))
    n_train = len(dataset) - held_out
    return Subset(dataset, range(n_train)), Subset(dataset, range(n_train, len(dataset)))


class InMemory(torch.utils.data.Dataset):
    """A dataset's items decoded once and kept (the PNG decoding of a 256-px pair costs about as much CPU as a
    training step of the plain variant)."""

    def __init__(self, dataset):
        self.dataset, self.items = dataset, {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        if index not in self.items:
            self.items[index] = self.dataset[index]
        return dict(self.items[index])


class OneStepRenderer(nn.Module):
    """The small one-step renderer (see the module doc).

    Args:
        variant: ``"pisa"``, ``"plain"`` or ``"no-coc"``.
        width: the UNet's first block width (the second is twice it).
        seed: the initialisation's seed.
        hardness: PISA's soft CoC edge in training, ``"release"`` (its counter) or ``"inference"`` (1e7).
        layers: where PISA runs, a key of :data:`LAYERS`.
        time_ids: give the UNet SDXL's added conditioning (a fixed pooled embedding and six time ids).
    """

    def __init__(self, variant: str, width: int = 32, seed: int = 0, hardness: str = "release",
                 layers: str = "release", time_ids: bool = False):
        super().__init__()
        from diffusers import DDPMScheduler, UNet2DConditionModel

        from lensblur.bokehdiff.pisa import PISAProcessor, Sharpness, install_pisa

        torch.manual_seed(seed)
        heads = max(1, width // 8)
        added = {"addition_embed_type": "text_time", "addition_time_embed_dim": TIME_EMBED_DIM,
                 "projection_class_embeddings_input_dim": POOLED_DIM + 6 * TIME_EMBED_DIM} if time_ids else {}
        self.unet = UNet2DConditionModel(
            sample_size=32, in_channels=12, out_channels=12, block_out_channels=(width, 2 * width),
            layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
            attention_head_dim=(heads, 2 * heads), norm_num_groups=min(8, width), **added)
        nn.init.zeros_(self.unet.conv_out.weight)
        nn.init.zeros_(self.unet.conv_out.bias)
        self.register_buffer("context", torch.randn(1, 1, 32))
        self.time_ids = time_ids
        if time_ids:
            self.register_buffer("pooled", torch.randn(1, POOLED_DIM))
        abar = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear").alphas_cumprod[TIMESTEP]
        self.a, self.s = float(abar.sqrt()), float((1 - abar).sqrt())
        self.c = (1 - self.a) / self.s
        self.processor = None
        if variant == "plain":
            install_pisa(self.unet, layers=())
        else:
            self.processor = PISAProcessor(distance="pixels", segments=5, supersamples=4, coc_mask=variant == "pisa",
                                           sharpness=Sharpness.training() if hardness == "release"
                                           else Sharpness.inference())
            install_pisa(self.unet, self.processor, LAYERS[layers])

    def forward(self, image: torch.Tensor, disparity: torch.Tensor, coc: torch.Tensor,
                generator: torch.Generator | None = None, time_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 3, 64, 64)`` values in [-1, 1], disparity and signed CoC ``(B, 1, 64, 64)`` (and, with time ids,
        ``time_ids`` ``(B, 6)``) -> the rendering."""
        z = F.pixel_unshuffle(image, 2)
        return self.one_step(z, self.noise(z, disparity, coc, generator, time_ids))

    def noise(self, z: torch.Tensor, disparity: torch.Tensor, coc: torch.Tensor,
              generator: torch.Generator | None = None, time_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The noise prediction ``eps = c z + UNet(z)`` for the latent ``z`` (a whole crop or one tile), with the
        disparity and signed CoC at its pixels and, for a model with time ids, SDXL's ``time_ids``: ``(6,)`` or
        ``(B, 6)``, original size, crop top-left, target size (ignored by a model without them)."""
        cross = {"disparity": disparity, "coc": coc, "generator": generator}
        added = None
        if self.time_ids:
            if time_ids is None:
                raise ValueError("this renderer was built with time ids: pass time_ids")
            ids = torch.as_tensor(time_ids, dtype=z.dtype, device=z.device).reshape(-1, 6).expand(len(z), -1)
            added = {"text_embeds": self.pooled.expand(len(z), -1), "time_ids": ids}
        residual = self.unet(z, TIMESTEP, encoder_hidden_states=self.context.expand(len(z), -1, -1),
                             cross_attention_kwargs=cross, added_cond_kwargs=added).sample
        return self.c * z + residual

    def one_step(self, z: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The one-step formula ``(z - sqrt(1 - abar) eps) / sqrt(abar)``, back to pixels in [-1, 1]."""
        return F.pixel_shuffle((z - self.s * eps) / self.a, 2)


class Scratch:
    """The renderer as a method of the shared loop (one optimiser, the pixel losses)."""

    name = "bokehdiff-scratch"

    def __init__(self, variant: str, *, width: int, steps: int, lr: float, seed: int, hardness: str = "release",
                 layers: str = "release", time_ids: bool = False):
        from lensblur.bokehdiff.training import BokehDiffTrainConfig, cosine_schedule

        self.variant, self.seed = variant, seed
        self.model = OneStepRenderer(variant, width, seed, hardness, layers, time_ids)
        self.settings = BokehDiffTrainConfig(lpips_weight=0.0, discriminator="none", adv_weight=0.0,
                                             edge_loss="difference")
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=1e-2)
        self.sched = cosine_schedule(self.opt, 20, steps)
        self.forwards = 0
        self.steps, self.started = steps, time.perf_counter()

    def config(self):
        return {"variant": self.variant, "seed": self.seed}

    def modules(self):
        return {"model": self.model}

    def optimizers(self):
        return {"model": self.opt}

    def schedulers(self):
        return {"model": self.sched}

    def prepare(self, accelerator):
        self.model.to(accelerator.device)

    def training_step(self, batch, accelerator):
        from lensblur.bokehdiff.losses import weighted_sum
        from lensblur.bokehdiff.training import loss_weights, pixel_losses
        from lensblur.color import linear_to_srgb

        self.model.train()
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.forwards)
        aif, target = (linear_to_srgb(batch[k]) * 2 - 1 for k in ("image", "target"))
        pred = self.model(aif, batch["disparity"], batch["coc"], generator, batch.get("time_ids"))
        terms = pixel_losses(pred, target, aif, settings=self.settings)
        loss = weighted_sum(terms, loss_weights(self.settings))
        self.opt.zero_grad()
        accelerator.backward(loss)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.forwards += 1
        if self.forwards % max(1, self.steps // 20) == 0:
            elapsed = time.perf_counter() - self.started
            print(f"  {self.variant} step {self.forwards}/{self.steps}: loss {float(loss.detach()):.4f}, {elapsed:.0f} s "
                  f"({elapsed / self.forwards:.2f} s per step)", flush=True)
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    def predict(self, image, disparity, coc, hardness: float | None = None, time_ids: torch.Tensor | None = None):
        """Linear RGB in and out, at PISA's inference settings (5 x 7 samples, no counting) with the soft CoC
        edge's ``hardness`` (None: the release's 1e7); ``time_ids`` ``(B, 6)`` for a model with time ids."""
        from lensblur.color import linear_to_srgb, srgb_to_linear

        with self.scoring(hardness), torch.no_grad():
            out = self.model(linear_to_srgb(image) * 2 - 1, disparity, coc, torch.Generator().manual_seed(0),
                             time_ids)
        return srgb_to_linear((out.clamp(-1, 1) + 1) / 2)

    @contextmanager
    def scoring(self, hardness: float | None = None):
        """The model in eval mode with PISA at its inference settings (5 x 7 samples, no counting, the soft CoC
        edge's ``hardness``, None: the release's 1e7), restored afterwards."""
        from lensblur.bokehdiff.pisa import Sharpness

        p = self.model.processor
        saved = None if p is None else (p.sharpness, p.segments, p.supersamples)
        if p is not None:
            p.sharpness = Sharpness.inference() if hardness is None else Sharpness(hardness)
            p.segments, p.supersamples = 7, 5
        self.model.eval()
        try:
            yield
        finally:
            if p is not None:
                p.sharpness, p.segments, p.supersamples = saved


def save_renderer(method: Scratch, path: Path, settings: dict) -> None:
    """The trained renderer's weights and the settings that rebuild it (:func:`load_renderer`), as safetensors."""
    import json

    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in method.model.state_dict().items()}
    save_file(state, str(path), metadata={"settings": json.dumps(settings)})


def load_renderer(path: Path) -> Scratch:
    """A renderer saved by :func:`save_renderer`, ready for :meth:`Scratch.predict`; its ``settings`` the
    saved ones."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as fh:
        settings = json.loads(fh.metadata()["settings"])
    method = Scratch(settings["variant"], width=settings["width"], steps=1, lr=1e-3, seed=settings["seed"],
                     hardness=settings["hardness"], layers=settings["layers"],
                     time_ids=settings.get("time_ids", False))
    method.model.load_state_dict(load_file(str(path)))
    method.settings = settings
    return method


def windows(item: dict, crop: int):
    """The held-out frame ``item`` cut into non-overlapping ``crop x crop`` windows (the training crop's size):
    ``image``, ``target``, ``disparity`` and the pair's signed CoC ``coc``, each ``(n, C, crop, crop)``, and each
    window's training time ids (:func:`time_ids`) ``time_ids``, ``(n, 6)``."""
    lens = item["meta"]["lens"]
    disparity = item["disparity"]
    maps = {"image": item["image"], "target": item["target"], "disparity": disparity,
            "coc": lens["blur"] * (disparity - lens["focus_disparity"])}
    h, w = disparity.shape[-2:]
    origins = [(y, x) for y in range(0, h - crop + 1, crop) for x in range(0, w - crop + 1, crop)]
    parts = {k: torch.stack([v[:, y: y + crop, x: x + crop] for y, x in origins]) for k, v in maps.items()}
    parts["time_ids"] = torch.tensor([time_ids((h, w), origin, (crop, crop)) for origin in origins])
    return parts


BLURRED_PX = 4.0
"""A window counts as blurred when its largest CoC radius reaches this (one PISA token of the 64-px crop)."""


def scores(held_out, predictors: dict, crop: int) -> dict[str, dict[str, float]]:
    """Mean PSNR and SSIM (8-bit sRGB, as lensblur eval scores) of each ``name -> (image, disparity, coc, *,
    time_ids) -> rendering`` on the held-out pairs' ``crop``-px windows, each rendered with its pair's lens; and the mean
    PSNR over the windows whose largest CoC radius is at least :data:`BLURRED_PX` (``psnr_blurred``) and over
    the others (``psnr_sharp``)."""
    from lensblur.eval.runner import display_8bit
    from lensblur.metrics import psnr, ssim

    rows = {name: ([], []) for name in predictors}
    blurred = []
    for i in range(len(held_out)):
        parts = windows(held_out[i], crop)
        blurred += (parts["coc"].abs().flatten(1).amax(1) >= BLURRED_PX).tolist()
        for name, predict in predictors.items():
            out = predict(parts["image"], parts["disparity"], parts["coc"], time_ids=parts["time_ids"])
            for j in range(len(out)):
                target = display_8bit(parts["target"][j].permute(1, 2, 0))
                shown = display_8bit(out[j].permute(1, 2, 0))
                rows[name][0].append(psnr(target, shown, data_range=1.0))
                rows[name][1].append(ssim(target, shown, data_range=1.0))
    mask = np.array(blurred, bool)
    return {name: {"psnr": float(np.mean(p)), "ssim": float(np.mean(s)), "windows": len(p),
                   "psnr_blurred": float(np.mean(np.array(p)[mask])) if mask.any() else math.nan,
                   "psnr_sharp": float(np.mean(np.array(p)[~mask])) if (~mask).any() else math.nan,
                   "blurred": int(mask.sum())}
            for name, (p, s) in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder (made or completed; default: a cache folder)")
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--size", type=int, default=256, help="the synthesised frames' side in pixels")
    parser.add_argument("--crop", type=int, default=64, help="the training and scoring windows' side in pixels")
    parser.add_argument("--preset", default="bokehdiff", choices=("bokehdiff", "lensblur"),
                        help="the synth preset (bokehdiff: largest CoC 1 to 32 px at 256 px)")
    parser.add_argument("--samples", type=int, default=256, help="aperture samples per synthesised pair")
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps per variant")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--width", type=int, default=16, help="the UNet's first width (16: 0.26 M parameters)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--variants", default="pisa,plain", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--hardness", default="inference", choices=("release", "inference"),
                        help="PISA's soft CoC edge in training: fixed at the scoring's 1e7, or the release's counter "
                             "(3 + calls)")
    parser.add_argument("--pisa-layers", default="release", choices=tuple(LAYERS),
                        help="release: the self-attention of down_blocks.1.attentions.0; all: every self-attention")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the networks' initialisation, crops and jitter")
    parser.add_argument("--data-seed", type=int, default=0, help="the synthetic set's seed (kept apart from --seed "
                                                                  "so that seeds are compared on the same pairs)")
    parser.add_argument("--time-ids", action="store_true",
                        help="give the UNet SDXL's added conditioning, trained with the release's time ids (the "
                             "frame's size, the crop's top-left in pixels, the crop's size)")
    parser.add_argument("--save", type=Path, help="folder for each trained variant's weights "
                                                  "(VARIANT-LAYERS-seedN.safetensors)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")

    from lensblur.bokehdiff.pairs import BokehDiffPairs
    from lensblur.train import TrainConfig, train

    training, held_out = make_pairs(args.data, args.pairs, args.size, args.data_seed, args.held_out, args.preset,
                                    args.samples)
    predictors = {"identity": lambda image, disparity, coc, time_ids=None: image}
    report = []
    for variant in variants:
        method = Scratch(variant, width=args.width, steps=args.steps, lr=args.lr, seed=args.seed,
                         hardness=args.hardness, layers=args.pisa_layers, time_ids=args.time_ids)
        count = sum(p.numel() for p in method.model.parameters())
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            pairs = TimeIdPairs(training, args.crop) if args.time_ids else BokehDiffPairs(training, args.crop)
            result = train(method, pairs, Path(tmp) / "run",
                           TrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                       checkpoint_every=args.steps, log_every=max(1, args.steps // 10),
                                       progress=False))
        seconds = time.perf_counter() - start
        hardness = method.model.processor.sharpness.hardness if method.model.processor is not None else math.nan
        report.append(f"{variant}: {count / 1e6:.2f} M parameters, {args.steps} steps of {args.batch_size} in "
                      f"{seconds:.0f} s, last loss {result.losses['loss']:.4f} (MSE {result.losses['mse']:.4f}), "
                      f"training hardness at the end {hardness:.0f}")
        predictors[variant] = method.predict
        if args.save is not None:
            tag = "-timeids" if args.time_ids else ""
            path = args.save / f"{variant}-{args.pisa_layers}{tag}-seed{args.seed}.safetensors"
            save_renderer(method, path, {"variant": variant, "width": args.width, "seed": args.seed,
                                         "hardness": args.hardness, "layers": args.pisa_layers, "steps": args.steps,
                                         "lr": args.lr, "crop": args.crop, "time_ids": args.time_ids})
            print(f"saved {path}")
        if method.model.processor is not None and method.model.processor.coc_mask and args.hardness == "release":
            # The same network with the CoC edge as sharp as training left it (a short run ends far below 1e7).
            predictors[f"{variant} @ hardness {hardness:.0f}"] = partial(method.predict, hardness=hardness)
    print(f"trained on {len(training)} pairs, {args.threads} threads")
    for line in report:
        print(line)
    print(f"held-out pairs: {len(held_out)}")
    table = scores(held_out, predictors, args.crop)
    first = next(iter(table.values()))
    print(f"held-out windows: {first['windows']} of {args.crop} px, {first['blurred']} with a CoC of "
          f">= {BLURRED_PX:g} px")
    print("| method | PSNR | SSIM | PSNR, blurred windows | PSNR, the others |")
    print("|---|---:|---:|---:|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['psnr_blurred']:.2f} | "
              f"{row['psnr_sharp']:.2f} |")


if __name__ == "__main__":
    main()
