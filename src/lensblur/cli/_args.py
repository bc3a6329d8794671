"""Small parsers shared by the subcommands, so that every command reads a box or a size the same way."""

from __future__ import annotations

import argparse

__all__ = ["box", "numbers", "point", "size"]


def numbers(text: str, count: int, what: str) -> tuple[float, ...]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return values


def point(text: str) -> tuple[float, float]:
    """``X,Y`` in pixels."""
    return numbers(text, 2, "a point X,Y in pixels (e.g. 812,430)")


def box(text: str) -> tuple[float, float, float, float]:
    """``X0,Y0,X1,Y1`` in pixels, X1/Y1 exclusive."""
    return numbers(text, 4, "a box X0,Y0,X1,Y1 in pixels (e.g. 100,120,300,400)")


def size(text: str) -> tuple[int, int]:
    """``WxH``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size WxH such as 512x384, got {text!r}")
    return w, h
