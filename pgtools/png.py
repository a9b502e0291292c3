"""Writing uint8 images as PNG files, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from pgtools.atomic import atomic_output


def to_pil(image: np.ndarray) -> Image.Image:
    """A Pillow image from uint8 (C, H, W) or (H, W, C) with C in {1, 3}; (H, W) is grayscale."""
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[2] not in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(image))


def save_png(image: np.ndarray, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``image`` (see :func:`to_pil`) to ``path`` via a temporary file."""
    with atomic_output(path, overwrite=overwrite) as temp:
        to_pil(image).save(temp, format="PNG")
    return Path(path)
