"""image_list.txt and landmarks parsing, and the up-front check of every needed file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from pgtools.errors import PgtoolsError
from pgtools.sources.celeba_hq.deltas import add_member
from pgtools.sources.celeba_hq.inputs import LANDMARK_COLUMNS, load_inputs, read_landmarks, read_table

HEADER = "idx orig_idx orig_file proc_md5 final_md5\n"
MD5 = "0123456789abcdef0123456789abcdef"
LANDMARKS_HEADER = " ".join(LANDMARK_COLUMNS) + "\n"


def _landmark_rows(count: int) -> str:
    return "".join("%06d.jpg 10 20 30 20 20 30 12 40 28 40\n" % (i + 1) for i in range(count))


def _layout(root: Path, rows: list[tuple[int, int]], originals: int = 3) -> tuple[Path, Path]:
    """CelebA and deltas folders where every file the rows need exists (members are dummies)."""
    celeba, deltas = root / "celeba", root / "deltas"
    (celeba / "img_celeba").mkdir(parents=True)
    (celeba / "Anno").mkdir()
    deltas.mkdir()
    for i in range(originals):
        PIL.Image.new("RGB", (8, 8)).save(celeba / "img_celeba" / ("%06d.jpg" % (i + 1)))
    (celeba / "Anno" / "list_landmarks_celeba.txt").write_text(f"{originals}\n{LANDMARKS_HEADER}{_landmark_rows(originals)}")
    (deltas / "image_list.txt").write_text(HEADER + "".join(f"{idx} {o} {o + 1:06d}.jpg {MD5} {MD5}\n" for idx, o in rows))
    for idx, _ in rows:
        with zipfile.ZipFile(deltas / ("deltas%05d.zip" % (idx - idx % 1000)), "a") as archive:
            add_member(archive, idx, b"token")
    return celeba, deltas


def test_sparse_idx_need_only_their_zips(tmp_path):
    celeba, deltas = _layout(tmp_path, [(2999, 2), (5, 0), (2000, 1)])
    assert sorted(p.name for p in deltas.glob("*.zip")) == ["deltas00000.zip", "deltas02000.zip"]
    inputs = load_inputs(celeba, deltas)
    assert [(e.idx, e.orig_idx, e.orig_file) for e in inputs.entries] == [(2999, 2, "000003.jpg"), (5, 0, "000001.jpg"), (2000, 1, "000002.jpg")]
    assert [inputs.zip_path(e).name for e in inputs.entries] == ["deltas02000.zip", "deltas00000.zip", "deltas02000.zip"]
    assert inputs.landmarks.dtype == np.float32 and inputs.landmarks.shape == (3, 5, 2)
    np.testing.assert_array_equal(inputs.landmarks[1], [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])


def test_every_missing_file_is_named_before_any_work(tmp_path):
    celeba, deltas = _layout(tmp_path, [(0, 0), (1, 1), (1000, 2)])
    (celeba / "img_celeba" / "000002.jpg").unlink()
    (deltas / "deltas01000.zip").unlink()
    with zipfile.ZipFile(deltas / "deltas00000.zip", "w") as archive:
        add_member(archive, 0, b"token")  # delta00001.dat is gone
    with pytest.raises(PgtoolsError) as err:
        load_inputs(celeba, deltas)
    message = str(err.value)
    assert "1 original image(s) missing: " in message and "img_celeba/000002.jpg" in message
    assert "1 delta zip(s) missing: " in message and "deltas01000.zip" in message
    assert "1 zip member(s) missing: deltas00000.zip:delta00001.dat" in message


def test_missing_list_and_landmarks_files(tmp_path):
    celeba, deltas = _layout(tmp_path, [(0, 0)])
    (celeba / "Anno" / "list_landmarks_celeba.txt").unlink()
    with pytest.raises(PgtoolsError, match="list_landmarks_celeba.txt not found"):
        load_inputs(celeba, deltas)
    with pytest.raises(PgtoolsError, match="image_list.txt not found"):
        load_inputs(celeba, tmp_path / "nowhere")


def test_unreadable_zip(tmp_path):
    celeba, deltas = _layout(tmp_path, [(0, 0)])
    (deltas / "deltas00000.zip").write_bytes(b"not a zip")
    with pytest.raises(PgtoolsError, match="deltas00000.zip is not a readable zip"):
        load_inputs(celeba, deltas)


def test_landmarks_must_cover_every_orig_idx_and_match_orig_file(tmp_path):
    celeba, deltas = _layout(tmp_path / "a", [(0, 5)], originals=3)
    with pytest.raises(PgtoolsError, match="idx 0: orig_idx 5 has no landmarks row .*has 3 rows"):
        load_inputs(celeba, deltas)
    celeba, deltas = _layout(tmp_path / "b", [(0, 1)])
    (deltas / "image_list.txt").write_text(HEADER + f"0 1 000003.jpg {MD5} {MD5}\n")
    with pytest.raises(PgtoolsError, match="idx 0: orig_file 000003.jpg but landmarks row 1 is 000002.jpg"):
        load_inputs(celeba, deltas)


@pytest.mark.parametrize(
    "text, message",
    [
        (f"3\n{LANDMARKS_HEADER}" + _landmark_rows(2), "line 1 announces 3 images but 2 rows follow"),
        ("three\n" + LANDMARKS_HEADER, "line 1 must be the number of images"),
        ("1\nlefteye_x lefteye_y\n" + _landmark_rows(1), "line 2 must name the columns lefteye_x"),
        (f"1\n{LANDMARKS_HEADER}000001.jpg 1 2 3 4 5 6 7 8 9\n", "line 3: expected a file name and 10 coordinates, got 10 fields"),
        (f"1\n{LANDMARKS_HEADER}000001.jpg 1 2 3 x 5 6 7 8 9 10\n", "line 3: coordinates must be numbers"),
        (f"1\n{LANDMARKS_HEADER}000001.jpg 1 2 3 nan 5 6 7 8 9 10\n", "line 3: coordinates must be finite"),
        (f"1\n{LANDMARKS_HEADER}../a.jpg 1 2 3 4 5 6 7 8 9 10\n", "line 3: '../a.jpg' is not a plain ASCII file name"),
    ],
)
def test_bad_landmarks_file(tmp_path, text, message):
    path = tmp_path / "list_landmarks_celeba.txt"
    path.write_text(text)
    with pytest.raises(PgtoolsError, match=message):
        read_landmarks(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("idx orig_idx orig_file proc_md5\n", "header lacks column[(]s[)] final_md5"),
        ("", "is empty"),
        (HEADER, "lists no images"),
        (HEADER + f"0 1 000002.jpg {MD5}\n", "line 2: 4 fields, but the header names 5 columns"),
        (HEADER + f"a 1 000002.jpg {MD5} {MD5}\n", "line 2: column idx must be a non-negative integer, got 'a'"),
        (HEADER + f"0 -1 000002.jpg {MD5} {MD5}\n", "column orig_idx must be a non-negative integer"),
        (HEADER + f"0 1 000002.jpg xyz {MD5}\n", "line 2: proc_md5 must be 32 lowercase hex digits"),
        (HEADER + f"0 1 000002.jpg {MD5} {MD5}\n0 0 000001.jpg {MD5} {MD5}\n", "line 3: idx 0 is listed twice"),
    ],
)
def test_bad_image_list(tmp_path, text, message):
    path = tmp_path / "image_list.txt"
    path.write_text(text)
    with pytest.raises(PgtoolsError, match=message):
        read_table(path)


def test_image_list_columns_in_any_order_with_extras(tmp_path):
    path = tmp_path / "image_list.txt"
    path.write_text(f"orig_file note idx final_md5 orig_idx proc_md5\n000002.jpg x 4 {MD5} 1 {'f' * 32}\n")
    (entry,) = read_table(path)
    assert (entry.idx, entry.orig_idx, entry.orig_file, entry.proc_md5, entry.final_md5) == (4, 1, "000002.jpg", "f" * 32, MD5)
