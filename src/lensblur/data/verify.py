"""Check a dataset folder against what its release should hold, before training or scoring on it.

:func:`verify` counts the files of each part of a dataset, checks that inputs and targets pair up and have
one size, and compares the counts with the release's own (AIM 2020's 4,694 EBB! training pairs, DenseDepth's
50,688 + 654 NYU pairs, BLB's 10 scenes of 5 x 10 bokeh images, a synthetic set's manifest). It reads file
headers only, never whole images, so it runs in seconds on a full release.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import list_images
from ._common import JPEG_PNG, check_root

__all__ = ["EXPECTED", "Count", "DatasetReport", "verify"]

# What each release holds, as its publishers describe it.
EXPECTED = {
    ("ebb", "aim2020", "train"): 4694,
    ("ebb", "aim2020", "val"): 200,
    ("ebb", "ebb-paper", "train"): 4894,
    ("nyu", "labeled", "all"): 1449,
    ("nyu", "densedepth", "train"): 50688,
    ("nyu", "densedepth", "test"): 654,
    ("blb", "exr", "scenes"): 10,
    ("blb", "exr", "bokeh per scene"): 50,
}
# How many problems of one kind are listed by name before the rest are counted.
LISTED = 5


@dataclass
class Count:
    """One count of a dataset part: what was found and, where the release says, what it should hold."""

    what: str
    found: int
    expected: int | None = None

    @property
    def ok(self) -> bool:
        return self.expected is None or self.found == self.expected


@dataclass
class DatasetReport:
    """What :func:`verify` found.

    Attributes:
        dataset: the dataset's name (``ebb``, ``nyu``, ``blb``, ``synth``).
        root: the folder checked.
        release: which release the folder holds, where that is known from its files.
        counts: the counts of each part, with the release's own where it has one.
        problems: unpaired files, size mismatches, files in the wrong format; empty when all is well.
    """

    dataset: str
    root: str
    release: str | None = None
    counts: list[Count] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem, and every count is the release's."""
        return not self.problems and all(c.ok for c in self.counts)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "counts": [{**asdict(c), "ok": c.ok} for c in self.counts]}

    def as_text(self) -> str:
        lines = [f"{self.dataset} at {self.root}" + (f" ({self.release})" if self.release else "")]
        for c in self.counts:
            against = "" if c.expected is None else f" of {c.expected}" + ("" if c.ok else "  <- differs")
            lines.append(f"  {c.what}: {c.found}{against}")
        lines += [f"  problem: {p}" for p in self.problems]
        lines.append("  all as the release holds it" if self.ok else "  NOT as the release holds it")
        return "\n".join(lines) + "\n"


def _problems(kind: str, names: list[str]) -> list[str]:
    if not names:
        return []
    shown = ", ".join(names[:LISTED]) + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")
    return [f"{len(names)} {kind}: {shown}"]


def _size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):  # a file Pillow cannot open is reported by the caller as unreadable
        return None


def _pairs(report: DatasetReport, label: str, inputs: list[Path], targets: Path | None, key=lambda p: p.stem) -> None:
    """Count the inputs and their targets, and report inputs without a target, targets without an input,
    unreadable files and pairs of different sizes."""
    report.counts.append(Count(f"{label} inputs", len(inputs)))
    if targets is None:
        return
    found = {key(p): p for p in list_images(targets, JPEG_PNG)}
    report.counts.append(Count(f"{label} targets", len(found)))
    by_key = {key(p) for p in inputs}
    report.problems += _problems(f"{label} inputs without a target", [p.name for p in inputs if key(p) not in found])
    report.problems += _problems(f"{label} targets without an input", [p.name for k, p in found.items()
                                                                       if k not in by_key])
    unreadable, differ = [], []
    for p in inputs:
        if key(p) in found:
            a, b = _size(p), _size(found[key(p)])
            if a is None or b is None:
                unreadable.append(p.name)
            elif a != b:
                differ.append(f"{p.name} ({a[0]}x{a[1]} vs {b[0]}x{b[1]})")
    report.problems += _problems(f"{label} pairs that cannot be read", unreadable)
    report.problems += _problems(f"{label} pairs of different sizes", differ)


def _verify_ebb(root: Path) -> DatasetReport:
    from .ebb import AIM_LAST_ID, VAL294_FIRST, _child, _file_number, _images

    report = DatasetReport("ebb", str(root))
    train = _child(root, "training", "train")
    originals = _images(_child(train, "original"))
    if not originals:
        report.problems.append("no training inputs in Training/original/ (or train/original/)")
        return report
    ids = [n for n in (_file_number(p) for p in originals) if n is not None]
    depth = _child(train, "original_depth")
    report.release = "ebb-paper" if (ids and max(ids) > AIM_LAST_ID) or depth is not None else "aim2020"
    _pairs(report, "training", originals, _child(train, "bokeh"))
    _expect(report, "training", EXPECTED[("ebb", report.release, "train")])
    report.problems += _problems("training inputs not named by a number",
                                 [p.name for p in originals if _file_number(p) is None])
    if depth is not None:
        maps = {p.stem for p in list_images(depth, (".png",))}
        report.counts.append(Count("training depth maps", len(maps), len(originals)))
    if report.release == "aim2020":
        report.counts.append(Count("Val294 pairs (ids 4400..4693)", sum(n >= VAL294_FIRST for n in ids), 294))
    for label, names in (("validation", ("validation", "val")), ("test", ("test",))):
        folder = _child(root, *names)
        if folder is not None:
            _pairs(report, label, _images(_child(folder, "original")), _child(folder, "bokeh"))
            if label == "validation" and report.release == "aim2020":
                _expect(report, label, EXPECTED[("ebb", "aim2020", "val")])
    return report


