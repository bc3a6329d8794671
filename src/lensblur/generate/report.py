"""Focus reports: variance of Laplacian and Brenner for image regions, and their ratios to a baseline image.

This is how the GBSD paper compares stage diffusion with plain latent diffusion ("VoL 95.53, 3.81x baseline").
The scores come from :mod:`lensblur.metrics` on display (sRGB-encoded) values.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..geometry import parse_box
from ..io import read_display
from ..metrics import brenner, variance_of_laplacian

__all__ = ["Region", "RegionScore", "focus_report", "format_json", "format_markdown", "read_display"]


@dataclass(frozen=True)
class Region:
    """A named box ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive); ``box=None`` is the whole image."""

    name: str
    box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class RegionScore:
    image: str
    region: str
    box: tuple[int, int, int, int] | None
    vol: float
    brenner: float
    vol_ratio: float | None  # to the baseline (the first image); None for the baseline itself
    brenner_ratio: float | None


def _ratio(value: float, base: float) -> float:
    return value / base if base > 0 else (math.inf if value > 0 else 1.0)


def focus_report(images: list[tuple[str, np.ndarray]], regions: list[Region] | None = None) -> list[RegionScore]:
    """Scores of every region in every image; ratios are to the first image (the baseline).

    ``images`` are ``(name, display values in [0, 1])`` pairs of the same size; without ``regions`` the whole
    image is scored. Boxes are checked against the image size before anything is computed.
    """
    if not images:
        raise InputError("images", expected="at least one image", got="none", fix="pass the baseline first")
    shape = images[0][1].shape[:2]
    for name, arr in images[1:]:
        if arr.shape[:2] != shape:
            raise InputError("images", expected=f"images of the baseline's size {shape[1]}x{shape[0]}",
                             got=f"{name}: {arr.shape[1]}x{arr.shape[0]}",
                             fix="compare images generated at the same size (crop or resize them first)")
    regions = regions or [Region("whole image")]
    checked = [Region(r.name, None if r.box is None else parse_box(r.box, shape, argument=f"box {r.name!r}"))
               for r in regions]
    scores, base = [], {}
    for index, (name, arr) in enumerate(images):
        for region in checked:
            vol = variance_of_laplacian(arr, data_range=1.0, box=region.box)
            bren = brenner(arr, data_range=1.0, box=region.box)
            if index == 0:
                base[region.name] = (vol, bren)
                ratios = (None, None)
            else:
                ratios = (_ratio(vol, base[region.name][0]), _ratio(bren, base[region.name][1]))
            scores.append(RegionScore(name, region.name, region.box, vol, bren, *ratios))
    return scores


def _times(ratio: float | None) -> str:
    return "baseline" if ratio is None else f"{ratio:.2f}x"


def format_markdown(scores: list[RegionScore]) -> str:
    """A Markdown table: image, region, VoL, VoL ratio, Brenner, Brenner ratio."""
    lines = ["| image | region | VoL | VoL vs baseline | Brenner | Brenner vs baseline |",
             "|---|---|---:|---:|---:|---:|"]
    for s in scores:
        where = s.region if s.box is None else f"{s.region} ({','.join(str(v) for v in s.box)})"
        lines.append(f"| {s.image} | {where} | {s.vol:.2f} | {_times(s.vol_ratio)} | {s.brenner:.3g} | "
                     f"{_times(s.brenner_ratio)} |")
    return "\n".join(lines) + "\n"


def format_json(scores: list[RegionScore]) -> str:
    """The scores as a JSON list (``vol_ratio``/``brenner_ratio`` are null for the baseline)."""
    rows = []
    for s in scores:
        row = asdict(s)
        row["box"] = list(s.box) if s.box is not None else None
        rows.append(row)
    return json.dumps({"baseline": scores[0].image if scores else None, "scores": rows}, indent=2) + "\n"


def report_files(paths: list[str | Path], regions: list[Region] | None = None) -> list[RegionScore]:
    """:func:`focus_report` on image files; the first is the baseline."""
    return focus_report([(str(p), read_display(p)) for p in paths], regions)
