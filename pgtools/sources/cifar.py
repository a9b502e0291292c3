"""create_cifar10 and create_cifar100: the training images of the CIFAR "python version" pickles.

The pickles were written by Python 2, so they are read with ``encoding='bytes'`` (keys such as
``b'data'``). Each row of ``b'data'`` (3072 bytes) is one image in (3, 32, 32) order. Only numpy
arrays and plain containers are unpickled, so a file cannot run code.
"""

from __future__ import annotations

import codecs
import os
import pickle
from pathlib import Path

import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.sources import Source
from pgtools.sources.arrays import check_labels, one_hot, split

CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR100_FILE = "train"
CIFAR100_LABELS = {"fine": (b"fine_labels", 100), "coarse": (b"coarse_labels", 20)}
SHAPE = (3, 32, 32)
ROW = 3 * 32 * 32

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers and refuses anything else."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR batch never does") from None


def load_pickle(path: Path) -> dict:
    """A CIFAR batch as a dict with bytes keys."""
    if not path.is_file():
        hint = ""
        for inner in ("cifar-10-batches-py", "cifar-100-python"):
            if (path.parent / inner / path.name).is_file():
                hint = f" (found {inner}/{path.name} inside: pass {path.parent / inner} instead)"
        raise PgtoolsError(f"{path}: no such file{hint}")
    try:
        with open(path, "rb") as handle:
            batch = _ArraysOnly(handle, encoding="bytes").load()
    except OSError:
        raise
    except Exception as err:  # garbage input can fail in many ways; all mean "not a CIFAR pickle"
        raise PgtoolsError(f"{path}: not a readable CIFAR python pickle ({type(err).__name__}: {err})") from None
    if not isinstance(batch, dict):
        raise PgtoolsError(f"{path}: the pickle holds a {type(batch).__name__}, not the dict of a CIFAR batch")
    return {key.encode() if isinstance(key, str) else key: value for key, value in batch.items()}


def read_batch(path: Path, label_key: bytes, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (n, 3, 32, 32) and int64 labels (n,) of one pickle, checked."""
    batch = load_pickle(path)
    missing = [key for key in (b"data", label_key) if key not in batch]
    if missing:
        found = ", ".join(repr(key) for key in batch) or "none"
        raise PgtoolsError(
            f"{path}: the pickle has no {' or '.join(map(repr, missing))} entry (found: {found}); "
            f"expected a CIFAR python batch with b'data' and {label_key!r}"
        )
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
        described = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise PgtoolsError(f"{path}: b'data' is {described}; expected uint8 (n, {ROW})")
    labels = check_labels(np.asarray(batch[label_key]), classes, f"{path} {label_key!r}")
    if len(labels) != len(data):
        raise PgtoolsError(f"{path}: image/label count mismatch: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, *SHAPE), labels


def _source(folder: Path, files: tuple[str, ...], label_key: bytes, classes: int, export_labels: bool,
            source_format: str) -> Source:
    if not folder.is_dir():
        raise PgtoolsError(f"{folder}: no such folder (expected the CIFAR files {', '.join(files)})")
    parts = [read_batch(folder / name, label_key, classes) for name in files]
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    if len(images) == 0:
        raise PgtoolsError(f"{folder}: the CIFAR files hold no images")
    attrs = {"source": str(folder.resolve()), "source_format": source_format, "source_images": len(images)}
    if export_labels:
        attrs["label_classes"] = classes
    return Source(resolution=32, channels=3, count=len(images), batches=split(images),
                  labels=one_hot(labels, classes) if export_labels else None, attrs=attrs)


def open_cifar10(folder: str | os.PathLike, *, export_labels: bool = False) -> Source:
    """CIFAR-10 training images from ``data_batch_1`` ... ``data_batch_5`` (10 classes)."""
    return _source(Path(folder), CIFAR10_FILES, b"labels", 10, export_labels, "cifar10")


def open_cifar100(folder: str | os.PathLike, *, export_labels: bool = False, label_type: str = "fine") -> Source:
    """CIFAR-100 training images from ``train``; labels are the 100 fine or the 20 coarse classes."""
    if label_type not in CIFAR100_LABELS:
        raise PgtoolsError(f"label type must be one of {', '.join(CIFAR100_LABELS)}, got {label_type!r}")
    label_key, classes = CIFAR100_LABELS[label_type]
    source = _source(Path(folder), (CIFAR100_FILE,), label_key, classes, export_labels, "cifar100")
    if export_labels:
        source.attrs["label_type"] = label_type
    return source
