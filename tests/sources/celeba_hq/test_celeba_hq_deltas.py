"""Delta members: names, key derivation, tokens, zip damage and the delta arithmetic."""

from __future__ import annotations

import base64
import bz2
import hashlib
import zipfile

import numpy as np
import pytest
from cryptography.fernet import Fernet

from pgtools.errors import PgtoolsError
from pgtools.sources.celeba_hq.deltas import (
    add_member,
    apply_delta,
    apply_delta_signed,
    decrypt_delta,
    derive_key,
    encrypt_delta,
    make_delta,
    member_name,
    read_member,
    zip_name,
)


def test_zip_and_member_names():
    assert (zip_name(0), member_name(0)) == ("deltas00000.zip", "delta00000.dat")
    assert (zip_name(1000), member_name(1000)) == ("deltas01000.zip", "delta01000.dat")
    assert (zip_name(29999), member_name(29999)) == ("deltas29000.zip", "delta29999.dat")


def test_key_is_pbkdf2_of_the_whole_jpeg_salted_by_name():
    raw = hashlib.pbkdf2_hmac("sha256", b"jpeg bytes", b"000001.jpg", 100_000, 32)
    assert derive_key(b"jpeg bytes", "000001.jpg") == base64.urlsafe_b64encode(raw)


def test_token_round_trip_and_fixed_iv():
    key = Fernet.generate_key()
    delta = np.random.default_rng(0).integers(0, 4, size=(3, 1024, 1024), dtype=np.uint8)
    token = encrypt_delta(delta, key)
    assert bz2.decompress(Fernet(key).decrypt(token)) == delta.tobytes()
    np.testing.assert_array_equal(decrypt_delta(token, key, name="x.jpg"), delta)
    iv = bytes(range(16))
    fixed = encrypt_delta(delta, key, iv=iv, timestamp=1000)
    assert fixed == encrypt_delta(delta, key, iv=iv, timestamp=1000)
    assert Fernet(key).extract_timestamp(fixed) == 1000


def test_wrong_key_names_the_original():
    token = encrypt_delta(np.zeros((3, 1024, 1024), np.uint8), derive_key(b"right", "000001.jpg"))
    with pytest.raises(PgtoolsError, match=r"img_celeba/000001.jpg: the delta cannot be decrypted.*not the exact file"):
        decrypt_delta(token, derive_key(b"wrong", "000001.jpg"), name="img_celeba/000001.jpg")


def test_decrypted_payload_of_wrong_size():
    key = Fernet.generate_key()
    token = Fernet(key).encrypt(bz2.compress(b"short"))
    with pytest.raises(PgtoolsError, match="5 bytes; expected 3145728"):
        decrypt_delta(token, key, name="a.jpg")


def _zip_with(path, idx, data):
    with zipfile.ZipFile(path, "w") as archive:
        add_member(archive, idx, data)


def test_read_member_and_damage(tmp_path):
    path = tmp_path / "deltas00000.zip"
    token = b"gAAAAA" + bytes(range(65, 91)) * 40
    _zip_with(path, 5, token)
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("delta00005.dat").compress_type == zipfile.ZIP_DEFLATED
    assert read_member(path, 5) == token
    with pytest.raises(PgtoolsError, match="member delta00006.dat is missing"):
        read_member(path, 6)
    data = bytearray(path.read_bytes())
    start = data.index(b"delta00005.dat") + len("delta00005.dat") + 5  # inside the deflated data
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PgtoolsError, match=r"deltas00000.zip: member delta00005.dat is damaged"):
        read_member(path, 5)
    path.write_bytes(bytes(data[: len(data) // 2]))  # truncated: no central directory
    with pytest.raises(PgtoolsError, match=r"deltas00000.zip: member delta00005.dat is damaged.*re-download deltas00000.zip"):
        read_member(path, 5)


def test_delta_arithmetic():
    proc = np.uint8([250, 3, 128, 0])
    delta = np.uint8([10, 254, 0, 255])  # as int8: 10, -2, 0, -1
    np.testing.assert_array_equal(apply_delta(proc, delta), [4, 1, 128, 255])
    np.testing.assert_array_equal(apply_delta_signed(proc, delta), [255, 1, 128, 0])
    final = np.uint8([4, 1, 128, 255])
    np.testing.assert_array_equal(make_delta(proc, final), delta)
