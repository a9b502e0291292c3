"""PNG pixels come from OpenCV's libpng: the same bytes as Pillow's, whatever ancillary chunks say."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from pgtools.errors import PgtoolsError
from pgtools.sources.images import load_pixels


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees; Pillow does not apply it, neither may OpenCV
    return exif.tobytes()


CHUNKS = {
    "plain": ([], {}),
    "gamma": ([(b"gAMA", struct.pack(">I", 100000))], {}),
    "significant_bits": ([(b"sBIT", bytes([5, 6, 5]))], {}),
    "srgb": ([(b"sRGB", b"\x00")], {}),
    "chromaticity": ([(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))], {}),
    "exif_orientation": ([], {"exif": exif_rotated()}),
    "transparent_colour": ([], {"transparency": (1, 2, 3)}),
    "compress_level_0": ([], {"compress_level": 0}),
}


def png_bytes(pixels: np.ndarray, chunks, options) -> bytes:
    info = PngImagePlugin.PngInfo()
    for name, data in chunks:
        info.add(name, data[:1] if name == b"sBIT" and pixels.ndim == 2 else data)
    if pixels.ndim == 2 and "transparency" in options:
        options = {**options, "transparency": 5}
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", list(CHUNKS))
@pytest.mark.parametrize("shape", [(21, 34, 3), (21, 34)], ids=["rgb", "grayscale"])
def test_same_pixels_as_pillow(tmp_path, kind, shape):
    pixels = np.random.default_rng(len(kind)).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "image.png"
    path.write_bytes(png_bytes(pixels, *CHUNKS[kind]))
    decoded = load_pixels(path)
    assert decoded.dtype == np.uint8 and decoded.shape == shape
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(path)))
    np.testing.assert_array_equal(decoded, pixels)


def test_what_opencv_cannot_decode_fails_through_pillow_quietly(tmp_path, capfd):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / "cut.png"
    path.write_bytes(png_bytes(pixels, [], {})[:2000])
    with pytest.raises(PgtoolsError, match=r"cut.png: cannot decode \(image file is truncated"):
        load_pixels(path)
    assert capfd.readouterr().err == ""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("bits", [2, 4])
def test_low_bit_depth_grayscale_is_scaled_alike(tmp_path, bits):
    # Pillow reads 2- and 4-bit grayscale as L scaled to 0..255 (x85, x17); libpng expands the same way.
    values = np.random.default_rng(bits).integers(0, 2**bits, (7, 16))
    packed = np.packbits(((values[..., None] >> np.arange(bits)[::-1]) & 1).reshape(7, -1).astype(np.uint8), axis=1)
    rows = b"".join(b"\x00" + row.tobytes() for row in packed)
    header = struct.pack(">IIBBBBB", 16, 7, bits, 0, 0, 0, 0)
    path = tmp_path / "gray.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))
    decoded = load_pixels(path)
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(path)))
    np.testing.assert_array_equal(decoded, values * (255 // (2**bits - 1)))
