"""The fixed numbers and names of BokehDiff's release, in one place (each with where it comes from)."""

from __future__ import annotations

DEFAULT_BASE = "SG161222/RealVisXL_V5.0"
"""The base checkpoint the released weights were trained on (paper ref. [45]; the release's default)."""
DEFAULT_LORA = "zcx65535/bokehdiff"
"""The released LoRA and partial VAE encoder (Hugging Face repository; only its "small", rank-8, variant)."""
PROMPT = "an excellent photo with a large aperture"
"""The fixed prompt of training and inference (no classifier-free guidance)."""
TIMESTEP = 499
"""The one timestep: the clean all-in-focus latent is taken as z_t at t = 499 (paper section 3.1)."""
TILE_LATENTS = 64
"""The tile side in latent pixels (512 image pixels for an 8x VAE), the release's TILE_SIZE."""
TILE_ABOVE = 2
"""Tiling ("auto") starts when the latent holds more than this many tiles' area (the release's rule)."""
