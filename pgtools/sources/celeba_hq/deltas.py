"""CelebA-HQ delta members: key derivation, Fernet tokens, zip layout and delta arithmetic."""

from __future__ import annotations

import base64
import bz2
import hashlib
import hmac
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from pgtools.errors import PgtoolsError

DELTA_SHAPE = (3, 1024, 1024)
DELTA_BYTES = 3 * 1024 * 1024
KDF_ITERATIONS = 100_000
_FERNET_VERSION = 0x80
_ZIP_DATE = (2017, 10, 27, 12, 0, 0)  # fixed member date: identical inputs give identical zips


def zip_name(idx: int) -> str:
    """Name of the zip holding entry ``idx``: one zip per thousand entries."""
    return "deltas%05d.zip" % (idx - idx % 1000)


def member_name(idx: int) -> str:
    """Name of entry ``idx``'s member inside its zip."""
    return "delta%05d.dat" % idx


def derive_key(jpeg_bytes: bytes, orig_file: str) -> bytes:
    """Fernet key of one entry: PBKDF2-HMAC-SHA256 of the whole original JPEG, salted by its name."""
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=orig_file.encode("ascii"), iterations=KDF_ITERATIONS)
    return base64.urlsafe_b64encode(kdf.derive(jpeg_bytes))


def decrypt_delta(token: bytes, key: bytes, *, name: str) -> np.ndarray:
    """Decrypt and decompress one member into a uint8 (3, 1024, 1024) delta.

    ``name`` (the original file) appears in the error raised when the key does not open the token.
    """
    try:
        packed = Fernet(key).decrypt(token)
    except InvalidToken:
        raise PgtoolsError(
            f"{name}: the delta cannot be decrypted with this original's key, so {name} is not the "
            "exact file the delta was made from (re-download it; its bytes must match CelebA's img_celeba)"
        ) from None
    raw = bz2.decompress(packed)
    if len(raw) != DELTA_BYTES:
        raise PgtoolsError(f"{name}: decrypted delta has {len(raw)} bytes; expected {DELTA_BYTES} (3x1024x1024 uint8)")
    return np.frombuffer(raw, dtype=np.uint8).reshape(DELTA_SHAPE)


def encrypt_delta(delta: np.ndarray, key: bytes, *, iv: bytes | None = None, timestamp: int | None = None) -> bytes:
    """Fernet token of ``bz2(delta bytes)``; ``iv`` and ``timestamp`` fix the token for reproducible files.

    Builds the token of the Fernet specification (version, time, IV, AES-128-CBC, HMAC-SHA256)
    so that the IV may be chosen; ``Fernet(key).decrypt`` opens it.
    """
    iv = os.urandom(16) if iv is None else iv
    timestamp = int(time.time()) if timestamp is None else timestamp
    raw_key = base64.urlsafe_b64decode(key)
    signing_key, encryption_key = raw_key[:16], raw_key[16:]
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(bz2.compress(np.ascontiguousarray(delta, dtype=np.uint8).tobytes())) + padder.finalize()
    encryptor = Cipher(algorithms.AES(encryption_key), modes.CBC(iv)).encryptor()
    body = struct.pack(">BQ", _FERNET_VERSION, timestamp) + iv + encryptor.update(padded) + encryptor.finalize()
    return base64.urlsafe_b64encode(body + hmac.digest(signing_key, body, hashlib.sha256))


def read_member(zip_path: Path, idx: int) -> bytes:
    """Read entry ``idx``'s token from ``zip_path``; a damaged zip or member is a clear error."""
    member = member_name(idx)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return archive.read(member)
    except KeyError:
        raise PgtoolsError(f"{zip_path}: member {member} is missing") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise PgtoolsError(f"{zip_path}: member {member} is damaged ({err}); re-download {zip_path.name}") from None


def add_member(archive: zipfile.ZipFile, idx: int, token: bytes) -> None:
    """Add entry ``idx``'s token to an open zip, deflated, as in the published zips."""
    info = zipfile.ZipInfo(member_name(idx), date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, token)


def apply_delta(proc: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Exact path: ``(proc + delta) mod 256``."""
    return proc + delta


def apply_delta_signed(proc: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Approximate path for an inexact proc: ``clip(proc + int8(delta), 0, 255)``."""
    total = proc.astype(np.int16) + delta.view(np.int8)
    return np.clip(total, 0, 255).astype(np.uint8)


def make_delta(proc: np.ndarray, final: np.ndarray) -> np.ndarray:
    """Inverse of :func:`apply_delta`: ``(final - proc) mod 256``."""
    return final - proc
