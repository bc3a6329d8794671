"""Random layered scenes: a far background, 1..4 foreground layers, tilted planes, HDR lights, a lens.

:func:`make_scene` draws everything from ``numpy.random.default_rng([seed, index])``, so a scene depends on
its seed and index only (not on the order or the process it is made in). Layers are drawn on a canvas that
is the frame plus a ``margin`` on every side, wide enough for the largest CoC, so the ground truth sees what
lies beyond the frame as a real lens would.

Disparity layout: the background lies in [0, 0.3]; the foreground layers get disjoint bands in [0.35, 1]
in their drawing order (far to near), so no two layers interpenetrate and the compositing order is the
depth order everywhere. A tilted layer is the plane ``d = d_c + g_x (x - W/2) + g_y (y - H/2)`` (frame
pixels), whose range over the whole canvas stays inside its band.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._convert import decode_srgb
from ..errors import InputError
from ..io.files import list_images as io_list_images
from ..io.image import IMAGE_SUFFIXES, read_image, read_raw
from ..lens import Aperture
from .shapes import KINDS, draw_lights, draw_object, procedural_background
from .tracer import Layer

__all__ = ["GENERATOR_VERSION", "Scene", "list_images", "make_scene"]

logger = logging.getLogger(__name__)

# Bumped whenever the same (seed, index) would give a different scene or rendering.
GENERATOR_VERSION = "1"

_BG_BAND = (0.0, 0.3)
_FG_BAND = (0.35, 1.0)


@dataclass(frozen=True, eq=False)
class Scene:
    """A scene ready for :func:`lensblur.synth.trace`.

    Args:
        layers: the layers, far to near, on a canvas of the frame plus ``margin`` pixels per side.
        blur: the lens's CoC scale in pixels.
        focus_disparity: the disparity in focus, in [0, 1].
        aperture: the aperture.
        margin: canvas pixels beyond the frame on each side.
        size: ``(W, H)`` of the frame.
        lights: the HDR lights (frame pixels).
        params: a JSON-ready description of the scene.
    """

    layers: list
    blur: float
    focus_disparity: float
    aperture: Aperture
    margin: int
    size: tuple[int, int]
    lights: list = field(default_factory=list)
    params: dict = field(default_factory=dict)


def list_images(folder: str | os.PathLike | None, *, argument: str) -> list[Path]:
    """Image files directly in ``folder``, in natural order (so choices are reproducible).

    Args:
        folder: the folder, or None for none.
        argument: the name error messages give it.

    Returns:
        The files; empty for None.

    Raises:
        InputError: a folder that does not exist or holds no images.
    """
    if folder is None:
        return []
    path = Path(folder)
    if not path.is_dir():
        raise InputError(argument, expected="an existing folder of images", got=str(path),
                         fix=f"check the path, or pass {argument}=None for procedural content")
    files = io_list_images(path, IMAGE_SUFFIXES)
    if not files:
        raise InputError(argument, expected=f"a folder with image files ({', '.join(IMAGE_SUFFIXES)})",
                         got=f"{path} (no images)", fix=f"put some photos in it, or pass {argument}=None")
    return files


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``H x W x C`` float32 -> ``size = (h, w)`` with antialiased bilinear resampling."""
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
    out = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


def _photo_background(rng: np.random.Generator, files: list[Path], shape: tuple[int, int]):
    path = files[int(rng.integers(0, len(files)))]
    img = read_image(path)
    h, w = shape
    scale = max(h / img.shape[0], w / img.shape[1]) * rng.uniform(1.0, 1.4)
    sh, sw = max(h, math.ceil(img.shape[0] * scale)), max(w, math.ceil(img.shape[1] * scale))
    img = _resize(img, (sh, sw))
    y0, x0 = int(rng.integers(0, sh - h + 1)), int(rng.integers(0, sw - w + 1))
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return np.ascontiguousarray(img[y0: y0 + h, x0: x0 + w]), {"kind": "photo", "source": path.name}


def check_cutout(path: Path, arr: np.ndarray | None = None) -> None:
    """Refuse a foreground file without an alpha channel (from its header, or its decoded ``arr``).

    Raises:
        InputError: the file has no alpha channel.
    """
    if arr is None:
        from PIL import Image

        try:
            with Image.open(path) as im:
                channels = len(im.getbands())
        except OSError:         # a format Pillow does not read: decode it as lensblur reads it
            channels = read_raw(path, argument="foregrounds")[0].shape[-1]
    else:
        channels = arr.shape[2] if arr.ndim == 3 else 1
    if channels != 4:
        raise InputError("foregrounds", expected="RGBA cut-outs (PNG with an alpha channel)",
                         got=f"{path.name} with {channels} channel{'s' if channels > 1 else ''}",
                         fix="export the cut-outs with transparency, or leave out foregrounds for procedural objects")


