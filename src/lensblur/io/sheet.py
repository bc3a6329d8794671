"""Contact sheets: a grid of generated images with a caption over each column and row."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_path

__all__ = ["contact_sheet"]


def contact_sheet(rows: list[list], path, *, column_titles: list[str], row_titles: list[str], gap: int = 4):
    """Write PIL images ``rows[r][c]`` as one PNG grid with captions; all images must have one size."""
    from PIL import Image, ImageDraw

    width, height = rows[0][0].size
    label_h, label_w = 14, 0 if not any(row_titles) else 110
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (label_w + cols * (width + gap) + gap, label_h + len(rows) * (height + gap) + gap),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(column_titles):
        draw.text((label_w + gap + c * (width + gap), 1), title[: max(4, width // 6)], fill="black")
    for r, row in enumerate(rows):
        y = label_h + gap + r * (height + gap)
        if label_w:
            draw.text((2, y + 2), row_titles[r][:18], fill="black")
        for c, image in enumerate(row):
            sheet.paste(image.convert("RGB"), (label_w + gap + c * (width + gap), y))
    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
