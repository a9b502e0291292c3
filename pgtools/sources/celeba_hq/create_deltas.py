"""Make deltas in the published CelebA-HQ format for new targets: the inverse of the build."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import PIL.Image

from pgtools.atomic import atomic_output
from pgtools.errors import PgtoolsError
from pgtools.parallel import ordered_map
from pgtools.pyramid import Pyramid
from pgtools.sources.celeba_hq.align import SIZE, align_face
from pgtools.sources.celeba_hq.build import md5_hex
from pgtools.sources.celeba_hq.deltas import add_member, derive_key, encrypt_delta, make_delta, member_name, zip_name
from pgtools.sources.celeba_hq.inputs import LIST_COLUMNS, Entry, missing_message, read_landmarks, read_table

DELTA_FILES = r"deltas\d{5}\.zip|image_list\.txt"  # what create_deltas writes into its folder

FIXED_TIMESTAMP = 1509105600  # 2017-10-27 12:00 UTC: the token time of deterministic deltas


@dataclass(frozen=True)
class _DeltaTask:
    entry: Entry
    landmarks: np.ndarray  # float32 (5, 2)
    orig_path: Path
    target: np.ndarray  # uint8 (3, 1024, 1024)
    deterministic: bool


def make_entry_delta(task: _DeltaTask) -> tuple[Entry, bytes]:
    """Align one original, and return its row (with both MD5s) and the Fernet token of its delta."""
    jpeg = task.orig_path.read_bytes()
    with PIL.Image.open(io.BytesIO(jpeg)) as img:
        proc, _ = align_face(img, task.landmarks)
    key = derive_key(jpeg, task.entry.orig_file)
    iv, timestamp = None, None
    if task.deterministic:
        iv = hashlib.sha256(key + member_name(task.entry.idx).encode("ascii")).digest()[:16]
        timestamp = FIXED_TIMESTAMP
    token = encrypt_delta(make_delta(proc, task.target), key, iv=iv, timestamp=timestamp)
    return replace(task.entry, proc_md5=md5_hex(proc), final_md5=md5_hex(task.target)), token


def read_pairs(path: str | Path) -> list[tuple[int, int]]:
    """Read ``(idx, orig_idx)`` pairs from a whitespace table whose header names both columns."""
    return [(entry.idx, entry.orig_idx) for entry in read_table(Path(path), required=("idx", "orig_idx"))]


def format_image_list(entries: Sequence[Entry]) -> str:
    """image_list.txt text in the published fixed-width layout."""
    widths = (8, 12, 14, 36, 0)
    rows = [LIST_COLUMNS] + [(str(e.idx), str(e.orig_idx), e.orig_file, e.proc_md5, e.final_md5) for e in entries]
    return "".join("".join(value.ljust(width) for value, width in zip(row, widths)) + "\n" for row in rows)


def _png_target(path: Path) -> np.ndarray:
    with PIL.Image.open(path) as img:
        if img.mode != "RGB" or img.size != (SIZE, SIZE):
            raise PgtoolsError(f"{path}: target is {img.mode} {img.size[0]}x{img.size[1]}; expected RGB {SIZE}x{SIZE}")
        return np.asarray(img).transpose(2, 0, 1).copy()


def _targets(targets: Path, entries: list[Entry]) -> Iterator[np.ndarray]:
    """Validate the targets up front, then yield them lazily in ``entries`` order."""
    if targets.is_dir():
        paths = [targets / ("%05d.png" % entry.idx) for entry in entries]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise PgtoolsError(missing_message("target image(s)", missing))
        return (_png_target(path) for path in paths)
    if not targets.is_file():
        raise PgtoolsError(f"{targets} not found (expected a folder of %05d.png targets or a pyramid .h5)")
    pyramid = Pyramid(targets)
    if SIZE not in pyramid.levels or pyramid.channels != 3 or pyramid.num_images != len(entries):
        raise PgtoolsError(
            f"{targets}: pyramid has {pyramid.num_images} images of {pyramid.channels} channel(s) up to "
            f"{pyramid.resolution}x{pyramid.resolution}; expected {len(entries)} RGB images at {SIZE}x{SIZE}"
        )

    def read() -> Iterator[np.ndarray]:
        with pyramid:
            for k in range(len(entries)):
                yield pyramid.read(SIZE, k, k + 1)[0]

    return read()


def create_deltas(
    celeba_dir: str | Path,  # folder holding img_celeba/ and Anno/list_landmarks_celeba.txt
    targets: str | Path,  # folder of %05d.png (named by idx), or a pyramid .h5 (image k = pairs[k])
    deltas_dir: str | Path,  # output folder: image_list.txt and deltasNNNNN.zip
    *,
    pairs: Sequence[tuple[int, int]],  # (idx, orig_idx) of each image, in list order
    overwrite: bool = False,  # replace an existing deltas_dir
    deterministic: bool = False,  # derive IVs and token time from the inputs: identical reruns
    workers: int | None = None,  # processes; None: all cores; 0 or 1: in this process
    progress: Callable[[int], None] | None = None,  # called with 1 after each image
) -> int:
    """Write image_list.txt and the delta zips that rebuild ``targets`` from the CelebA originals.

    The folder appears only when complete. Returns the number of images written.

    Raises:
        PgtoolsError: malformed landmarks, bad or duplicate pairs, missing originals or targets,
            targets of the wrong size, or an existing ``deltas_dir`` without ``overwrite``.
    """
    celeba_dir, targets, deltas_dir = Path(celeba_dir), Path(targets), Path(deltas_dir)
    landmarks, files = read_landmarks(celeba_dir / "Anno" / "list_landmarks_celeba.txt")
    if not pairs:
        raise PgtoolsError("no (idx, orig_idx) pairs given: nothing to make deltas for")
    entries = []
    for idx, orig_idx in pairs:
        if idx < 0 or not 0 <= orig_idx < len(files):
            raise PgtoolsError(f"pair idx {idx}, orig_idx {orig_idx}: idx must be >= 0 and orig_idx below {len(files)}")
        entries.append(Entry(idx=idx, orig_idx=orig_idx, orig_file=files[orig_idx]))
    if len({entry.idx for entry in entries}) != len(entries):
        raise PgtoolsError("pairs list the same idx more than once")
    img_dir = celeba_dir / "img_celeba"
    missing = [str(img_dir / e.orig_file) for e in entries if not (img_dir / e.orig_file).is_file()]
    if missing:
        raise PgtoolsError(missing_message("original image(s)", missing))
    target_images = _targets(targets, entries)
    tasks = (
        _DeltaTask(entry, landmarks[entry.orig_idx], img_dir / entry.orig_file, target, deterministic)
        for entry, target in zip(entries, target_images)
    )
    rows: list[Entry] = []
    with atomic_output(deltas_dir, overwrite=overwrite, is_dir=True, own_files=DELTA_FILES) as temp:
        archives: dict[str, zipfile.ZipFile] = {}
        try:
            for entry, token in ordered_map(make_entry_delta, tasks, workers=workers):
                name = zip_name(entry.idx)
                if name not in archives:
                    archives[name] = zipfile.ZipFile(temp / name, "w")
                add_member(archives[name], entry.idx, token)
                rows.append(entry)
                if progress is not None:
                    progress(1)
        finally:
            for archive in archives.values():
                archive.close()
        (temp / "image_list.txt").write_text(format_image_list(rows), encoding="ascii")
    return len(rows)
