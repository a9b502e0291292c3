"""MNIST sources: bit-exact against a plain re-implementation of the original, and bad inputs."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from dataset_files import IMAGES_MAGIC, LABELS_MAGIC, write_idx, write_mnist

from pgtools.errors import PgtoolsError
from pgtools.sources.mnist import open_mnist, open_mnist_rgb


def reference_padded(digits: np.ndarray) -> np.ndarray:
    """The original: each 28x28 digit in the middle of a zero 32x32 image."""
    out = np.zeros((len(digits), 32, 32), dtype=np.uint8)
    for i, digit in enumerate(digits):
        for y in range(28):
            for x in range(28):
                out[i, y + 2, x + 2] = digit[y, x]
    return out


def reference_rgb(padded: np.ndarray, num_images: int, seed: int) -> np.ndarray:
    """The original's loop: np.random.seed once, then randint(N, size=3) per composite."""
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        out = np.empty((num_images, 3, 32, 32), dtype=np.uint8)
        for j in range(num_images):
            chosen = np.random.randint(padded.shape[0], size=3)
            for channel in range(3):
                out[j, channel] = padded[chosen[channel]]
        return out
    finally:
        np.random.set_state(saved)


def collect(source) -> np.ndarray:
    return np.concatenate(list(source.batches))


def test_mnist_is_padded_digits_with_one_hot_labels(tmp_path):
    digits, labels = write_mnist(tmp_path, 150)
    source = open_mnist(tmp_path, export_labels=True)
    assert (source.resolution, source.channels, source.count) == (32, 1, 150)
    np.testing.assert_array_equal(collect(source), reference_padded(digits)[:, np.newaxis])
    expected = np.zeros((150, 10), dtype=np.float32)
    expected[np.arange(150), labels] = 1
    assert source.labels.dtype == np.float32
    np.testing.assert_array_equal(source.labels, expected)
    assert source.attrs["source_format"] == "mnist" and source.attrs["source_images"] == 150


def test_mnist_without_labels_needs_no_label_file(tmp_path):
    digits, _ = write_mnist(tmp_path, 20)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    source = open_mnist(tmp_path)
    assert source.labels is None
    np.testing.assert_array_equal(collect(source)[:, 0], reference_padded(digits))


def test_uncompressed_idx_files_are_accepted(tmp_path):
    digits, _ = write_mnist(tmp_path, 10, compress=False)
    np.testing.assert_array_equal(collect(open_mnist(tmp_path, export_labels=True))[:, 0], reference_padded(digits))


@pytest.mark.parametrize("num_images", [1, 300, 5000])
def test_mnist_rgb_matches_the_legacy_global_generator(tmp_path, num_images):
    digits, _ = write_mnist(tmp_path, 70)
    state = np.random.get_state()[1].copy()
    source = open_mnist_rgb(tmp_path, num_images=num_images, random_seed=123)
    got = collect(source)
    assert (source.channels, source.count) == (3, num_images)
    np.testing.assert_array_equal(got, reference_rgb(reference_padded(digits), num_images, 123))
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global generator untouched


def test_mnist_rgb_seed_changes_the_draws(tmp_path):
    write_mnist(tmp_path, 70)
    a = collect(open_mnist_rgb(tmp_path, num_images=50, random_seed=1))
    b = collect(open_mnist_rgb(tmp_path, num_images=50, random_seed=2))
    assert not np.array_equal(a, b)


def images_file(folder):
    return folder / "train-images-idx3-ubyte.gz"


def test_missing_folder(tmp_path):
    with pytest.raises(PgtoolsError, match="nowhere: no such folder"):
        open_mnist(tmp_path / "nowhere")


def test_missing_images_file(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    with pytest.raises(PgtoolsError, match=r"train-images-idx3-ubyte.gz: no such file"):
        open_mnist(tmp_path)


def test_missing_labels_file_when_exporting(tmp_path):
    write_mnist(tmp_path, 5)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(PgtoolsError, match=r"train-labels-idx1-ubyte.gz: no such file"):
        open_mnist(tmp_path, export_labels=True)


def test_wrong_magic_names_expected_and_found(tmp_path):
    write_mnist(tmp_path, 5)
    write_idx(images_file(tmp_path), LABELS_MAGIC, np.zeros(5, np.uint8))
    with pytest.raises(PgtoolsError) as err:
        open_mnist(tmp_path)
    assert str(err.value) == (
        f"{images_file(tmp_path)}: wrong IDX magic number: expected 2051 (0x00000803, an IDX image file), "
        f"found 2049 (0x00000801, an IDX label file)"
    )


def test_wrong_magic_of_unknown_kind(tmp_path):
    write_mnist(tmp_path, 5)
    write_idx(images_file(tmp_path), 0x12345678, np.zeros((5, 28, 28), np.uint8))
    with pytest.raises(PgtoolsError, match=r"expected 2051 \(0x00000803, an IDX image file\), found 305419896 \(0x12345678\)$"):
        open_mnist(tmp_path)


def test_truncated_gzip(tmp_path):
    write_mnist(tmp_path, 40)
    data = images_file(tmp_path).read_bytes()
    images_file(tmp_path).write_bytes(data[: len(data) // 2])
    with pytest.raises(PgtoolsError, match=r"train-images-idx3-ubyte.gz: truncated gzip file"):
        open_mnist(tmp_path)


def test_not_a_gzip_file(tmp_path):
    write_mnist(tmp_path, 5)
    images_file(tmp_path).write_bytes(b"<html>not found</html>")
    with pytest.raises(PgtoolsError, match=r"train-images-idx3-ubyte.gz: corrupt gzip file \(Not a gzipped file"):
        open_mnist(tmp_path)


def test_idx_body_shorter_than_its_header_says(tmp_path):
    write_mnist(tmp_path, 5)
    data = gzip.decompress(images_file(tmp_path).read_bytes())
    images_file(tmp_path).write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(PgtoolsError, match=r"truncated: the header announces 5 items \(3920 bytes\) but 3820 bytes follow"):
        open_mnist(tmp_path)


def test_header_too_short(tmp_path):
    write_mnist(tmp_path, 5)
    images_file(tmp_path).write_bytes(gzip.compress(b"\x00\x00\x08"))
    with pytest.raises(PgtoolsError, match=r"3 bytes, too short for the 16-byte IDX header"):
        open_mnist(tmp_path)


def test_wrong_digit_size(tmp_path):
    write_mnist(tmp_path, 5)
    write_idx(images_file(tmp_path), IMAGES_MAGIC, np.zeros((5, 30, 30), np.uint8))
    with pytest.raises(PgtoolsError, match=r"items are 30x30; MNIST images must be 28x28"):
        open_mnist(tmp_path)


def test_image_label_count_mismatch(tmp_path):
    write_mnist(tmp_path, 12)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", LABELS_MAGIC, np.zeros(11, np.uint8))
    with pytest.raises(PgtoolsError, match=r"image/label count mismatch: 12 images in .*train-images-idx3-ubyte.gz but 11 labels in .*train-labels"):
        open_mnist(tmp_path, export_labels=True)


def test_label_out_of_range(tmp_path):
    write_mnist(tmp_path, 4)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", LABELS_MAGIC, np.array([1, 2, 12, 3], np.uint8))
    with pytest.raises(PgtoolsError, match=r"label 12 at index 2 is outside 0..9"):
        open_mnist(tmp_path, export_labels=True)


def test_no_images(tmp_path):
    write_mnist(tmp_path, 3)
    write_idx(images_file(tmp_path), IMAGES_MAGIC, np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(PgtoolsError, match="holds no images"):
        open_mnist_rgb(tmp_path, num_images=5)