def _cutout(rng: np.random.Generator, files: list[Path], shape: tuple[int, int], margin: int):
    path = files[int(rng.integers(0, len(files)))]
    arr, full = read_raw(path, argument="foregrounds")
    check_cutout(path, arr)
    arr = arr.astype(np.float32) / np.float32(full or 1.0)
    rgb = decode_srgb(arr[..., :3], 1.0) if full else arr[..., :3]
    rgba = np.concatenate([rgb * arr[..., 3:], arr[..., 3:]], axis=2)  # premultiply before resampling
    h, w = shape
    fw, fh = w - 2 * margin, h - 2 * margin
    target = rng.uniform(0.3, 0.9) * min(fw, fh)
    scale = target / max(arr.shape[:2])
    oh, ow = max(1, round(arr.shape[0] * scale)), max(1, round(arr.shape[1] * scale))
    rgba = _resize(rgba, (oh, ow))
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1]
    cx, cy = margin + rng.uniform(0.1, 0.9) * fw, margin + rng.uniform(0.2, 1.0) * fh
    y0, x0 = round(cy - oh / 2), round(cx - ow / 2)
    canvas = np.zeros((h, w, 4), np.float32)
    ys, xs = slice(max(0, y0), min(h, y0 + oh)), slice(max(0, x0), min(w, x0 + ow))
    canvas[ys, xs] = rgba[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0]
    alpha = np.clip(canvas[..., 3], 0, 1)
    straight = np.where(alpha[..., None] > 1e-6, canvas[..., :3] / np.maximum(alpha[..., None], 1e-6), 0)
    info = {"kind": "cutout", "source": path.name, "center": [round(cx - margin, 2), round(cy - margin, 2)],
            "size": [ow, oh]}
    return np.clip(straight, 0, None).astype(np.float32), alpha.astype(np.float32), info


def _plane(rng: np.random.Generator, band: tuple[float, float], shape: tuple[int, int], margin: int,
           tilted: bool) -> tuple[float | np.ndarray, dict]:
    """A disparity inside ``band`` over the whole canvas: flat, or a random plane (facing angle)."""
    lo, hi = band
    h, w = shape
    if not tilted:
        d = float(rng.uniform(lo, hi))
        return d, {"disparity": round(d, 6)}
    theta = rng.uniform(0, 2 * math.pi)
    # The canvas' extent along theta (corner to corner projected), and a plane using up to all of the band.
    extent = abs(math.cos(theta)) * w + abs(math.sin(theta)) * h
    rise = rng.uniform(0.3, 1.0) * (hi - lo)
    g = rise / extent
    gx, gy = g * math.cos(theta), g * math.sin(theta)
    fw, fh = w - 2 * margin, h - 2 * margin
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    x = xx - margin + 0.5 - fw / 2
    y = yy - margin + 0.5 - fh / 2
    ramp = gx * x + gy * y
    centre = rng.uniform(lo - ramp.min(), hi - ramp.max())
    d = np.clip(centre + ramp, lo, hi).astype(np.float32)
    return d, {"disparity": {"plane": [round(float(centre), 6), float(gx), float(gy)],
                             "range": [round(float(d.min()), 6), round(float(d.max()), 6)]}}


def _bands(rng: np.random.Generator, count: int) -> list[tuple[float, float]]:
    """``count`` disjoint sub-bands of the foreground band, far to near, each with a random width."""
    lo, hi = _FG_BAND
    cuts = np.sort(rng.uniform(lo, hi, count - 1)) if count > 1 else np.array([])
    edges = [lo, *cuts.tolist(), hi]
    bands = []
    for a, b in itertools.pairwise(edges):
        gap = 0.02 if b - a > 0.05 else 0.0
        width = rng.uniform(0.3, 1.0) * (b - a - gap)
        start = a + gap / 2 + rng.uniform(0, (b - a - gap) - width)
        bands.append((start, start + width))
    return bands


