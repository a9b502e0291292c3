"""Custom folder source: bit-exact against the original's loop, and every kind of bad folder."""

from __future__ import annotations

import glob
import os

import cv2
import numpy as np
import pytest
from dataset_files import collect, smooth_image, write_images
from PIL import Image

from pgtools.errors import PgtoolsError
from pgtools.sources.custom import open_custom


def reference_custom(folder) -> np.ndarray:
    """The original: sorted(glob(DIR/*)), np.asarray(PIL.Image.open(f)), HW(C) -> CHW."""
    out = []
    for name in sorted(glob.glob(os.path.join(str(folder), "*"))):
        img = np.asarray(Image.open(name))
        out.append(img[np.newaxis] if img.ndim == 2 else img.transpose(2, 0, 1))
    return np.stack(out)


def make_folder(folder, count, side=16, channels=3, ext="png", seed=0):
    rng = np.random.default_rng(seed)
    images = [smooth_image(rng, side, side, channels) for _ in range(count)]
    return write_images(folder, images, [f"img{i:04d}.{ext}" for i in range(count)])


@pytest.mark.parametrize("channels, ext", [(3, "png"), (1, "png"), (3, "jpg"), (1, "bmp")])
def test_matches_the_original(tmp_path, channels, ext):
    make_folder(tmp_path, 60, side=16, channels=channels, ext=ext)
    source = open_custom(tmp_path, workers=0)
    assert (source.resolution, source.channels, source.count) == (16, channels, 60)
    np.testing.assert_array_equal(collect(source), reference_custom(tmp_path))
    assert source.attrs == {"source": str(tmp_path.resolve()), "source_format": "custom", "source_images": 60}


def test_order_is_by_name_and_hidden_files_are_skipped(tmp_path):
    rng = np.random.default_rng(1)
    write_images(tmp_path, [smooth_image(rng, 8, 8) for _ in range(4)], ["b.png", "a.png", "B.png", "a10.png"])
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    np.testing.assert_array_equal(collect(open_custom(tmp_path, workers=0)), reference_custom(tmp_path))


def test_larger_batches_than_one_task(tmp_path):
    make_folder(tmp_path, 300, side=8)
    source = open_custom(tmp_path, workers=0)
    batches = list(source.batches)
    assert [len(b[8]) for b in batches] == [256, 44]
    source.batches = iter(batches)
    np.testing.assert_array_equal(collect(source), reference_custom(tmp_path))


def test_missing_folder(tmp_path):
    with pytest.raises(PgtoolsError, match=r"nowhere: no such folder$"):
        open_custom(tmp_path / "nowhere")


def test_not_a_folder(tmp_path):
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(PgtoolsError, match=r"file.png: not a folder$"):
        open_custom(tmp_path / "file.png")


def test_empty_folder(tmp_path):
    with pytest.raises(PgtoolsError, match=r": the folder is empty; expected square power-of-two images, 8-bit grayscale \(L\) or 8-bit RGB"):
        open_custom(tmp_path)


def test_mixed_sizes_name_the_file(tmp_path):
    make_folder(tmp_path, 5, side=16)
    write_images(tmp_path, [smooth_image(np.random.default_rng(0), 32, 32)], ["img0003b.png"])
    with pytest.raises(PgtoolsError) as err:
        open_custom(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'img0003b.png'} is 32x32 but the first image img0000.png is 16x16; all images must have the same size"
    )


def test_mixed_channels_name_the_file(tmp_path):
    make_folder(tmp_path, 3, side=16)
    write_images(tmp_path, [smooth_image(np.random.default_rng(0), 16, 16, channels=1)], ["img0001b.png"])
    with pytest.raises(PgtoolsError, match=r"img0001b.png is grayscale but the first image img0000.png is RGB"):
        open_custom(tmp_path)


def test_not_square(tmp_path):
    write_images(tmp_path, [smooth_image(np.random.default_rng(0), 16, 32)], ["a.png"])
    with pytest.raises(PgtoolsError, match=r"a.png: 32x16 is not square; images must be square with a power-of-two side"):
        open_custom(tmp_path)


def test_not_a_power_of_two(tmp_path):
    write_images(tmp_path, [smooth_image(np.random.default_rng(0), 24, 24)], ["a.png"])
    with pytest.raises(PgtoolsError, match=r"a.png: 24x24 is not a power of two"):
        open_custom(tmp_path)


def write_mode(path, kind):
    if kind == "RGBA":
        Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(path)
    elif kind == "P":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).convert("P").save(path)
    elif kind == "gray16":
        cv2.imwrite(str(path), np.full((8, 8), 40000, np.uint16))
    elif kind == "rgb16":
        cv2.imwrite(str(path), np.full((8, 8, 3), 40000, np.uint16))
    elif kind == "1":
        Image.fromarray(np.zeros((8, 8), bool)).save(path)


@pytest.mark.parametrize("kind, described", [
    ("RGBA", "RGBA (RGB with alpha)"),
    ("P", "P (palette)"),
    ("gray16", "I;16 (16-bit grayscale)"),
    ("rgb16", "RGB;16B (16 bits per channel)"),
    ("1", "1 (1-bit black and white)"),
])
def test_unaccepted_modes_say_what_was_found(tmp_path, kind, described):
    make_folder(tmp_path, 3, side=8)
    write_mode(tmp_path / "img0001x.png", kind)
    with pytest.raises(PgtoolsError) as err:
        open_custom(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'img0001x.png'}: mode {described} is not accepted; images must be 8-bit grayscale (L) or 8-bit RGB"
    )


def test_first_image_with_unaccepted_mode(tmp_path):
    write_mode(tmp_path / "a.png", "RGBA")
    with pytest.raises(PgtoolsError, match=r"a.png: mode RGBA"):
        open_custom(tmp_path)


def test_non_image_file_is_named(tmp_path):
    make_folder(tmp_path, 3, side=8)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PgtoolsError) as err:
        open_custom(tmp_path)
    assert str(err.value) == f"{tmp_path / 'notes.txt'}: not an image file (Pillow cannot identify it)"


def test_subfolder_is_named(tmp_path):
    make_folder(tmp_path, 3, side=8)
    (tmp_path / "more").mkdir()
    with pytest.raises(PgtoolsError, match=r"more is a folder, not an image file$"):
        open_custom(tmp_path)


def test_truncated_image_fails_when_decoded(tmp_path):
    paths = make_folder(tmp_path, 3, side=64)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:len(data) // 2])
    source = open_custom(tmp_path, workers=0)  # the header is intact
    with pytest.raises(PgtoolsError, match=r"img0001.png: cannot decode \("):
        collect(source)


def test_header_scan_in_parallel_finds_the_first_bad_file(tmp_path):
    make_folder(tmp_path, 1100, side=1)
    (tmp_path / "img0700x.png").write_text("no")
    (tmp_path / "img0900x.png").write_text("no")
    with pytest.raises(PgtoolsError, match=r"img0700x.png: not an image file"):
        open_custom(tmp_path, workers=2)
