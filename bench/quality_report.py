"""The quality benchmark's curves and sample sheet, drawn with Pillow (no plotting library)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pgtools.inspection import contact_sheet
from pgtools.png import save_png

COLOURS = ((40, 90, 200), (200, 60, 40), (30, 150, 60))
PANEL_W, PANEL_H, MARGIN = 460, 300, 55


@dataclass
class Curve:
    """One trainer's judged snapshots (kimg, wall seconds, swd, inception_score, confident)."""

    name: str
    points: list[dict] = field(default_factory=list)
    samples: np.ndarray | None = None  # uint8 (N, 1, r, r) of the last snapshot

    def add(self, **point) -> None:
        self.points.append(point)

    def format_last(self) -> str:
        p = self.points[-1]
        return (f"{self.name} kimg {p['kimg']:.1f}, {p['seconds']:.0f} s: SWD {p['swd']:.2f}, "
                f"IS {p['inception_score']:.2f}, confident {p['confident'] * 100:.1f}%")


def _panel(draw: ImageDraw.ImageDraw, origin: tuple[int, int], curves: list[Curve], x_key: str, y_key: str,
           *, title: str, x_scale: float = 1.0, log: bool = False, reference: float | None = None) -> None:
    """Axes at ``origin`` with one line per curve; ``reference`` is drawn as a grey dashed line."""
    font = ImageFont.load_default()
    left, top = origin[0] + MARGIN, origin[1] + 25
    right, bottom = origin[0] + PANEL_W - 10, origin[1] + PANEL_H - 30
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text((left, origin[1] + 6), title, fill="black", font=font)
    y_of = (lambda v: math.log10(max(v, 1e-6))) if log else (lambda v: v)
    values = [y_of(p[y_key]) for c in curves for p in c.points] + ([y_of(reference)] if reference else [])
    xs = [p[x_key] * x_scale for c in curves for p in c.points]
    if not values:
        return
    x_high = max(max(xs), 1e-9)
    y_low, y_high = min(values), max(values)
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 1, y_high + 1
    y_low, y_high = y_low - 0.05 * (y_high - y_low), y_high + 0.05 * (y_high - y_low)

    def to_xy(x: float, y: float) -> tuple[float, float]:
        return (left + (right - left) * x / x_high, bottom - (bottom - top) * (y_of(y) - y_low) / (y_high - y_low))

    for i in range(5):
        y_value = y_low + (y_high - y_low) * i / 4
        shown = 10 ** y_value if log else y_value
        y = bottom - (bottom - top) * i / 4
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((origin[0] + 4, y - 6), f"{shown:.3g}", fill="black", font=font)
        x = left + (right - left) * i / 4
        draw.line([x, bottom, x, bottom + 4], fill="black")
        draw.text((x - 10, bottom + 7), f"{x_high * i / 4:.3g}", fill="black", font=font)
    if reference:
        _, y = to_xy(0, reference)
        for x in range(int(left), int(right), 12):
            draw.line([x, y, min(x + 6, right), y], fill=(150, 150, 150), width=1)
    for curve, colour in zip(curves, COLOURS):
        line = [to_xy(p[x_key] * x_scale, p[y_key]) for p in curve.points]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for x, y in line:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)


def draw_quality_curves(curves: list[Curve], swd_floor: float, is_ceiling: float, path: str | os.PathLike) -> None:
    """SWD (log scale) and the inception-style score against kimg and wall minutes, 2 x 2 panels."""
    image = Image.new("RGB", (2 * PANEL_W, 2 * PANEL_H + 30), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for row, (key, name, log, reference) in enumerate((("swd", "SWD x1e3 (log; dashed: reals vs reals)", True, swd_floor),
                                                      ("inception_score", "digit-judge score (dashed: reals)", False, is_ceiling))):
        for column, (x_key, x_name, scale) in enumerate((("kimg", "kimg", 1.0), ("seconds", "wall minutes", 1 / 60))):
            _panel(draw, (column * PANEL_W, row * PANEL_H), curves, x_key, key, title=f"{name} vs {x_name}",
                   x_scale=scale, log=log, reference=reference)
    for i, (curve, colour) in enumerate(zip(curves, COLOURS)):
        x = MARGIN + 150 * i
        draw.line([x, 2 * PANEL_H + 15, x + 20, 2 * PANEL_H + 15], fill=colour, width=3)
        draw.text((x + 25, 2 * PANEL_H + 9), curve.name, fill="black", font=font)
    save_png(np.asarray(image), path)


def draw_samples(reals: np.ndarray, fakes: list[tuple[str, np.ndarray]], path: str | os.PathLike,
                 zoom: int = 3) -> None:
    """8 x 8 sheets of reals and of each trainer's samples side by side, captioned, enlarged ``zoom`` x."""
    sets = [("reals", reals)] + fakes
    sheets = [contact_sheet(images[:64], 8, gap=1).repeat(zoom, 0).repeat(zoom, 1) for _, images in sets]
    height, width = sheets[0].shape[:2]
    image = Image.new("L", (len(sheets) * (width + 20) + 20, height + 40), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for i, ((name, _), sheet) in enumerate(zip(sets, sheets)):
        x = 20 + i * (width + 20)
        image.paste(Image.fromarray(sheet[:, :, 0]), (x, 30))
        draw.text((x, 10), name, fill=0, font=font)
    save_png(np.asarray(image), path)
