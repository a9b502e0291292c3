"""Names, layout and paths of the pyramid format (shared by the writer and the reader)."""

from __future__ import annotations

import os
from pathlib import Path

from pgtools.errors import PgtoolsError

COMPRESSIONS = ("none", "lzf") + tuple(f"gzip-{level}" for level in range(1, 10))
DEFAULT_COMPRESSION = "none"
COMPAT_COMPRESSION = "gzip-4"  # what the original h5tool wrote
CHUNK_BYTES = 64 * 1024  # uncompressed chunks hold as many whole images as fit in this many bytes
COMPRESSED_CHUNK_BYTES = 4 * 1024  # compressed chunks are smaller: a random read unpacks a whole chunk
BLOCK_BYTES = 64 * 1024 * 1024  # images processed together, counted at the top level


def level_name(resolution: int) -> str:
    """HDF5 dataset name of a level, e.g. ``data128x128``."""
    return f"data{resolution}x{resolution}"


def is_power_of_two(value: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return value >= 1 and value & (value - 1) == 0


def level_resolutions(resolution: int) -> list[int]:
    """Resolutions of every level, ascending: [1, 2, 4, ..., resolution]."""
    return [2**k for k in range(resolution.bit_length())]


def parse_compression(name: str) -> tuple[str | None, int | None]:
    """Map ``none``, ``lzf`` or ``gzip-N`` to h5py's (compression, compression_opts)."""
    if name not in COMPRESSIONS:
        raise PgtoolsError(f"unknown compression {name!r}; choose one of {', '.join(COMPRESSIONS)}")
    if name == "none":
        return None, None
    if name == "lzf":
        return "lzf", None
    return "gzip", int(name.split("-")[1])


def images_per_chunk(channels: int, resolution: int, compat: bool, compressed: bool = False) -> int:
    """Images per HDF5 chunk: the original's 128-byte rule in compat mode, else whole images up to
    CHUNK_BYTES (COMPRESSED_CHUNK_BYTES when compressed)."""
    image_bytes = channels * resolution * resolution
    if compat:
        return -(-128 // image_bytes)
    return max(1, (COMPRESSED_CHUNK_BYTES if compressed else CHUNK_BYTES) // image_bytes)


def partial_path(target: Path) -> Path:
    """Where an unfinished pyramid is written: hidden, next to the target, never looking complete."""
    return target.with_name(f".{target.name}.partial")


def labels_path(path: str | os.PathLike) -> Path:
    """The ``<name>-labels.npy`` file the original's reader looks for next to ``<name>.h5``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-labels.npy")
