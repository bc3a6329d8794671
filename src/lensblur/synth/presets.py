"""Scene presets: lensblur's own distribution (:func:`~lensblur.synth.scene.make_scene`), and BokehDiff's.

``"bokehdiff"`` reproduces the distributions of BokehDiff's released on-the-fly generator (its
``dataset.py``, ``OnTheFlyDataset``), so that its model can be trained on data made the way the paper made
its own:

- one foreground layer (a procedural object, or a cut-out from ``foregrounds``), fronto-parallel, at a
  disparity uniform between the background's nearest point and 1;
- a background (procedural, or a photo from ``backgrounds``) on a tilted plane whose disparity spans
  ``[0.001, 0.001 + k]``, ``k ~ U(0, 0.249)``, with slopes ``U(-1, 1)`` in x and y: always far;
- focus on the foreground's disparity or on the background's mean, one chance in two each;
- blur ``K = 12 * 2^U(-2, 3) / max(d_f, 1 - d_f)`` pixels at 768 px (scaled to the frame's longer side),
  so the largest possible CoC radius is ``12 * 2^U(-2, 3)``, 3 to 96 px at 768;
- a circular aperture, no HDR lights, and the gamma 2.2 transfer: photos and the written 8/16-bit files are
  ``linear ** (1 / 2.2)`` (``params["transfer"] = "gamma2.2"``; the PFM files stay linear).

What stays lensblur's: the tracer (exact over each aperture cell, rather than BokehDiff's point samples),
the all-in-focus image composited in linear light (BokehDiff composites it in gamma space), procedural
content when no photos or cut-outs are given (BokehDiff uses photos and LayerDiffuse RGBA images, which
cannot be made here), and no augmentation at synthesis (BokehDiff flips and rescales exposure when it
loads a pair).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._convert import decode_gamma, encode_srgb
from ..errors import InputError
from ..lens import Aperture
from .scene import Scene, _cutout, _photo_background, make_scene
from .shapes import KINDS, draw_object, procedural_background
from .tracer import Layer

__all__ = ["PRESETS", "make_bokehdiff_scene"]

# BokehDiff's generator at its 768 px canvas: base blur, the blur multiplier's exponent range, the
# background's disparity floor and largest span.
BOKEHDIFF_SIZE = 768
BOKEHDIFF_BLUR = 12.0
BOKEHDIFF_TIMES = (-2.0, 3.0)
BOKEHDIFF_BG_FLOOR = 0.001
BOKEHDIFF_BG_SPAN = 0.249


def _srgb_to_gamma_linear(linear_srgb: np.ndarray) -> np.ndarray:
    """A photo decoded with the sRGB curve, re-decoded with gamma 2.2 as BokehDiff reads its photos."""
    return decode_gamma(encode_srgb(linear_srgb)).astype(np.float32)


def make_bokehdiff_scene(index: int, seed: int, size: tuple[int, int] = (BOKEHDIFF_SIZE, BOKEHDIFF_SIZE), *,
                         backgrounds: list[Path] | None = None, foregrounds: list[Path] | None = None,
                         **ignored) -> Scene:
    """Scene ``index`` of the set ``seed`` drawn from BokehDiff's distributions (see the module doc).

    Args:
        index: the scene's number in the set, >= 0.
        seed: the set's seed, >= 0.
        size: ``(W, H)`` of the frame, at least 32x32 (BokehDiff: 768x768).
        backgrounds: photo files for the background, or None for procedural ones.
        foregrounds: RGBA cut-out files for the foreground, or None for procedural objects.
        ignored: lensblur's own scene options (``max_layers``, ``tilt``, ``lights``), which this preset fixes.

    Returns:
        The :class:`~lensblur.synth.scene.Scene`; the same arguments always give the same scene.

    Raises:
        InputError: a value out of range, or a foreground file without alpha.
    """
    if not (isinstance(index, int) and index >= 0 and isinstance(seed, int) and seed >= 0):
        bad = "index" if not (isinstance(index, int) and index >= 0) else "seed"
        raise InputError(bad, expected="an integer >= 0", got=index if bad == "index" else seed, fix=f"{bad}=7")
    w, h = size
    if w < 32 or h < 32:
        raise InputError("size", expected="at least 32x32", got=f"{w}x{h}", fix="size=(768, 768)")
    rng = np.random.default_rng([seed, index, 2])
    # 1. The blur first (it sets the canvas margin): K = 12 * times / max(d_f, 1 - d_f) at 768 px.
    times = 2.0 ** rng.uniform(*BOKEHDIFF_TIMES)
    largest = BOKEHDIFF_BLUR * times * max(w, h) / BOKEHDIFF_SIZE
    margin = math.ceil(largest) + 2
    shape = (h + 2 * margin, w + 2 * margin)
    # 2. Background: a far tilted plane, disparity in [0.001, 0.001 + k].
    if backgrounds:
        bg_rgb, bg_info = _photo_background(rng, backgrounds, shape)
        bg_rgb = _srgb_to_gamma_linear(bg_rgb)
    else:
        bg_rgb, bg_info = procedural_background(rng, shape)
    span = float(rng.uniform(0.0, BOKEHDIFF_BG_SPAN))
    sx, sy = rng.uniform(-1.0, 1.0, 2)
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float64)
    ramp = sx * xx / shape[1] + sy * yy / shape[0]
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-12)
    d_bg = (BOKEHDIFF_BG_FLOOR + span * ramp).astype(np.float32)
    layers = [Layer.from_straight(np.clip(bg_rgb, 0.0, 1.0), np.ones(shape, np.float32), d_bg, name="background")]
    described = [{"name": "background", **bg_info,
                  "disparity": {"span": [BOKEHDIFF_BG_FLOOR, round(BOKEHDIFF_BG_FLOOR + span, 6)],
                                "slopes": [float(sx), float(sy)]}}]
    # 3. One fronto-parallel foreground above the background's nearest point.
    if foregrounds:
        rgb, alpha, info = _cutout(rng, foregrounds, shape, margin)
        rgb = _srgb_to_gamma_linear(rgb)
    else:
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        rgb, alpha, info = draw_object(rng, shape, kind, margin=margin)
    d_fg = float(rng.uniform(float(d_bg.max()), 1.0))
    layers.append(Layer.from_straight(np.clip(rgb, 0.0, 1.0), alpha, d_fg, name="layer1"))
    frame_alpha = alpha[margin: margin + h, margin: margin + w]
    described.append({"name": "layer1", **info, "disparity": round(d_fg, 6),
                      "coverage": round(float(frame_alpha.mean()), 6)})
    # 4. Focus on the foreground or on the background's mean; the blur from it.
    focus_on = str(rng.choice(["foreground", "background"]))
    focus = d_fg if focus_on == "foreground" else float(d_bg[margin: margin + h, margin: margin + w].mean())
    focus = round(float(np.clip(focus, 0.0, 1.0)), 6)
    blur = round(largest / max(focus, 1.0 - focus), 6)
    reach = max(abs(d_fg - focus), abs(float(d_bg.min()) - focus), abs(float(d_bg.max()) - focus))
    params = {
        "index": index, "seed": seed, "size": [w, h], "margin": margin, "preset": "bokehdiff",
        "transfer": "gamma2.2", "blur": blur, "focus_disparity": focus, "focus_on": focus_on,
        "blur_times": round(float(times), 6), "max_coc": round(blur * reach, 4),
        "aperture": {"blades": 0, "rotation": 0.0}, "layers": described, "lights": [],
    }
    return Scene(layers=layers, blur=blur, focus_disparity=focus, aperture=Aperture(), margin=margin,
                 size=(w, h), lights=[], params=params)


# Preset name (lensblur.choices.SYNTH_PRESETS) -> scene maker (index, seed, size, *, backgrounds, foregrounds,
# max_layers, tilt, lights).
PRESETS = {"lensblur": make_scene, "bokehdiff": make_bokehdiff_scene}
