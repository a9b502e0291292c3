"""The multi-resolution HDF5 pyramid: level arithmetic, the writer and the reader.

A pyramid of resolution R = 2^k holds uint8 datasets ``data{r}x{r}`` of shape (N, C, r, r) for
r = R, R/2, ..., 1, images in the same order in every level (the layout of NVIDIA's h5tool).
"""

from __future__ import annotations

import datetime
import os
import zlib
from pathlib import Path
from typing import Callable, Iterable

import h5py
import numpy as np

from pgtools import __version__
from pgtools.atomic import check_target
from pgtools.errors import PgtoolsError

COMPRESSIONS = ("none", "lzf") + tuple(f"gzip-{level}" for level in range(1, 10))
DEFAULT_COMPRESSION = "none"
CHUNK_BYTES = 64 * 1024  # default chunks hold as many whole images as fit in this many bytes
BLOCK_BYTES = 64 * 1024 * 1024  # images processed together, counted at the top level
Progress = Callable[[int], None]


def level_name(resolution: int) -> str:
    """HDF5 dataset name of a level, e.g. ``data128x128``."""
    return f"data{resolution}x{resolution}"


def is_power_of_two(value: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return value >= 1 and value & (value - 1) == 0


def level_resolutions(resolution: int) -> list[int]:
    """Resolutions of every level, ascending: [1, 2, 4, ..., resolution]."""
    return [2**k for k in range(resolution.bit_length())]


def halve(images: np.ndarray) -> np.ndarray:
    """Replace each 2x2 block by its float32 mean, summed top-left, top-right, bottom-left, bottom-right."""
    x = images.astype(np.float32, copy=False)
    return (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) * np.float32(0.25)


def quantize(values: np.ndarray) -> np.ndarray:
    """Store a float level as uint8: round half to even, clip to [0, 255]."""
    if values.dtype == np.uint8:
        return values
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def lod_levels(images: np.ndarray, resolution: int) -> dict[int, np.ndarray]:
    """Every level of a batch, as the original computed them.

    Args:
        images: uint8 (N, C, S, S) with S >= resolution, S a power of two.
        resolution: the pyramid's top level R.
    Returns:
        {r: uint8 (N, C, r, r)} for r = R, R/2, ..., 1. Each level is computed from the previous
        level's float32 values, never from its rounded uint8.
    """
    side = images.shape[-1]
    if images.ndim != 4 or images.shape[-2] != side or not is_power_of_two(side) or side < resolution:
        raise ValueError(f"expected (N, C, S, S) images with S a power of two >= {resolution}, got {images.shape}")
    levels = {}
    current = images
    for r in reversed(level_resolutions(resolution)):
        while current.shape[-1] > r:
            current = halve(current)
        levels[r] = quantize(current)
    return levels


def parse_compression(name: str) -> tuple[str | None, int | None]:
    """Map ``none``, ``lzf`` or ``gzip-N`` to h5py's (compression, compression_opts)."""
    if name not in COMPRESSIONS:
        raise PgtoolsError(f"unknown compression {name!r}; choose one of {', '.join(COMPRESSIONS)}")
    if name == "none":
        return None, None
    if name == "lzf":
        return "lzf", None
    return "gzip", int(name.split("-")[1])


def images_per_chunk(channels: int, resolution: int, compat: bool) -> int:
    """Images per HDF5 chunk: the original's 128-byte rule in compat mode, else up to CHUNK_BYTES."""
    image_bytes = channels * resolution * resolution
    if compat:
        return -(-128 // image_bytes)
    return max(1, CHUNK_BYTES // image_bytes)


def _attr_text(value):
    return value.decode() if isinstance(value, bytes) else value


def partial_path(target: Path) -> Path:
    """Where an unfinished pyramid is written: hidden, next to the target, never looking complete."""
    return target.with_name(f".{target.name}.partial")


def labels_path(path: str | os.PathLike) -> Path:
    """The ``<name>-labels.npy`` file the original's reader looks for next to ``<name>.h5``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-labels.npy")


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
        compression, level = parse_compression("gzip-4" if compat else compression)
        self.file = self._open(resume, attrs or {}, compression, level, compat)
        self.num_written = int(self.file.attrs["images_written"])
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._block = max(1, BLOCK_BYTES // (channels * resolution * resolution))

    def _open(self, resume: bool, attrs: dict, compression, level, compat: bool) -> h5py.File:
        if resume and self.temp.exists():
            try:
                file = h5py.File(self.temp, "r+")
            except OSError as err:
                raise PgtoolsError(f"cannot resume from {self.temp}: {err}; delete it to start again") from err
            self._check_resumable(file, attrs)
            return file
        file = h5py.File(self.temp, "w")
        size = self.count or 0
        for r in level_resolutions(self.resolution):
            shape = (self.channels, r, r)
            file.create_dataset(
                level_name(r), shape=(size, *shape), maxshape=(None, *shape), dtype=np.uint8,
                chunks=(self._chunk_images(r, compat), *shape),
                compression=compression, compression_opts=level,
            )
        file.attrs.update(
            {"pgtools_version": __version__, "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        )
        file.attrs.update({key: value for key, value in attrs.items() if value is not None})
        file.attrs["complete"] = False
        file.attrs["images_written"] = 0
        return file

    def _chunk_images(self, resolution: int, compat: bool) -> int:
        per_chunk = images_per_chunk(self.channels, resolution, compat)
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

    def add(self, images: np.ndarray) -> None:
        """Queue a uint8 (n, C, S, S) batch; levels are computed and written in large blocks."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != self.channels:
            raise ValueError(f"expected uint8 (n, {self.channels}, S, S) images, got {images.dtype} {images.shape}")
        self._pending.append(images)
        self._pending_count += len(images)
        if self._pending_count >= self._block:
            self.flush()

    def flush(self) -> None:
        """Write every queued image and record the count, so that a resume continues after them."""
        if not self._pending:
            return
        batch = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_count = [], 0
        start, stop = self.num_written, self.num_written + len(batch)
        for r, level in lod_levels(batch, self.resolution).items():
            dataset = self.file[level_name(r)]
            if dataset.shape[0] < stop:
                dataset.resize(stop, axis=0)
            dataset[start:stop] = level
        self.num_written = stop
        self.file.attrs["images_written"] = stop
        self.file.flush()
        if self.progress:
            self.progress(len(batch))

    def set_labels(self, labels: np.ndarray) -> None:
        """Store one-hot float32 labels inside the file (the sidecar .npy is written on close)."""
        self.labels = np.asarray(labels, dtype=np.float32)
        if "labels" in self.file:
            del self.file["labels"]
        self.file.create_dataset("labels", data=self.labels)

    def set_attrs(self, attrs: dict) -> None:
        """Add root attributes (e.g. counts known only at the end)."""
        self.file.attrs.update(attrs)

    def _finish(self) -> None:
        self.flush()
        if self.count is not None and self.num_written != self.count:
            raise PgtoolsError(f"expected {self.count} images but the source produced {self.num_written}")
        for r in level_resolutions(self.resolution):
            self.file[level_name(r)].resize(self.num_written, axis=0)
        labels = getattr(self, "labels", None)
        if labels is not None and len(labels) != self.num_written:
            raise PgtoolsError(f"{len(labels)} labels for {self.num_written} images")
        self.file.attrs["complete"] = True
        self.file.close()
        if labels is not None:
            sidecar = labels_path(self.path)
            temp = partial_path(sidecar)
            with open(temp, "wb") as handle:
                np.save(handle, labels)
            os.replace(temp, sidecar)
        os.replace(self.temp, self.path)

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            try:
                self._finish()
                return
            except BaseException:
                self._discard()
                raise
        if self.keep_partial:
            try:
                self.flush()
            finally:
                self.file.close()
        else:
            self._discard()

    def _discard(self) -> None:
        try:
            self.file.close()
        finally:
            self.temp.unlink(missing_ok=True)


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


class Pyramid:
    """Read a pyramid written by pgtools or by the original h5tool (a context manager).

    Opening validates the file: every level present, uint8, equal image counts, and the
    ``complete`` flag where the file has one.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PgtoolsError(f"{self.path}: no such file")
        if not h5py.is_hdf5(self.path):
            raise PgtoolsError(f"{self.path}: not an HDF5 file")
        self.file = h5py.File(self.path, "r")
        try:
            self._validate()
        except PgtoolsError:
            self.file.close()
            raise
        self._cache: dict[int, np.ndarray] = {}
        self._labels: np.ndarray | None | bool = False

    def _validate(self) -> None:
        names = [name for name in self.file if name.startswith("data") and name == level_name(self.file[name].shape[-1])]
        if not names:
            raise PgtoolsError(f"{self.path}: not a pyramid (no data<r>x<r> datasets)")
        self.resolution = max(self.file[name].shape[-1] for name in names)
        if not is_power_of_two(self.resolution):
            raise PgtoolsError(f"{self.path}: top level {self.resolution}x{self.resolution} is not a power of two")
        self.levels = level_resolutions(self.resolution)
        missing = [level_name(r) for r in self.levels if level_name(r) not in self.file]
        if missing:
            raise PgtoolsError(f"{self.path}: levels missing: {', '.join(missing)} (perhaps creation was interrupted)")
        top = self.file[level_name(self.resolution)]
        self.num_images, self.channels = top.shape[0], top.shape[1]
        for r in self.levels:
            dataset = self.file[level_name(r)]
            if dataset.dtype != np.uint8 or dataset.shape[1:] != (self.channels, r, r):
                raise PgtoolsError(f"{self.path}: {level_name(r)} is {dataset.dtype} {dataset.shape}, expected uint8 (N, {self.channels}, {r}, {r})")
            if dataset.shape[0] != self.num_images:
                raise PgtoolsError(
                    f"{self.path}: {level_name(r)} holds {dataset.shape[0]} images but "
                    f"{level_name(self.resolution)} holds {self.num_images} (perhaps creation was interrupted)"
                )
        if not self.file.attrs.get("complete", True):
            raise PgtoolsError(f"{self.path}: incomplete file (its creation was interrupted); create it again")
        if self.num_images == 0:
            raise PgtoolsError(f"{self.path}: holds no images")

    @property
    def attrs(self) -> dict:
        """Root attributes (metadata written by pgtools; empty for the original's files)."""
        return dict(self.file.attrs)

    @property
    def labels(self) -> np.ndarray | None:
        """One-hot float32 labels (N, classes) from the file or the sidecar ``-labels.npy``."""
        if self._labels is False:
            sidecar = labels_path(self.path)
            if "labels" in self.file:
                self._labels = self.file["labels"][()]
            elif sidecar.is_file():
                self._labels = np.load(sidecar)
            else:
                self._labels = None
            if self._labels is not None and len(self._labels) != self.num_images:
                raise PgtoolsError(f"{self.path}: {len(self._labels)} labels for {self.num_images} images")
        return self._labels

    def _dataset(self, resolution: int) -> h5py.Dataset:
        if resolution not in self.levels:
            raise PgtoolsError(f"{self.path}: no {resolution}x{resolution} level (levels: {', '.join(map(str, self.levels))})")
        return self.file[level_name(resolution)]

    def level_nbytes(self, resolution: int) -> int:
        """Uncompressed size of a level in bytes."""
        return self.num_images * self.channels * resolution * resolution

    def load_level(self, resolution: int) -> np.ndarray:
        """Read a whole level into memory; later reads of it are served from there."""
        if resolution not in self._cache:
            self._cache[resolution] = self._dataset(resolution)[()]
        return self._cache[resolution]

    def read(self, resolution: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Images ``[start:stop]`` of a level as uint8 (n, C, r, r)."""
        if resolution in self._cache:
            return self._cache[resolution][start:stop]
        return self._dataset(resolution)[start:stop]

    def read_indices(self, resolution: int, indices: Iterable[int]) -> np.ndarray:
        """Images at arbitrary indices (any order, repeats allowed) as uint8 (n, C, r, r)."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= self.num_images):
            raise IndexError(f"image index out of range 0..{self.num_images - 1}")
        if resolution in self._cache:
            return self._cache[resolution][indices]
        dataset = self._dataset(resolution)
        unique, inverse = np.unique(indices, return_inverse=True)
        out = np.empty((len(unique), self.channels, resolution, resolution), dtype=np.uint8)
        reader = _ChunkReader(dataset)
        for slot, index in enumerate(unique):
            out[slot] = reader.image(int(index))
        return out[inverse]

    def minibatch(self, resolution: int, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` images drawn uniformly at random (with replacement)."""
        return self.read_indices(resolution, rng.integers(0, self.num_images, size))

    def close(self) -> None:
        self._cache.clear()
        self.file.close()

    def __enter__(self) -> "Pyramid":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _ChunkReader:
    """Read single images fast: whole chunks straight from disk, decompressed here.

    h5py's own selection machinery costs far more than the data for one small image (and fancy
    indexing on chunked data is pathologically slow), so chunks without a filter or with gzip are
    read with ``read_direct_chunk``; other filters fall back to plain slicing.
    """

    def __init__(self, dataset: h5py.Dataset) -> None:
        self.dataset = dataset
        self.per_chunk = dataset.chunks[0] if dataset.chunks else 0
        self.direct = bool(self.per_chunk) and dataset.compression in (None, "gzip") and not dataset.shuffle and not dataset.fletcher32
        self._cached: tuple[int, np.ndarray] | None = None

    def image(self, index: int) -> np.ndarray:
        if not self.direct:
            return self.dataset[index]
        first = index - index % self.per_chunk
        if self._cached is None or self._cached[0] != first:
            _, raw = self.dataset.id.read_direct_chunk((first, 0, 0, 0))
            if self.dataset.compression == "gzip":
                raw = zlib.decompress(raw)
            chunk = np.frombuffer(raw, dtype=np.uint8).reshape(self.dataset.chunks)
            self._cached = (first, chunk)
        return self._cached[1][index - first]