def _expect(report: DatasetReport, label: str, expected: int) -> None:
    """Set what the release holds on the counts of ``label``'s inputs and targets."""
    for count in report.counts:
        if count.what in (f"{label} inputs", f"{label} targets"):
            count.expected = expected


def _verify_nyu(root: Path) -> DatasetReport:
    from .nyu import DENSEDEPTH_HALVES, MAT_NAME, NYUDepthV2, _densedepth_root

    report = DatasetReport("nyu", str(root))
    if (root if root.is_file() else root / MAT_NAME).is_file():
        report.release = "labeled"
        report.counts.append(Count("labeled images", len(NYUDepthV2(root)), EXPECTED[("nyu", "labeled", "all")]))
        return report
    data = _densedepth_root(root)
    if data is None:
        report.release = "png folders"
        report.counts.append(Count("image/depth pairs", len(NYUDepthV2(root))))
        return report
    report.release = "densedepth"
    from PIL import Image

    for half, bits in (("train", 8), ("test", 16)):
        try:
            pairs = NYUDepthV2(root, split=half).pairs
        except InputError as exc:
            report.problems.append(f"{DENSEDEPTH_HALVES[half]}: {exc}")
            continue
        report.counts.append(Count(f"{DENSEDEPTH_HALVES[half]} pairs", len(pairs), EXPECTED[("nyu", "densedepth", half)]))
        wrong = []
        for _, depth in pairs:
            with Image.open(depth) as im:
                stored = 16 if im.mode.startswith("I") else 8
            if stored != bits:
                wrong.append(f"{depth.name} ({stored}-bit)")
        report.problems += _problems(f"{DENSEDEPTH_HALVES[half]} depth maps not {bits}-bit", wrong)
    return report


def _verify_blb(root: Path) -> DatasetReport:
    from ._common import find_file
    from .blb import _DEPTH_SUFFIXES, _IMAGE_SUFFIXES, FOCUS_SETTINGS, LEVELS

    report = DatasetReport("blb", str(root), release="exr")
    base = root / "data" if (root / "data").is_dir() else root
    scenes = sorted(p for p in base.iterdir() if p.is_dir() and (p / "info.json").is_file())
    report.counts.append(Count("scenes", len(scenes), EXPECTED[("blb", "exr", "scenes")]))
    missing, short, web = [], [], []
    for scene in scenes:
        image = find_file(scene, "image", _IMAGE_SUFFIXES)
        if image is None or find_file(scene, "depth", _DEPTH_SUFFIXES) is None:
            (web if image is not None and image.suffix.lower() != ".exr" else missing).append(scene.name)
        bokeh = sum(find_file(scene, f"bokeh_{i:02d}_{j:02d}", _IMAGE_SUFFIXES) is not None
                    for i in range(LEVELS) for j in range(FOCUS_SETTINGS))
        if bokeh != EXPECTED[("blb", "exr", "bokeh per scene")]:
            short.append(f"{scene.name} ({bokeh})")
    report.problems += _problems("scenes without image.exr or depth.exr", missing)
    report.problems += _problems("scenes of the JPG web copy (no depth; get the EXR release)", web)
    report.problems += _problems("scenes without 50 bokeh images", short)
    return report


def _verify_synth(root: Path) -> DatasetReport:
    """The manifest's count of complete pairs, and in each the files every encoding reads (the images' PNG
    headers read for their size: the manifest's)."""
    from .synth import ENCODINGS, SynthDataset

    report = DatasetReport("synth", str(root), release="lensblur synth")
    ds = SynthDataset(root)
    report.counts.append(Count("complete pairs", len(ds), ds.manifest.get("count")))
    incomplete = [p.name for p in (root / "pairs").iterdir()
                  if p.is_dir() and not (p / "params.json").is_file()]
    report.problems += _problems("pair folders still being written or broken off", incomplete)
    names = sorted({name for pair in ENCODINGS.values() for name in pair} | {"disparity.png"})
    size = tuple(ds.manifest.get("size") or ()) or None
    missing, unreadable, differ = [], [], []
    for folder in ds.pairs:
        absent = [name for name in names if not (folder / name).is_file()]
        if absent:
            missing.append(f"{folder.name} ({', '.join(absent)})")
        for name in names:
            if name.endswith(".png") and name not in absent:
                found = _size(folder / name)
                if found is None:
                    unreadable.append(f"{folder.name}/{name}")
                elif size is not None and found != size:
                    differ.append(f"{folder.name}/{name} ({found[0]}x{found[1]})")
    report.problems += _problems("complete pairs missing files", missing)
    report.problems += _problems("pair files that cannot be read", unreadable)
    report.problems += _problems(f"pair files of another size than the manifest's {'x'.join(map(str, size or ()))}",
                                 differ)
    return report


_VERIFIERS = {"ebb": _verify_ebb, "ebb-val294": _verify_ebb, "nyu": _verify_nyu, "blb": _verify_blb,
              "synth": _verify_synth}


def verify(name: str, root) -> DatasetReport:
    """Count and pair a dataset's files against its release (see the module doc).

    Args:
        name: the dataset, one of ``ebb``, ``ebb-val294``, ``nyu``, ``blb``, ``synth``.
        root: its folder (for NYU's labeled set, the ``.mat`` file or its folder).

    Returns:
        The :class:`DatasetReport`; ``report.ok`` says whether all is as the release holds it.

    Raises:
        InputError: an unknown ``name`` or a ``root`` that does not exist.
    """
    if name not in _VERIFIERS:
        raise InputError("name", expected=f"one of {', '.join(_VERIFIERS)}", got=name, fix="name=ebb")
    path = Path(root)
    if not (path.is_file() and name == "nyu"):
        path = check_root(path, name, "(see the dataset's reader for its layout)")
    return _VERIFIERS[name](path)
