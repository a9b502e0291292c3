"""Is a pyramid whole? Interrupted creation (images written of planned) and damaged bytes.

HDF5 reports damage as OSError, RuntimeError, KeyError or (pgtools' own gzip path) zlib.error,
without the file's name; :func:`reading` turns them into one :class:`Damaged` line naming the file
and the level.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import h5py

from pgtools.errors import Damaged, PgtoolsError
from pgtools.pyramid.format import BLOCK_BYTES

HDF5_ERRORS = (OSError, RuntimeError, KeyError, zlib.error)
WRITTEN_ATTRS = ("num_written", "images_written")  # the writer's count of images stored so far


def reason(err: BaseException) -> str:
    """HDF5's message, shortened: ``truncated: 45,141 of 67,712 bytes present`` or ``can't read data (...)``."""
    text = str(err.args[0] if err.args else err)
    if isinstance(err, zlib.error):
        return f"can't decompress a chunk ({text.split(': ', 1)[-1]})"
    truncated = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if truncated:
        return f"truncated: {int(truncated[1]):,} of {int(truncated[2]):,} bytes present"
    return re.sub(r"\bsynchronously ", "", text).replace("Can't", "can't").replace("Unable", "unable")


@contextmanager
def reading(path: str | os.PathLike, resolution: int | None = None, what: str | None = None) -> Iterator[None]:
    """Raise :class:`Damaged` naming ``path`` and the level (or ``what``) for any HDF5 read failure inside."""
    try:
        yield
    except BlockingIOError:
        raise PgtoolsError(f"{path}: another process is writing it (HDF5 file lock); try again when it is done") from None
    except HDF5_ERRORS as err:
        part = f"level {resolution}x{resolution}" if resolution else what or "file"
        raise Damaged(f"{path}: {part} is damaged ({reason(err)})") from None


def _written_by_levels(levels: dict[int, h5py.Dataset], by_chunks: bool) -> tuple[int, bool]:
    """(images every level holds, whether exact); ``by_chunks`` bounds it by the chunks ever written
    (chunks fill from the first image on), which takes a walk through every level's chunk index."""
    counted = min(dataset.shape[0] for dataset in levels.values())
    allocated = min(
        (dataset.id.get_num_chunks() * dataset.chunks[0] for dataset in levels.values() if dataset.chunks and by_chunks),
        default=counted,
    )
    return min(counted, allocated), allocated >= counted


def incomplete(attrs: h5py.AttributeManager | dict, levels: dict[int, h5py.Dataset], *,
               by_chunks: bool = False) -> str | None:
    """``incomplete: N of M written`` for a file whose creation did not finish, else None.

    The writer's ``complete`` flag and written count decide where present; files without the flag
    (the original h5tool's) are judged by the levels: unequal counts, and with ``by_chunks`` also
    chunks never written.
    """
    if attrs.get("complete", False):
        return None
    planned = max(dataset.shape[0] for dataset in levels.values())
    counted = [attrs[name] for name in WRITTEN_ATTRS if name in attrs]
    written, exact = (int(counted[0]), True) if counted else _written_by_levels(levels, by_chunks)
    if "complete" not in attrs and written == planned:
        return None
    if written == planned:
        return f"incomplete: {written:,} written"
    return f"incomplete: {'' if exact else 'at most '}{written:,} of {planned:,} written"


@dataclass
class LevelCheck:
    """What reading back every chunk of one level found."""

    resolution: int
    damaged: list[tuple[int, int]]  # image ranges [start, stop) whose chunks could not be read
    reason: str | None = None  # the first failure's message

    @property
    def ok(self) -> bool:
        return not self.damaged


def verify_level(dataset: h5py.Dataset, progress: Callable[[int], None] | None = None) -> LevelCheck:
    """Read every chunk of a level in bounded blocks; narrow a failing block down to its chunks."""
    count, image_bytes = dataset.shape[0], dataset.dtype.itemsize * math.prod(dataset.shape[1:])
    rows = dataset.chunks[0] if dataset.chunks else 1
    block = max(1, BLOCK_BYTES // (rows * image_bytes)) * rows
    check = LevelCheck(dataset.shape[-1], [])
    for start in range(0, count, block):
        stop = min(start + block, count)
        try:
            dataset[start:stop]
        except HDF5_ERRORS:
            for first in range(start, stop, rows):
                try:
                    dataset[first:min(first + rows, stop)]
                except HDF5_ERRORS as err:
                    _add_range(check, first, min(first + rows, stop), reason(err))
        if progress:
            progress(stop - start)
    return check


def _add_range(check: LevelCheck, start: int, stop: int, why: str) -> None:
    if check.damaged and check.damaged[-1][1] == start:
        check.damaged[-1] = (check.damaged[-1][0], stop)
    else:
        check.damaged.append((start, stop))
    check.reason = check.reason or why
