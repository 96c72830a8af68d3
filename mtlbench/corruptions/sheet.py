"""A contact sheet: one image under several corruptions and severities, as one labelled RGB grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mtlbench.corruptions import corrupt

GAP = 4  # between thumbnails
MARGIN = 6  # around labels
BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)


def contact_sheet(image: np.ndarray, names: Sequence[str], severities: Sequence[int], seed: int, thumb_width: int = 192) -> np.ndarray:
    """An (H, W, 3) uint8 grid: one row per corruption, columns the clean image then each severity,
    with the corruption names on the left and the column titles on top.

    Each cell is corrupted at the image's own resolution, as a dataset holds it, and then shrunk,
    so fine per-pixel noise fades in the thumbnails as it would when viewing the frame that small;
    pass a smaller image to see it, or for a quicker sheet. Every cell uses `seed`.
    """
    font = ImageFont.load_default()
    titles = ["clean", *(f"severity {severity}" for severity in severities)]
    thumb_height = max(1, round(image.shape[0] * thumb_width / image.shape[1]))
    label_width = max(_text_size(font, name)[0] for name in names) + 2 * MARGIN
    header_height = max(_text_size(font, title)[1] for title in titles) + 2 * MARGIN
    sheet = Image.new(
        "RGB",
        (label_width + len(titles) * (thumb_width + GAP), header_height + len(names) * (thumb_height + GAP)),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    column_left = [label_width + column * (thumb_width + GAP) for column in range(len(titles))]
    for left, title in zip(column_left, titles):
        draw.text((left + thumb_width / 2, header_height / 2), title, fill=INK, font=font, anchor="mm")

    def thumbnail(cell: np.ndarray) -> Image.Image:
        return Image.fromarray(cell).resize((thumb_width, thumb_height), Image.Resampling.LANCZOS)

    clean = thumbnail(image)
    for row, name in enumerate(names):
        top = header_height + row * (thumb_height + GAP)
        draw.text((MARGIN, top + thumb_height / 2), name, fill=INK, font=font, anchor="lm")
        sheet.paste(clean, (column_left[0], top))
        for left, severity in zip(column_left[1:], severities):
            sheet.paste(thumbnail(corrupt(image, name, severity, seed)), (left, top))
    return np.asarray(sheet)


def _text_size(font: ImageFont.ImageFont | ImageFont.FreeTypeFont, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom - top)
