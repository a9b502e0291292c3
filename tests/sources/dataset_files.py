"""Writers of small raw datasets in their real on-disk formats, for the source and CLI tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import cv2
import lmdb
import numpy as np
from PIL import Image

from pgtools.pyramid import lod_levels

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def write_idx(path: Path, magic: int, array: np.ndarray, *, compress: bool = True) -> Path:
    """An IDX file: big-endian magic, one uint32 per dimension, then the uint8 data."""
    data = struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_mnist(folder: Path, count: int, *, seed: int = 0, compress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like train-images/train-labels IDX files; returns the (count, 28, 28) digits and labels."""
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, count, dtype=np.uint8)
    suffix = ".gz" if compress else ""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", IMAGES_MAGIC, digits, compress=compress)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", LABELS_MAGIC, labels, compress=compress)
    return digits, labels


def write_pickle(path: Path, obj) -> Path:
    """A protocol-2 pickle, as the CIFAR python batches are."""
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)
    return path


def _py2_str(data: bytes) -> bytes:
    """A Python 2 ``str`` opcode (SHORT_BINSTRING or BINSTRING): what ``encoding='bytes'`` reads as bytes."""
    return (b"U" + bytes([len(data)]) + data) if len(data) < 256 else (b"T" + struct.pack("<I", len(data)) + data)


def _py2_int(value: int) -> bytes:
    return b"K" + bytes([value]) if 0 <= value < 256 else b"J" + struct.pack("<i", value)


def python2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR batch exactly as Python 2's cPickle (protocol 2) wrote it with numpy 1.x: str keys, and
    the array rebuilt by numpy.core.multiarray._reconstruct from a str of raw bytes."""
    shape = b"(" + b"".join(_py2_int(d) for d in data.shape) + b"t"
    dtype = (b"cnumpy\ndtype\n(" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"tR(" + _py2_int(3) + _py2_str(b"|")
             + b"NNN" + _py2_int(-1) + _py2_int(-1) + _py2_int(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(" + _py2_int(0) + b"t" + _py2_str(b"b") + b"tR("
             + _py2_int(1) + shape + dtype + b"\x89" + _py2_str(data.tobytes()) + b"tb")
    label_list = b"]" + (b"(" + b"".join(_py2_int(v) for v in labels) + b"e" if labels else b"")
    return b"\x80\x02}(" + _py2_str(b"data") + array + _py2_str(b"labels") + label_list + b"u."


def write_cifar10(folder: Path, per_file: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """data_batch_1..5 with bytes keys; returns all rows (N, 3072) and labels in file order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for index in range(1, 6):
        data = rng.integers(0, 256, (per_file, 3072), dtype=np.uint8)
        batch_labels = [int(value) for value in rng.integers(0, 10, per_file)]
        write_pickle(folder / f"data_batch_{index}",
                     {b"batch_label": b"training batch", b"labels": batch_labels, b"data": data, b"filenames": []})
        rows.append(data)
        labels += batch_labels
    return np.concatenate(rows), np.array(labels)


def write_cifar100(folder: Path, count: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CIFAR-100 'train' pickle; returns rows, fine labels and coarse labels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
    fine = [int(value) for value in rng.integers(0, 100, count)]
    coarse = [int(value) for value in rng.integers(0, 20, count)]
    write_pickle(folder / "train", {b"data": data, b"fine_labels": fine, b"coarse_labels": coarse})
    return data, np.array(fine), np.array(coarse)


def smooth_image(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> np.ndarray:
    """A uint8 image with gradients plus noise, so lossy codecs and resizing have real work."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), ((x + y) * 3) % 256], axis=-1)
    noise = rng.integers(-20, 21, (height, width, 3))
    image = np.clip(base + noise, 0, 255).astype(np.uint8)
    return image[:, :, :channels] if channels == 3 else image[:, :, 0]


def encode(image: np.ndarray, kind: str) -> bytes:
    """Encode an RGB (H, W, 3) image: ``jpeg`` via OpenCV, ``webp``/``tga``/``png`` via Pillow."""
    if kind == "jpeg":
        ok, buffer = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        return buffer.tobytes()
    stream = io.BytesIO()
    Image.fromarray(image).save(stream, format=kind.upper())
    return stream.getvalue()


def lsun_values(count: int, *, seed: int = 0) -> list[tuple[bytes, bytes]]:
    """(key, encoded image) records of varied sizes and aspect ratios: JPEG, WebP and TGA (Pillow only)."""
    rng = np.random.default_rng(seed)
    kinds = ("jpeg", "webp", "jpeg", "tga")
    records = []
    for index in range(count):
        height, width = int(rng.integers(20, 72)), int(rng.integers(20, 72))
        key = f"{rng.integers(0, 2**63):016x}{index:04d}".encode()
        records.append((key, encode(smooth_image(rng, height, width), kinds[index % len(kinds)])))
    return records


def write_lmdb(path: Path, records: list[tuple[bytes, bytes]]) -> Path:
    """An LMDB folder (data.mdb) holding the records."""
    env = lmdb.open(str(path), map_size=64 * 2**20)
    with env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value)
    env.close()
    return path


def write_images(folder: Path, images: list[np.ndarray], names: list[str]) -> list[Path]:
    """Save uint8 (H, W) or (H, W, 3) arrays under the given file names (format from the suffix)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, name in zip(images, names):
        options = {"quality": 90} if name.endswith(".jpg") else {}
        Image.fromarray(image).save(folder / name, **options)
        paths.append(folder / name)
    return paths


def collect(source) -> np.ndarray:
    """Every image a source yields, stacked; for batches yielded as levels (computed in workers), the
    top level after checking every level against lod_levels of it."""
    tops = []
    for batch in source.batches:
        if isinstance(batch, dict):
            expected = lod_levels(batch[source.resolution], source.resolution)
            assert sorted(batch) == sorted(expected)
            for r, level in expected.items():
                np.testing.assert_array_equal(batch[r], level)
            batch = batch[source.resolution]
        tops.append(batch)
    return np.concatenate(tops)

