"""Small value types every part shares: pixel boxes and the metric depths a disparity map stands for.

They sit below ``io``, ``lens`` and ``metrics`` so that those depend on this module and not on each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError

__all__ = ["DepthRange", "parse_box"]


@dataclass(frozen=True)
class DepthRange:
    """Metric depths (in metres) that disparity 1 and 0 stand for: ``near`` at 1, ``far`` at 0.

    Disparity ``d`` means inverse depth ``1/z = 1/far + d * (1/near - 1/far)``.

    Args:
        near: depth of disparity 1, in metres, > 0.
        far: depth of disparity 0, in metres, > ``near`` (``inf`` for a map whose 0 is infinity).
    """

    near: float
    far: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.near) and math.isfinite(self.far) and 0 < self.near < self.far):
            raise InputError("depth_range", expected="metric depths 0 < near < far (metres)",
                             got=f"near={self.near:g}, far={self.far:g}",
                             fix="give the nearest depth first, e.g. near 1.5 and far 12 metres")

    def depth(self, disparity: float) -> float:
        """The metric depth (metres) of ``disparity``; ``inf`` at or beyond infinity."""
        inv = 1.0 / self.far + disparity * (1.0 / self.near - 1.0 / self.far)
        return float("inf") if inv <= 0 else 1.0 / inv

    def disparity(self, depth: float) -> float:
        """The disparity of metric depth ``depth`` (metres); in [0, 1] between ``far`` and ``near``."""
        return (1.0 / depth - 1.0 / self.far) / (1.0 / self.near - 1.0 / self.far)


def parse_box(box, shape, *, argument: str = "box") -> tuple[int, int, int, int]:
    """Check a pixel box against an image size.

    Args:
        box: ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive; numbers or numeric strings, rounded.
        shape: ``(H, W)`` of the image.
        argument: the name error messages give the box.

    Returns:
        ``(x0, y0, x1, y1)`` as ints, with ``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``.

    Raises:
        InputError: ``box`` is not four numbers, or is empty or outside the image.
    """
    try:
        x0, y0, x1, y1 = (round(float(v)) for v in box)
    except (TypeError, ValueError):
        raise InputError(argument, expected="four numbers (x0, y0, x1, y1)", got=box,
                         fix=f"e.g. {argument}=(100, 120, 300, 400)")
    h, w = shape
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InputError(argument, expected=f"x0 < x1 <= {w} and y0 < y1 <= {h} (inside the {w}x{h} image)",
                         got=f"{x0},{y0},{x1},{y1}", fix="pick a box inside the image")
    return x0, y0, x1, y1
