"""Procedural content for synthetic scenes: textured backgrounds, HDR lights, and foreground objects with
fine structure and soft alpha (hair, fur, fences, branches, text).

Objects are drawn with Pillow at ``SUPERSAMPLE`` times the canvas resolution and reduced by averaging, so a
strand thinner than a pixel becomes a soft, fractional alpha, as a real matte of hair would. Every function
takes a ``numpy.random.Generator`` and returns straight (not premultiplied) linear RGB ``H x W x 3`` and
alpha ``H x W`` float32 on the whole canvas, plus a small dict describing what was drawn.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from .._convert import decode_srgb

__all__ = ["KINDS", "SUPERSAMPLE", "draw_lights", "draw_object", "noise", "procedural_background"]

SUPERSAMPLE = 4
KINDS = ("hair", "fur", "fence", "branches", "text")
_WORDS = ("bokeh", "focus", "lens", "aperture", "light", "depth", "EXIT", "CAFE", "OPEN", "SALE", "station",
          "Street", "No. 42", "hello", "night", "market", "2026", "PARK", "STOP", "garden")


def noise(rng: np.random.Generator, shape: tuple[int, int], *, octaves: int = 5, base: int = 4,
          persistence: float = 0.55, channels: int = 1) -> np.ndarray:
    """Smooth fractal value noise in about [0, 1].

    Args:
        rng: the random generator (the only source of randomness).
        shape: ``(H, W)``.
        octaves: noise octaves, each at twice the frequency of the last.
        base: the coarsest octave's grid cells across.
        persistence: each octave's amplitude relative to the last.
        channels: independent noise channels.

    Returns:
        ``channels x H x W`` float32.
    """
    h, w = shape
    total = torch.zeros(channels, h, w)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        cells = base * 2**o
        grid = torch.from_numpy(rng.random((1, channels, cells + 1, max(2, round(cells * w / h)) + 1),
                                           dtype=np.float32))
        total += amp * F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0]
        norm += amp
        amp *= persistence
    return (total / norm).clamp(0, 1).numpy()


def _palette(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` random colours, linear RGB, from an sRGB hue/saturation/value draw."""
    hsv = np.stack([rng.random(count), rng.uniform(0.15, 0.9, count), rng.uniform(0.2, 1.0, count)], 1)
    h, s, v = hsv[:, 0] * 6, hsv[:, 1], hsv[:, 2]
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack([np.stack(c, 1) for c in
                      [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]], 0)
    srgb = table[i, np.arange(count)]
    return decode_srgb(srgb, 1.0)


