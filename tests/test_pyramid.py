"""The HDF5 pyramid: level arithmetic against a plain re-implementation, writer safety, reader checks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pgtools.errors import PgtoolsError
from pgtools.pyramid import (
    Pyramid,
    PyramidWriter,
    halve,
    images_per_chunk,
    labels_path,
    level_resolutions,
    lod_levels,
    partial_path,
    quantize,
    write_pyramid,
)


def plain_levels(image: np.ndarray, resolution: int) -> dict[int, np.ndarray]:
    """One (C, S, S) image, pixel by pixel, the way the original's numpy expressions evaluate."""
    levels = {}
    current = image.astype(np.float32)
    r = image.shape[-1]
    while r >= 1:
        if r <= resolution:
            levels[r] = np.array(
                [[[min(max(round(float(v)), 0), 255) for v in row] for row in channel] for channel in current], dtype=np.uint8
            )
        if r == 1:
            break
        half = np.empty((current.shape[0], r // 2, r // 2), dtype=np.float32)
        for c in range(current.shape[0]):
            for y in range(r // 2):
                for x in range(r // 2):
                    total = current[c, 2 * y, 2 * x] + current[c, 2 * y, 2 * x + 1]  # float32 + float32
                    total = total + current[c, 2 * y + 1, 2 * x]
                    total = total + current[c, 2 * y + 1, 2 * x + 1]
                    half[c, y, x] = total * np.float32(0.25)
        current, r = half, r // 2
    return levels


def test_levels_match_plain_implementation_on_random_images():
    images = np.random.default_rng(1).integers(0, 256, (3, 3, 16, 16), dtype=np.uint8)
    levels = lod_levels(images, 16)
    assert sorted(levels) == [1, 2, 4, 8, 16]
    for i, image in enumerate(images):
        for r, expected in plain_levels(image, 16).items():
            np.testing.assert_array_equal(levels[r][i], expected)


def test_round_half_to_even_on_odd_sums():
    # 2x2 means of 0.5, 1.5, 2.5, 254.5: numpy rounds half to even (0, 2, 2, 254), not half up.
    block = np.array([[0, 1, 1, 2, 2, 3, 254, 255], [0, 1, 1, 2, 2, 3, 254, 255]], dtype=np.uint8)
    images = np.zeros((1, 1, 8, 8), dtype=np.uint8)
    images[0, 0, :2] = block
    assert lod_levels(images, 4)[4][0, 0, 0].tolist() == [0, 2, 2, 254]


def test_lower_levels_use_float_values_not_rounded_ones():
    # Level-2 floats 0.5, 0.5, 0.5, 1.5 are stored as 0, 0, 0, 2; level 1 from the floats is
    # 0.75 -> 1, whereas re-quantising first would give mean(0, 0, 0, 2) = 0.5 -> 0.
    quads = {0.5: [0, 0, 1, 1], 1.5: [1, 1, 2, 2]}
    means = [0.5, 0.5, 0.5, 1.5]
    image = np.zeros((1, 1, 4, 4), dtype=np.uint8)
    for k, mean in enumerate(means):
        y, x = divmod(k, 2)
        image[0, 0, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2] = np.reshape(quads[mean], (2, 2))
    levels = lod_levels(image, 4)
    assert levels[2][0, 0].tolist() == [[0, 0], [0, 2]]  # 0.5 -> 0 and 1.5 -> 2 (half to even)
    assert levels[1][0, 0, 0, 0] == 1  # from floats: 0.75 -> 1; from stored uint8 it would be 0.5 -> 0
    np.testing.assert_array_equal(levels[1][0], plain_levels(image[0], 4)[1])


def test_source_larger_than_resolution_is_halved_first():
    images = np.random.default_rng(2).integers(0, 256, (2, 1, 32, 32), dtype=np.uint8)
    levels = lod_levels(images, 8)
    full = lod_levels(images, 32)
    assert sorted(levels) == [1, 2, 4, 8]
    for r in levels:
        np.testing.assert_array_equal(levels[r], full[r])


def float_chain(images: np.ndarray, resolution: int) -> dict[int, np.ndarray]:
    """The original's vectorised float32 chain (halve, then quantize) for whole batches."""
    levels, current = {}, images
    for r in reversed(level_resolutions(resolution)):
        while current.shape[-1] > r:
            current = halve(current)
        levels[r] = quantize(current)
    return levels


@pytest.mark.parametrize("shape, resolution", [((4, 3, 128, 128), 128), ((1, 1, 1024, 1024), 1024), ((1, 1, 2048, 2048), 512)])
@pytest.mark.parametrize("pixels", ["random", "near_white", "halves"])
def test_integer_levels_equal_the_float_chain_bit_for_bit(shape, resolution, pixels):
    # Integer sums up to 8 halvings, float32 below (1024 -> 1 takes 10): same bytes as the float chain,
    # including the largest sums (white) and many exact halves.
    rng = np.random.default_rng(3)
    images = {"random": lambda: rng.integers(0, 256, shape, dtype=np.uint8),
              "near_white": lambda: rng.integers(253, 256, shape, dtype=np.uint8),
              "halves": lambda: rng.choice(np.array([0, 1, 2, 3, 254, 255], np.uint8), shape)}[pixels]()
    levels, expected = lod_levels(images, resolution), float_chain(images, resolution)
    assert sorted(levels) == sorted(expected)
    for r in expected:
        assert levels[r].dtype == np.uint8
        np.testing.assert_array_equal(levels[r], expected[r])


def test_levels_reject_bad_shapes():
    with pytest.raises(ValueError, match="power of two"):
        lod_levels(np.zeros((1, 3, 12, 12), np.uint8), 4)


def _write(path, images, **options):
    return write_pyramid(path, [images[i : i + 7] for i in range(0, len(images), 7)], resolution=images.shape[-1],
                         channels=images.shape[1], count=len(images), **options)


@pytest.mark.parametrize("options", [{}, {"compression": "gzip-4"}, {"compression": "lzf"}, {"compat": True}])
def test_write_read_round_trip(tmp_path, options):
    images = np.random.default_rng(3).integers(0, 256, (40, 3, 16, 16), dtype=np.uint8)
    path = tmp_path / "x.h5"
    assert _write(path, images, **options) == 40
    expected = lod_levels(images, 16)
    with Pyramid(path) as pyramid:
        assert (pyramid.resolution, pyramid.channels, pyramid.num_images) == (16, 3, 40)
        assert pyramid.levels == [1, 2, 4, 8, 16]
        assert pyramid.attrs["complete"] and pyramid.attrs["images_written"] == 40
        indices = [39, 0, 5, 5, 21]
        for r in pyramid.levels:
            np.testing.assert_array_equal(pyramid.read(r), expected[r])
            np.testing.assert_array_equal(pyramid.read(r, 3, 9), expected[r][3:9])
            np.testing.assert_array_equal(pyramid.read_indices(r, indices), expected[r][indices])
        batch = pyramid.minibatch(8, 16, np.random.default_rng(0))
        np.testing.assert_array_equal(batch, expected[8][np.random.default_rng(0).integers(0, 40, 16)])
        np.testing.assert_array_equal(pyramid.load_level(4), expected[4])
        np.testing.assert_array_equal(pyramid.read_indices(4, indices), expected[4][indices])


@pytest.mark.parametrize("options", [{}, {"compat": True}, {"compression": "gzip-1"}])
def test_levels_from_workers_are_written_like_images(tmp_path, monkeypatch, options):
    # Batches given as images or as their levels (as the folder sources' workers send them), mixed,
    # flushed every 10 images: the file holds the same bytes as when every level is computed here.
    monkeypatch.setattr("pgtools.pyramid.writer.BLOCK_BYTES", 10 * 3 * 128 * 128)
    images = np.random.default_rng(4).integers(0, 256, (23, 3, 128, 128), dtype=np.uint8)
    batches = [images[i:i + 3] for i in range(0, 23, 3)]
    mixed = [lod_levels(batch, 128) if k % 3 else batch for k, batch in enumerate(batches)]
    assert write_pyramid(tmp_path / "x.h5", mixed, resolution=128, channels=3, count=23, **options) == 23
    expected = lod_levels(images, 128)
    with Pyramid(tmp_path / "x.h5") as pyramid:
        for r in pyramid.levels:
            np.testing.assert_array_equal(pyramid.read(r), expected[r])


def test_add_rejects_levels_that_do_not_fit(tmp_path):
    levels = lod_levels(np.zeros((2, 3, 8, 8), np.uint8), 8)
    with PyramidWriter(tmp_path / "x.h5", resolution=8, channels=3) as writer:
        with pytest.raises(ValueError, match=r"expected levels \[1, 2, 4, 8\], got \[2, 4, 8\]"):
            writer.add({r: level for r, level in levels.items() if r > 1})
        with pytest.raises(ValueError, match=r"expected uint8 \(n, 3, S, S\) images or their levels, got levels \[1, 2, 4\]"):
            writer.add(lod_levels(np.zeros((2, 3, 4, 4), np.uint8), 4))
        writer.add(levels)
    assert writer.num_written == 2


def test_compat_layout_is_the_originals(tmp_path):
    images = np.zeros((5, 3, 16, 16), dtype=np.uint8)
    _write(tmp_path / "c.h5", images, compat=True)
    with h5py.File(tmp_path / "c.h5") as file:
        for r, per_chunk in [(16, 1), (8, 1), (4, 3), (2, 11), (1, 43)]:
            dataset = file[f"data{r}x{r}"]
            assert dataset.chunks == (per_chunk, 3, r, r)
            assert (dataset.compression, dataset.compression_opts) == ("gzip", 4)
            assert dataset.maxshape == (None, 3, r, r)
    assert images_per_chunk(1, 4, compat=True) == 8


def test_refuses_to_overwrite_unless_asked(tmp_path):
    images = np.zeros((2, 1, 4, 4), dtype=np.uint8)
    path = tmp_path / "x.h5"
    path.write_bytes(b"precious")
    with pytest.raises(PgtoolsError, match="already exists"):
        _write(path, images)
    assert path.read_bytes() == b"precious"
    _write(path, images, overwrite=True)
    with Pyramid(path) as pyramid:
        assert pyramid.num_images == 2


def test_interruption_leaves_nothing(tmp_path):
    path = tmp_path / "x.h5"

    def batches():
        yield np.zeros((3, 3, 8, 8), dtype=np.uint8)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_pyramid(path, batches(), resolution=8, channels=3, count=10)
    assert list(tmp_path.iterdir()) == []


def test_count_mismatch_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(PgtoolsError, match="expected 5 images but the source produced 3"):
        write_pyramid(tmp_path / "x.h5", [np.zeros((3, 1, 4, 4), np.uint8)], resolution=4, channels=1, count=5)
    assert list(tmp_path.iterdir()) == []


def test_resume_continues_after_the_images_written(tmp_path):
    images = np.random.default_rng(4).integers(0, 256, (10, 3, 8, 8), dtype=np.uint8)
    path = tmp_path / "x.h5"
    options = dict(resolution=8, channels=3, count=10, keep_partial=True, resume=True, attrs={"source": "s"})
    with pytest.raises(RuntimeError):
        with PyramidWriter(path, **options) as writer:
            writer.add(images[:4])
            raise RuntimeError("crash")
    assert not path.exists() and partial_path(path).exists()
    with PyramidWriter(path, **options) as writer:
        assert writer.num_written == 4
        writer.add(images[4:])
    assert not partial_path(path).exists()
    with Pyramid(path) as pyramid:
        for r, level in lod_levels(images, 8).items():
            np.testing.assert_array_equal(pyramid.read(r), level)
    with pytest.raises(RuntimeError):
        with PyramidWriter(tmp_path / "y.h5", **options) as writer:
            writer.add(images[:2])
            raise RuntimeError
    with pytest.raises(PgtoolsError, match="started with source='s', not 'other'"):
        PyramidWriter(tmp_path / "y.h5", **{**options, "attrs": {"source": "other"}})


def test_labels_inside_and_beside(tmp_path):
    labels = np.eye(3, dtype=np.float32)[[0, 2, 1, 1]]
    path = tmp_path / "x.h5"
    write_pyramid(path, [np.zeros((4, 1, 4, 4), np.uint8)], resolution=4, channels=1, labels=labels)
    np.testing.assert_array_equal(np.load(labels_path(path)), labels)
    assert labels_path(path).name == "x-labels.npy"
    with Pyramid(path) as pyramid:
        np.testing.assert_array_equal(pyramid.labels, labels)


def _original_style_file(path, counts=(4, 4, 4), resolution=4, attrs=None):
    """A file laid out as the original h5tool wrote it (no attributes unless given)."""
    with h5py.File(path, "w") as file:
        for r, count in zip((4, 2, 1), counts):
            if r <= resolution:
                file.create_dataset(f"data{r}x{r}", data=np.full((count, 3, r, r), r, np.uint8), maxshape=(None, 3, r, r),
                                    chunks=(1, 3, r, r), compression="gzip", compression_opts=4)
        file.attrs.update(attrs or {})


def test_reads_the_originals_files_with_sidecar_labels(tmp_path):
    path = tmp_path / "orig.h5"
    _original_style_file(path)
    np.save(tmp_path / "orig-labels.npy", np.eye(4, dtype=np.float32))
    with Pyramid(path) as pyramid:
        assert (pyramid.resolution, pyramid.num_images) == (4, 4)
        assert pyramid.read_indices(2, [3, 1]).tolist() == np.full((2, 3, 2, 2), 2).tolist()
        assert pyramid.labels.shape == (4, 4)


@pytest.mark.parametrize(
    "counts, attrs, message",
    [
        ((4, 3, 4), {}, r"bad.h5: incomplete: 3 of 4 written \(its creation was interrupted\); create it again$"),
        ((4, 4, 4), {"complete": False}, r"bad.h5: incomplete: 4 written \(its creation"),
        ((4, 4, 4), {"complete": False, "images_written": 2}, r"bad.h5: incomplete: 2 of 4 written \(its creation"),
        ((0, 0, 0), {}, "holds no images"),
    ],
)
def test_reader_says_what_is_wrong(tmp_path, counts, attrs, message):
    path = tmp_path / "bad.h5"
    _original_style_file(path, counts, attrs=attrs)
    with pytest.raises(PgtoolsError, match=message):
        Pyramid(path)


def test_reader_rejects_non_pyramids(tmp_path):
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(PgtoolsError, match="not an HDF5 file"):
        Pyramid(tmp_path / "text.h5")
    with pytest.raises(PgtoolsError, match="no such file"):
        Pyramid(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as file:
        file["x"] = np.zeros(3)
    with pytest.raises(PgtoolsError, match="not a pyramid"):
        Pyramid(tmp_path / "other.h5")
    with h5py.File(tmp_path / "gap.h5", "w") as file:
        file["data4x4"] = np.zeros((1, 3, 4, 4), np.uint8)
        file["data1x1"] = np.zeros((1, 3, 1, 1), np.uint8)
    with pytest.raises(PgtoolsError, match="levels missing: data2x2"):
        Pyramid(tmp_path / "gap.h5")
    with Pyramid(_write(tmp_path / "ok.h5", np.zeros((2, 3, 4, 4), np.uint8)) and tmp_path / "ok.h5") as pyramid:
        with pytest.raises(PgtoolsError, match=r"no 8x8 level \(levels: 1, 2, 4\)"):
            pyramid.read(8)


def test_default_chunking_holds_whole_images_and_shrinks_when_compressed(tmp_path):
    images = np.zeros((200, 3, 64, 64), dtype=np.uint8)
    _write(tmp_path / "n.h5", images)
    _write(tmp_path / "g.h5", images, compression="gzip-1")
    with h5py.File(tmp_path / "n.h5") as plain, h5py.File(tmp_path / "g.h5") as packed:
        assert [plain[f"data{r}x{r}"].chunks[0] for r in (64, 32, 16, 4)] == [5, 21, 85, 200]  # 64 KiB, capped at N
        assert [packed[f"data{r}x{r}"].chunks[0] for r in (64, 32, 16, 4)] == [1, 1, 5, 85]  # 4 KiB
        assert plain["data64x64"].compression is None and packed["data64x64"].compression_opts == 1
