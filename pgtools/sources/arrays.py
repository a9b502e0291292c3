"""Helpers for the small datasets held in memory whole (MNIST, CIFAR): batching and labels."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from pgtools.errors import PgtoolsError

BATCH = 4096  # images per batch handed to the writer


def split(images: np.ndarray, size: int = BATCH) -> Iterator[np.ndarray]:
    """Consecutive slices of ``size`` images."""
    for start in range(0, len(images), size):
        yield images[start:start + size]


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """One-hot float32 (N, classes) from integer labels in 0..classes-1."""
    onehot = np.zeros((len(labels), classes), dtype=np.float32)
    onehot[np.arange(len(labels)), labels] = 1.0
    return onehot


def check_labels(labels: np.ndarray, classes: int, where: str) -> np.ndarray:
    """``labels`` as int64 after checking every value lies in 0..classes-1 (``where`` names the file)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (len(labels) and not np.issubdtype(labels.dtype, np.integer)):
        raise PgtoolsError(f"{where}: labels must be a list of integers, got {labels.dtype} {labels.shape}")
    labels = labels.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if len(bad):
        raise PgtoolsError(f"{where}: label {labels[bad[0]]} at index {bad[0]} is outside 0..{classes - 1}")
    return labels
