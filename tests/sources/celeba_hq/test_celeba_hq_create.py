"""create_deltas: the published file layout, pyramid targets and its input checks."""

from __future__ import annotations

import bz2
import zipfile

import numpy as np
import PIL.Image
import pytest
from cryptography.fernet import Fernet

from pgtools.errors import PgtoolsError
from pgtools.pyramid import write_pyramid
from pgtools.sources.celeba_hq.build import md5_hex
from pgtools.sources.celeba_hq.create_deltas import create_deltas, format_image_list, read_pairs
from pgtools.sources.celeba_hq.deltas import derive_key
from pgtools.sources.celeba_hq.inputs import read_table


def test_layout_matches_the_published_format(hq_set):
    assert sorted(p.name for p in hq_set.deltas.iterdir()) == ["deltas00000.zip", "deltas02000.zip", "image_list.txt"]
    text = (hq_set.deltas / "image_list.txt").read_text()
    assert text.startswith("idx     orig_idx    orig_file     proc_md5                            final_md5\n2003    1           000002.jpg    ")
    entries = read_table(hq_set.deltas / "image_list.txt")
    assert [(e.idx, e.orig_idx, e.orig_file) for e in entries] == [(2003, 1, "000002.jpg"), (7, 0, "000001.jpg")]
    assert [e.proc_md5 for e in entries] == [md5_hex(p) for p in hq_set.procs]
    assert [e.final_md5 for e in entries] == [md5_hex(f) for f in hq_set.finals]
    with zipfile.ZipFile(hq_set.deltas / "deltas00000.zip") as archive:
        (info,) = archive.infolist()
        assert info.filename == "delta00007.dat" and info.compress_type == zipfile.ZIP_DEFLATED
        token = archive.read(info)
    key = derive_key((hq_set.celeba / "img_celeba" / "000001.jpg").read_bytes(), "000001.jpg")
    delta = np.frombuffer(bz2.decompress(Fernet(key).decrypt(token)), np.uint8).reshape(3, 1024, 1024)
    np.testing.assert_array_equal(delta, hq_set.finals[1] - hq_set.procs[1])


def test_format_image_list_matches_the_fixture(fixture_dir):
    path = fixture_dir / "deltas" / "image_list.txt"
    assert format_image_list(read_table(path)) == path.read_text()


def test_pyramid_targets(hq_set, tmp_path):
    pyramid = tmp_path / "targets.h5"
    write_pyramid(pyramid, [hq_set.finals[1][None]], resolution=1024, channels=3)
    out = tmp_path / "deltas"
    assert create_deltas(hq_set.celeba, pyramid, out, pairs=[(7, 0)], workers=0, deterministic=True) == 1
    (entry,) = read_table(out / "image_list.txt")
    assert (entry.proc_md5, entry.final_md5) == (md5_hex(hq_set.procs[1]), md5_hex(hq_set.finals[1]))
    with pytest.raises(PgtoolsError, match="pyramid has 1 images .* expected 2 RGB images at 1024x1024"):
        create_deltas(hq_set.celeba, pyramid, tmp_path / "other", pairs=[(7, 0), (8, 1)])


def test_refuses_existing_output_and_bad_inputs(hq_set, tmp_path):
    with pytest.raises(PgtoolsError, match="already exists"):
        create_deltas(hq_set.celeba, hq_set.targets, hq_set.deltas, pairs=[(7, 0)])
    out = tmp_path / "deltas"
    with pytest.raises(PgtoolsError, match=r"1 target image\(s\) missing: .*00008.png"):
        create_deltas(hq_set.celeba, hq_set.targets, out, pairs=[(7, 0), (8, 1)])
    with pytest.raises(PgtoolsError, match="pairs list the same idx more than once"):
        create_deltas(hq_set.celeba, hq_set.targets, out, pairs=[(7, 0), (7, 1)])
    with pytest.raises(PgtoolsError, match="orig_idx 3: idx must be >= 0 and orig_idx below 3"):
        create_deltas(hq_set.celeba, hq_set.targets, out, pairs=[(7, 3)])
    with pytest.raises(PgtoolsError, match="no .* pairs given"):
        create_deltas(hq_set.celeba, hq_set.targets, out, pairs=[])
    small = tmp_path / "small"
    small.mkdir()
    PIL.Image.new("RGB", (512, 512)).save(small / "00007.png")
    with pytest.raises(PgtoolsError, match="00007.png: target is RGB 512x512; expected RGB 1024x1024"):
        create_deltas(hq_set.celeba, small, out, pairs=[(7, 0)], workers=0)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_read_pairs(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("orig_idx idx\n4 0\n2 1000\n")
    assert read_pairs(path) == [(0, 4), (1000, 2)]
