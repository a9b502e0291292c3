"""create_lsun: an LSUN LMDB of encoded images, centre-cropped to a square and resized.

Records are read in key order. Each value is decoded with OpenCV (colour, BGR flipped to RGB), or
with Pillow when OpenCV cannot; cropped to the centred square of side min(h, w) starting at row
(h - s) // 2 and column (w - s) // 2; and resized with Pillow's LANCZOS, as the original did.
Worker processes receive the raw bytes in batches from this process, so memory stays bounded.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import os
from pathlib import Path
from typing import Iterator

import cv2
import lmdb
import numpy as np
import PIL.Image

from pgtools.errors import PgtoolsError
from pgtools.parallel import ordered_map
from pgtools.pyramid import is_power_of_two
from pgtools.sources import Source
from pgtools.sources.images import batched, images_per_task
from pgtools.sources.transforms import center_crop

MAX_LISTED_KEYS = 100  # skipped keys recorded in the file's metadata

Record = tuple[int, bytes, bytes]  # (position in key order, key, value)


def show_key(key: bytes) -> str:
    """An LMDB key as text for messages."""
    return key.decode("utf-8", errors="backslashreplace")


def decode_image(value: bytes) -> np.ndarray:
    """RGB uint8 (H, W, 3): OpenCV first, Pillow when OpenCV cannot; ValueError when neither can."""
    try:
        image = cv2.imdecode(np.frombuffer(value, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is not None:
        return image[:, :, ::-1]
    try:
        with PIL.Image.open(io.BytesIO(value)) as pil:
            return np.asarray(pil.convert("RGB"))
    except PIL.UnidentifiedImageError:
        raise ValueError("neither OpenCV nor Pillow recognises it as an image") from None
    except (OSError, SyntaxError) as err:
        raise ValueError(str(err)) from None


def decode_records(records: list[Record], *, resolution: int, skip_bad: bool,
                   where: str) -> tuple[np.ndarray, list[tuple[int, bytes]]]:
    """Decode a batch of records.

    Returns:
        uint8 (n, 3, R, R) of the good records in order, and for each bad record (only with
        ``skip_bad``; otherwise the first one raises) the number of good records before it and its key.
    """
    images, bad = [], []
    for position, key, value in records:
        try:
            images.append(center_crop(decode_image(value), resolution).transpose(2, 0, 1))
        except ValueError as err:
            if not skip_bad:
                raise PgtoolsError(
                    f"{where}: record {position} (key {show_key(key)}) is not a decodable image ({err}); "
                    f"use --skip_bad to skip such records"
                ) from None
            bad.append((len(images), key))
    stacked = np.stack(images) if images else np.empty((0, 3, resolution, resolution), dtype=np.uint8)
    return stacked, bad


def _open_env(path: Path) -> lmdb.Environment:
    if not path.exists():
        raise PgtoolsError(f"{path}: no such LMDB folder")
    try:
        return lmdb.open(str(path), readonly=True, lock=False, subdir=path.is_dir())
    except lmdb.Error as err:
        raise PgtoolsError(f"{path}: not a readable LMDB database ({err})") from None


def open_lsun(
    path: str | os.PathLike,
    *,
    resolution: int = 256,  # output side, a power of two
    max_images: int | None = None,  # stop after this many images; None: every record
    skip_bad: bool = False,  # skip undecodable records instead of failing
    workers: int | None = None,  # decoding processes; None: all cores; 0 or 1: this process
) -> Source:
    """An LSUN category (an LMDB folder) as RGB images of ``resolution`` squared."""
    path = Path(path)
    if not is_power_of_two(resolution):
        raise PgtoolsError(f"--resolution must be a power of two, got {resolution}")
    env = _open_env(path)
    records = env.stat()["entries"]
    if records == 0:
        env.close()
        raise PgtoolsError(f"{path}: the LMDB holds no records")
    limit = min(records, max_images or records)
    attrs = {"source": str(path.resolve()), "source_format": "lsun", "lmdb_records": records}
    batches = _images(env, attrs, resolution=resolution, limit=limit, skip_bad=skip_bad, workers=workers)
    return Source(resolution=resolution, channels=3, count=None if skip_bad else limit, batches=batches, attrs=attrs)


def _images(env: lmdb.Environment, attrs: dict, *, resolution: int, limit: int, skip_bad: bool,
            workers: int | None) -> Iterator[np.ndarray]:
    """Decoded batches until ``limit`` images.

    With ``skip_bad``, ``attrs`` gains ``skipped_records`` and ``skipped_keys`` (JSON, the first
    MAX_LISTED_KEYS), updated after every batch so that they are final when the iterator ends.
    """
    decode = functools.partial(decode_records, resolution=resolution, skip_bad=skip_bad, where=env.path())
    written, skipped = 0, []
    try:
        with env.begin(write=False) as txn:
            records = ((position, key, value) for position, (key, value) in enumerate(txn.cursor()))
            if not skip_bad:  # exactly the records needed, so a bad one past the limit cannot fail the run
                records = itertools.islice(records, limit)
            tasks = batched(records, images_per_task(3 * resolution * resolution))
            for images, bad in ordered_map(decode, tasks, workers=workers):
                take = min(len(images), limit - written)
                skipped += [show_key(key) for before, key in bad if before < take or written + take < limit]
                if skip_bad:
                    attrs.update(skipped_records=len(skipped), skipped_keys=json.dumps(skipped[:MAX_LISTED_KEYS]))
                if take:
                    yield images[:take]
                written += take
                if written >= limit:
                    break
    finally:
        env.close()
