"""``BokehDiffPipeline``: BokehDiff's one-step renderer on diffusers' components.

The steps, for a linear-RGB photo, its disparity and a :class:`~lensblur.lens.Lens`:

1. the photo becomes the VAE's input, sRGB values in [-1, 1] (padded to a multiple of the VAE's factor);
2. ``z = E(x).mode() * scaling_factor``: the all-in-focus latent, taken as ``z_t`` at t = 499, no noise;
3. one UNet pass on the fixed prompt, PISA on its chosen layers reading ``disparity`` and the signed CoC
   ``coc = blur * (disparity - focus_disparity)`` pixels; in overlapping 64-latent (512-px) tiles blended
   with a Gaussian window when the image is larger than two tiles (the release's rule);
4. ``z0 = (z - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` (the DDPM step from t = 499 to t = -1, without its
   1e-10 noise);
5. ``D(z0 / scaling_factor)`` back to linear RGB.

The steps are methods (:meth:`~BokehDiffPipeline.encode`, :meth:`~BokehDiffPipeline.noise_prediction`,
:meth:`~BokehDiffPipeline.one_step`, :meth:`~BokehDiffPipeline.decode`) so that training runs the same code
on its crops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._convert import as_image, check_disparity
from .._optional import require
from ..color import linear_to_srgb, srgb_to_linear
from ..errors import InputError
from ..lens import Lens
from .constants import PROMPT, TILE_ABOVE, TILE_LATENTS, TIMESTEP
from .pisa import CHUNK_BYTES, DEFAULT_LAYERS, PISAProcessor, install_pisa
from .tiles import CROP_COORDS, blend, check_crop_coords, check_margin, context_tiles, crop_top_left, time_ids

__all__ = ["CROP_COORDS", "OUTPUT_TYPES", "TILE_MODES", "BokehDiffOutput", "BokehDiffPipeline", "pisa_inputs"]

logger = logging.getLogger(__name__)

FEATURE = "BokehDiff (method bokehdiff)"
TILE_MODES = ("auto", "always", "never")
OUTPUT_TYPES = ("np", "pt", "latent")


def _diffusers():
    return require("diffusers", extra="diffusion", feature=FEATURE)


def pisa_inputs(disparity: torch.Tensor, lens: Lens) -> dict[str, torch.Tensor]:
    """PISA's conditioning: the disparity and lensblur's signed CoC in pixels, ``lens.coc(disparity)``.

    The release's CoC channel is ``|coc| / 10`` (its ``|d - d_f| * K / 10``, with ``K`` the release's blur
    at the processed resolution): lensblur's ``blur`` is the release's ``K * upsample`` and its
    ``focus_disparity`` the release's ``d_f - var``.

    Args:
        disparity: ``(B, 1, H, W)`` in [0, 1].
        lens: the focus and blur.

    Returns:
        ``{"disparity": (B, 1, H, W), "coc": (B, 1, H, W)}``, float32.
    """
    disparity = disparity.float()
    return {"disparity": disparity, "coc": lens.coc(disparity)}


@dataclass
class BokehDiffOutput:
    """What :class:`BokehDiffPipeline` returns.

    Args:
        images: ``"np"``: ``H x W x 3`` float32 linear RGB (``B x H x W x 3`` for a batch); ``"pt"``:
            ``(B, 3, H, W)`` linear RGB; ``"latent"``: ``z0``, ``(B, C, h, w)``.
        tiles: UNet tiles run (1 when untiled).
    """

    images: np.ndarray | torch.Tensor
    tiles: int


def _free_bytes(device: torch.device) -> int | None:
    """Memory available on ``device`` (None where it cannot be read)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


