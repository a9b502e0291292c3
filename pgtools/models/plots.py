"""``training_curves.png``: the losses against kimg and, below them, the metrics evaluated during
training, drawn with Pillow (no plotting library)."""

from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pgtools.png import save_png

WIDTH, HEIGHT, METRIC_HEIGHT = 900, 420, 260  # the losses panel, then one panel per metric
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 30, 45
LOSSES = (("D/loss", (200, 40, 40)), ("G/loss", (40, 90, 200)))
# Per metric: its panel title and the lines drawn from each evaluation's result.
METRIC_LINES: dict[str, tuple[str, tuple[tuple[str, Callable[[dict], float], tuple], ...]]] = {
    "swd": ("SWD x1e3 (lower is closer to the reals)", (("average", lambda r: r["average"], (30, 140, 60)),)),
    "ms-ssim": ("MS-SSIM (fakes near the reals' value: as varied as the data)",
                (("fakes", lambda r: r["fakes"], (150, 60, 170)), ("reals", lambda r: r["reals"], (150, 150, 150)))),
}

Series = tuple[str, tuple, list[tuple[float, float]]]  # label, colour, (kimg, value) points


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def _range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 1.0, high + 1.0
    pad = 0.05 * (high - low)
    return low - pad, high + pad


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def draw_curves(history: list[dict], path: str | os.PathLike, metrics: list[dict] = ()) -> None:
    """Plot D and G loss per tick (``history``: dicts with ``kimg`` and the losses' keys) with a
    grey band for every resolution (key ``resolution``), and below it one panel per metric of
    ``metrics`` (records with ``kimg`` and ``metrics``: name -> result); writes ``path`` atomically."""
    names = list(dict.fromkeys(name for record in metrics for name in record["metrics"] if name in METRIC_LINES))
    image = Image.new("RGB", (WIDTH, HEIGHT + METRIC_HEIGHT * len(names)), "white")
    draw = ImageDraw.Draw(image)
    x_high = max([h["kimg"] for h in history] + [r["kimg"] for r in metrics] + [1e-9])
    losses = [(key, colour, [(h["kimg"], h[key]) for h in history if _finite(h.get(key))]) for key, colour in LOSSES]
    _panel(draw, 0, HEIGHT, "training losses per tick", losses, history, x_high)
    for i, name in enumerate(names):
        title, lines = METRIC_LINES[name]
        series = [(label, colour, [(r["kimg"], value(r["metrics"][name])) for r in metrics if name in r["metrics"]])
                  for label, value, colour in lines]
        _panel(draw, HEIGHT + i * METRIC_HEIGHT, METRIC_HEIGHT, title, series, history, x_high)
    save_png(np.asarray(image), path)


def _panel(draw: ImageDraw.ImageDraw, y0: int, height: int, title: str, series: list[Series],
           history: list[dict], x_high: float) -> None:
    """One framed plot in the rows ``y0 .. y0 + height`` of the image: resolution bands, axes, lines."""
    font = ImageFont.load_default()
    left, top = MARGIN_LEFT, y0 + MARGIN_TOP
    right, bottom = WIDTH - MARGIN_RIGHT, y0 + height - MARGIN_BOTTOM
    draw.rectangle([left, top, right, bottom], outline="black")
    values = [value for _, _, points in series for _, value in points if math.isfinite(value)]
    if values:
        y_low, y_high = _range(values)

        def to_xy(kimg: float, value: float) -> tuple[float, float]:
            return (left + (right - left) * kimg / x_high, bottom - (bottom - top) * (value - y_low) / (y_high - y_low))

        _resolution_bands(draw, history, to_xy, top, bottom, font)
        for value in _ticks(y_low, y_high):
            _, y = to_xy(0.0, value)
            draw.line([left - 4, y, left, y], fill="black")
            draw.text((4, y - 6), f"{value:.3g}", fill="black", font=font)
        for kimg in _ticks(0.0, x_high):
            x, _ = to_xy(kimg, y_low)
            draw.line([x, bottom, x, bottom + 4], fill="black")
            draw.text((x - 12, bottom + 8), f"{kimg:.4g}", fill="black", font=font)
        for _, colour, points in series:
            line = [to_xy(kimg, value) for kimg, value in points if math.isfinite(value)]
            if len(line) > 1:
                draw.line(line, fill=colour, width=2)
            for x, y in line if len(line) < 20 else line[-1:]:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    draw.text((left, y0 + 8), title, fill="black", font=font)
    draw.text(((left + right) // 2 - 15, y0 + height - 18), "kimg", fill="black", font=font)
    for i, (label, colour, _) in enumerate(series):
        draw.line([right - 150 + 75 * i, y0 + 14, right - 130 + 75 * i, y0 + 14], fill=colour, width=3)
        draw.text((right - 126 + 75 * i, y0 + 8), label, fill="black", font=font)


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