def procedural_background(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """An opaque, detailed background: fractal colour fields, shapes with sharp edges, fine texture.

    Args:
        rng: the random generator.
        shape: ``(H, W)`` of the canvas.

    Returns:
        ``(rgb, info)``: ``H x W x 3`` float32 linear RGB and a JSON-ready description.
    """
    h, w = shape
    pal = _palette(rng, 4)
    t = noise(rng, shape, octaves=6, base=int(rng.integers(2, 6)))[0]
    # Blend the palette along the noise value.
    pos = t * (len(pal) - 1)
    i0 = np.clip(np.floor(pos).astype(int), 0, len(pal) - 2)
    f = (pos - i0)[..., None]
    rgb = pal[i0] * (1 - f) + pal[i0 + 1] * f
    # Shapes with sharp edges: the blur has something to act on.
    scale = SUPERSAMPLE
    mask = Image.new("L", (w * scale, h * scale), 0)
    draw = ImageDraw.Draw(mask)
    n_shapes = int(rng.integers(6, 30))
    colours = _palette(rng, n_shapes)
    for k in range(n_shapes):
        draw.rectangle([0, 0, w * scale, h * scale], fill=0)
        cx, cy = rng.uniform(0, w * scale), rng.uniform(0, h * scale)
        r = rng.uniform(0.02, 0.25) * min(w, h) * scale
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse([cx - r, cy - r * rng.uniform(0.4, 1), cx + r, cy + r], fill=255)
        elif kind == 1:
            draw.rectangle([cx - r, cy - r * rng.uniform(0.2, 1), cx + r * rng.uniform(0.3, 1.5), cy + r], fill=255)
        else:
            pts = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.sort(rng.uniform(0, 2 * math.pi, 5))]
            draw.polygon(pts, fill=255)
        cov = np.asarray(mask.reduce(scale), dtype=np.float32) / 255.0
        a = cov[..., None] * rng.uniform(0.5, 1.0)
        rgb = rgb * (1 - a) + colours[k] * a
    # Fine texture (grain, stripes) modulating brightness.
    grain = noise(rng, shape, octaves=3, base=max(8, min(h, w) // 8))[0]
    rgb = rgb * (0.75 + 0.5 * grain[..., None])
    if rng.random() < 0.4:
        period = rng.uniform(3, 12)
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[:h, :w].astype(np.float32)
        stripes = 0.5 + 0.5 * np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
        region = noise(rng, shape, octaves=2, base=2)[0] > 0.55
        rgb = np.where(region[..., None], rgb * (0.6 + 0.4 * stripes[..., None]), rgb)
    return np.clip(rgb, 0, 1).astype(np.float32), {"kind": "procedural", "shapes": n_shapes}


def _disk_coverage(shape: tuple[int, int], cx: float, cy: float, r: float, sub: int = 8) -> np.ndarray:
    """Area coverage of a disk (pixel centres at integer + 0.5), by ``sub x sub`` supersampling."""
    h, w = shape
    y0, y1 = max(0, int(cy - r) - 1), min(h, int(cy + r) + 2)
    x0, x1 = max(0, int(cx - r) - 1), min(w, int(cx + r) + 2)
    out = np.zeros(shape, np.float32)
    if y0 >= y1 or x0 >= x1:
        return out
    off = (np.arange(sub) + 0.5) / sub
    ys = (np.arange(y0, y1)[:, None] + off[None]).reshape(-1)
    xs = (np.arange(x0, x1)[:, None] + off[None]).reshape(-1)
    inside = ((ys[:, None] - cy) ** 2 + (xs[None] - cx) ** 2) <= r * r
    out[y0:y1, x0:x1] = inside.reshape(y1 - y0, sub, x1 - x0, sub).mean(axis=(1, 3))
    return out


def draw_lights(rng: np.random.Generator, rgb: np.ndarray, count: int, *, margin: int) -> tuple[np.ndarray, list]:
    """Add ``count`` small HDR lights (5..50x white in linear light, slightly tinted) to an opaque ``rgb``.

    Args:
        rng: the random generator.
        rgb: ``H x W x 3`` linear RGB canvas (not changed).
        count: the number of lights.
        margin: canvas pixels beyond the frame on each side; lights are placed inside the frame.

    Returns:
        ``(rgb, lights)``: the canvas with the lights, and their descriptions, positions in frame pixels
        (the canvas minus ``margin``), centre of the top-left pixel at (0.5, 0.5).
    """
    h, w = rgb.shape[:2]
    lights = []
    out = rgb.copy()
    for _ in range(count):
        cx, cy = rng.uniform(margin, w - margin), rng.uniform(margin, h - margin)
        r = float(rng.uniform(0.6, 3.0))
        intensity = float(rng.uniform(5.0, 50.0))
        tint = np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 1.0)], np.float32)[rng.permutation(3)]
        cov = _disk_coverage((h, w), cx, cy, r)[..., None]
        out = out * (1 - cov) + intensity * tint * cov
        lights.append({"x": round(cx - margin, 3), "y": round(cy - margin, 3), "radius": round(r, 3),
                       "intensity": round(intensity, 3), "color": [round(float(c), 4) for c in tint]})
    return out.astype(np.float32), lights


