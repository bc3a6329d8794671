"""The named choices of lensblur's options, in one module that imports nothing.

Each name list belongs to the module that implements it (which imports it from here and checks its values
against it); it lives here so that the command line can offer the choices in ``--help`` and in argument
checks without importing torch, which takes a second or more, before a command runs.
"""

from __future__ import annotations

__all__ = [
    "ALIGNMENTS",
    "BRENNER_VARIANTS",
    "DEFAULT_ALIGNMENT",
    "DEFAULT_ALPHA",
    "DEFAULT_SIGMA",
    "DEFAULT_STRENGTH",
    "DEPTH_SOURCES",
    "DISPLAYS",
    "EDGE_BAND_PX",
    "FOCUS_HEURISTICS",
    "GREYS",
    "IMAGE_SUFFIXES",
    "LPIPS_NETS",
    "SIGMA_READINGS",
    "SSIM_VARIANTS",
    "SYNTH_PRESETS",
]

# lensblur.io.image: the suffixes of the files lensblur writes (render --output-format takes them without the dot).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif", ".pfm", ".exr")

# lensblur.depth: where a disparity map comes from (build_source's and resolve's ``source``).
DEPTH_SOURCES = ("auto", "file", "embedded", "model", "stereo", "subject")

# lensblur.synth.presets: the scene distributions.
SYNTH_PRESETS = ("lensblur", "bokehdiff")

# lensblur.metrics.fidelity. "gaussian": scikit-image's gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False (Wang et al. 2004's window). "skimage-default": scikit-image's defaults, a 7 x 7
# uniform window and the sample covariance (what the scripts that defined EBB! Val294 call).
SSIM_VARIANTS = ("gaussian", "skimage-default")

# lensblur.metrics.focus: the grey conversion and the Brenner gradient's definition.
GREYS = ("float", "uint8")
BRENNER_VARIANTS = ("brenner1976", "pertuz")

# lensblur.data: exposure alignment protocols by name (see align_exposure).
ALIGNMENTS = ("bokehdiff", "linear-mean")
DEFAULT_ALIGNMENT = "bokehdiff"

# lensblur.eval.gt_focus: the focus picked from a pair's ground truth, a scoring aid only (BokehDiff's EBB!).
FOCUS_HEURISTICS = ("ground-truth-edges",)

# lensblur.eval: how linear images become the values scored: "srgb8", an 8-bit sRGB file's codes / 255;
# "gamma22", BokehMe's and BokehDiff's BLB scoring, clip(x, 0, 1) ** (1 / 2.2) in float. And the width of the
# depth-edge band scored apart, in pixels.
DISPLAYS = ("srgb8", "gamma22")
EDGE_BAND_PX = 5
# LPIPS's backbone: AlexNet (what most papers report) or VGG-16.
LPIPS_NETS = ("alex", "vgg")

# lensblur.generate. The paper gives no value for alpha; 0 (the focus stage on the focus prompt alone) is
# lensblur's default: see docs/generate.md for the reasoning and the sweep that checks it.
DEFAULT_ALPHA = 0.0
# The paper's Figure 5: 80 % of the steps in the global layout stage.
DEFAULT_SIGMA = 0.8
# Image-to-image noise strength. The paper gives none; 0.5 re-runs half of the schedule, enough to move the
# focus while the input's layout stays (diffusers' own 0.8 redraws most of the picture; docs/generate.md).
DEFAULT_STRENGTH = 0.5
# The two readings of the paper's sigma * T in image-to-image: a fraction of the steps actually run, or the
# step sigma * T of the whole schedule (of which image-to-image skips the first ones).
SIGMA_READINGS = ("steps-run", "schedule")
