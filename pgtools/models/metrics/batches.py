"""Plumbing shared by the metrics: checking and chunking uint8 NCHW batches, thread count."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from pgtools.errors import PgtoolsError

Images = np.ndarray | Iterable[np.ndarray]  # one uint8 (N, C, H, W) array, or batches of them

CHUNK = 256  # images per internal step when a whole array is given (bounds float32 temporaries)


def check_batch(batch: object, name: str) -> np.ndarray:
    """Return ``batch`` if it is a uint8 (N, C, H, W) array with C 1 or 3; else raise PgtoolsError."""
    if not isinstance(batch, np.ndarray):
        raise PgtoolsError(
            f"{name}: expected numpy arrays of uint8 images (N, C, H, W), got {type(batch).__name__}"
        )
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise PgtoolsError(
            f"{name}: expected images of shape (N, C, H, W) with C 1 or 3, got shape {batch.shape}"
        )
    if batch.dtype != np.uint8:
        raise PgtoolsError(f"{name}: expected uint8 images, got {batch.dtype}")
    return batch


def iter_batches(images: Images, name: str, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """Yield checked, non-empty batches of one image set; a whole array is cut into ``chunk``s.

    All images of the set must share one (C, H, W) shape.
    """
    batches = [images] if isinstance(images, np.ndarray) else images
    first: tuple[int, ...] | None = None
    for batch in batches:
        check_batch(batch, name)
        if first is None:
            first = batch.shape[1:]
        elif batch.shape[1:] != first:
            raise PgtoolsError(
                f"{name}: images of shape {batch.shape[1:]} after images of shape {first}; "
                "all images of a set must have one shape"
            )
        for start in range(0, len(batch), chunk):
            yield batch[start : start + chunk]


def take_images(images: Images, count: int, name: str) -> Iterator[np.ndarray]:
    """Yield checked batches holding exactly the first ``count`` images of ``images``."""
    taken = 0
    if count > 0:
        for batch in iter_batches(images, name):
            batch = batch[: count - taken]
            taken += len(batch)
            yield batch
            if taken == count:
                return
    if taken < count:
        raise PgtoolsError(f"{name}: only {taken} images available; {count} needed")


def cpu_workers() -> int:
    """Threads worth starting: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