def _bezier(p0, p1, p2, steps: int = 16) -> list[tuple[float, float]]:
    t = np.linspace(0, 1, steps)[:, None]
    pts = (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)
    return [tuple(p) for p in pts]


def _textured(rng: np.random.Generator, shape, base_colour: np.ndarray, variation: float) -> np.ndarray:
    tex = noise(rng, shape, octaves=4, base=int(rng.integers(3, 10)), channels=3)
    rgb = base_colour[:, None, None] * (1 - variation + 2 * variation * tex)
    return np.clip(rgb.transpose(1, 2, 0), 0, 1).astype(np.float32)


def draw_object(rng: np.random.Generator, shape: tuple[int, int], kind: str, *, margin: int
                ) -> tuple[np.ndarray, np.ndarray, dict]:
    """One foreground object on the canvas.

    Args:
        rng: the random generator.
        shape: ``(H, W)`` of the canvas.
        kind: one of :data:`KINDS`.
        margin: canvas pixels beyond the frame on each side; the object is centred inside the frame.

    Returns:
        ``(rgb, alpha, info)``: ``H x W x 3`` float32 linear RGB, ``H x W`` float32 coverage in [0, 1]
        (antialiased), and a JSON-ready description.

    Raises:
        ValueError: an unknown ``kind``.
    """
    h, w = shape
    s = SUPERSAMPLE
    mask = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(mask)
    fw, fh = w - 2 * margin, h - 2 * margin  # the frame
    cx = margin + rng.uniform(0.15, 0.85) * fw
    cy = margin + rng.uniform(0.15, 0.85) * fh
    size = rng.uniform(0.25, 0.7) * min(fw, fh)
    info: dict = {"kind": kind, "center": [round(cx - margin, 2), round(cy - margin, 2)], "size": round(size, 2)}
    if kind == "hair":
        # A head-like blob with many thin strands flowing from it; strands thinner than a pixel.
        r = size * 0.35
        draw.ellipse([(cx - r) * s, (cy - r * 1.2) * s, (cx + r) * s, (cy + r * 1.2) * s], fill=255)
        n = int(rng.integers(150, 450))
        flow = rng.uniform(-0.6, 0.6)
        for _ in range(n):
            a = rng.uniform(-math.pi, 0.2)
            start = (cx + r * 0.9 * math.cos(a), cy + r * 1.1 * math.sin(a))
            length = rng.uniform(0.5, 1.6) * size
            bend = rng.normal(0, 0.3) * length
            end = (start[0] + math.cos(a) * length * 0.4 + flow * length, start[1] + length)
            mid = ((start[0] + end[0]) / 2 + bend, (start[1] + end[1]) / 2 - abs(bend) * 0.3)
            pts = [(x * s, y * s) for x, y in _bezier(start, mid, end, 24)]
            width = max(1, round(rng.uniform(0.2, 1.2) * s))
            draw.line(pts, fill=int(rng.uniform(0.35, 1.0) * 255), width=width, joint="curve")
        info["strands"] = n
        colour = _palette(rng, 1)[0] * 0.5
    elif kind == "fur":
        # A body with a fringe of short, dense radial fibres.
        rx, ry = size * rng.uniform(0.3, 0.5), size * rng.uniform(0.25, 0.45)
        draw.ellipse([(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s], fill=255)
        n = int(rng.integers(600, 1500))
        for _ in range(n):
            a = rng.uniform(0, 2 * math.pi)
            bx, by = cx + rx * math.cos(a) * 0.95, cy + ry * math.sin(a) * 0.95
            length = rng.uniform(0.03, 0.12) * size
            da = a + rng.normal(0, 0.35)
            ex, ey = bx + length * math.cos(da), by + length * math.sin(da)
            width = max(1, round(rng.uniform(0.2, 0.8) * s))
            draw.line([(bx * s, by * s), (ex * s, ey * s)], fill=int(rng.uniform(0.4, 1.0) * 255), width=width)
        info["fibres"] = n
        colour = _palette(rng, 1)[0]
    elif kind == "fence":
        # Bars or a diagonal chain-link lattice over much of the frame.
        style = "bars" if rng.random() < 0.5 else "chain-link"
        spacing = rng.uniform(0.04, 0.12) * min(fw, fh)
        thick = rng.uniform(0.06, 0.3) * spacing
        x0, x1 = margin + rng.uniform(-0.1, 0.3) * fw, margin + rng.uniform(0.7, 1.1) * fw
        y0, y1 = margin + rng.uniform(-0.1, 0.3) * fh, margin + rng.uniform(0.7, 1.1) * fh
        if style == "bars":
            x = x0
            while x < x1:
                draw.rectangle([x * s, y0 * s, (x + thick * 2) * s, y1 * s], fill=255)
                x += spacing
            for y in (y0 + 0.15 * (y1 - y0), y0 + 0.8 * (y1 - y0)):
                draw.rectangle([x0 * s, y * s, x1 * s, (y + thick * 2) * s], fill=255)
        else:
            width = max(1, round(thick * s))
            span = (x1 - x0) + (y1 - y0)
            k = -span
            while k < span:
                draw.line([((x0 + k) * s, y0 * s), ((x0 + k + (y1 - y0)) * s, y1 * s)], fill=255, width=width)
                draw.line([((x0 + k) * s, y1 * s), ((x0 + k + (y1 - y0)) * s, y0 * s)], fill=255, width=width)
                k += spacing
        info.update(style=style, spacing=round(spacing, 2))
        colour = _palette(rng, 1)[0] * rng.uniform(0.3, 1.0)
    elif kind == "branches":
        # A recursive tree growing in from a frame edge, tapered, with small leaves.
        edge = int(rng.integers(0, 4))
        root = [(cx, margin + fh + 5), (cx, margin - 5), (margin - 5, cy), (margin + fw + 5, cy)][edge]
        heading = [-math.pi / 2, math.pi / 2, 0.0, math.pi][edge]
        leaves = rng.random() < 0.6
        stack = [(root[0], root[1], heading, size * 0.45, max(2.0, size * 0.04), 0)]
        segments = 0
        while stack and segments < 600:
            x, y, a, length, width, depth = stack.pop()
            ex, ey = x + length * math.cos(a), y + length * math.sin(a)
            draw.line([(x * s, y * s), (ex * s, ey * s)], fill=255, width=max(1, round(width * s)))
            segments += 1
            if depth < 6 and length > 3:
                for _ in range(int(rng.integers(2, 4))):
                    stack.append((ex, ey, a + rng.normal(0, 0.55), length * rng.uniform(0.55, 0.8),
                                  width * 0.65, depth + 1))
            elif leaves:
                lr = rng.uniform(1.5, 5)
                draw.ellipse([(ex - lr) * s, (ey - lr * 0.5) * s, (ex + lr) * s, (ey + lr * 0.5) * s], fill=255)
        info.update(segments=segments, leaves=bool(leaves))
        colour = _palette(rng, 1)[0] * 0.6
    elif kind == "text":
        word = _WORDS[int(rng.integers(0, len(_WORDS)))]
        font_px = int(rng.uniform(0.08, 0.3) * min(fw, fh) * s)
        font = ImageFont.load_default(size=max(8, font_px))
        draw.text(((cx - size / 2) * s, (cy - font_px / s / 2) * s), word, fill=255, font=font)
        info.update(text=word, font_px=round(font_px / s, 1))
        colour = _palette(rng, 1)[0]
    else:  # pragma: no cover - guarded by KINDS
        raise ValueError(kind)
    alpha = np.asarray(mask.reduce(s), dtype=np.float32) / 255.0
    rgb = _textured(rng, shape, np.asarray(colour, np.float32), 0.25)
    return rgb, alpha, info
