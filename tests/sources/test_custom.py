"""Custom folder source: bit-exact against the original's loop, and every kind of bad folder."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from dataset_files import collect, smooth_image, write_images
from PIL import Image

from pgtools.errors import PgtoolsError
from pgtools.sources.custom import open_custom


def reference_custom(folder, skip=()) -> np.ndarray:
    """The original: sorted(glob(DIR/*)), np.asarray(PIL.Image.open(f)), HW(C) -> CHW (less the files in ``skip``)."""
    out = []
    for name in sorted(glob.glob(os.path.join(str(folder), "*"))):
        if os.path.basename(name) in skip:
            continue
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


def test_non_image_files_are_skipped_and_counted(tmp_path):
    make_folder(tmp_path, 3, side=8)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "Thumbs.db").write_bytes(b"\0" * 10)
    source = open_custom(tmp_path, workers=0)
    assert source.count == 3
    assert (source.attrs["non_image_files"], json.loads(source.attrs["non_image_names"])) == (2, ["Thumbs.db", "notes.txt"])
    np.testing.assert_array_equal(collect(source), reference_custom(tmp_path, skip=("notes.txt", "Thumbs.db")))


def test_subfolders_are_read_in_path_order_hidden_ones_left_out(tmp_path):
    rng = np.random.default_rng(2)
    names = ["b0.png", "b/c.png", "a.png", "b/a/z.png", "B.png", ".hidden/x.png", "b/.y.png"]
    images = {name: smooth_image(rng, 8, 8) for name in names}
    for name, image in images.items():
        write_images((tmp_path / name).parent, [image], [Path(name).name])
    source = open_custom(tmp_path, workers=0)
    expected = ["B.png", "a.png", "b/a/z.png", "b/c.png", "b0.png"]  # as sorted(Path.rglob("*")) orders them
    assert source.count == 5 and "non_image_files" not in source.attrs
    np.testing.assert_array_equal(collect(source), np.stack([images[name].transpose(2, 0, 1) for name in expected]))


def test_an_image_named_file_that_is_not_one_is_named(tmp_path):
    make_folder(tmp_path, 3, side=8)
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(PgtoolsError) as err:
        open_custom(tmp_path)
    assert str(err.value) == f"{tmp_path / 'notes.png'}: not an image file (Pillow cannot identify it)"


def test_only_non_image_files(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(PgtoolsError, match=r": the folder has no image files, only 1 other file\(s\) such as a.txt; "):
        open_custom(tmp_path)


def test_skip_bad_leaves_out_unreadable_and_undecodable_files(tmp_path):
    paths = make_folder(tmp_path, 6, side=64)
    (tmp_path / "img0001x.png").write_text("not a png")
    write_mode(tmp_path / "img0002x.png", "RGBA")
    data = paths[4].read_bytes()
    paths[4].write_bytes(data[:len(data) // 2])  # the header is intact: found only when decoded
    source = open_custom(tmp_path, skip_bad=True, workers=0)
    assert source.count is None
    images = collect(source)
    assert source.attrs["skipped_files"] == 3
    assert json.loads(source.attrs["skipped_names"]) == ["img0001x.png", "img0002x.png", "img0004.png"]
    np.testing.assert_array_equal(images, reference_custom(tmp_path, skip=("img0001x.png", "img0002x.png", "img0004.png")))


def test_skip_bad_with_nothing_usable(tmp_path):
    (tmp_path / "a.png").write_text("x")
    with pytest.raises(PgtoolsError, match=r": none of the 1 image files can be used$"):
        open_custom(tmp_path, skip_bad=True)


def photo(rng, height, width, channels=3):
    return smooth_image(rng, height, width, channels)


def lanczos(pixels, width, height):
    return np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.LANCZOS))


@pytest.mark.parametrize("transform", ["center-crop", "resize", "center-crop-wide"])
def test_resolution_and_transform_on_photos_of_any_size(tmp_path, transform):
    rng = np.random.default_rng(4)
    shapes = [(48, 64), (64, 48), (30, 100), (16, 16), (40, 40)]
    originals = [photo(rng, h, w) for h, w in shapes]
    write_images(tmp_path, originals, [f"p{i}.png" for i in range(len(shapes))])
    source = open_custom(tmp_path, resolution=16, transform=transform, workers=0)
    assert (source.resolution, source.channels, source.count, source.attrs["transform"]) == (16, 3, 5, transform)
    got = collect(source)
    for image, original in zip(got, originals):
        h, w = original.shape[:2]
        if transform == "center-crop":
            s = min(h, w)
            expected = lanczos(original[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s], 16, 16)
        elif transform == "resize":
            expected = original if (h, w) == (16, 16) else lanczos(original, 16, 16)
        else:
            bh, bw = (w // 2, w) if 2 * h >= w else (h, 2 * h)
            band = lanczos(original[(h - bh) // 2:(h - bh) // 2 + bh, (w - bw) // 2:(w - bw) // 2 + bw], 16, 8)
            expected = np.zeros((16, 16, 3), np.uint8)
            expected[4:12] = band
        np.testing.assert_array_equal(image, expected.transpose(2, 0, 1))


def test_center_crop_wide_boxes():
    from pgtools.sources.transforms import center_crop_wide
    wide = np.arange(30 * 100, dtype=np.uint8).reshape(30, 100) % 251  # wider than 2:1: full height, 60 columns
    out = center_crop_wide(wide, 8)
    assert out.shape == (8, 8) and not out[:2].any() and not out[6:].any()
    np.testing.assert_array_equal(out[2:6], lanczos(np.ascontiguousarray(wide[:, 20:80]), 8, 4))
    tall = np.full((64, 32), 200, np.uint8)  # taller than 2:1: full width, the central 16 rows
    np.testing.assert_array_equal(center_crop_wide(tall, 4), [[0] * 4, [200] * 4, [200] * 4, [0] * 4])


def test_resolution_alone_resizes_and_grayscale_works(tmp_path):
    rng = np.random.default_rng(5)
    originals = [photo(rng, 20, 12, channels=1), photo(rng, 8, 8, channels=1)]
    write_images(tmp_path, originals, ["a.png", "b.png"])
    source = open_custom(tmp_path, resolution=8, workers=0)
    assert (source.channels, source.attrs["transform"]) == (1, "resize")
    np.testing.assert_array_equal(collect(source), np.stack([lanczos(originals[0], 8, 8), originals[1]])[:, np.newaxis])


def test_transform_options_are_checked(tmp_path):
    make_folder(tmp_path, 2, side=8)
    with pytest.raises(PgtoolsError, match=r"^--transform center-crop needs --resolution$"):
        open_custom(tmp_path, transform="center-crop")
    with pytest.raises(PgtoolsError, match=r"^--resolution must be a power of two, got 24$"):
        open_custom(tmp_path, resolution=24)
    write_images(tmp_path, [photo(np.random.default_rng(0), 10, 20, channels=1)], ["z.png"])
    with pytest.raises(PgtoolsError, match=r"z.png is grayscale but the first image img0000.png is RGB"):
        open_custom(tmp_path, resolution=8)


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
