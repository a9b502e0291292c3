"""create_mnist and create_mnist_rgb: the MNIST training digits from their IDX files.

Each 28x28 digit is zero-padded by 2 pixels on every side to 32x32. The RGB variant stacks three
random digits as the R, G and B channels, drawn exactly as the original did.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.sources import Source
from pgtools.sources.arrays import BATCH, check_labels, one_hot, split

IMAGES_FILE = "train-images-idx3-ubyte"
LABELS_FILE = "train-labels-idx1-ubyte"
IMAGES_MAGIC = 0x00000803  # 2051: unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # 2049: unsigned bytes, 1 dimension
MAGIC_MEANING = {IMAGES_MAGIC: "an IDX image file", LABELS_MAGIC: "an IDX label file"}
DIGIT = 28
PAD = 2
CLASSES = 10
OFFICIAL_COUNT = 60_000


def find_idx(folder: Path, name: str) -> Path:
    """``folder/name.gz``, or the uncompressed ``folder/name`` when only that exists."""
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            return path
    raise PgtoolsError(f"{folder / name}.gz: no such file (expected the MNIST training set's {name}.gz)")


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except EOFError:
        raise PgtoolsError(f"{path}: truncated gzip file (it ends before the end of its data); "
                           f"download it again") from None
    except (gzip.BadGzipFile, zlib.error) as err:
        raise PgtoolsError(f"{path}: corrupt gzip file ({err}); download it again") from None


def read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 array of an IDX file (gzip or plain) whose items have shape ``item_shape``.

    IDX: big-endian uint32 magic number, one uint32 size per dimension, then the bytes.
    """
    data = _read_bytes(path)
    header_size = 4 * (2 + len(item_shape))
    too_short = PgtoolsError(f"{path}: {len(data)} bytes, too short for the {header_size}-byte IDX header")
    if len(data) < 4:
        raise too_short
    found = struct.unpack_from(">I", data)[0]
    if found != magic:
        what = f", {MAGIC_MEANING[found]}" if found in MAGIC_MEANING else ""
        raise PgtoolsError(
            f"{path}: wrong IDX magic number: expected {magic} (0x{magic:08x}, {MAGIC_MEANING[magic]}), "
            f"found {found} (0x{found:08x}{what})"
        )
    if len(data) < header_size:
        raise too_short
    count, *dims = struct.unpack_from(f">{1 + len(item_shape)}I", data, 4)
    if tuple(dims) != item_shape:
        shape = "x".join(map(str, dims))
        raise PgtoolsError(f"{path}: items are {shape}; MNIST images must be {'x'.join(map(str, item_shape))}")
    expected = count * int(np.prod(item_shape, dtype=np.int64))
    body = len(data) - header_size
    if body != expected:
        problem = "truncated" if body < expected else "has extra bytes"
        raise PgtoolsError(f"{path}: {problem}: the header announces {count} items ({expected} bytes) "
                           f"but {body} bytes follow")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(count, *item_shape)


def _folder(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise PgtoolsError(f"{folder}: no such folder (expected the MNIST files {IMAGES_FILE}.gz and {LABELS_FILE}.gz)")
    return folder


def load_digits(folder: Path) -> np.ndarray:
    """The training digits zero-padded to uint8 (N, 32, 32)."""
    digits = read_idx(find_idx(folder, IMAGES_FILE), IMAGES_MAGIC, (DIGIT, DIGIT))
    if len(digits) == 0:
        raise PgtoolsError(f"{find_idx(folder, IMAGES_FILE)}: holds no images")
    return np.pad(digits, [(0, 0), (PAD, PAD), (PAD, PAD)], mode="constant", constant_values=0)


def _attrs(folder: Path, count: int) -> dict:
    return {"source": str(folder.resolve()), "source_images": count}


def open_mnist(folder: str | os.PathLike, *, export_labels: bool = False) -> Source:
    """MNIST digits as 32x32 grayscale, optionally with one-hot labels (10 classes)."""
    folder = _folder(folder)
    digits = load_digits(folder)
    labels = None
    if export_labels:
        path = find_idx(folder, LABELS_FILE)
        raw = read_idx(path, LABELS_MAGIC, ())
        if len(raw) != len(digits):
            raise PgtoolsError(
                f"image/label count mismatch: {len(digits)} images in {find_idx(folder, IMAGES_FILE)} "
                f"but {len(raw)} labels in {path}"
            )
        labels = one_hot(check_labels(raw, CLASSES, str(path)), CLASSES)
    attrs = {**_attrs(folder, len(digits)), "source_format": "mnist"}
    if export_labels:
        attrs["label_classes"] = CLASSES
    return Source(resolution=32, channels=1, count=len(digits), batches=split(digits[:, np.newaxis]),
                  labels=labels, attrs=attrs)


def composites(digits: np.ndarray, num_images: int, random_seed: int) -> Iterator[np.ndarray]:
    """Batches of RGB composites: each takes three random digits as its R, G and B channels.

    The draws equal the original's ``np.random.seed(random_seed)`` followed by one
    ``np.random.randint(len(digits), size=3)`` per image, without touching numpy's global state.
    """
    rng = np.random.RandomState(random_seed)
    for start in range(0, num_images, BATCH):
        yield digits[rng.randint(len(digits), size=(min(BATCH, num_images - start), 3))]


def open_mnist_rgb(folder: str | os.PathLike, *, num_images: int = 1_000_000, random_seed: int = 123) -> Source:
    """``num_images`` 32x32 RGB composites of three MNIST digits each."""
    folder = _folder(folder)
    digits = load_digits(folder)
    attrs = {**_attrs(folder, len(digits)), "source_format": "mnist_rgb", "random_seed": random_seed}
    return Source(resolution=32, channels=3, count=num_images, batches=composites(digits, num_images, random_seed),
                  attrs=attrs)
