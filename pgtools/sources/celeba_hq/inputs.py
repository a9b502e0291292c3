"""Read and validate the CelebA-HQ inputs: image_list.txt, the landmarks, originals and zips."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.sources.celeba_hq.deltas import member_name, zip_name

LIST_COLUMNS = ("idx", "orig_idx", "orig_file", "proc_md5", "final_md5")
LANDMARK_COLUMNS = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
    "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
).split()
_MD5 = re.compile(r"[0-9a-f]{32}")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_MAX_LISTED_MISSING = 5  # missing files named in the error message; the rest are counted


@dataclass(frozen=True)
class Entry:
    """One row of image_list.txt: CelebA-HQ image ``idx`` is made from original ``orig_idx``."""

    idx: int
    orig_idx: int
    orig_file: str = ""
    proc_md5: str = ""
    final_md5: str = ""


@dataclass(frozen=True)
class Inputs:
    """Validated inputs of one build: the rows in order and the landmarks of every original."""

    celeba_dir: Path
    deltas_dir: Path
    entries: list[Entry]
    landmarks: np.ndarray  # float32 (N, 5, 2), row i = original index i

    def orig_path(self, entry: Entry) -> Path:
        return self.celeba_dir / "img_celeba" / entry.orig_file

    def zip_path(self, entry: Entry) -> Path:
        return self.deltas_dir / zip_name(entry.idx)


def _parse_int(text: str, where: str, column: str) -> int:
    if not text.isdigit():
        raise PgtoolsError(f"{where}: column {column} must be a non-negative integer, got {text!r}")
    return int(text)


def read_table(path: Path, required: tuple[str, ...] = LIST_COLUMNS) -> list[Entry]:
    """Parse an image_list.txt-style whitespace table whose header names at least ``required``.

    Columns ending in ``idx`` are integers; md5 columns are 32 lowercase hex digits; ``orig_file``
    is a plain file name. Missing optional columns are left empty.
    """
    if not path.is_file():
        raise PgtoolsError(f"{path} not found (expected the CelebA-HQ image list)")
    lines = [line.split() for line in path.read_text(encoding="ascii", errors="replace").splitlines()]
    lines = [fields for fields in lines if fields]
    if not lines:
        raise PgtoolsError(f"{path} is empty; expected a header row naming {' '.join(required)}")
    header = lines[0]
    missing = [name for name in required if name not in header]
    if missing:
        raise PgtoolsError(f"{path}: header lacks column(s) {', '.join(missing)}; expected {' '.join(required)}")
    col = {name: header.index(name) for name in LIST_COLUMNS if name in header}
    entries, seen = [], set()
    for number, fields in enumerate(lines[1:], start=2):
        where = f"{path} line {number}"
        if len(fields) != len(header):
            raise PgtoolsError(f"{where}: {len(fields)} fields, but the header names {len(header)} columns")
        idx = _parse_int(fields[col["idx"]], where, "idx")
        if idx in seen:
            raise PgtoolsError(f"{where}: idx {idx} is listed twice")
        seen.add(idx)
        orig_idx = _parse_int(fields[col["orig_idx"]], where, "orig_idx")
        values = {name: fields[col[name]] for name in ("orig_file", "proc_md5", "final_md5") if name in col}
        for name in ("proc_md5", "final_md5"):
            if name in values and not _MD5.fullmatch(values[name]):
                raise PgtoolsError(f"{where}: {name} must be 32 lowercase hex digits, got {values[name]!r}")
        entries.append(Entry(idx=idx, orig_idx=orig_idx, **values))
    if not entries:
        raise PgtoolsError(f"{path} lists no images (only a header row)")
    return entries


def read_landmarks(path: Path) -> tuple[np.ndarray, list[str]]:
    """Parse list_landmarks_celeba.txt into float32 (N, 5, 2) points and the N file names."""
    if not path.is_file():
        raise PgtoolsError(f"{path} not found (expected CelebA's Anno/list_landmarks_celeba.txt)")
    lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise PgtoolsError(f"{path}: line 1 must be the number of images")
    count = int(lines[0])
    if lines[1].split() != LANDMARK_COLUMNS:
        raise PgtoolsError(f"{path}: line 2 must name the columns {' '.join(LANDMARK_COLUMNS)}")
    rows = [(number, line.split()) for number, line in enumerate(lines[2:], start=3) if line.strip()]
    if len(rows) != count:
        raise PgtoolsError(f"{path}: line 1 announces {count} images but {len(rows)} rows follow")
    points = np.empty((count, 10), dtype=np.float32)
    for i, (number, fields) in enumerate(rows):
        where = f"{path} line {number}"
        if len(fields) != 11:
            raise PgtoolsError(f"{where}: expected a file name and 10 coordinates, got {len(fields)} fields")
        if not _FILE_NAME.fullmatch(fields[0]):
            raise PgtoolsError(f"{where}: {fields[0]!r} is not a plain ASCII file name")
        try:
            points[i] = [float(value) for value in fields[1:]]
        except ValueError:
            raise PgtoolsError(f"{where}: coordinates must be numbers, got {' '.join(fields[1:])!r}") from None
        if not np.isfinite(points[i]).all():
            raise PgtoolsError(f"{where}: coordinates must be finite numbers")
    return points.reshape(count, 5, 2), [fields[0] for _, fields in rows]


def missing_message(kind: str, names: list[str]) -> str:
    """``"3 original image(s) missing: a, b, c"``, naming at most a few."""
    shown = ", ".join(names[:_MAX_LISTED_MISSING])
    more = f" and {len(names) - _MAX_LISTED_MISSING} more" if len(names) > _MAX_LISTED_MISSING else ""
    return f"{len(names)} {kind} missing: {shown}{more}"


def _check_entry_files(inputs: Inputs) -> None:
    """Raise one error naming every missing original, zip and zip member the entries need."""
    problems = []
    originals = [str(inputs.orig_path(e)) for e in inputs.entries if not inputs.orig_path(e).is_file()]
    if originals:
        problems.append(missing_message("original image(s)", originals))
    by_zip: dict[Path, list[int]] = {}
    for entry in inputs.entries:
        by_zip.setdefault(inputs.zip_path(entry), []).append(entry.idx)
    zips = [str(path) for path in by_zip if not path.is_file()]
    if zips:
        problems.append(missing_message("delta zip(s)", zips))
    members = []
    for path, indices in by_zip.items():
        if path.is_file():
            try:
                with zipfile.ZipFile(path) as archive:
                    names = set(archive.namelist())
            except (zipfile.BadZipFile, OSError) as err:
                raise PgtoolsError(f"{path} is not a readable zip ({err}); re-download it") from None
            members += [f"{path.name}:{member_name(i)}" for i in indices if member_name(i) not in names]
    if members:
        problems.append(missing_message("zip member(s)", members))
    if problems:
        raise PgtoolsError("CelebA-HQ inputs incomplete: " + "; ".join(problems))


def load_inputs(celeba_dir: str | Path, deltas_dir: str | Path) -> Inputs:
    """Read image_list.txt and the landmarks and check every file the listed rows need.

    Raises:
        PgtoolsError: naming the malformed file and line, or every missing original, zip and member.
    """
    celeba_dir, deltas_dir = Path(celeba_dir), Path(deltas_dir)
    entries = read_table(deltas_dir / "image_list.txt")
    landmarks, files = read_landmarks(celeba_dir / "Anno" / "list_landmarks_celeba.txt")
    for entry in entries:
        if entry.orig_idx >= len(files):
            raise PgtoolsError(
                f"image_list.txt idx {entry.idx}: orig_idx {entry.orig_idx} has no landmarks row "
                f"(list_landmarks_celeba.txt has {len(files)} rows)"
            )
        if files[entry.orig_idx] != entry.orig_file:
            raise PgtoolsError(
                f"image_list.txt idx {entry.idx}: orig_file {entry.orig_file} but landmarks row "
                f"{entry.orig_idx} is {files[entry.orig_idx]}"
            )
    inputs = Inputs(celeba_dir, deltas_dir, entries, landmarks)
    _check_entry_files(inputs)
    return inputs
