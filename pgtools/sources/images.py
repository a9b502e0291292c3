"""Image files for the folder sources: listing, cheap header checks in parallel, decoding.

Only 8-bit grayscale (Pillow mode ``L``) and 8-bit RGB are accepted; pixels are taken exactly as
Pillow decodes them (``np.asarray(PIL.Image.open(path))``, as the original did).
"""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
import PIL.Image

from pgtools.errors import PgtoolsError
from pgtools.parallel import cap_workers, ordered_map

T = TypeVar("T")
ACCEPTED = "8-bit grayscale (L) or 8-bit RGB"
MODE_CHANNELS = {"L": 1, "RGB": 3}
MODE_NAMES = {
    "RGBA": "RGB with alpha", "LA": "grayscale with alpha", "P": "palette", "PA": "palette with alpha",
    "1": "1-bit black and white", "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale", "I": "32-bit integer",
    "F": "32-bit float",
}
TASK_BYTES = 16 * 2**20  # decoded pixels returned by one worker task
MAX_TASK_IMAGES = 256
HEADERS_PER_TASK = 512


@dataclass(frozen=True)
class Header:
    """What an image file's header says, read without decoding the pixels."""

    path: Path
    width: int
    height: int
    channels: int  # 1 or 3

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def kind(self) -> str:
        return "grayscale" if self.channels == 1 else "RGB"


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def images_per_task(image_bytes: int) -> int:
    """How many decoded images one worker task returns: about TASK_BYTES, 1 to MAX_TASK_IMAGES."""
    return max(1, min(MAX_TASK_IMAGES, TASK_BYTES // max(1, image_bytes)))


def _existing_folder(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise PgtoolsError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise PgtoolsError(f"{folder}: not a folder")
    return folder


def list_files(folder: str | os.PathLike, pattern: str = "*") -> list[Path]:
    """Files matching ``pattern`` in ``folder`` sorted by name, hidden ones skipped (as ``glob``)."""
    folder = _existing_folder(folder)
    paths = sorted(str(path) for path in folder.glob(pattern) if not path.name.startswith("."))
    return [Path(path) for path in paths]


def image_extensions() -> set[str]:
    """Every suffix Pillow can read, lower case with the dot (``.png``, ``.jpg``, ``.jpeg``, ...)."""
    PIL.Image.init()
    return {suffix for suffix, name in PIL.Image.EXTENSION.items() if name in PIL.Image.OPEN}


def list_images(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder``, subfolders included, and the other files, both in path order.

    Paths are sorted folder by folder (``a/b.png`` before ``a0.png``, as ``sorted(Path.rglob)``
    does), which for a flat folder is the original's sorted ``DIR/*``.
    Hidden files and folders (name starting with ``.``) are left out; images are told from other
    files by their suffix (any that Pillow reads, in any case).
    """
    folder = _existing_folder(folder)
    suffixes = image_extensions()
    images, others = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in files:
            if not name.startswith("."):
                path = Path(root, name)
                (images if path.suffix.lower() in suffixes else others).append(path)
    key = lambda path: path.relative_to(folder).parts  # noqa: E731
    return sorted(images, key=key), sorted(others, key=key)


def _mode_description(image: PIL.Image.Image) -> str | None:
    """None for an accepted mode, else a description such as ``RGBA (RGB with alpha)``."""
    rawmode = ""
    if image.tile:
        args = image.tile[0][3]
        rawmode = args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")
    if image.mode in MODE_CHANNELS and ";16" not in rawmode:
        return None
    if image.mode in MODE_CHANNELS:
        return f"{rawmode} (16 bits per channel)"
    return f"{image.mode} ({MODE_NAMES[image.mode]})" if image.mode in MODE_NAMES else image.mode


def _open(path: Path) -> PIL.Image.Image:
    if path.is_dir():
        raise PgtoolsError(f"{path} is a folder, not an image file")
    try:
        image = PIL.Image.open(path)
    except PIL.UnidentifiedImageError:
        raise PgtoolsError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except OSError as err:
        raise PgtoolsError(f"{path}: cannot read ({err})") from None
    mode = _mode_description(image)
    if mode is not None:
        image.close()
        raise PgtoolsError(f"{path}: mode {mode} is not accepted; images must be {ACCEPTED}")
    return image


def read_header(path: Path) -> Header:
    """Size and channels from the file header (Pillow's lazy open); raises for unusable files."""
    with _open(path) as image:
        return Header(path, image.width, image.height, MODE_CHANNELS[image.mode])


def check_alike(headers: list[Header], sizes: bool = True) -> None:
    """Raise naming the first file whose size (unless not ``sizes``) or channels differ from the first file's."""
    first = headers[0]
    for header in headers[1:]:
        if sizes and (header.width, header.height) != (first.width, first.height):
            raise PgtoolsError(
                f"{header.path} is {header.size} but the first image {first.path.name} is {first.size}; "
                f"all images must have the same size"
            )
        if header.channels != first.channels:
            raise PgtoolsError(
                f"{header.path} is {header.kind} but the first image {first.path.name} is {first.kind}; "
                f"all images must be grayscale or all RGB"
            )


def _apply_all(fn: Callable[[Path], T], paths: list[Path], skip_bad: bool = False) -> list[T | None]:
    """``fn`` of every path; with ``skip_bad`` a PgtoolsError gives None instead of stopping."""
    results = []
    for path in paths:
        try:
            results.append(fn(path))
        except PgtoolsError:
            if not skip_bad:
                raise
            results.append(None)
    return results


def scan_headers(paths: Sequence[Path], *, workers: int | None = None, skipped: list[Path] | None = None) -> list[Header]:
    """Every file's header, in order, read in parallel; the first unusable file raises.

    With a ``skipped`` list, unusable files (not an image, an unaccepted mode) are appended to it
    and left out instead.
    """
    workers = workers if len(paths) > HEADERS_PER_TASK else 0  # a pool is not worth starting for one task
    read = functools.partial(_apply_all, read_header, skip_bad=skipped is not None)
    headers = [header for chunk in ordered_map(read, batched(paths, HEADERS_PER_TASK), workers=workers)
               for header in chunk]
    if skipped is not None:
        skipped.extend(path for path, header in zip(paths, headers) if header is None)
    return [header for header in headers if header is not None]


def load_pixels(path: Path) -> np.ndarray:
    """Decoded uint8 pixels as Pillow gives them: (H, W) grayscale or (H, W, 3) RGB."""
    with _open(path) as image:
        try:
            return np.asarray(image)
        except (OSError, SyntaxError, ValueError) as err:
            raise PgtoolsError(f"{path}: cannot decode ({err})") from None


def decode_files(
    paths: Sequence[Path],
    load: Callable[[Path], np.ndarray],  # picklable: one path -> uint8 (C, S, S)
    *,
    image_bytes: int,  # bytes of one decoded image, to size the worker tasks
    workers: int | None = None,  # processes; None: all cores; 0 or 1: this process
    skipped: list[Path] | None = None,  # given: files that fail to load are appended here (as they come) and left out
) -> Iterator[np.ndarray]:
    """Apply ``load`` to every path in a worker pool; yields uint8 (n, C, S, S) batches in order."""
    per_task = images_per_task(image_bytes)
    workers = cap_workers(workers, items=-(-len(paths) // per_task))
    load_batch = functools.partial(_load_batch, load, skip_bad=skipped is not None)
    for images, bad in ordered_map(load_batch, batched(paths, per_task), workers=workers):
        if skipped is not None:
            skipped.extend(bad)
        if len(images):
            yield images


def _load_batch(load: Callable[[Path], np.ndarray], paths: list[Path], skip_bad: bool) -> tuple[np.ndarray, list[Path]]:
    loaded = _apply_all(load, paths, skip_bad)
    images = [image for image in loaded if image is not None]
    bad = [path for path, image in zip(paths, loaded) if image is None]
    return (np.stack(images) if images else np.empty(0, dtype=np.uint8)), bad
