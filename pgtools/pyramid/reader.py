"""Reading a pyramid written by pgtools or by the original h5tool, validated on opening."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from pgtools.errors import Damaged, PgtoolsError
from pgtools.pyramid.format import is_power_of_two, labels_path, level_name, level_resolutions
from pgtools.pyramid.integrity import incomplete, reading


class Pyramid:
    """Read a pyramid written by pgtools or by the original h5tool (a context manager).

    Opening validates the file: every level present, uint8, equal image counts, and the
    ``complete`` flag where the file has one. Any HDF5 failure while opening or reading raises
    :class:`pgtools.errors.Damaged` naming the file and the level.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PgtoolsError(f"{self.path}: no such file")
        if not h5py.is_hdf5(self.path):
            raise PgtoolsError(f"{self.path}: not an HDF5 file")
        with reading(self.path):
            self.file = h5py.File(self.path, "r")
        try:
            with reading(self.path):
                self._validate()
        except PgtoolsError:
            self.file.close()
            raise
        self._cache: dict[int, np.ndarray] = {}
        self._labels: np.ndarray | None | bool = False

    def _validate(self) -> None:
        names = [name for name in self.file if name.startswith("data") and name == level_name(self._shape(name)[-1])]
        if not names:
            raise PgtoolsError(f"{self.path}: not a pyramid (no data<r>x<r> datasets)")
        self.resolution = max(self._shape(name)[-1] for name in names)
        if not is_power_of_two(self.resolution):
            raise PgtoolsError(f"{self.path}: top level {self.resolution}x{self.resolution} is not a power of two")
        self.levels = level_resolutions(self.resolution)
        missing = [level_name(r) for r in self.levels if level_name(r) not in self.file]
        if missing:
            raise PgtoolsError(f"{self.path}: levels missing: {', '.join(missing)} (perhaps creation was interrupted)")
        self.num_images, self.channels = self._shape(level_name(self.resolution))[:2]
        datasets = {r: self._dataset(r) for r in self.levels}
        state = incomplete(self.file.attrs, datasets)
        if state:
            raise PgtoolsError(f"{self.path}: {state} (its creation was interrupted); create it again")
        for r, dataset in datasets.items():
            if dataset.dtype != np.uint8 or dataset.shape[1:] != (self.channels, r, r):
                raise PgtoolsError(f"{self.path}: {level_name(r)} is {dataset.dtype} {dataset.shape}, expected uint8 (N, {self.channels}, {r}, {r})")
            if dataset.shape[0] != self.num_images:
                raise PgtoolsError(
                    f"{self.path}: {level_name(r)} holds {dataset.shape[0]} images but "
                    f"{level_name(self.resolution)} holds {self.num_images} (perhaps creation was interrupted)"
                )
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
                with reading(self.path, what="labels"):
                    self._labels = self.file["labels"][()]
            elif sidecar.is_file():
                try:
                    self._labels = np.load(sidecar)
                except (OSError, ValueError) as err:
                    raise Damaged(f"{sidecar}: not a readable .npy file ({err})") from None
            else:
                self._labels = None
            if self._labels is not None and len(self._labels) != self.num_images:
                raise PgtoolsError(f"{self.path}: {len(self._labels)} labels for {self.num_images} images")
        return self._labels

    def _shape(self, name: str) -> tuple[int, ...]:
        with reading(self.path, what=name):
            return self.file[name].shape

    def _dataset(self, resolution: int) -> h5py.Dataset:
        if resolution not in self.levels:
            raise PgtoolsError(f"{self.path}: no {resolution}x{resolution} level (levels: {', '.join(map(str, self.levels))})")
        with reading(self.path, resolution):
            return self.file[level_name(resolution)]

    def level_nbytes(self, resolution: int) -> int:
        """Uncompressed size of a level in bytes."""
        return self.num_images * self.channels * resolution * resolution

    def load_level(self, resolution: int) -> np.ndarray:
        """Read a whole level into memory; later reads of it are served from there."""
        if resolution not in self._cache:
            dataset = self._dataset(resolution)
            with reading(self.path, resolution):
                self._cache[resolution] = dataset[()]
        return self._cache[resolution]

    def read(self, resolution: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Images ``[start:stop]`` of a level as uint8 (n, C, r, r)."""
        if resolution in self._cache:
            return self._cache[resolution][start:stop]
        dataset = self._dataset(resolution)
        with reading(self.path, resolution):
            return dataset[start:stop]

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
        with reading(self.path, resolution):
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
