"""Image files for the folder sources: listing, cheap header checks in parallel, decoding.

Only 8-bit grayscale (Pillow mode ``L``) and 8-bit RGB are accepted; pixels are exactly those
Pillow decodes (``np.asarray(PIL.Image.open(path))``, as the original did), PNG's taken from OpenCV,
which gives the same bytes faster. Workers return every pyramid level of their batch, so the
writing process only writes.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import cv2
import numpy as np
import PIL.Image

from pgtools.errors import PgtoolsError
from pgtools.parallel import cap_workers, ordered_map
from pgtools.pyramid.levels import Levels, lod_levels

T = TypeVar("T")
ACCEPTED = "8-bit grayscale (L) or 8-bit RGB"
MODE_CHANNELS = {"L": 1, "RGB": 3}
MODE_NAMES = {
    "RGBA": "RGB with alpha", "LA": "grayscale with alpha", "P": "palette", "PA": "palette with alpha",
    "1": "1-bit black and white", "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale", "I": "32-bit integer",
    "F": "32-bit float",
}
TASK_BYTES = 4 * 2**20  # decoded pixels returned by one worker task: small tasks keep every core busy to the end
MAX_TASK_IMAGES = 256
TASKS_PER_WORKER = 4  # tasks queued per worker: enough to keep decoding while the writer writes a block
HEADERS_PER_TASK = 512
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GRAY, PNG_RGB = 0, 2  # IHDR colour types of the accepted kinds


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


def _open(path: Path, data: bytes | None = None) -> PIL.Image.Image:
    """Pillow's lazy open of ``path`` (or of its bytes ``data``), refusing modes that are not accepted."""
    if path.is_dir():
        raise PgtoolsError(f"{path} is a folder, not an image file")
    try:
        image = PIL.Image.open(path if data is None else io.BytesIO(data))
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
    """Decoded uint8 pixels as Pillow gives them: (H, W) grayscale or (H, W, 3) RGB.

    An 8-bit grayscale or RGB PNG (as its IHDR chunk says; scan_headers has had Pillow check every
    file) is decoded by OpenCV's libpng, for less CPU and the same bytes (PNG is lossless; ancillary
    chunks such as gAMA, tRNS or eXIf change neither decoder's output with the flags used). Other
    files, and anything OpenCV cannot decode, go through Pillow, which names what is wrong.
    """
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        data = b""  # _open names the folder
    except OSError as err:
        raise PgtoolsError(f"{path}: cannot read ({err})") from None
    pixels = _decode_png(data)
    if pixels is not None:
        return pixels
    with _open(path, data) as image:
        try:
            return np.asarray(image)
        except (OSError, SyntaxError, ValueError) as err:
            raise PgtoolsError(f"{path}: cannot decode ({err})") from None


def _decode_png(data: bytes) -> np.ndarray | None:
    """OpenCV's decoding of an 8-bit grayscale or RGB PNG (RGB order); None for anything else, or when
    OpenCV fails or gives another size than the header."""
    if len(data) < 33 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if depth != 8 or colour not in (PNG_GRAY, PNG_RGB):
        return None
    rgb = colour == PNG_RGB
    flags = (cv2.IMREAD_COLOR if rgb else cv2.IMREAD_GRAYSCALE) | cv2.IMREAD_IGNORE_ORIENTATION
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # Pillow reports what fails
    try:
        pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        return None
    finally:
        cv2.utils.logging.setLogLevel(level)
    if pixels is None or pixels.shape[:2] != (height, width):
        return None
    return pixels[:, :, ::-1] if rgb else pixels


def channels_first(pixels: np.ndarray) -> np.ndarray:
    """uint8 (C, H, W) from (H, W) grayscale or (H, W, 3) RGB pixels (also load_pixels' RGB view of
    OpenCV's BGR). OpenCV splits the channels several times faster than numpy copies a transpose."""
    if pixels.ndim == 2:
        return pixels[np.newaxis]
    if pixels.strides[2] < 0:  # a reversed view: split the stored order, then reverse the planes
        return np.stack(cv2.split(pixels[:, :, ::-1])[::-1])
    return np.stack(cv2.split(pixels))


def decode_files(
    paths: Sequence[Path],
    load: Callable[[Path], np.ndarray],  # picklable: one path -> uint8 (C, S, S)
    *,
    resolution: int,  # the pyramid's top level R <= S
    image_bytes: int,  # bytes of one decoded image, to size the worker tasks
    workers: int | None = None,  # processes; None: all cores; 0 or 1: this process
    skipped: list[Path] | None = None,  # given: files that fail to load are appended here (as they come) and left out
) -> Iterator[Levels]:
    """Apply ``load`` to every path in a worker pool; yields the pyramid levels of consecutive
    batches in order, computed in the workers (so the writing process only writes)."""
    per_task = images_per_task(image_bytes)
    workers = cap_workers(workers, items=-(-len(paths) // per_task))
    load_batch = functools.partial(_load_batch, load, resolution, skip_bad=skipped is not None)
    for levels, bad in ordered_map(load_batch, batched(paths, per_task), workers=workers,
                                   in_flight=TASKS_PER_WORKER * max(1, workers)):
        if skipped is not None:
            skipped.extend(bad)
        if levels is not None:
            yield levels


def _load_batch(load: Callable[[Path], np.ndarray], resolution: int, paths: list[Path],
                skip_bad: bool) -> tuple[Levels | None, list[Path]]:
    """The levels of the images of ``paths`` that load (None if none does), and the paths that did not."""
    loaded = _apply_all(load, paths, skip_bad)
    images = [image for image in loaded if image is not None]
    bad = [path for path, image in zip(paths, loaded) if image is None]
    return (lod_levels(np.stack(images), resolution) if images else None), bad
