"""Writing a pyramid: blocks of images in, every level out, renamed into place only when complete."""

from __future__ import annotations

import datetime
import itertools
import os
from pathlib import Path
from typing import Callable, Iterable

import h5py
import numpy as np

from pgtools import __version__
from pgtools.atomic import check_target
from pgtools.errors import PgtoolsError
from pgtools.pyramid.format import (
    BLOCK_BYTES, COMPAT_COMPRESSION, DEFAULT_COMPRESSION, images_per_chunk, is_power_of_two, labels_path, level_name,
    level_resolutions, parse_compression, partial_path,
)
from pgtools.pyramid.levels import Levels, lod_levels
from pgtools.pyramid.partial import disk_full_error, is_disk_full, lock_partial

Progress = Callable[[int], None]
# The lock is ours (lock_partial), not HDF5's. No chunk cache: a write that fails (a full disk) raises
# where it is made, instead of while HDF5 closes the file, where it cannot be handled.
OPEN_OPTIONS = {"locking": False, "rdcc_nbytes": 0}


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if len(arrays) > 1 else arrays[0]


def _attr_text(value):
    if isinstance(value, np.generic):
        return value.item()
    return value.decode() if isinstance(value, bytes) else value


class PyramidWriter:
    """Write a pyramid under a temporary name and rename it into place when complete.

    Use as a context manager; feed uint8 (n, C, S, S) batches to :meth:`add`. A block that ends with
    an exception removes the unfinished file, except with ``keep_partial``, which keeps it for
    ``resume``: reopening then continues after the last image written (:attr:`num_written`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        resolution: int,  # top level R, a power of two
        channels: int,  # 1 or 3
        count: int | None = None,  # images to expect; None: grow as they come
        attrs: dict | None = None,  # extra root attributes (command, options, source)
        overwrite: bool = False,  # replace an existing file at path
        compression: str = DEFAULT_COMPRESSION,  # none, lzf or gzip-N
        compat: bool = False,  # the original's chunking and gzip-4
        resume: bool = False,  # continue an unfinished file left by keep_partial
        keep_partial: bool = False,  # on failure keep the unfinished file for resume
        progress: Progress | None = None,  # called with the number of images just written
    ) -> None:
        if not is_power_of_two(resolution):
            raise PgtoolsError(f"resolution must be a power of two, got {resolution}")
        if channels not in (1, 3):
            raise PgtoolsError(f"channels must be 1 or 3, got {channels}")
        self.path = Path(path)
        self.resolution, self.channels, self.count = resolution, channels, count
        self.progress = progress
        self.keep_partial = keep_partial
        check_target(self.path, overwrite)
        self.temp = partial_path(self.path)
        compression, level = parse_compression(COMPAT_COMPRESSION if compat else compression)
        resuming = resume and self.temp.exists()
        self.file: h5py.File | None = None
        self._lock: int | None = lock_partial(self.temp, self.path)  # released once the file is renamed or removed
        try:
            if resuming:
                self._reopen(attrs or {})
            else:
                self._create(attrs or {}, compression, level, compat)
        except BaseException as err:
            if resuming:
                self._release()
                raise
            self._discard()
            raise _translated(err, self.path) from None
        self.num_written = int(self.file.attrs["images_written"])
        # Kept open until the file is closed: a dataset closed mid-run writes its cached chunks where
        # an error (a full disk) is only printed, and HDF5 is left unable to close the file.
        self._levels = {r: self.file[level_name(r)] for r in level_resolutions(self.resolution)}
        self.labels: np.ndarray | None = None
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._block = max(1, BLOCK_BYTES // (channels * resolution * resolution))

    def _reopen(self, attrs: dict) -> None:
        try:
            self.file = h5py.File(self.temp, "r+", **OPEN_OPTIONS)
        except OSError as err:
            raise PgtoolsError(f"cannot resume from {self.temp}: {err}; delete it to start again") from err
        self._check_resumable(self.file, attrs)

    def _create(self, attrs: dict, compression, level, compat: bool) -> None:
        self.file = file = h5py.File(self.temp, "w", **OPEN_OPTIONS)
        size = self.count or 0
        for r in level_resolutions(self.resolution):
            shape = (self.channels, r, r)
            file.create_dataset(
                level_name(r), shape=(size, *shape), maxshape=(None, *shape), dtype=np.uint8,
                chunks=(self._chunk_images(r, compat, compression is not None), *shape),
                compression=compression, compression_opts=level,
            )
        file.attrs.update(
            {"pgtools_version": __version__, "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        )
        file.attrs.update({key: value for key, value in attrs.items() if value is not None})
        file.attrs["complete"] = False
        if self.count is not None:
            file.attrs["count"] = self.count  # planned; the levels are this long from the start
        file.attrs["images_written"] = 0  # updated at every flush: what an interrupted file really holds

    def _chunk_images(self, resolution: int, compat: bool, compressed: bool) -> int:
        per_chunk = images_per_chunk(self.channels, resolution, compat, compressed)
        return per_chunk if compat or not self.count else min(per_chunk, self.count)

    def _check_resumable(self, file: h5py.File, attrs: dict) -> None:
        top = file.get(level_name(self.resolution))
        problem = None
        if top is None or top.shape[1] != self.channels:
            problem = "it holds a different pyramid"
        for key, value in attrs.items():
            if key not in ("command", "options") and value is not None and key in file.attrs and file.attrs[key] != value:
                problem = f"it was started with {key}={_attr_text(file.attrs[key])!r}, not {value!r}"
        if problem:
            file.close()
            raise PgtoolsError(f"cannot resume from {self.temp}: {problem}; delete it to start again")

    def __enter__(self) -> "PyramidWriter":
        return self

    def add(self, images: np.ndarray | Levels) -> None:
        """Queue a uint8 (n, C, S, S) batch, or its levels as :func:`lod_levels` returns them (computed
        by a worker process); levels are computed and written in large blocks."""
        top = images.get(self.resolution) if isinstance(images, dict) else images
        if not isinstance(top, np.ndarray) or top.dtype != np.uint8 or top.ndim != 4 or top.shape[1] != self.channels:
            got = f"{top.dtype} {top.shape}" if isinstance(top, np.ndarray) else f"levels {sorted(images)}"
            raise ValueError(f"expected uint8 (n, {self.channels}, S, S) images or their levels, got {got}")
        if isinstance(images, dict) and sorted(images) != level_resolutions(self.resolution):
            raise ValueError(f"expected levels {level_resolutions(self.resolution)}, got {sorted(images)}")
        self._pending.append(images)
        self._pending_count += len(top)
        if self._pending_count >= self._block:
            self.flush()

    def _pending_parts(self) -> list[Levels]:
        """The queued batches as levels: raw images reduced together, levels from workers as they came."""
        parts = []
        for computed, group in itertools.groupby(self._pending, key=lambda item: isinstance(item, dict)):
            group = list(group)
            parts += group if computed else [lod_levels(_stack(group), self.resolution)]
        return parts

    def flush(self) -> None:
        """Write every queued image and record the count, so that a resume continues after them.

        Levels whose chunks hold one image are written part by part (each part is whole chunks, no
        copy); smaller levels are stacked into one write per block, so that few chunks are written twice.
        """
        if not self._pending:
            return
        parts = self._pending_parts()
        self._pending, self._pending_count = [], 0
        start = self.num_written
        stop = start + sum(len(part[self.resolution]) for part in parts)
        for r in level_resolutions(self.resolution):
            dataset = self._levels[r]
            if dataset.shape[0] < stop:
                dataset.resize(stop, axis=0)
            if dataset.chunks[0] == 1:
                offset = start
                for part in parts:
                    dataset[offset:offset + len(part[r])] = part[r]
                    offset += len(part[r])
            else:
                dataset[start:stop] = _stack([part[r] for part in parts])
        self.num_written = stop
        self.file.attrs["images_written"] = stop
        self.file.flush()
        if self.progress:
            self.progress(stop - start)

    def set_labels(self, labels: np.ndarray) -> None:
        """Store one-hot float32 labels inside the file (the sidecar .npy is written on close)."""
        self.labels = np.asarray(labels, dtype=np.float32)
        if "labels" in self.file:
            del self.file["labels"]
        self.file.create_dataset("labels", data=self.labels)

    @property
    def attrs(self) -> dict:
        """The file's root attributes so far (those of the earlier run when resuming)."""
        return dict(self.file.attrs)

    def set_attrs(self, attrs: dict) -> None:
        """Add root attributes (e.g. counts known only at the end)."""
        self.file.attrs.update(attrs)

    def _finish(self) -> None:
        self.flush()
        if self.count is not None and self.num_written != self.count:
            raise PgtoolsError(f"expected {self.count} images but the source produced {self.num_written}")
        for r in level_resolutions(self.resolution):
            self._levels[r].resize(self.num_written, axis=0)
        labels = self.labels
        if labels is not None and len(labels) != self.num_written:
            raise PgtoolsError(f"{len(labels)} labels for {self.num_written} images")
        self.file.attrs["complete"] = True
        self.file.flush()  # a full disk fails here, cleanly: a close that fails leaves HDF5 unable to close at all
        self.file.close()
        if labels is not None:
            sidecar = labels_path(self.path)
            temp = partial_path(sidecar)
            try:
                with open(temp, "wb") as handle:
                    np.save(handle, labels)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            os.replace(temp, sidecar)
        os.replace(self.temp, self.path)
        self._release()

    def __exit__(self, exc_type, exc, traceback) -> None:
        keep = exc_type is not None and self.keep_partial and not is_disk_full(exc)
        try:
            if exc_type is None:
                self._finish()
            elif keep:
                self._keep()
            else:
                self._discard()
        except BaseException as err:
            if not keep or is_disk_full(err):
                self._discard()
            raise _translated(err, self.path) from None
        if exc_type is not None and is_disk_full(exc):
            raise disk_full_error(self.path) from None

    def _keep(self) -> None:
        """Close the unfinished file for a later resume (removed if it holds no image)."""
        try:
            self.flush()
        except BaseException as err:
            if not is_disk_full(err):  # a full disk: __exit__ discards the file (emptied, then closed once)
                self._close_kept()
            raise
        self._close_kept()

    def _close_kept(self) -> None:
        self.file.close()
        if self.num_written == 0:
            self.temp.unlink(missing_ok=True)
        self._release()

    def _discard(self) -> None:
        """Remove the unfinished file. It is emptied first, so that HDF5 can write what it still
        holds and close cleanly even on a full disk (closing a file whose writes failed crashes)."""
        try:
            if self.temp.exists():
                os.truncate(self.temp, 0)
            if self.file is not None:
                self.file.close()
        except (OSError, RuntimeError):
            pass  # the file is being removed: nothing in it is kept
        finally:
            self.temp.unlink(missing_ok=True)
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _translated(err: BaseException, target: Path) -> BaseException:
    """The one-line PgtoolsError for a full disk, else ``err`` itself."""
    return disk_full_error(target) if is_disk_full(err) else err


def write_pyramid(
    path: str | os.PathLike,
    batches: Iterable[np.ndarray],
    *,
    resolution: int,
    channels: int,
    count: int | None = None,
    labels: np.ndarray | None = None,
    **writer_options,
) -> int:
    """Write every batch into a new pyramid at ``path``; returns the number of images written.

    ``writer_options`` are those of :class:`PyramidWriter` (attrs, overwrite, compression, compat,
    progress).
    """
    with PyramidWriter(path, resolution=resolution, channels=channels, count=count, **writer_options) as writer:
        for batch in batches:
            writer.add(batch)
        if labels is not None:
            writer.set_labels(labels)
    return writer.num_written
