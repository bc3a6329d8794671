"""Contact sheets: a grid of images with a caption over each column and beside each row, as one PNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .files import atomic_path

__all__ = ["contact_sheet"]

# Height of the caption band over the columns and width of the one beside the rows, in pixels.
CAPTION_HEIGHT = 14
ROW_CAPTION_WIDTH = 110


def contact_sheet(rows: list[list], path: str | os.PathLike, *, column_titles: list[str] | None = None,
                  row_titles: list[str] | None = None, gap: int = 4) -> Path:
    """Write images ``rows[r][c]`` as one PNG grid on white, captioned, whole or not at all.

    Args:
        rows: the grid, row by row; each image a PIL image or an ``H x W x 3`` ``uint8`` array (sRGB codes,
            e.g. from :func:`lensblur._convert.to_srgb8`), all of one size.
        path: the PNG to write.
        column_titles: a caption over each column (cut to fit), or ``None``.
        row_titles: a caption beside each row, or ``None``.
        gap: white pixels between images.

    Returns:
        ``path``.
    """
    from PIL import Image, ImageDraw

    rows = [[Image.fromarray(np.asarray(im)) if isinstance(im, np.ndarray) else im for im in row] for row in rows]
    width, height = rows[0][0].size
    label_h = CAPTION_HEIGHT if column_titles else 0
    label_w = ROW_CAPTION_WIDTH if row_titles and any(row_titles) else 0
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (label_w + cols * (width + gap) + gap, label_h + len(rows) * (height + gap) + gap),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(column_titles or ()):
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