def make_scene(index: int, seed: int, size: tuple[int, int] = (512, 384), *,
               backgrounds: list[Path] | None = None, foregrounds: list[Path] | None = None,
               max_layers: int = 4, tilt: float = 0.5, lights: bool = True,
               max_coc: tuple[float, float] = (0.008, 0.05)) -> Scene:
    """Scene number ``index`` of the set made with ``seed``; ``size = (W, H)`` of the frame.

    Args:
        index: the scene's number in the set, >= 0.
        seed: the set's seed, >= 0.
        size: ``(W, H)`` of the frame, at least 32x32.
        backgrounds: photo files to draw the background from instead of procedural content.
        foregrounds: RGBA cut-out files to draw foreground layers from instead of procedural content.
        max_layers: foreground layers (1..max_layers), 1..4.
        tilt: the chance, in [0, 1], that a layer is a tilted plane.
        lights: HDR lights on the background.
        max_coc: the largest CoC radius in the scene, as a range of fractions of the frame's longer side.

    Returns:
        The :class:`Scene`; the same arguments always give the same scene.

    Raises:
        InputError: a value out of range, or a foreground file without alpha.
    """
    if not (isinstance(index, int) and index >= 0 and isinstance(seed, int) and seed >= 0):
        bad = "index" if not (isinstance(index, int) and index >= 0) else "seed"
        raise InputError(bad, expected="integers >= 0", got=f"index={index}, seed={seed}", fix=f"e.g. {bad}=7")
    if not (isinstance(max_layers, int) and 1 <= max_layers <= 4):
        raise InputError("max_layers", expected="1, 2, 3 or 4", got=max_layers, fix="e.g. max_layers=3")
    w, h = size
    if w < 32 or h < 32:
        raise InputError("size", expected="at least 32x32", got=f"{w}x{h}", fix="e.g. size=(512, 384)")
    rng = np.random.default_rng([seed, index])
    # 1. The lens: largest CoC (sets the margin), aperture.
    coc_max = float(rng.uniform(*max_coc) * max(w, h))
    margin = math.ceil(coc_max) + 2
    shape = (h + 2 * margin, w + 2 * margin)
    blades = int(rng.choice([0, 0, 0, 5, 6, 7, 8, 9]))
    rotation = float(rng.uniform(0, 360 / blades)) if blades else 0.0
    aperture = Aperture(blades=blades, rotation=round(rotation, 4))
    # 2. Background: photo or procedural, optional HDR lights, flat or tilted.
    if backgrounds:
        bg_rgb, bg_info = _photo_background(rng, backgrounds, shape)
    else:
        bg_rgb, bg_info = procedural_background(rng, shape)
    light_list: list = []
    if lights and rng.random() < 0.6:
        bg_rgb, light_list = draw_lights(rng, bg_rgb, int(rng.integers(1, 13)), margin=margin)
    d_bg, bg_disp = _plane(rng, _BG_BAND, shape, margin, rng.random() < tilt)
    layers = [Layer.from_straight(bg_rgb, np.ones(shape, np.float32), d_bg, name="background")]
    described = [{"name": "background", **bg_info, **bg_disp}]
    # 3. Foreground layers, far to near, in disjoint disparity bands.
    count = int(rng.integers(1, max_layers + 1))
    for k, band in enumerate(_bands(rng, count)):
        if foregrounds and rng.random() < 0.7:
            rgb, alpha, info = _cutout(rng, foregrounds, shape, margin)
        else:
            kind = KINDS[int(rng.integers(0, len(KINDS)))]
            rgb, alpha, info = draw_object(rng, shape, kind, margin=margin)
        d, disp = _plane(rng, band, shape, margin, rng.random() < tilt)
        name = f"layer{k + 1}"
        layers.append(Layer.from_straight(rgb, alpha, d, name=name))
        frame_alpha = alpha[margin: margin + h, margin: margin + w]
        described.append({"name": name, **info, **disp, "coverage": round(float(frame_alpha.mean()), 6)})
    # 4. Focus on a foreground layer, on the background, or in between; blur from the largest CoC.
    def mean_disparity(layer: Layer) -> float:
        a = layer.alpha[margin: margin + h, margin: margin + w].astype(np.float64)
        d = layer.disparity_map()[margin: margin + h, margin: margin + w]
        return float((a * d).sum() / a.sum()) if a.sum() > 0 else float(d.mean())

    fg = layers[1 + int(rng.integers(0, count))]
    focus_on = str(rng.choice(["foreground", "background", "between"]))
    if focus_on == "foreground":
        focus = mean_disparity(fg)
    elif focus_on == "background":
        focus = mean_disparity(layers[0])
    else:
        focus = float(rng.uniform(mean_disparity(layers[0]), mean_disparity(fg)))
    focus = round(float(np.clip(focus, 0.0, 1.0)), 6)
    reach = max(max(abs(float(layer.disparity_map().max()) - focus), abs(float(layer.disparity_map().min()) - focus))
                for layer in layers)
    blur = round(coc_max / max(reach, 0.05), 6)
    params = {
        "index": index, "seed": seed, "size": [w, h], "margin": margin, "generator_version": GENERATOR_VERSION,
        "blur": blur, "focus_disparity": focus, "focus_on": focus_on,
        "max_coc": round(blur * max(reach, 0.05), 4),
        "aperture": {"blades": blades, "rotation": aperture.rotation},
        "layers": described, "lights": light_list,
    }
    logger.debug("scene %d: %d layers, blur %.2f, focus %.3f", index, len(layers), blur, focus)
    return Scene(layers=layers, blur=blur, focus_disparity=focus, aperture=aperture, margin=margin,
                 size=(w, h), lights=light_list, params=params)
