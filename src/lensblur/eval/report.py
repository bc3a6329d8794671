"""Markdown tables shaped like the papers': one row per (dataset, method) run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["collect_summaries", "markdown_table"]

_HEADERS = (("psnr", "PSNR↑", 3), ("ssim", "SSIM↑", 4), ("lpips", "LPIPS↓", 4), ("dists", "DISTS↓", 4),
            ("psnr_edge", "PSNR edge↑", 3))


def _cell(value: Any, digits: int, notes: list[str]) -> str:
    """A score, or ``n/a`` with a footnote mark when the value explains why it is missing."""
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    text = str(value)
    if text.startswith("n/a (") and text.endswith(")"):
        reason = text[len("n/a ("):-1]
        if reason not in notes:
            notes.append(reason)
        return f"n/a[^{notes.index(reason) + 1}]"
    return text


def markdown_table(summaries: list[dict[str, Any]]) -> str:
    """A Markdown table of the runs' mean scores (columns: the papers' PSNR, SSIM, LPIPS, DISTS, plus
    PSNR on the depth-edge band; ``n/a`` where a score does not apply, and ``n/a[^N]`` with one footnote per
    reason where the reason is known, e.g. missing weights).

    Args:
        summaries: run summaries as :func:`~lensblur.eval.summarize` returns them.

    Returns:
        The table, one row per run sorted by dataset then method, ending in a newline.
    """
    lines = ["| dataset | method | images | " + " | ".join(h for _, h, _ in _HEADERS) + " | s/image | scored with |",
             "|---|---|---:|" + "---:|" * len(_HEADERS) + "---:|---|"]
    notes: list[str] = []
    for s in sorted(summaries, key=lambda s: (s["dataset"], s["method"])):
        metrics = s["metrics"]
        protocol = s.get("config", {}).get("options", {}).get("align_exposure")
        aligned = f" (exposure-aligned, {protocol})" if isinstance(protocol, str) else \
            " (exposure-aligned)" if protocol else ""
        seconds = s.get("seconds_per_image")
        cells = [_cell(metrics.get(key, "n/a"), digits, notes) for key, _, digits in _HEADERS]
        timing = f"{seconds:.2f}" if seconds is not None else ""
        lines.append(f"| {s['dataset']}{aligned} | {s['method']} | {s['images']} | " + " | ".join(cells)
                     + f" | {timing} | {_protocol(s)} |")
    if notes:
        lines.append("")
        lines += [f"[^{i}]: {reason}" for i, reason in enumerate(notes, 1)]
    return "\n".join(lines) + "\n"


def _protocol(summary: dict[str, Any]) -> str:
    """How a run was scored: the SSIM variant and the perceptual networks."""
    options = summary.get("config", {}).get("options", {})
    perceptual = summary.get("config", {}).get("perceptual", {})
    parts = [f"{options.get('display', 'srgb8')} values", f"SSIM {options.get('ssim', 'gaussian')}"]
    parts += [str(name) for name in perceptual.values() if not str(name).startswith("n/a")]
    return ", ".join(parts)


def collect_summaries(results_dir) -> list[dict[str, Any]]:
    """Every ``*/summary.json`` directly under ``results_dir``.

    Args:
        results_dir: a folder of run folders.

    Returns:
        The summaries, in folder-name order; unreadable files are skipped.
    """
    out = []
    for path in sorted(Path(results_dir).glob("*/summary.json")):
        try:
            out.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return out
