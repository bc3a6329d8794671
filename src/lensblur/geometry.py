"""Small value types every part shares: pixel boxes and the metric depths a disparity map stands for.

They sit below ``io``, ``lens`` and ``metrics`` so that those depend on this module and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

__all__ = ["DepthRange", "parse_box"]


@dataclass(frozen=True)
class DepthRange:
    """Metric depths (in metres) that disparity 1 and 0 stand for: ``near`` at 1, ``far`` at 0.

    Disparity ``d`` means inverse depth ``1/z = 1/far + d * (1/near - 1/far)``.
    """

    near: float
    far: float

    def depth(self, disparity: float) -> float:
        inv = 1.0 / self.far + disparity * (1.0 / self.near - 1.0 / self.far)
        return float("inf") if inv <= 0 else 1.0 / inv

    def disparity(self, depth: float) -> float:
        return (1.0 / depth - 1.0 / self.far) / (1.0 / self.near - 1.0 / self.far)


def parse_box(box, shape, *, argument: str = "box") -> tuple[int, int, int, int]:
    """Check ``box = (x0, y0, x1, y1)`` (pixels, x1/y1 exclusive) against ``shape = (H, W)``."""
    try:
        x0, y0, x1, y1 = (round(float(v)) for v in box)
    except (TypeError, ValueError):
        raise InputError(argument, expected="four numbers x0,y0,x1,y1", got=box, fix="e.g. box=(100, 120, 300, 400)")
    h, w = shape
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InputError(argument, expected=f"x0 < x1 <= {w} and y0 < y1 <= {h} (inside the {w}x{h} image)",
                         got=f"{x0},{y0},{x1},{y1}", fix="pick a box inside the image")
    return x0, y0, x1, y1
