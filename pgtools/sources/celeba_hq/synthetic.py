"""Drawn stand-ins for CelebA photos, for the bundled sample, the tests and the benchmark.

Each photo is a smooth background with a simple face (skin ellipse, eyes, nose, mouth) whose five
landmarks are known exactly; files and landmarks are written in CelebA's layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFilter

from pgtools.sources.celeba_hq.inputs import LANDMARK_COLUMNS


@dataclass(frozen=True)
class Face:
    """Where one drawn face sits in its photo."""

    width: int  # photo size in pixels
    height: int
    cx: float  # point between the eyes
    cy: float
    eye_dist: float  # distance between the eye centres, pixels
    angle: float = 0.0  # head tilt, degrees (counter-clockwise in the image)


def _frame(face: Face):
    """Map face-local coordinates (unit = eye distance, y down) to photo coordinates."""
    cos, sin = math.cos(math.radians(-face.angle)), math.sin(math.radians(-face.angle))

    def to_photo(u: float, v: float) -> tuple[float, float]:
        u, v = u * face.eye_dist, v * face.eye_dist
        return face.cx + u * cos - v * sin, face.cy + u * sin + v * cos

    return to_photo


def _ellipse(to_photo, u: float, v: float, ru: float, rv: float) -> list[tuple[float, float]]:
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    return [to_photo(u + ru * math.cos(a), v + rv * math.sin(a)) for a in angles]


def draw_face(face: Face, seed: int) -> tuple[PIL.Image.Image, np.ndarray]:
    """Draw one RGB photo; return it and its integer landmarks (5, 2) in CelebA's point order."""
    rng = np.random.default_rng(seed)
    low, high = rng.integers(30, 220, size=(2, 3))
    ramp = PIL.Image.linear_gradient("L").resize((face.width, face.height), PIL.Image.Resampling.BILINEAR)
    channels = [ramp.point([int(lo + (hi - lo) * v / 255) for v in range(256)]) for lo, hi in zip(low, high)]
    img = PIL.Image.merge("RGB", channels)
    draw = PIL.ImageDraw.Draw(img)
    to_photo = _frame(face)
    skin = tuple(int(c) for c in rng.integers((190, 140, 110), (245, 200, 170)))
    draw.polygon(_ellipse(to_photo, 0.0, 0.55, 1.05, 1.45), fill=skin)
    for side in (-0.5, 0.5):
        draw.polygon(_ellipse(to_photo, side, 0.0, 0.22, 0.11), fill=(245, 245, 245))
        draw.polygon(_ellipse(to_photo, side, 0.0, 0.08, 0.08), fill=(40, 30, 20))
    draw.polygon([to_photo(0.0, 0.15), to_photo(-0.15, 0.55), to_photo(0.15, 0.55)], fill=tuple(c - 40 for c in skin))
    draw.polygon(_ellipse(to_photo, 0.0, 0.95, 0.42, 0.1), fill=(170, 50, 60))
    img = img.filter(PIL.ImageFilter.GaussianBlur(max(face.eye_dist / 60, 0.6)))
    points = [to_photo(-0.5, 0.0), to_photo(0.5, 0.0), to_photo(0.0, 0.5), to_photo(-0.42, 0.95), to_photo(0.42, 0.95)]
    return img, np.rint(np.array(points)).astype(np.int64)


def write_celeba(celeba_dir: str | Path, faces: Sequence[Face], *, seed: int = 0, quality: int = 90) -> list[str]:
    """Write ``img_celeba/000001.jpg``… (4:2:0 JPEG) and ``Anno/list_landmarks_celeba.txt``.

    Returns the file names in landmarks-row order (row i is original index i).
    """
    celeba_dir = Path(celeba_dir)
    (celeba_dir / "img_celeba").mkdir(parents=True, exist_ok=True)
    (celeba_dir / "Anno").mkdir(parents=True, exist_ok=True)
    names, rows = [], []
    for i, face in enumerate(faces):
        name = "%06d.jpg" % (i + 1)
        img, points = draw_face(face, seed + i)
        img.save(celeba_dir / "img_celeba" / name, quality=quality, subsampling="4:2:0")
        names.append(name)
        rows.append(name + "".join("%6d" % value for value in points.ravel()))
    text = f"{len(faces)}\n{' '.join(LANDMARK_COLUMNS)} \n" + "\n".join(rows) + "\n"
    (celeba_dir / "Anno" / "list_landmarks_celeba.txt").write_text(text, encoding="ascii")
    return names


def smooth_target(proc: np.ndarray, seed: int, amplitude: float = 24.0) -> np.ndarray:
    """A final image for ``proc``: proc plus a smooth signed perturbation, clipped to uint8."""
    rng = np.random.default_rng(seed)
    size = proc.shape[-1]
    coords = np.arange(size, dtype=np.float64) / size
    fx, fy, phase = rng.uniform(1, 4, size=(3, proc.shape[0]))
    wave = np.sin(2 * np.pi * (fx[:, None, None] * coords[None, None, :] + phase[:, None, None]))
    wave = wave * np.cos(2 * np.pi * fy[:, None, None] * coords[None, :, None])
    return np.clip(proc + np.rint(amplitude * wave), 0, 255).astype(np.uint8)
