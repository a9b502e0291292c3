"""Rebuild CelebA-HQ: align every listed original, add its decrypted delta, check both MD5s."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import PIL.Image

from pgtools.errors import PgtoolsError
from pgtools.parallel import ordered_map
from pgtools.sources import Source
from pgtools.sources.celeba_hq.align import SIZE, align_face
from pgtools.sources.celeba_hq.deltas import apply_delta, apply_delta_signed, decrypt_delta, derive_key, read_member
from pgtools.sources.celeba_hq.diagnose import mismatch_error
from pgtools.sources.celeba_hq.inputs import Entry, Inputs, load_inputs


@dataclass(frozen=True)
class _Task:
    """Everything one worker needs to produce one final image."""

    entry: Entry
    landmarks: np.ndarray  # float32 (5, 2)
    orig_path: Path
    zip_path: Path
    tolerant: bool


@dataclass
class BuildStats:
    """How the images produced so far were made."""

    exact: int = 0  # bit-exact: proc_md5 and final_md5 matched
    signed: int = 0  # tolerant mode, proc_md5 mismatched: clip(proc + int8(delta), 0, 255)


def md5_hex(image: np.ndarray) -> str:
    """MD5 of an image's C-order bytes, as in image_list.txt."""
    return hashlib.md5(np.ascontiguousarray(image).data).hexdigest()


def process_entry(task: _Task) -> tuple[np.ndarray, bool]:
    """Produce one final uint8 (3, 1024, 1024) image; the flag tells whether it is bit-exact.

    The delta is decrypted first, so a wrong original fails with its own message before any
    MD5 check.
    """
    entry = task.entry
    jpeg = task.orig_path.read_bytes()
    token = read_member(task.zip_path, entry.idx)
    delta = decrypt_delta(token, derive_key(jpeg, entry.orig_file), name=str(task.orig_path))
    with PIL.Image.open(io.BytesIO(jpeg)) as img:
        proc, _ = align_face(img, task.landmarks)
    if md5_hex(proc) == entry.proc_md5:
        final = apply_delta(proc, delta)
        if md5_hex(final) != entry.final_md5:
            raise mismatch_error(entry, "final", task.orig_path.parent)
        return final, True
    if not task.tolerant:
        raise mismatch_error(entry, "proc", task.orig_path.parent)
    return apply_delta_signed(proc, delta), False


def _check_args(start: int, count: int, batch_size: int = 1) -> None:
    if not 0 <= start <= count:
        raise PgtoolsError(f"start {start} is outside the {count} listed images (0 to {count})")
    if batch_size < 1:
        raise PgtoolsError(f"batch size must be at least 1, got {batch_size}")


class CelebAHQBuilder:
    """Rebuilds CelebA-HQ images in image_list.txt order, in a pool of worker processes.

    Example::

        builder = CelebAHQBuilder("celeba", "celeba-hq-deltas")
        entries = builder.check()  # fails fast on any malformed or missing input
        for image in builder.images(start=0):
            ...  # uint8 (3, 1024, 1024)
        print(builder.stats.exact, builder.stats.signed)
    """

    def __init__(
        self,
        celeba_dir: str | Path,  # folder holding img_celeba/ and Anno/list_landmarks_celeba.txt
        deltas_dir: str | Path,  # folder holding image_list.txt and deltasNNNNN.zip
        *,
        tolerant: bool = False,  # False: stop at the first MD5 mismatch; True: signed path instead
        workers: int | None = None,  # processes; None: all cores; 0 or 1: in this process
        in_flight: int | None = None,  # images being made or waiting at once; None: 2 x workers
    ) -> None:
        self.celeba_dir = Path(celeba_dir)
        self.deltas_dir = Path(deltas_dir)
        self.tolerant = tolerant
        self.workers = workers
        self.in_flight = in_flight
        self.stats = BuildStats()
        self._inputs: Inputs | None = None

    def check(self) -> list[Entry]:
        """Validate every input the listed rows need; return the rows in order.

        Raises:
            PgtoolsError: a malformed image_list.txt or landmarks file, or missing originals, zips
                or zip members (all named in one message).
        """
        if self._inputs is None:
            self._inputs = load_inputs(self.celeba_dir, self.deltas_dir)
        return self._inputs.entries

    def _tasks(self, start: int) -> Iterator[_Task]:
        inputs = self._inputs
        for entry in inputs.entries[start:]:
            yield _Task(
                entry=entry,
                landmarks=inputs.landmarks[entry.orig_idx],
                orig_path=inputs.orig_path(entry),
                zip_path=inputs.zip_path(entry),
                tolerant=self.tolerant,
            )

    def images(self, start: int = 0, progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        """Yield the final images of rows ``start``, ``start + 1``, ... as uint8 (3, 1024, 1024).

        ``stats`` counts each image as it is yielded. Raises PgtoolsError at the first failing
        entry (MD5 mismatch in strict mode, wrong original, damaged zip member).
        """
        _check_args(start, len(self.check()))
        for final, exact in ordered_map(process_entry, self._tasks(start), workers=self.workers, in_flight=self.in_flight):
            if exact:
                self.stats.exact += 1
            else:
                self.stats.signed += 1
            yield final
            if progress is not None:
                progress(1)

    def batches(
        self, start: int = 0, batch_size: int = 8, progress: Callable[[int], None] | None = None
    ) -> Iterator[np.ndarray]:
        """Like :meth:`images`, grouped into uint8 (n, 3, 1024, 1024) batches of up to ``batch_size``."""
        _check_args(start, len(self.check()), batch_size)
        batch: list[np.ndarray] = []
        for image in self.images(start, progress):
            batch.append(image)
            if len(batch) == batch_size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)


def open_celeba_hq(
    celeba_dir: str | Path,  # folder holding img_celeba/ and Anno/list_landmarks_celeba.txt
    deltas_dir: str | Path,  # folder holding image_list.txt and deltasNNNNN.zip
    *,
    tolerant: bool = False,  # False: stop at the first MD5 mismatch; True: signed path instead
    workers: int | None = None,  # processes; None: all cores; 0 or 1: in this process
    in_flight: int | None = None,  # images being made or waiting at once; None: 2 x workers
    start: int = 0,  # first row to produce (resume); count still covers every row
    batch_size: int = 8,  # images per batch
) -> Source:
    """Validate the inputs and return a lazy :class:`Source` of the 1024x1024 CelebA-HQ images.

    ``attrs`` holds the input folders and the running counts ``bit_exact_images`` and
    ``signed_path_images``, updated as batches are produced (complete once they are exhausted;
    with ``start > 0`` they count only rows from ``start`` on).
    """
    builder = CelebAHQBuilder(celeba_dir, deltas_dir, tolerant=tolerant, workers=workers, in_flight=in_flight)
    entries = builder.check()
    _check_args(start, len(entries), batch_size)
    attrs = {
        "source": "celeba-hq",
        "celeba_dir": str(builder.celeba_dir),
        "deltas_dir": str(builder.deltas_dir),
        "tolerant": tolerant,
        "bit_exact_images": 0,
        "signed_path_images": 0,
    }

    def counted() -> Iterator[np.ndarray]:
        for batch in builder.batches(start, batch_size):
            attrs["bit_exact_images"] = builder.stats.exact
            attrs["signed_path_images"] = builder.stats.signed
            yield batch

    return Source(resolution=SIZE, channels=3, count=len(entries), batches=counted(), attrs=attrs)
