"""``training_curves.png``: the losses against kimg, drawn with Pillow (no plotting library)."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pgtools.png import save_png

WIDTH, HEIGHT = 900, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 30, 45
SERIES = (("D/loss", (200, 40, 40)), ("G/loss", (40, 90, 200)))


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def _range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 1.0, high + 1.0
    pad = 0.05 * (high - low)
    return low - pad, high + pad


def draw_curves(history: list[dict], path: str | os.PathLike) -> None:
    """Plot D and G loss per tick (``history``: dicts with ``kimg`` and the series' keys) with a
    grey band for every resolution (key ``resolution``); writes ``path`` atomically."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    points = [(h["kimg"], h[key], colour) for h in history for key, colour in SERIES
              if isinstance(h.get(key), (int, float)) and math.isfinite(h[key])]
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = WIDTH - MARGIN_RIGHT, HEIGHT - MARGIN_BOTTOM
    draw.rectangle([left, top, right, bottom], outline="black")
    if points:
        x_low, x_high = 0.0, max(max(p[0] for p in points), 1e-9)
        y_low, y_high = _range([p[1] for p in points])

        def to_xy(kimg: float, value: float) -> tuple[float, float]:
            return (left + (right - left) * (kimg - x_low) / (x_high - x_low),
                    bottom - (bottom - top) * (value - y_low) / (y_high - y_low))

        _resolution_bands(draw, history, to_xy, top, bottom, font)
        for value in _ticks(y_low, y_high):
            _, y = to_xy(x_low, value)
            draw.line([left - 4, y, left, y], fill="black")
            draw.text((4, y - 6), f"{value:.3g}", fill="black", font=font)
        for kimg in _ticks(x_low, x_high):
            x, _ = to_xy(kimg, y_low)
            draw.line([x, bottom, x, bottom + 4], fill="black")
            draw.text((x - 12, bottom + 8), f"{kimg:.4g}", fill="black", font=font)
        for key, colour in SERIES:
            line = [to_xy(h["kimg"], h[key]) for h in history
                    if isinstance(h.get(key), (int, float)) and math.isfinite(h[key])]
            if len(line) > 1:
                draw.line(line, fill=colour, width=2)
            elif line:
                x, y = line[0]
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    draw.text((left, 8), "training losses per tick", fill="black", font=font)
    draw.text(((left + right) // 2 - 15, HEIGHT - 18), "kimg", fill="black", font=font)
    for i, (key, colour) in enumerate(SERIES):
        draw.line([right - 150 + 75 * i, 14, right - 130 + 75 * i, 14], fill=colour, width=3)
        draw.text((right - 126 + 75 * i, 8), key, fill="black", font=font)
    save_png(np.asarray(image), path)


def _resolution_bands(draw: ImageDraw.ImageDraw, history: list[dict], to_xy, top: float, bottom: float,
                      font) -> None:
    """Alternate light bands where the working resolution stays the same, labelled with it."""
    spans: list[list] = []
    for h in history:
        if spans and spans[-1][2] == h.get("resolution"):
            spans[-1][1] = h["kimg"]
        else:
            start = spans[-1][1] if spans else 0.0
            spans.append([start, h["kimg"], h.get("resolution")])
    for i, (start, stop, resolution) in enumerate(spans):
        x0, _ = to_xy(start, 0.0)
        x1, _ = to_xy(stop, 0.0)
        if i % 2:
            draw.rectangle([x0, top + 1, x1, bottom - 1], fill=(238, 238, 238))
        if resolution:
            draw.text((x0 + 3, top + 3), str(resolution), fill=(120, 120, 120), font=font)
