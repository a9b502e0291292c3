"""Looking at pyramids: describe a file leniently, compare two files, lay images out as a sheet."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.pyramid import BLOCK_BYTES, Pyramid, is_power_of_two, labels_path, level_name, level_resolutions
from pgtools.pyramid.integrity import LevelCheck, incomplete, reading, verify_level


def _open_hdf5(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise PgtoolsError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise PgtoolsError(f"{path}: not an HDF5 file")
    with reading(path):
        return h5py.File(path, "r")


def _levels(file: h5py.File) -> dict[int, h5py.Dataset]:
    """Every ``data<r>x<r>`` dataset of a file by resolution, whatever else it holds."""
    return {
        dataset.shape[-1]: dataset
        for dataset in file.values()
        if isinstance(dataset, h5py.Dataset) and dataset.ndim == 4 and dataset.name.lstrip("/") == level_name(dataset.shape[-1])
    }


def _level_info(dataset: h5py.Dataset) -> dict:
    compression = dataset.compression or "none"
    if dataset.compression_opts is not None:
        compression += f"-{dataset.compression_opts}"
    return {
        "name": dataset.name.lstrip("/"),
        "shape": list(dataset.shape),
        "dtype": str(dataset.dtype),
        "chunks": list(dataset.chunks) if dataset.chunks else None,
        "compression": compression,
        "bytes_on_disk": int(dataset.id.get_storage_size()),
        "bytes_uncompressed": int(dataset.size * dataset.dtype.itemsize),
    }


def _attr_value(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def describe(path: str | os.PathLike) -> dict:
    """Everything ``inspect`` shows, as a JSON-ready dict; problems go to ``warnings``, not exceptions
    (damaged metadata raises :class:`pgtools.errors.Damaged`)."""
    path = Path(path)
    with _open_hdf5(path) as file, reading(path):
        levels = _levels(file)
        if not levels:
            raise PgtoolsError(f"{path}: not a pyramid (no data<r>x<r> datasets)")
        resolution = max(levels)
        top = levels[resolution]
        warnings = []
        expected = level_resolutions(resolution) if is_power_of_two(resolution) else sorted(levels)
        missing = [level_name(r) for r in expected if r not in levels]
        if missing:
            warnings.append(f"levels missing: {', '.join(missing)} (perhaps creation was interrupted)")
        counts = {dataset.shape[0] for dataset in levels.values()}
        if len(counts) > 1:
            warnings.append(
                "levels hold different image counts ("
                + ", ".join(f"{level_name(r)}: {levels[r].shape[0]}" for r in sorted(levels, reverse=True))
                + "); perhaps creation was interrupted"
            )
        attrs = {key: _attr_value(value) for key, value in file.attrs.items()}
        state = incomplete(attrs, levels, by_chunks=True)
        if state:
            warnings.append(f"{state} (creation was interrupted)")
        elif "complete" not in attrs:
            warnings.append("no 'complete' flag: not written by pgtools, completeness cannot be confirmed")
        labels = file["labels"].shape if "labels" in file else None
        sidecar = labels_path(path)
        if labels is None and sidecar.is_file():
            labels = np.load(sidecar, mmap_mode="r").shape
        channels = top.shape[1]
        return {
            "file": str(path),
            "size_bytes": path.stat().st_size,
            "num_images": int(top.shape[0]),
            "incomplete": state,
            "resolution": int(resolution),
            "channels": int(channels),
            "bytes_per_image": int(channels * resolution * resolution),
            "bytes_on_disk_per_image": sum(info.id.get_storage_size() for info in levels.values()) / max(top.shape[0], 1),
            "labels": list(labels) if labels else None,
            "levels": [_level_info(levels[r]) for r in sorted(levels, reverse=True)],
            "attrs": attrs,
            "warnings": warnings,
        }


def verify(path: str | os.PathLike, progress: Callable[[int], None] | None = None) -> list[LevelCheck]:
    """Read back every chunk of every level, top level first; ``progress`` gets images read."""
    with _open_hdf5(path) as file, reading(path):
        levels = _levels(file)
        return [verify_level(levels[r], progress) for r in sorted(levels, reverse=True)]


@dataclass
class LevelDiff:
    """Differences in one level: how many images differ and the first few indices."""

    resolution: int
    differing: int = 0
    first: list[int] = field(default_factory=list)


@dataclass
class Comparison:
    """The outcome of :func:`compare`: ``identical`` is the one thing to check."""

    problems: list[str]  # mismatches that stop an image-by-image comparison or count against it
    levels: list[LevelDiff]
    compared: int  # images compared per level

    @property
    def identical(self) -> bool:
        return not self.problems and all(level.differing == 0 for level in self.levels)


def compare(path_a: str | os.PathLike, path_b: str | os.PathLike, *, show: int = 10) -> Comparison:
    """Compare two pyramids image by image at every level, reading bounded blocks."""
    with Pyramid(path_a) as a, Pyramid(path_b) as b:
        if a.channels != b.channels:
            return Comparison([f"channel count mismatch: {a.channels} vs {b.channels}"], [], 0)
        if a.resolution != b.resolution:
            return Comparison([f"resolution mismatch: {a.resolution} vs {b.resolution}"], [], 0)
        problems = []
        if a.num_images != b.num_images:
            problems.append(f"image count mismatch: {a.num_images} vs {b.num_images}")
        count = min(a.num_images, b.num_images)
        levels = []
        for r in reversed(a.levels):
            diff = LevelDiff(r)
            block = max(1, BLOCK_BYTES // (a.channels * r * r))
            for start in range(0, count, block):
                stop = min(start + block, count)
                unequal = np.flatnonzero((a.read(r, start, stop) != b.read(r, start, stop)).reshape(stop - start, -1).any(axis=1))
                diff.differing += len(unequal)
                diff.first.extend(int(start + i) for i in unequal[: show - len(diff.first)])
            levels.append(diff)
        return Comparison(problems, levels, count)


def contact_sheet(images: np.ndarray, columns: int | None = None, gap: int = 0) -> np.ndarray:
    """Lay uint8 (N, C, r, r) images out row by row as one (H, W, C) image, C being 1 or 3."""
    count, channels, height, width = images.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    sheet = np.zeros((rows * (height + gap) - gap, columns * (width + gap) - gap, channels), dtype=np.uint8)
    for index, image in enumerate(images):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        sheet[top : top + height, left : left + width] = image.transpose(1, 2, 0)
    return sheet
