"""Drawing for the lab's IMAGE outputs: line charts, labelled image grids and text bands, with PIL only.

Every function returns a PIL image; `as_image` turns one into an IMAGE batch [1, H, W, 3].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
GRID_LINE = (225, 225, 225)
# Tableau's ten colours: distinct, and readable on white.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
LABEL_BAND = 24  # pixels of a grid's label row / column


def font(size: int = 12) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def as_image(picture: Image.Image) -> Tensor:
    """A PIL image as an IMAGE batch [1, H, W, 3] in 0..1."""
    return torch.from_numpy(np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0)[None]


@dataclass(frozen=True)
class Series:
    """One line of a chart: its label and points (NaN or infinite points are left out)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [first + k * step for k in range(int(math.ceil((high - first) / step)) + 1)]


def axis_ticks(low: float, high: float, log: bool) -> list[float]:
    """Round ticks; on a log axis spanning a decade or more, whole decades."""
    if log and high - low >= 1:
        return [float(k) for k in range(math.floor(low), math.ceil(high) + 1)]
    return nice_ticks(low, high)


def tick_label(value: float) -> str:
    return f"{value:.3g}"


def plotted(value: float, log: bool) -> float | None:
    """A value's position on its axis (log10 on a log axis); None for what cannot be drawn there."""
    if not math.isfinite(value) or (log and value <= 0):
        return None
    return math.log10(value) if log else value


def line_chart(series: Sequence[Series], title: str, x_label: str, y_label: str, size: tuple[int, int] = (480, 320),
               log_x: bool = False, log_y: bool = False) -> Image.Image:
    """Lines with markers on labelled axes (optionally logarithmic), a legend and a title."""
    width, height = size
    left, right, top, bottom = 56, 12, 28, 40
    picture = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(picture)
    points = [[(px, py) for px, py in ((plotted(x, log_x), plotted(y, log_y)) for x, y in zip(s.xs, s.ys))
               if px is not None and py is not None] for s in series]
    flat = [p for line in points for p in line] or [(0.0, 0.0)]
    x_ticks = axis_ticks(min(p[0] for p in flat), max(p[0] for p in flat), log_x)
    y_ticks = axis_ticks(min(p[1] for p in flat), max(p[1] for p in flat), log_y)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (width - left - right),
                height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom))

    for y in y_ticks:
        _, py = at(x0, y)
        draw.line([(left, py), (width - right, py)], fill=GRID_LINE)
        draw.text((left - 4, py), tick_label(10**y if log_y else y), fill=INK, font=font(10), anchor="rm")
    for x in x_ticks:
        px, _ = at(x, y0)
        draw.line([(px, top), (px, height - bottom)], fill=GRID_LINE)
        draw.text((px, height - bottom + 4), tick_label(10**x if log_x else x), fill=INK, font=font(10), anchor="mt")
    draw.rectangle([left, top, width - right, height - bottom], outline=INK)
    for k, line in enumerate(points):
        colour = PALETTE[k % len(PALETTE)]
        pixels = [at(x, y) for x, y in line]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for px, py in pixels:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        draw.text((width - right - 6, top + 6 + 14 * k), series[k].label, fill=colour, font=font(11), anchor="ra")
    draw.text((width / 2, 6), title, fill=INK, font=font(13), anchor="ma")
    draw.text((width / 2, height - 6), x_label, fill=INK, font=font(11), anchor="md")
    draw.text((4, top - 4), y_label, fill=INK, font=font(11), anchor="ld")
    return picture


def side_by_side(pictures: Sequence[Image.Image]) -> Image.Image:
    """Pictures in one row, top-aligned."""
    out = Image.new("RGB", (sum(p.width for p in pictures), max(p.height for p in pictures)), BACKGROUND)
    x = 0
    for p in pictures:
        out.paste(p, (x, 0))
        x += p.width
    return out


def labelled_grid(images: Tensor, rows: int, columns: int, row_labels: Sequence[str],
                  column_labels: Sequence[str], captions: Sequence[str] = (), title: str = "") -> Image.Image:
    """IMAGE cells [rows * columns, H, W, 3] (row-major) in a grid, column labels above, row labels left.

    `captions`, one per cell, are written on a band under each cell; `title` on a band above all.
    """
    height, width = images.shape[1:3]
    caption_band = LABEL_BAND if captions else 0
    top = LABEL_BAND * (2 if title else 1)
    label_width = max([LABEL_BAND] + [int(font().getlength(text)) + 12 for text in row_labels])
    out = Image.new("RGB", (label_width + columns * width, top + rows * (height + caption_band)), BACKGROUND)
    draw = ImageDraw.Draw(out)
    cells = (images.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()
    for index in range(rows * columns):
        r, c = divmod(index, columns)
        x, y = label_width + c * width, top + r * (height + caption_band)
        out.paste(Image.fromarray(cells[index]), (x, y))
        if captions:
            draw.text((x + width / 2, y + height + caption_band / 2), captions[index], fill=INK, font=font(10),
                      anchor="mm")
    if title:
        draw.text((out.width / 2, LABEL_BAND / 2), title, fill=INK, font=font(13), anchor="mm")
    for c, text in enumerate(column_labels):
        draw.text((label_width + (c + 0.5) * width, top - LABEL_BAND / 2), text, fill=INK, font=font(), anchor="mm")
    for r, text in enumerate(row_labels):
        draw.text((label_width - 6, top + r * (height + caption_band) + height / 2), text, fill=INK,
                  font=font(), anchor="rm")
    return out
