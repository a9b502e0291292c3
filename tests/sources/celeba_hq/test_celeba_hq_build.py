"""The CelebA-HQ build: fixture MD5s, round trip, resume, tolerant mode and every failure."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import PIL
import pytest

from pgtools.errors import PgtoolsError
from pgtools.sources import Source
from pgtools.sources.celeba_hq.build import CelebAHQBuilder, md5_hex, open_celeba_hq
from pgtools.sources.celeba_hq.deltas import add_member, read_member

REPO = Path(__file__).resolve().parents[3]


def _copy(hq_set, tmp_path: Path) -> tuple[Path, Path]:
    celeba, deltas = tmp_path / "celeba", tmp_path / "deltas"
    shutil.copytree(hq_set.celeba, celeba)
    shutil.copytree(hq_set.deltas, deltas)
    return celeba, deltas


def _edit_column(deltas: Path, row: int, column: int, value: str) -> None:
    path = deltas / "image_list.txt"
    lines = [line.split() for line in path.read_text().splitlines()]
    lines[row + 1][column] = value
    path.write_text("".join(" ".join(fields) + "\n" for fields in lines))


def test_fixture_reproduces_both_md5s(fixture_dir):
    builder = CelebAHQBuilder(fixture_dir / "celeba", fixture_dir / "deltas", workers=2)
    entries = builder.check()
    images = list(builder.images())
    assert [md5_hex(image) for image in images] == [entry.final_md5 for entry in entries]
    assert (builder.stats.exact, builder.stats.signed) == (2, 0)


def test_round_trip_through_source(hq_set):
    source = open_celeba_hq(hq_set.celeba, hq_set.deltas, workers=2, batch_size=2)
    assert isinstance(source, Source)
    assert (source.resolution, source.channels, source.count) == (1024, 3, 2)
    (batch,) = list(source.batches)
    np.testing.assert_array_equal(batch, np.stack(hq_set.finals))
    assert source.attrs["bit_exact_images"] == 2 and source.attrs["signed_path_images"] == 0
    assert source.attrs["tolerant"] is False and source.attrs["deltas_dir"] == str(hq_set.deltas)


def test_resume_gives_the_same_tail(hq_set):
    builder = CelebAHQBuilder(hq_set.celeba, hq_set.deltas, workers=0)
    done = []
    (tail,) = list(builder.images(start=1, progress=done.append))
    np.testing.assert_array_equal(tail, hq_set.finals[1])
    assert done == [1] and builder.stats.exact == 1
    assert list(builder.images(start=2)) == []
    with pytest.raises(PgtoolsError, match="start 3 is outside the 2 listed images"):
        next(builder.images(start=3))
    with pytest.raises(PgtoolsError, match="start -1 is outside"):
        open_celeba_hq(hq_set.celeba, hq_set.deltas, start=-1)
    with pytest.raises(PgtoolsError, match="batch size must be at least 1, got 0"):
        open_celeba_hq(hq_set.celeba, hq_set.deltas, batch_size=0)


def test_bundled_sample_builds_bit_exactly():
    sample = REPO / "deltas" / "sample"
    builder = CelebAHQBuilder(sample / "celeba", sample / "deltas", workers=0)
    entries = builder.check()
    assert len(entries) == 5 and len({e.orig_idx for e in entries}) == 5
    assert md5_hex(next(builder.images(start=1))) == entries[1].final_md5


def test_proc_mismatch_strict_names_entry_and_versions(hq_set, tmp_path):
    celeba, deltas = _copy(hq_set, tmp_path)
    _edit_column(deltas, row=1, column=3, value="0" * 32)
    builder = CelebAHQBuilder(celeba, deltas, workers=0)
    with pytest.raises(PgtoolsError) as err:
        next(builder.images(start=1))
    message = str(err.value)
    assert message.startswith("idx 7 (000001.jpg): proc_md5 mismatch")
    assert f"Pillow {PIL.__version__}, libjpeg-turbo " in message and "numpy " in message and "scipy " in message
    assert "000001.jpg decodes to md5 " in message and "not the reference 9cad8178d6cb0196b36f7b34bc5eb6d3" in message


def test_tolerant_mode_takes_the_signed_path(hq_set, tmp_path):
    celeba, deltas = _copy(hq_set, tmp_path)
    _edit_column(deltas, row=1, column=3, value="0" * 32)
    source = open_celeba_hq(celeba, deltas, tolerant=True, workers=0, start=1)
    (batch,) = list(source.batches)
    # the true proc plus int8(delta), clipped: the smooth perturbation never wraps, so it is the target
    proc, final = hq_set.procs[1], hq_set.finals[1]
    delta = (final - proc).view(np.int8)
    np.testing.assert_array_equal(batch[0], np.clip(proc.astype(np.int16) + delta, 0, 255))
    np.testing.assert_array_equal(batch[0], final)
    assert (source.attrs["bit_exact_images"], source.attrs["signed_path_images"]) == (0, 1)


def test_final_mismatch_is_an_error_in_both_modes(hq_set, tmp_path):
    celeba, deltas = _copy(hq_set, tmp_path)
    _edit_column(deltas, row=1, column=4, value="0" * 32)
    with pytest.raises(PgtoolsError, match=r"idx 7 \(000001.jpg\): final_md5 mismatch although proc_md5 matched"):
        next(CelebAHQBuilder(celeba, deltas, tolerant=True, workers=0).images(start=1))


@pytest.mark.parametrize("tolerant, workers", [(False, 0), (True, 2)])
def test_wrong_original_bytes_is_a_wrong_key(hq_set, tmp_path, tolerant, workers):
    celeba, deltas = _copy(hq_set, tmp_path)
    path = celeba / "img_celeba" / "000002.jpg"
    path.write_bytes(path.read_bytes() + b"\0")  # decodes the same, but is not the same file
    builder = CelebAHQBuilder(celeba, deltas, tolerant=tolerant, workers=workers)  # 2: raised in a worker
    with pytest.raises(PgtoolsError, match=r"img_celeba/000002.jpg: the delta cannot be decrypted"):
        next(builder.images())


def test_corrupted_member_names_zip_and_member(hq_set, tmp_path):
    celeba, deltas = _copy(hq_set, tmp_path)
    path = deltas / "deltas02000.zip"
    token = read_member(path, 2003)
    with zipfile.ZipFile(path, "w") as archive:
        add_member(archive, 2003, token)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PgtoolsError, match=r"deltas02000.zip: member delta02003.dat is damaged"):
        next(CelebAHQBuilder(celeba, deltas, workers=0).images())


def test_missing_inputs_fail_before_any_work(hq_set, tmp_path):
    celeba, deltas = _copy(hq_set, tmp_path)
    (deltas / "deltas02000.zip").unlink()
    (celeba / "img_celeba" / "000001.jpg").unlink()
    with pytest.raises(PgtoolsError, match=r"original image\(s\) missing: .*000001.jpg; 1 delta zip\(s\) missing: .*deltas02000.zip"):
        open_celeba_hq(celeba, deltas)
