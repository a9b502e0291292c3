"""Writing uint8 images as PNG (or JPEG) files, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from pgtools.atomic import atomic_output
from pgtools.errors import PgtoolsError


def to_pil(image: np.ndarray) -> Image.Image:
    """A Pillow image from uint8 (C, H, W) or (H, W, C) with C in {1, 3}; (H, W) is grayscale."""
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[2] not in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(image))


FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # what save_image writes, by extension


def image_format(path: str | os.PathLike) -> str:
    """``PNG`` or ``JPEG`` as ``path``'s extension says; any other extension is refused."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise PgtoolsError(f"{path}: cannot tell the image format from {suffix or 'no extension'!r}; "
                           f"name it {', '.join(FORMATS)}")
    return FORMATS[suffix]


def save_png(image: np.ndarray, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``image`` (see :func:`to_pil`) to ``path`` as PNG via a temporary file."""
    return _save(image, path, "PNG", overwrite)


def save_image(image: np.ndarray, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write ``image`` as PNG or JPEG (quality 95, no chroma subsampling) as its extension says."""
    return _save(image, path, image_format(path), overwrite)


def _save(image: np.ndarray, path: str | os.PathLike, image_format: str, overwrite: bool) -> Path:
    options = {"quality": 95, "subsampling": 0} if image_format == "JPEG" else {}
    with atomic_output(path, overwrite=overwrite) as temp:
        to_pil(image).save(temp, format=image_format, **options)
    return Path(path)
