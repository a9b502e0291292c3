"""Latent walks: interpolating between random latents, written as PNG frames or an MP4 video."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
import torch
from torch import Tensor

from pgtools.atomic import check_target, output_folder
from pgtools.errors import PgtoolsError
from pgtools.png import save_png

METHODS = ("slerp", "lerp")


def lerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Straight line from ``a`` (t = 0) to ``b`` (t = 1)."""
    return a + (b - a) * t


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation of two vectors (along the great circle, norms blended linearly);
    falls back to :func:`lerp` for (nearly) parallel vectors."""
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def latent_walk(keyframes: Tensor, frames_per_segment: int, *, method: str = "slerp", loop: bool = False) -> Tensor:
    """Latents (frames, dim) passing through each row of ``keyframes`` (K, dim) in turn.

    Each segment has ``frames_per_segment`` frames; the last keyframe ends the walk unless
    ``loop``, which returns to the first (so the clip repeats seamlessly).
    """
    if method not in METHODS:
        raise PgtoolsError(f"unknown interpolation {method!r}; choose {' or '.join(METHODS)}")
    if len(keyframes) < 2 or frames_per_segment < 1:
        raise PgtoolsError("a latent walk needs at least 2 keyframes and 1 frame per segment")
    blend = slerp if method == "slerp" else lerp
    points = torch.cat([keyframes, keyframes[:1]]) if loop else keyframes
    out = [blend(points[i], points[i + 1], step / frames_per_segment)
           for i in range(len(points) - 1) for step in range(frames_per_segment)]
    if not loop:
        out.append(points[-1])
    return torch.stack(out)


def write_frames(frames: Iterable[np.ndarray], folder: str | os.PathLike, *, name: str = "frame",
                 overwrite: bool = False, progress: Callable[[int], None] | None = None) -> int:
    """Write uint8 (C, H, W) images as ``<name>000000.png``, ... into a folder, each file atomically.

    Refuses a folder already holding ``<name>NNNNNN.png`` files unless ``overwrite``; never
    touches anything else in it.
    """
    folder = output_folder(folder, rf"{re.escape(name)}\d{{6}}\.png", overwrite=overwrite)
    count = 0
    for count, frame in enumerate(frames, 1):
        save_png(frame, folder / f"{name}{count - 1:06d}.png")
        if progress is not None:
            progress(1)
    return count


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, *, fps: float = 30.0,
                overwrite: bool = False, progress: Callable[[int], None] | None = None) -> int:
    """Write uint8 (C, H, W) frames as an MP4 (OpenCV, 'mp4v'), via a temporary file."""
    path = Path(path)
    check_target(path, overwrite)
    temp = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer, count = None, 0
    try:
        for frame in frames:
            image = np.ascontiguousarray(frame.transpose(1, 2, 0))
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.shape[2] == 1 else cv2.COLOR_RGB2BGR)
            if writer is None:
                writer = cv2.VideoWriter(str(temp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (image.shape[1], image.shape[0]))
                if not writer.isOpened():
                    raise PgtoolsError(f"{path}: OpenCV cannot open an MP4 writer with the 'mp4v' codec here; "
                                       "give a folder instead of a .mp4 name to write PNG frames")
            writer.write(image)
            count += 1
            if progress is not None:
                progress(1)
        if writer is not None:
            writer.release()
            writer = None
            os.replace(temp, path)
    finally:
        if writer is not None:
            writer.release()
        temp.unlink(missing_ok=True)
    return count