class BokehDiffPipeline:
    """BokehDiff's one-step lens blur on a diffusers Stable Diffusion XL (or 1.x) text-to-image pipeline.

    Build it with :meth:`from_pretrained` (base model + the released LoRA and VAE encoder, local files only),
    :meth:`from_pipe` (an existing ``StableDiffusionXLPipeline`` / ``StableDiffusionPipeline``; the modules
    are shared) or :meth:`from_components`. Then::

        pipe = BokehDiffPipeline.from_pretrained(device="cuda")
        out = pipe(image, disparity, Lens(focus_disparity=0.6, blur=30))
        write_image("out.png", out.images)

    Args:
        pipe: a diffusers ``StableDiffusionXLPipeline`` or ``StableDiffusionPipeline``.
        processor: the PISA processor (default :meth:`PISAProcessor.released_inference`).
        layers: where PISA runs (see :func:`~lensblur.bokehdiff.pisa.install_pisa`).
        timestep: the one timestep, in the scheduler's range.
        prompt: the fixed prompt.
        tile_size: the tile side in latent pixels (64: 512 px for an 8x VAE).
        crop_coords: SDXL's crop time ids of a tile, in ``"latent"`` pixels (the release) or image
            ``"pixels"`` (the unit its training used).
        tile_margin: latent pixels of each tile's window kept as context only (0, the release: each tile's
            prediction is used to its edges, where blur from beyond the edge is missing); see
            :mod:`lensblur.bokehdiff.tiles`. The window stays ``tile_size``, so memory per tile does not change;
            the number of tiles grows.
        vae_tiling: let diffusers encode and decode large images in tiles (the release does).

    Raises:
        InputError: another kind of ``pipe``, or an option out of range.
        MissingDependencyError: diffusers is not installed.
    """

    def __init__(self, pipe, *, processor: PISAProcessor | None = None, layers=DEFAULT_LAYERS,
                 timestep: int = TIMESTEP, prompt: str = PROMPT, tile_size: int = TILE_LATENTS,
                 crop_coords: str = "latent", vae_tiling: bool = True, tile_margin: int = 0):
        diffusers = _diffusers()
        kinds = (diffusers.StableDiffusionXLPipeline, diffusers.StableDiffusionPipeline)
        if not isinstance(pipe, kinds):
            raise InputError("pipe", expected="a diffusers StableDiffusionXLPipeline or StableDiffusionPipeline",
                             got=type(pipe).__name__, fix="load the base model's text-to-image pipeline")
        prediction = pipe.scheduler.config.get("prediction_type", "epsilon")
        if prediction != "epsilon":
            raise InputError("pipe", expected="a model that predicts the noise (epsilon), as SDXL and SD 1.x do",
                             got=f"a {prediction} model", fix="use an SDXL or SD 1.x base model")
        steps = len(pipe.scheduler.alphas_cumprod)
        if not (isinstance(timestep, int) and 0 <= timestep < steps):
            raise InputError("timestep", expected=f"an integer in [0, {steps})", got=timestep,
                             fix=f"timestep={TIMESTEP} (the released weights')")
        if not (isinstance(tile_size, int) and tile_size >= 8):
            raise InputError("tile_size", expected="latent pixels, an integer >= 8", got=tile_size,
                             fix=f"tile_size={TILE_LATENTS}")
        check_crop_coords(crop_coords)
        check_margin(tile_margin, tile_size)
        self.base = pipe
        self.processor = processor if processor is not None else PISAProcessor.released_inference()
        self.pisa_layers = install_pisa(pipe.unet, self.processor, layers)
        self.timestep = timestep
        self.prompt = prompt
        self.tile_size = tile_size
        self.crop_coords = crop_coords
        self.tile_margin = tile_margin
        if vae_tiling:
            pipe.vae.enable_tiling()
        else:
            pipe.vae.disable_tiling()
        self._embeddings: dict = {}

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_pipe(cls, pipe, **options) -> BokehDiffPipeline:
        """Wrap a diffusers text-to-image pipeline (its modules are shared, and PISA is installed on its UNet).

        Args:
            pipe: a ``StableDiffusionXLPipeline`` or ``StableDiffusionPipeline``.
            **options: the keywords of :class:`BokehDiffPipeline`.

        Returns:
            The pipeline.
        """
        return cls(pipe, **options)

    @classmethod
    def from_components(cls, *, unet, vae, scheduler, text_encoder, tokenizer, text_encoder_2=None,
                        tokenizer_2=None, **options) -> BokehDiffPipeline:
        """Assemble the pipeline from diffusers/transformers modules (SDXL when ``text_encoder_2`` is given).

        Args:
            unet: ``UNet2DConditionModel``; ``vae`` ``AutoencoderKL``; ``scheduler`` any diffusers scheduler
                of the model (only its ``alphas_cumprod`` is read).
            text_encoder: CLIP text model; ``tokenizer`` its tokenizer.
            text_encoder_2: SDXL's second (projection) text encoder; ``tokenizer_2`` its tokenizer.
            **options: the keywords of :class:`BokehDiffPipeline`.

        Returns:
            The pipeline.
        """
        diffusers = _diffusers()
        if text_encoder_2 is not None:
            pipe = diffusers.StableDiffusionXLPipeline(
                unet=unet, vae=vae, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer,
                text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, add_watermarker=False)
        else:
            pipe = diffusers.StableDiffusionPipeline(
                unet=unet, vae=vae, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer,
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        return cls(pipe, **options)

    @classmethod
    def from_pretrained(cls, model=None, *, lora=None, vae_encoder="auto", torch_dtype=None, device=None,
                        **options) -> BokehDiffPipeline:
        """The base model with BokehDiff's weights, from local folders or the Hugging Face cache (no downloads).

        Args:
            model: a diffusers folder, single-file checkpoint or cached Hugging Face id (default
                ``SG161222/RealVisXL_V5.0``).
            lora: the LoRA: a ``.safetensors`` file, a folder or a cached id (default ``zcx65535/bokehdiff``), or
                a ``lensblur train bokehdiff`` run (its folder or a checkpoint), whose recorded base model and
                PISA settings then become the defaults.
            vae_encoder: the partial VAE-encoder state dict (``.ckpt`` or ``.safetensors``); ``"auto"`` looks
                next to the LoRA, ``"none"`` keeps the base model's encoder.
            torch_dtype: the UNet's and text encoders' dtype (float32 by default, as released).
            device: where to run (default: CUDA if available, else the CPU).
            **options: the keywords of :class:`BokehDiffPipeline`.

        Returns:
            The pipeline, on ``device``.

        Raises:
            ModelNotFoundError: a model file is missing (where lensblur looked, how to get it).
            InputError: a LoRA or VAE encoder made for another base model, a bad device or dtype.
        """
        from .loading import load_bokehdiff, run_pipeline_options

        pipe = load_bokehdiff(model, lora=lora, vae_encoder=vae_encoder, torch_dtype=torch_dtype, device=device)
        return cls(pipe, **{**run_pipeline_options(lora), **options})

    # -- diffusers-style plumbing ---------------------------------------------------------------------------
    @property
    def is_xl(self) -> bool:
        """Whether the base model is Stable Diffusion XL."""
        return isinstance(self.base, _diffusers().StableDiffusionXLPipeline)

    @property
    def unet(self):
        return self.base.unet

    @property
    def vae(self):
        return self.base.vae

    @property
    def device(self) -> torch.device:
        """Where the UNet is."""
        return self.base.unet.device

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent pixel."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def to(self, *args, **kwargs) -> BokehDiffPipeline:
        """Move the modules, as diffusers' ``to``; returns this pipeline."""
        self.base.to(*args, **kwargs)
        self._embeddings.clear()
        return self

    # -- the steps --------------------------------------------------------------------------------------------
    @staticmethod
    def to_model_range(image: torch.Tensor) -> torch.Tensor:
        """Linear RGB ``(B, 3, H, W)`` -> the VAE's input: sRGB values in [-1, 1] (HDR clips at white)."""
        return linear_to_srgb(image.float()) * 2 - 1

    @staticmethod
    def from_model_range(pixels: torch.Tensor) -> torch.Tensor:
        """The VAE's output (sRGB values in [-1, 1]) -> linear RGB in [0, 1], float32."""
        return srgb_to_linear((pixels.float() + 1) / 2)

    def _latent_stats(self, latents: torch.Tensor):
        config = self.vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is None or std is None:
            return None, None
        shape = (1, len(mean), 1, 1)
        return (torch.tensor(mean).view(shape).to(latents), torch.tensor(std).view(shape).to(latents))

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``z = E(x).mode() * scaling_factor`` (normalised by the VAE's latent mean and std where it has them).

        Args:
            pixels: ``(B, 3, H, W)`` sRGB values in [-1, 1], H and W multiples of :attr:`vae_scale_factor`.

        Returns:
            ``(B, C, H / f, W / f)`` in the VAE's dtype.
        """
        vae = self.vae
        mode = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mode()
        mean, std = self._latent_stats(mode)
        if mean is not None:
            return (mode - mean) * vae.config.scaling_factor / std
        return mode * vae.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``D(z / scaling_factor)``: ``(B, 3, H, W)`` sRGB values, about [-1, 1], float32."""
        vae = self.vae
        latents = latents.to(vae.device, vae.dtype)
        mean, std = self._latent_stats(latents)
        latents = latents * std / vae.config.scaling_factor + mean if mean is not None \
            else latents / vae.config.scaling_factor
        return vae.decode(latents, return_dict=False)[0].float()

    def prompt_embeddings(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fixed prompt's conditioning, encoded once per device and dtype exactly as diffusers' pipeline
        encodes a prompt (SDXL: both encoders' penultimate states and the pooled projection).

        Returns:
            ``(embeds (1, 77, D), pooled (1, P) or None for SD 1.x)`` in the UNet's dtype.
        """
        key = (str(self.device), self.unet.dtype)
        if key not in self._embeddings:
            with torch.no_grad():
                if self.is_xl:
                    embeds, _, pooled, _ = self.base.encode_prompt(
                        prompt=self.prompt, device=self.device, num_images_per_prompt=1,
                        do_classifier_free_guidance=False)
                else:
                    embeds, _ = self.base.encode_prompt(self.prompt, self.device, 1, False)
                    pooled = None
            dtype = self.unet.dtype
            self._embeddings[key] = (embeds.to(dtype), None if pooled is None else pooled.to(dtype))
        return self._embeddings[key]

    def noise_prediction(self, latents: torch.Tensor, disparity: torch.Tensor, coc: torch.Tensor, *,
                         image_size: tuple[int, int] | None = None, crop: tuple[int, int] = (0, 0),
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """One UNet pass at the pipeline's timestep: ``eps`` for ``latents`` (a whole image or one tile).

        Args:
            latents: ``(B, C, h, w)``.
            disparity: ``(B, 1, h f, w f)`` at the pixels ``latents`` encode; ``coc`` the same, signed, pixels.
            image_size: SDXL's original and target size ``(H, W)`` (default the latents' size in pixels).
            crop: SDXL's crop time ids ``(top, left)`` (:func:`~lensblur.bokehdiff.tiles.crop_top_left`).
            generator: PISA's random source.

        Returns:
            ``(B, C, h, w)`` in the UNet's dtype.
        """
        batch = latents.shape[0]
        embeds, pooled = self.prompt_embeddings()
        f = self.vae_scale_factor
        kwargs = {"encoder_hidden_states": embeds.expand(batch, -1, -1)}
        if self.is_xl:
            size = tuple(image_size) if image_size is not None else (latents.shape[-2] * f, latents.shape[-1] * f)
            ids = torch.tensor([time_ids(size, crop)], device=self.device, dtype=embeds.dtype)
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled.expand(batch, -1), "time_ids": ids.expand(batch, -1)}
        device = self.device
        cross = {"disparity": disparity.to(device, torch.float32), "coc": coc.to(device, torch.float32),
                 "generator": generator}
        return self.unet(latents.to(device, self.unet.dtype), self.timestep, cross_attention_kwargs=cross,
                         return_dict=False, **kwargs)[0]

    def tiled(self, height: int, width: int, tile: str = "auto") -> bool:
        """Whether a ``height x width`` latent runs in tiles: always, never, or (``"auto"``) when it holds more
        than two tiles' area (the release's rule)."""
        if tile not in TILE_MODES:
            raise InputError("tile", expected=f"one of {', '.join(TILE_MODES)}", got=tile,
                             fix="tile=auto (512-px tiles above two tiles' area, the release's rule)")
        return tile == "always" or (tile == "auto" and height * width > TILE_ABOVE * self.tile_size ** 2)

    def tile_layout(self, height: int, width: int, tile: str = "auto") -> list[tuple[int, int, int, int]]:
        """The UNet windows of a ``height x width`` latent (one whole-image window when untiled)."""
        return [window for window, _ in self.context_layout(height, width, tile)]

    def context_layout(self, height: int, width: int, tile: str = "auto") -> list:
        """``(window, core)`` pairs of :func:`~lensblur.bokehdiff.tiles.context_tiles` for a ``height x width``
        latent at the pipeline's ``tile_size`` and ``tile_margin`` (one whole-image pair when untiled)."""
        if not self.tiled(height, width, tile):
            return [((0, 0, height, width), (0, 0, height, width))]
        return context_tiles(height, width, self.tile_size, self.tile_margin)

    def tiled_noise_prediction(self, latents: torch.Tensor, disparity: torch.Tensor, coc: torch.Tensor, *,
                               tile: str = "auto", generator: torch.Generator | None = None) -> torch.Tensor:
        """``eps`` for a whole latent: :meth:`noise_prediction` per tile, Gaussian-blended
        (:mod:`lensblur.bokehdiff.tiles`); each tile gets its crop of the conditioning (pixels = latents x f).

        Returns:
            ``(B, C, h, w)`` float32.
        """
        f = self.vae_scale_factor
        size = (latents.shape[-2] * f, latents.shape[-1] * f)
        layout = self.context_layout(latents.shape[-2], latents.shape[-1], tile)

        def predict(box):
            y, x, h, w = box
            pixels = (slice(None), slice(None), slice(y * f, (y + h) * f), slice(x * f, (x + w) * f))
            crop = crop_top_left(box, f, self.crop_coords)
            return self.noise_prediction(latents[..., y:y + h, x:x + w], disparity[pixels], coc[pixels],
                                         image_size=size, crop=crop, generator=generator)

        if not self.tiled(latents.shape[-2], latents.shape[-1], tile):
            return predict(layout[0][0]).float()
        return blend(predict, layout, tuple(latents.shape), device=self.device)

    def one_step(self, latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``z0 = (z - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` at the pipeline's timestep (float32)."""
        abar = self.base.scheduler.alphas_cumprod[self.timestep].to(torch.float32)
        return (latents.float() - (1 - abar).sqrt() * noise.float()) / abar.sqrt()

    # -- memory -------------------------------------------------------------------------------------------
    def pisa_bytes(self, latent_height: int, latent_width: int, batch: int = 1) -> int:
        """Working memory of the largest PISA layer on a ``latent_height x latent_width`` latent (or tile):
        its float32 ``(B, heads, N, N)`` logits and weights, the ``(B, 1, N, N)`` CoC mask, occlusion and
        distances, and a chunk of occlusion samples. The UNet's other activations come on top."""
        f = self.vae_scale_factor
        worst = 0
        modules = dict(self.unet.named_modules())
        for name in self.pisa_layers:
            n = int(np.prod(_layer_grid(name, latent_height * f, latent_width * f, f, self.unet)))
            heads = modules[name].heads
            worst = max(worst, (2 * heads + 3) * batch * n * n * 4 + min(CHUNK_BYTES, 35 * n * n * 16))
        return worst

    def _check_memory(self, layout, batch: int, image_size: tuple[int, int]) -> None:
        need = max(self.pisa_bytes(h, w, batch) for _, _, h, w in layout)
        free = _free_bytes(self.device)
        if free is not None and need > free:
            raise InputError("image", expected=f"an image whose attention fits in the {_gib(free)} free on "
                                               f"{self.device}",
                             got=f"{image_size[1]}x{image_size[0]} in {len(layout)} tile(s): {_gib(need)} for PISA "
                                 f"alone", fix="tile=auto (512-px tiles), a smaller image, or another device")

    # -- the pipeline ---------------------------------------------------------------------------------------
    def check_inputs(self, image, disparity, lens) -> tuple[torch.Tensor, torch.Tensor]:
        """Every check of a request, before anything runs.

        Returns:
            ``(image (B, 3, H, W), disparity (B, 1, H, W))`` float32 tensors on the CPU or as given.

        Raises:
            InputError: a bad image, a disparity of another size or out of [0, 1], or no lens.
        """
        if isinstance(image, torch.Tensor):
            if image.ndim != 4 or image.shape[1] != 3:
                raise InputError("image", expected="a (B, 3, H, W) tensor of linear RGB",
                                 got=f"shape {tuple(image.shape)}", fix="or pass an H x W x 3 numpy array")
            image = image.float()
        else:
            image = torch.from_numpy(np.ascontiguousarray(np.moveaxis(as_image(image), -1, 0)))[None]
        h, w = image.shape[-2:]
        arr = None
        if isinstance(disparity, torch.Tensor):
            disparity = disparity.float()
            disparity = disparity[None, None] if disparity.ndim == 2 else \
                disparity[:, None] if disparity.ndim == 3 else disparity
            if disparity.ndim != 4 or disparity.shape[1] != 1:
                raise InputError("disparity", expected="an H x W map (or a (B, 1, H, W) tensor)",
                                 got=f"shape {tuple(disparity.shape)}", fix="pass a single-channel map")
            size = tuple(disparity.shape[-2:])
        else:
            arr = np.asarray(disparity)
            if arr.ndim not in (2, 3):
                raise InputError("disparity", expected="an H x W map", got=f"shape {arr.shape}",
                                 fix="pass a single-channel map, e.g. disparity[..., 0]")
            size = tuple(arr.shape[-2:])
        if size != (h, w):
            raise InputError("disparity", expected=f"a map of the image's size {w}x{h}", got=f"{size[1]}x{size[0]}",
                             fix="resize it to the image (lensblur render --resize-disparity), or pass the map made "
                                 "for this image")
        if arr is not None:
            arr = check_disparity(arr)
            disparity = torch.from_numpy(np.ascontiguousarray(arr if arr.ndim == 3 else arr[None]))[:, None]
        else:
            lo, hi = float(disparity.min()), float(disparity.max())
            if not (0.0 <= lo and hi <= 1.0):
                raise InputError("disparity", expected="values in [0, 1] (1 = nearest)", got=f"range [{lo:g}, {hi:g}]",
                                 fix="rescale it, or read the file with normalize=True for a min-max rescale")
        if disparity.shape[0] not in (1, image.shape[0]):
            raise InputError("disparity", expected=f"1 or {image.shape[0]} maps", got=f"{disparity.shape[0]}",
                             fix="pass one map per image")
        if not isinstance(lens, Lens):
            raise InputError("lens", expected="a lensblur Lens (focus_disparity, blur)", got=type(lens).__name__,
                             fix="e.g. lens=Lens(focus_disparity=0.6, blur=30)")
        f = self.vae_scale_factor
        if h < f or w < f:
            raise InputError("image", expected=f"at least {f} pixels on each side", got=f"{w}x{h}",
                             fix="pass a larger image")
        return image, disparity.expand(image.shape[0], -1, -1, -1)

    @torch.no_grad()
    def __call__(self, image, disparity, lens: Lens, *, tile: str = "auto", seed: int = 0,
                 output_type: str = "np") -> BokehDiffOutput:
        """Render lens blur in one UNet pass.

        Args:
            image: ``H x W x 3`` float linear RGB (HDR clips at white), or a ``(B, 3, H, W)`` tensor of it.
            disparity: ``H x W`` in [0, 1], 1 = nearest, the image's size (or a ``(B, 1, H, W)`` tensor).
            lens: focus and blur: the CoC radius is ``lens.blur * (disparity - lens.focus_disparity)`` pixels
                (the aperture's shape is not used: PISA's CoC is a disk).
            tile: ``"auto"`` (tiles above two tiles' area, the release's rule), ``"always"`` or ``"never"``.
            seed: the seed of PISA's jittered occlusion paths (and of its dropout when enabled).
            output_type: ``"np"``, ``"pt"`` or ``"latent"`` (see :class:`BokehDiffOutput`).

        Returns:
            :class:`BokehDiffOutput`.

        Raises:
            InputError: a request :meth:`check_inputs` refuses, or an image too large for the device.
        """
        # 1. Check inputs
        if output_type not in OUTPUT_TYPES:
            raise InputError("output_type", expected=f"one of {', '.join(OUTPUT_TYPES)}", got=output_type,
                             fix="output_type=np")
        image, disparity = self.check_inputs(image, disparity, lens)
        batch, (height, width) = image.shape[0], image.shape[-2:]
        f = self.vae_scale_factor
        pad_h, pad_w = (-height) % f, (-width) % f
        layout = self.tile_layout((height + pad_h) // f, (width + pad_w) // f, tile)
        self._check_memory(layout, batch, (height, width))
        device = self.device

        # 2. The conditioning and the VAE's input, padded to the VAE's multiple
        def pad(x):
            return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x

        condition = pisa_inputs(pad(disparity.to(device)), lens)
        pixels = pad(self.to_model_range(image.to(device)))
        generator = torch.Generator(device=device).manual_seed(int(seed))
        try:
            # 3. Encode: the all-in-focus latent is z_t, no noise added
            latents = self.encode(pixels)
            # 4. One UNet pass (tiled) and the one-step formula
            noise = self.tiled_noise_prediction(latents, condition["disparity"], condition["coc"], tile=tile,
                                                generator=generator)
            z0 = self.one_step(latents, noise)
            if output_type == "latent":
                return BokehDiffOutput(images=z0, tiles=len(layout))
            # 5. Decode, crop, linear RGB
            out = self.from_model_range(self.decode(z0))[..., :height, :width]
        except (torch.OutOfMemoryError, MemoryError) as exc:
            raise InputError("image", expected=f"an image that fits in the memory of {device}",
                             got=f"{width}x{height} ({type(exc).__name__})",
                             fix="tile=auto, a smaller image, dtype=float16 on a GPU, or another device") from exc
        if output_type == "pt":
            return BokehDiffOutput(images=out, tiles=len(layout))
        arr = out.permute(0, 2, 3, 1).cpu().numpy()
        return BokehDiffOutput(images=arr if batch > 1 else arr[0], tiles=len(layout))



def _layer_grid(name: str, height: int, width: int, vae_factor: int, unet) -> tuple[int, int]:
    """The token grid of the attention layer ``name`` for an image of ``height x width`` pixels: the latent
    halved (rounding up) once per down-sampling above the layer's block."""
    parts = name.split(".")
    downs = len(unet.config.down_block_types) - 1
    level = int(parts[1]) if parts[0] == "down_blocks" else downs - int(parts[1]) if parts[0] == "up_blocks" \
        else downs
    h, w = -(-height // vae_factor), -(-width // vae_factor)
    for _ in range(level):
        h, w = -(-h // 2), -(-w // 2)
    return h, w
