"""create_custom: a folder of grayscale or RGB images, taken as they are or made R x R.

Every image file under the folder is used, subfolders included, in path order (for a flat folder:
sorted by name, the original's ``DIR/*``). Hidden files and folders are left out, and so are files
whose suffix is no image format Pillow reads (counted as non-image files).

Without ``resolution`` the images must be square with a power-of-two side, all of one size and
kind, and are taken exactly as Pillow decodes them: the original's behaviour, bit for bit. With
``resolution`` they may have any size and are made R x R by ``transform`` (see
:mod:`pgtools.sources.transforms`). Either way the first usable image fixes the channels and every
header is checked before any decoding; ``skip_bad`` leaves out files that cannot be read or decoded.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.pyramid import is_power_of_two
from pgtools.sources import Source
from pgtools.sources.images import (
    ACCEPTED, channels_first, check_alike, decode_files, list_images, load_pixels, scan_headers,
)
from pgtools.sources.transforms import TRANSFORMS

MAX_LISTED = 100  # names of skipped files recorded in the file's metadata


def _checked(pixels: np.ndarray, path: Path, channels: int, side: int | None = None) -> np.ndarray:
    """``pixels`` if they are the kind (and side) the file's header promised, else raise."""
    size_ok = side is None or pixels.shape[:2] == (side, side)
    if pixels.ndim != (2 if channels == 1 else 3) or not size_ok:
        expected = f"{side}x{side} " if side else ""
        raise PgtoolsError(f"{path}: decoded to shape {pixels.shape}, expected {expected}"
                           f"{'grayscale' if channels == 1 else 'RGB'} (did the file change?)")
    return pixels


def load_image(path: Path, *, side: int, channels: int) -> np.ndarray:
    """One image as uint8 (C, S, S), checked against the size its header promised."""
    return channels_first(_checked(load_pixels(path), path, channels, side))


def transform_image(path: Path, *, resolution: int, transform: str, channels: int) -> np.ndarray:
    """One image made R x R by ``transform``, as uint8 (C, R, R)."""
    pixels = _checked(load_pixels(path), path, channels)
    return channels_first(TRANSFORMS[transform](pixels, resolution))


def _relative(paths: list[Path], folder: Path) -> list[str]:
    return [path.relative_to(folder).as_posix() for path in paths[:MAX_LISTED]]


def open_custom(
    folder: str | os.PathLike,
    *,
    resolution: int | None = None,  # output side, a power of two; None: the images' own (strict)
    transform: str | None = None,  # center-crop, center-crop-wide or resize; None: resize when resolution is given
    skip_bad: bool = False,  # leave out files that cannot be read or decoded instead of failing
    workers: int | None = None,  # processes; None: all cores; 0 or 1: this process
) -> Source:
    """Every image file under ``folder`` (path order) as one pyramid source."""
    folder = Path(folder)
    if transform is not None and resolution is None:
        raise PgtoolsError(f"--transform {transform} needs --resolution")
    if resolution is not None and not is_power_of_two(resolution):
        raise PgtoolsError(f"--resolution must be a power of two, got {resolution}")
    paths, others = list_images(folder)
    if not paths:
        found = (f"has no image files, only {len(others):,} other file(s) such as {others[0].name}" if others
                 else "is empty")
        raise PgtoolsError(f"{folder}: the folder {found}; expected square power-of-two images, {ACCEPTED}")
    skipped: list[Path] | None = [] if skip_bad else None
    headers = scan_headers(paths, workers=workers, skipped=skipped)
    if not headers:
        raise PgtoolsError(f"{folder}: none of the {len(paths):,} image files can be used")
    first = headers[0]
    if resolution is None:
        _check_strict(first)
        check_alike(headers)
        side = first.width
        load = functools.partial(load_image, side=side, channels=first.channels)
    else:
        check_alike(headers, sizes=False)
        side, transform = resolution, transform or "resize"
        load = functools.partial(transform_image, resolution=side, transform=transform, channels=first.channels)
    attrs = {"source": str(folder.resolve()), "source_format": "custom", "source_images": len(paths)}
    if transform:
        attrs["transform"] = transform
    if others:
        attrs.update(non_image_files=len(others), non_image_names=json.dumps(_relative(others, folder)))
    usable = [header.path for header in headers]
    batches = decode_files(usable, load, resolution=side, image_bytes=first.channels * side * side, workers=workers,
                           skipped=skipped)
    return Source(resolution=side, channels=first.channels, count=None if skip_bad else len(usable),
                  batches=_recording(batches, skipped, attrs, folder), attrs=attrs)


def _check_strict(first) -> None:
    if first.width != first.height:
        raise PgtoolsError(f"{first.path}: {first.size} is not square; images must be square with a power-of-two side "
                           f"(or give --resolution and --transform)")
    if not is_power_of_two(first.width):
        raise PgtoolsError(f"{first.path}: {first.size} is not a power of two; "
                           f"images must be square with a power-of-two side (or give --resolution)")


def _recording(batches: Iterator[np.ndarray], skipped: list[Path] | None, attrs: dict,
               folder: Path) -> Iterator[np.ndarray]:
    """``batches``, keeping ``attrs`` ``skipped_files`` and ``skipped_names`` up to date (with skip_bad)."""

    def record() -> None:
        if skipped is not None:
            attrs.update(skipped_files=len(skipped), skipped_names=json.dumps(_relative(skipped, folder)))

    record()
    for batch in batches:
        record()
        yield batch
    record()
