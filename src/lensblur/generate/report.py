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

from .._convert import quantize
from ..errors import InputError
from ..geometry import parse_box
from ..io import atomic_path, check_output_path, read_display
from ..metrics import blur_map, brenner, variance_of_laplacian

__all__ = ["Region", "RegionScore", "focus_report", "format_json", "format_markdown", "read_display"]


@dataclass(frozen=True)
class Region:
    """A named region to score.

    Args:
        name: the region's name in the report.
        box: ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive), or None for the whole image.
    """

    name: str
    box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class RegionScore:
    """The focus scores of one region of one image.

    Args:
        image: the image's name.
        region: the region's name.
        box: its box, or None for the whole image.
        vol: variance of the Laplacian (display values over [0, 1]).
        brenner: Brenner's gradient.
        vol_ratio: ``vol`` over the baseline's, or None for the baseline itself.
        brenner_ratio: ``brenner`` over the baseline's, or None for the baseline itself.
    """

    image: str
    region: str
    box: tuple[int, int, int, int] | None
    vol: float
    brenner: float
    vol_ratio: float | None  # to the baseline (the first image); None for the baseline itself
    brenner_ratio: float | None


def _ratio(value: float, base: float) -> float:
    return value / base if base > 0 else (math.inf if value > 0 else 1.0)


def focus_report(images: list[tuple[str, np.ndarray]], regions: list[Region] | None = None, *,
                 grey: str = "float", brenner_variant: str = "brenner1976") -> list[RegionScore]:
    """Scores of every region in every image; ratios are to the first image (the baseline).

    Boxes are checked against the image size before anything is computed.

    Args:
        images: ``(name, H x W x 3 display values in [0, 1])`` pairs of one size, the baseline first.
        regions: the regions to score; None scores the whole image.
        grey: ``"float"`` or ``"uint8"`` grey (see :mod:`lensblur.metrics.focus`).
        brenner_variant: ``"brenner1976"`` or ``"pertuz"`` (see :func:`lensblur.metrics.brenner`).

    Returns:
        One :class:`RegionScore` per (image, region), image by image.

    Raises:
        InputError: no image, images of different sizes, two regions of one name, or a box outside the image.
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
    names = [r.name for r in regions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError("regions", expected="regions with different names (a ratio is to the baseline's region "
                         "of the same name)", got=f"{repeated[0]!r} {names.count(repeated[0])} times",
                         fix="give each box its own name (NAME=X0,Y0,X1,Y1)")
    checked = [Region(r.name, None if r.box is None else _checked_box(r, shape)) for r in regions]
    scores, base = [], {}
    for index, (name, arr) in enumerate(images):
        for region in checked:
            vol = variance_of_laplacian(arr, data_range=1.0, box=region.box, grey=grey)
            bren = brenner(arr, data_range=1.0, box=region.box, grey=grey, variant=brenner_variant)
            if index == 0:
                base[region.name] = (vol, bren)
                ratios = (None, None)
            else:
                ratios = (_ratio(vol, base[region.name][0]), _ratio(bren, base[region.name][1]))
            scores.append(RegionScore(name, region.name, region.box, vol, bren, *ratios))
    return scores


def _checked_box(region: Region, shape) -> tuple[int, int, int, int]:
    try:
        return parse_box(region.box, shape, argument="regions")
    except InputError as exc:
        raise InputError("regions", expected=f"{exc.expected} for region {region.name!r}", got=exc.got,
                         fix=f"pick a box inside the {shape[1]}x{shape[0]} image, e.g. 0,0,{shape[1]},{shape[0]} for "
                             "all of it"
                         ) from exc


def _times(ratio: float | None) -> str:
    return "baseline" if ratio is None else f"{ratio:.2f}x"


def format_markdown(scores: list[RegionScore]) -> str:
    """A Markdown table: image, region, VoL, VoL ratio, Brenner, Brenner ratio.

    Args:
        scores: as :func:`focus_report` returns them.

    Returns:
        The table, ending in a newline.
    """
    lines = ["| image | region | VoL | VoL vs baseline | Brenner | Brenner vs baseline |",
             "|---|---|---:|---:|---:|---:|"]
    for s in scores:
        where = s.region if s.box is None else f"{s.region} ({','.join(str(v) for v in s.box)})"
        lines.append(f"| {s.image} | {where} | {s.vol:.2f} | {_times(s.vol_ratio)} | {s.brenner:.3g} | "
                     f"{_times(s.brenner_ratio)} |")
    return "\n".join(lines) + "\n"


def format_json(scores: list[RegionScore]) -> str:
    """The scores as JSON.

    Args:
        scores: as :func:`focus_report` returns them.

    Returns:
        ``{"baseline": name, "scores": [...]}`` as text ending in a newline; ``vol_ratio`` and
        ``brenner_ratio`` are null for the baseline.
    """
    rows = []
    for s in scores:
        row = asdict(s)
        row["box"] = list(s.box) if s.box is not None else None
        rows.append(row)
    return json.dumps({"baseline": scores[0].image if scores else None, "scores": rows}, indent=2) + "\n"


def report_files(paths: list[str | Path], regions: list[Region] | None = None, **options) -> list[RegionScore]:
    """:func:`focus_report` on image files; the first is the baseline.

    Args:
        paths: image files of one size, read as display values (:func:`~lensblur.io.read_display`).
        regions: the regions to score; None scores the whole image.
        options: ``grey`` and ``brenner_variant``, as :func:`focus_report` takes them.

    Returns:
        As :func:`focus_report`.

    Raises:
        InputError: a file cannot be read, or as :func:`focus_report`.
    """
    return focus_report([(str(p), read_display(p)) for p in paths], regions, **options)


def write_blur_maps(paths: list[str | Path], folder: str | Path, *, grey: str = "float") -> list[Path]:
    """The GBSD paper's Figure 5 "blur maps" of image files (:func:`lensblur.metrics.blur_map`), one grey PNG
    each, ``folder/<image stem>_blurmap.png`` (bright = sharp detail).

    Args:
        paths: image files, read as display values.
        folder: an existing folder.
        grey: ``"float"`` or ``"uint8"`` grey.

    Returns:
        The files written.

    Raises:
        InputError: two images of one stem (their maps would be one file), or a map that would overwrite one of
            the images; checked before anything is read or written.
    """
    from PIL import Image

    folder = Path(folder)
    by_name: dict[str, Path] = {}
    for p in map(Path, paths):
        name = f"{p.stem}_blurmap.png"
        if name in by_name:
            raise InputError("paths", expected="images of different names (each map is FOLDER/<stem>_blurmap.png)",
                             got=f"{by_name[name]} and {p} both give {name}",
                             fix="write each folder's maps into a folder of their own")
        by_name[name] = p
        check_output_path(folder / name, inputs=paths, argument="folder")
    maps = [(Path(p), blur_map(read_display(p), grey=grey)) for p in paths]   # every file read before writing
    written = []
    for path, values in maps:
        out = folder / f"{path.stem}_blurmap.png"
        with atomic_path(out) as tmp:
            Image.fromarray(quantize(values, 8)).save(tmp, format="PNG")
        written.append(out)
    return written
