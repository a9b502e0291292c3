"""create_custom: a folder of square power-of-two grayscale or RGB images, taken as they are.

Every file in the folder is used, sorted by name (hidden files are skipped, as ``glob`` does). The
first image fixes the resolution and the channels; every header is checked before any decoding.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.pyramid import is_power_of_two
from pgtools.sources import Source
from pgtools.sources.images import (
    ACCEPTED, channels_first, check_alike, decode_files, list_files, load_pixels, scan_headers,
)


def load_image(path: Path, *, side: int, channels: int) -> np.ndarray:
    """One image as uint8 (C, S, S), checked against the size its header promised."""
    pixels = load_pixels(path)
    expected = (side, side) if channels == 1 else (side, side, 3)
    if pixels.shape != expected:
        raise PgtoolsError(f"{path}: decoded to shape {pixels.shape}, expected {expected} (did the file change?)")
    return channels_first(pixels)


def open_custom(folder: str | os.PathLike, *, workers: int | None = None) -> Source:
    """Every image file in ``folder`` (sorted by name) at its own resolution."""
    folder = Path(folder)
    paths = list_files(folder)
    if not paths:
        raise PgtoolsError(f"{folder}: the folder is empty; expected square power-of-two images, {ACCEPTED}")
    headers = scan_headers(paths, workers=workers)
    first = headers[0]
    if first.width != first.height:
        raise PgtoolsError(f"{first.path}: {first.size} is not square; images must be square with a power-of-two side")
    if not is_power_of_two(first.width):
        raise PgtoolsError(f"{first.path}: {first.size} is not a power of two; "
                           f"images must be square with a power-of-two side")
    check_alike(headers)
    side, channels = first.width, first.channels
    load = functools.partial(load_image, side=side, channels=channels)
    attrs = {"source": str(folder.resolve()), "source_format": "custom", "source_images": len(paths)}
    return Source(resolution=side, channels=channels, count=len(paths),
                  batches=decode_files(paths, load, resolution=side, image_bytes=channels * side * side,
                                               workers=workers), attrs=attrs)
