"""LSUN source: bit-exact against a plain re-implementation of the original, bad records, limits."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from dataset_files import lsun_values, smooth_image, write_lmdb
from PIL import Image

from pgtools.errors import PgtoolsError
from pgtools.sources.lsun import open_lsun


def reference_lsun(records: list[tuple[bytes, bytes]], resolution: int) -> np.ndarray:
    """The original's loop over the records in key order (Python 2 integer division spelled //)."""
    out = []
    for _, value in sorted(records):
        img = cv2.imdecode(np.frombuffer(value, dtype=np.uint8), 1)
        if img is None:
            img = np.asarray(Image.open(io.BytesIO(value)))
        else:
            img = img[:, :, ::-1]
        crop = np.min(img.shape[:2])
        img = img[(img.shape[0] - crop) // 2:(img.shape[0] + crop) // 2, (img.shape[1] - crop) // 2:(img.shape[1] + crop) // 2]
        img = Image.fromarray(img)
        img = img.resize((resolution, resolution), Image.LANCZOS)
        out.append(np.asarray(img).transpose(2, 0, 1))
    return np.stack(out)


def collect(source) -> np.ndarray:
    return np.concatenate(list(source.batches))


@pytest.fixture(scope="module")
def records() -> list[tuple[bytes, bytes]]:
    return lsun_values(48, seed=3)


@pytest.mark.parametrize("resolution", [16, 32])
def test_matches_the_original(tmp_path, records, resolution):
    write_lmdb(tmp_path / "db", records)
    source = open_lsun(tmp_path / "db", resolution=resolution, workers=0)
    assert (source.resolution, source.channels, source.count) == (resolution, 3, 48)
    np.testing.assert_array_equal(collect(source), reference_lsun(records, resolution))
    assert source.attrs["lmdb_records"] == 48 and source.attrs["source_format"] == "lsun"


def test_fixture_exercises_the_pillow_fallback_and_odd_crops(records):
    undecodable = [v for _, v in records if cv2.imdecode(np.frombuffer(v, np.uint8), 1) is None]
    assert undecodable  # TGA: only Pillow reads it
    assert any(v[:2] == b"\xff\xd8" for _, v in records) and any(v[8:12] == b"WEBP" for _, v in records)
    shapes = {Image.open(io.BytesIO(v)).size for _, v in records}
    assert any(w > h for w, h in shapes) and any(h > w for w, h in shapes)
    assert any((max(w, h) - min(w, h)) % 2 for w, h in shapes)


def test_max_images_keeps_the_first_in_key_order(tmp_path, records):
    write_lmdb(tmp_path / "db", records)
    source = open_lsun(tmp_path / "db", resolution=16, max_images=10, workers=0)
    assert source.count == 10
    np.testing.assert_array_equal(collect(source), reference_lsun(records, 16)[:10])


def with_bad(records, bad_keys):
    return records + [(key, b"\xff\xd8 not really a jpeg") for key in bad_keys]


def test_undecodable_record_names_its_key(tmp_path, records):
    key = sorted(records)[5][0][:-1] + b"~"  # sorts right after record 5
    write_lmdb(tmp_path / "db", with_bad(records, [key]))
    source = open_lsun(tmp_path / "db", resolution=16, workers=0)
    with pytest.raises(PgtoolsError) as err:
        collect(source)
    assert str(err.value) == (
        f"{tmp_path / 'db'}: record 6 (key {key.decode()}) is not a decodable image "
        f"(neither OpenCV nor Pillow recognises it as an image); use --skip_bad to skip such records"
    )


def test_empty_value_is_undecodable(tmp_path, records):
    write_lmdb(tmp_path / "db", [(b"0000", b"")] + records[:3])
    with pytest.raises(PgtoolsError, match=r"record 0 \(key 0000\) is not a decodable image"):
        collect(open_lsun(tmp_path / "db", resolution=16, workers=0))


def test_skip_bad_skips_and_counts(tmp_path, records):
    bad = [b"0bad", sorted(records)[20][0] + b"x", b"zzbad"]
    write_lmdb(tmp_path / "db", with_bad(records, bad))
    source = open_lsun(tmp_path / "db", resolution=16, skip_bad=True, workers=0)
    assert source.count is None
    np.testing.assert_array_equal(collect(source), reference_lsun(records, 16))
    assert source.attrs["skipped_records"] == 3
    assert json.loads(source.attrs["skipped_keys"]) == sorted(key.decode() for key in bad)


def test_skip_bad_with_max_images_counts_only_records_read(tmp_path, records):
    ordered = sorted(records)
    bad = [ordered[2][0] + b"x", ordered[30][0] + b"x"]  # one before the 10th image, one far after it
    write_lmdb(tmp_path / "db", with_bad(records, bad))
    source = open_lsun(tmp_path / "db", resolution=16, max_images=10, skip_bad=True, workers=0)
    np.testing.assert_array_equal(collect(source), reference_lsun(records, 16)[:10])
    assert source.attrs["skipped_records"] == 1
    assert json.loads(source.attrs["skipped_keys"]) == [bad[0].decode()]


def test_bad_record_after_max_images_is_never_read(tmp_path, records):
    write_lmdb(tmp_path / "db", with_bad(records, [b"zzz"]))
    np.testing.assert_array_equal(collect(open_lsun(tmp_path / "db", resolution=16, max_images=48, workers=0)),
                                  reference_lsun(records, 16))


def test_grayscale_and_palette_values_become_rgb(tmp_path):
    rng = np.random.default_rng(0)
    gray = smooth_image(rng, 30, 40, channels=1)
    stream = io.BytesIO()
    Image.fromarray(gray).save(stream, format="TGA")
    ok, jpeg = cv2.imencode(".jpg", gray)
    write_lmdb(tmp_path / "db", [(b"a", stream.getvalue()), (b"b", jpeg.tobytes())])
    got = collect(open_lsun(tmp_path / "db", resolution=8, workers=0))
    assert got.shape == (2, 3, 8, 8)
    for image in got:
        np.testing.assert_array_equal(image[0], image[1])
        np.testing.assert_array_equal(image[1], image[2])


def test_missing_path(tmp_path):
    with pytest.raises(PgtoolsError, match=r"nowhere: no such LMDB folder$"):
        open_lsun(tmp_path / "nowhere")


def test_folder_without_database(tmp_path):
    with pytest.raises(PgtoolsError, match=r": not a readable LMDB database \("):
        open_lsun(tmp_path)


def test_empty_database(tmp_path):
    write_lmdb(tmp_path / "db", [])
    with pytest.raises(PgtoolsError, match=r"db: the LMDB holds no records$"):
        open_lsun(tmp_path / "db")


def test_resolution_must_be_a_power_of_two(tmp_path, records):
    write_lmdb(tmp_path / "db", records[:2])
    with pytest.raises(PgtoolsError, match=r"--resolution must be a power of two, got 100"):
        open_lsun(tmp_path / "db", resolution=100)


def test_database_file_path_is_accepted(tmp_path, records):
    write_lmdb(tmp_path / "db", records[:4])
    direct = collect(open_lsun(tmp_path / "db" / "data.mdb", resolution=8, workers=0))
    np.testing.assert_array_equal(direct, reference_lsun(records[:4], 8))

