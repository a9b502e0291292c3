"""CelebA source: bit-exact crops against the original's loop, and bad folders."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from dataset_files import collect, smooth_image, write_images
from PIL import Image

from pgtools.errors import PgtoolsError
from pgtools.sources.celeba import open_celeba


def reference_celeba(folder, cx=89, cy=121) -> np.ndarray:
    """The original: sorted PNGs, rows cy-64..cy+63 and columns cx-64..cx+63, HWC -> CHW."""
    out = []
    for name in sorted(glob.glob(os.path.join(str(folder), "img_align_celeba_png", "*.png"))):
        img = np.asarray(Image.open(name))
        out.append(img[cy - 64:cy + 64, cx - 64:cx + 64].transpose(2, 0, 1))
    return np.stack(out)


def make_celeba(folder, count, height=218, width=178, seed=0):
    rng = np.random.default_rng(seed)
    names = [f"{i + 1:06d}.png" for i in range(count)]
    return write_images(folder / "img_align_celeba_png", [smooth_image(rng, height, width) for _ in names], names)


@pytest.mark.parametrize("cx, cy", [(89, 121), (64, 64), (114, 154)])
def test_matches_the_original(tmp_path, cx, cy):
    make_celeba(tmp_path, 12)
    source = open_celeba(tmp_path, cx=cx, cy=cy, workers=0)
    assert (source.resolution, source.channels, source.count) == (128, 3, 12)
    np.testing.assert_array_equal(collect(source), reference_celeba(tmp_path, cx, cy))
    assert source.attrs["cx"] == cx and source.attrs["cy"] == cy and source.attrs["source_format"] == "celeba"


def test_other_files_are_ignored(tmp_path):
    make_celeba(tmp_path, 3)
    (tmp_path / "img_align_celeba_png" / "readme.txt").write_text("hi")
    np.testing.assert_array_equal(collect(open_celeba(tmp_path, workers=0)), reference_celeba(tmp_path))


def test_reads_the_official_jpegs_as_their_pillow_png_conversion(tmp_path):
    rng = np.random.default_rng(3)
    names = [f"{i + 1:06d}.jpg" for i in range(5)]
    jpegs = write_images(tmp_path / "jpg" / "img_align_celeba", [smooth_image(rng, 218, 178) for _ in names], names)
    (tmp_path / "jpg" / "img_align_celeba" / "readme.txt").write_text("not a photo")
    (tmp_path / "png" / "img_align_celeba_png").mkdir(parents=True)
    for jpeg in jpegs:  # the conversion the original asked its users to make
        Image.open(jpeg).save(tmp_path / "png" / "img_align_celeba_png" / jpeg.with_suffix(".png").name)
    source = open_celeba(tmp_path / "jpg", workers=0)
    assert source.count == 5 and source.attrs["celeba_images"] == "img_align_celeba"
    np.testing.assert_array_equal(collect(source), reference_celeba(tmp_path / "png"))


def test_the_png_folder_comes_first(tmp_path):
    make_celeba(tmp_path, 2)
    (tmp_path / "img_align_celeba").mkdir()
    source = open_celeba(tmp_path, workers=0)
    assert source.attrs["celeba_images"] == "img_align_celeba_png"
    np.testing.assert_array_equal(collect(source), reference_celeba(tmp_path))


def test_missing_folder(tmp_path):
    with pytest.raises(PgtoolsError) as err:
        open_celeba(tmp_path / "nowhere")
    assert str(err.value) == (f"{tmp_path / 'nowhere'}: neither img_align_celeba_png/ nor img_align_celeba/ is there "
                              f"(expected the aligned CelebA images, as PNG or as the official JPEGs)")


def test_no_pngs(tmp_path):
    (tmp_path / "img_align_celeba_png").mkdir()
    with pytest.raises(PgtoolsError, match=r"img_align_celeba_png: no .png files found$"):
        open_celeba(tmp_path)


def test_crop_outside_the_image(tmp_path):
    make_celeba(tmp_path, 2)
    with pytest.raises(PgtoolsError) as err:
        open_celeba(tmp_path, cx=120, cy=121)
    assert str(err.value) == (
        "--cx 120 --cy 121: the 128x128 crop (rows 57..184, columns 56..183) does not fit in 000001.png (178x218); "
        "cx must be 64..114 and cy 64..154"
    )


def test_size_differs_from_the_first(tmp_path):
    make_celeba(tmp_path, 3)
    write_images(tmp_path / "img_align_celeba_png", [smooth_image(np.random.default_rng(0), 200, 178)], ["000002b.png"])
    with pytest.raises(PgtoolsError, match=r"000002b.png is 178x200 but the first image 000001.png is 178x218"):
        open_celeba(tmp_path)


def test_grayscale_is_refused(tmp_path):
    write_images(tmp_path / "img_align_celeba_png", [smooth_image(np.random.default_rng(0), 218, 178, 1)], ["000001.png"])
    with pytest.raises(PgtoolsError, match=r"000001.png is grayscale; CelebA images must be RGB"):
        open_celeba(tmp_path)


def test_rgba_is_refused(tmp_path):
    make_celeba(tmp_path, 2)
    Image.fromarray(np.zeros((218, 178, 4), np.uint8)).save(tmp_path / "img_align_celeba_png" / "000003.png")
    with pytest.raises(PgtoolsError, match=r"000003.png: mode RGBA \(RGB with alpha\) is not accepted"):
        open_celeba(tmp_path)
