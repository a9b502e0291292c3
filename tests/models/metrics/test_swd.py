"""SWD: pyramid, patches and sliced distance against hand-worked cases, then the metric's behaviour."""

import numpy as np
import pytest
from scipy import ndimage

from pgtools.errors import PgtoolsError
from pgtools.models.metrics.swd import (
    DescriptorSet,
    SWDResult,
    format_swd,
    laplacian_pyramid,
    level_groups,
    patch_descriptors,
    pyr_down,
    pyr_up,
    sliced_distance,
    sliced_wasserstein,
)

KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32)[None, None] / 256


def test_laplacian_pyramid_of_constant_image_is_zero_bands_and_constant_lowpass():
    images = np.full((2, 3, 64, 64), 77, np.uint8)
    levels = laplacian_pyramid(images)
    assert [lv.shape for lv in levels] == [(2, 3, 64, 64), (2, 3, 32, 32), (2, 3, 16, 16)]
    assert all(lv.dtype == np.float32 for lv in levels)
    np.testing.assert_array_equal(levels[0], 0)
    np.testing.assert_array_equal(levels[1], 0)
    np.testing.assert_array_equal(levels[2], 77)


def test_pyr_down_uses_mirror_borders():
    # An impulse next to the corner: with 'mirror' the left taps -1 fold onto pixel 1, so the
    # 1-D weight at output 0 is 4 + 4 = 8 (of 16); 2-D: 8 * 8 = 64 for an impulse of 256.
    image = np.zeros((1, 1, 8, 8), np.float32)
    image[0, 0, 1, 1] = 256
    expected = np.zeros((4, 4), np.float32)
    expected[:2, :2] = [[64, 32], [32, 16]]
    np.testing.assert_array_equal(pyr_down(image)[0, 0], expected)


def test_pyr_up_matches_hand_derived_operator():
    # Zero insertion + kernel x 4 + mirror borders on a 2-sample signal [p, q] gives
    # [(6p + 2q)/8, (p + q)/2, (p + 7q)/8, q]; in 2-D the operator applies to rows and columns.
    up = np.array([[6, 2], [4, 4], [1, 7], [0, 8]], np.float64) / 8
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(pyr_up(x), up @ x @ up.T, rtol=0, atol=1e-6)


def test_laplacian_pyramid_matches_literal_2d_definition():
    images = np.random.default_rng(1).integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    expected, level = [], images.astype(np.float32)
    while level.shape[-1] > 16:
        low = ndimage.convolve(level, KERNEL, mode="mirror")[:, :, ::2, ::2]
        zeros = np.zeros_like(level)
        zeros[:, :, ::2, ::2] = low
        expected.append(level - ndimage.convolve(zeros, KERNEL * 4, mode="mirror"))
        level = low
    expected.append(level)
    got = laplacian_pyramid(images)
    assert len(got) == 3
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-3)


def test_patch_descriptors_match_a_loop_and_tile_grayscale():
    rng = np.random.default_rng(2)
    level = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)
    centres = rng.integers(3, 13, size=(2, 5, 2))
    expected = [
        level[i, :, y - 3 : y + 4, x - 3 : x + 4].reshape(-1)
        for i in range(2)
        for y, x in centres[i]
    ]
    np.testing.assert_array_equal(patch_descriptors(level, centres), np.stack(expected))
    gray = level[:, :1]
    tiled = np.repeat(gray, 3, axis=1)
    np.testing.assert_array_equal(
        patch_descriptors(gray, centres), patch_descriptors(tiled, centres)
    )


def test_sliced_distance_of_one_dimensional_sets_is_the_sorted_gap():
    # Any unit direction in 1-D is +-1, so the distance is mean |sorted a - sorted b| = 5/3.
    a = np.array([[5.0], [0.0], [1.0]], np.float32)
    b = np.array([[3.0], [4.0], [2.0]], np.float32)
    rng = np.random.default_rng(0)
    assert sliced_distance(a, b, rng=rng, dirs_per_repeat=3, dir_repeats=2) == pytest.approx(5 / 3)


def test_sliced_distance_of_two_dimensional_sets_matches_a_loop():
    a = np.array([[0, 0], [1, 2], [3, -1], [2, 2]], np.float32)
    b = np.array([[1, 1], [0, -2], [2, 0], [4, 1]], np.float32)
    got = sliced_distance([a[:1], a[1:]], b, rng=np.random.default_rng(5), dirs_per_repeat=3, dir_repeats=2)
    rng = np.random.default_rng(5)
    repeats = []
    for _ in range(2):
        dirs = rng.standard_normal((3, 2))
        gaps = []
        for d in dirs:
            d = d / np.sqrt(d @ d)
            pa, pb = sorted(a @ d), sorted(b @ d)
            gaps += [abs(x - y) for x, y in zip(pa, pb)]
        repeats.append(np.mean(gaps))
    assert got == pytest.approx(np.mean(repeats), rel=1e-6)


def test_identical_sets_give_exactly_zero(make_images):
    images = make_images(12, 64, seed=0)
    result = sliced_wasserstein(images, images.copy())
    assert result == SWDResult([64, 32, 16], [0.0, 0.0, 0.0], 0.0, 12)


def test_swd_grows_with_blur(make_images):
    reals = make_images(24, 32, seed=1)
    averages, finest = [], []
    for sigma in (0.5, 1.0, 2.0):
        blurred = ndimage.gaussian_filter(reals.astype(np.float32), (0, 0, sigma, sigma))
        result = sliced_wasserstein(reals, np.round(blurred).astype(np.uint8))
        averages.append(result.average)
        finest.append(result.levels[0])
    assert averages == sorted(averages) and len(set(averages)) == 3
    assert finest == sorted(finest) and len(set(finest)) == 3


def test_swd_grows_with_colour_casts_that_vary_between_images(make_images):
    reals = make_images(24, 32, seed=2)
    signs = np.where(np.arange(24) % 2, 1, -1)[:, None, None]
    averages = []
    for shift in (8, 24, 64):
        fakes = reals.astype(np.int32)
        fakes[:, 0] += shift * signs
        result = sliced_wasserstein(reals, np.clip(fakes, 0, 255).astype(np.uint8))
        averages.append(result.average)
    assert averages == sorted(averages) and len(set(averages)) == 3


def test_one_global_colour_shift_is_normalised_away(make_images):
    # The spec normalises each channel by the set's own mean and std, so shifting a whole set is
    # invisible: a large shift scores like a shift by one level (the sampling noise floor, as the
    # shifted images draw other patches), while an unrelated set is far away.
    reals = make_images(64, 32, seed=3) // 2
    shifted = sliced_wasserstein(reals, reals + np.array([40, 0, 20], np.uint8)[:, None, None]).average
    floor = sliced_wasserstein(reals, reals + np.uint8(1)).average
    assert shifted == pytest.approx(floor, rel=0.15)
    assert sliced_wasserstein(reals, make_images(64, 32, seed=4) // 2).average > 1.4 * max(shifted, floor)


def test_swd_is_symmetric_and_independent_of_batching(make_images):
    reals = make_images(10, 32, seed=5)
    fakes = make_images(10, 32, seed=6)
    whole = sliced_wasserstein(reals, fakes, seed=3)
    assert sliced_wasserstein(fakes, reals, seed=3) == whole
    batched = sliced_wasserstein([reals[:3], reals[3:]], iter([fakes[:7], fakes[7:9], fakes[9:]]), seed=3)
    assert batched == whole
    assert sliced_wasserstein(reals, fakes, seed=4) != whole


def test_image_order_does_not_matter(make_images):
    # Descriptors are put in a canonical order before any float reduction: exactly the same result.
    reals = make_images(32, 32, seed=7)
    fakes = make_images(32, 32, seed=8)
    base = sliced_wasserstein(reals, fakes)
    assert sliced_wasserstein(reals[::-1], fakes[np.random.default_rng(0).permutation(32)]) == base


def test_grayscale_is_tiled_to_rgb(make_images):
    gray_a = make_images(6, 32, seed=9, channels=1)
    gray_b = make_images(6, 32, seed=10, channels=1)
    rgb_a, rgb_b = np.repeat(gray_a, 3, axis=1), np.repeat(gray_b, 3, axis=1)
    assert sliced_wasserstein(gray_a, gray_b) == sliced_wasserstein(rgb_a, rgb_b)
    assert sliced_wasserstein(gray_a, rgb_a).average == 0.0


def test_progress_counts_every_image(make_images):
    images = make_images(5, 16, seed=11)
    seen = []
    result = sliced_wasserstein([images[:2], images[2:]], images, progress=seen.append)
    assert seen == [2, 3, 5] and result.resolutions == [16]


def test_format_swd_uses_the_papers_layout():
    result = SWDResult([128, 64, 32, 16], [3.421, 4.04, 4.779, 20.38], 8.15, 8192)
    assert format_swd(result) == "3.42, 4.04, 4.78, 20.38 / 8.15"


def test_descriptor_set_keeps_128_descriptors_per_image_and_level(make_images):
    descriptors = DescriptorSet()
    for batch in np.split(make_images(300, 32, seed=12), [3, 200]):
        descriptors.add(batch)
    assert descriptors.count == 300 and descriptors.resolutions == [32, 16]
    levels = descriptors.normalised_levels()
    # Stored in blocks of 256 images whatever the batches were: 256 + 44 images.
    assert [[block.shape for block in blocks] for blocks in levels] == [[(32768, 147), (5632, 147)]] * 2
    for blocks in levels:
        channels = np.concatenate(blocks).reshape(-1, 3, 49)
        np.testing.assert_allclose(channels.mean(axis=(0, 2)), 0, atol=1e-5)
        np.testing.assert_allclose(channels.std(axis=(0, 2)), 1, atol=1e-5)
    with pytest.raises(RuntimeError):
        descriptors.add(make_images(1, 32, seed=13))


@pytest.mark.parametrize(
    ("reals", "fakes", "message"),
    [
        (np.zeros((4, 3, 32, 32), np.uint8), np.zeros((3, 3, 32, 32), np.uint8),
         "SWD needs the same number of images in both sets; got 4 reals and 3 fakes"),
        ([np.zeros((4, 3, 32, 32), np.uint8)], [np.zeros((3, 3, 32, 32), np.uint8)],
         "SWD needs the same number of images in both sets; got 4 reals and 3 fakes"),
        (np.zeros((4, 3, 32, 32), np.float32), np.zeros((4, 3, 32, 32), np.uint8),
         "reals: expected uint8 images, got float32"),
        (np.zeros((4, 32, 32), np.uint8), np.zeros((4, 3, 32, 32), np.uint8),
         "reals: expected images of shape (N, C, H, W) with C 1 or 3, got shape (4, 32, 32)"),
        (np.zeros((4, 3, 32, 32), np.uint8), np.zeros((4, 2, 32, 32), np.uint8),
         "fakes: expected images of shape (N, C, H, W) with C 1 or 3, got shape (4, 2, 32, 32)"),
        (np.zeros((4, 3, 24, 24), np.uint8), np.zeros((4, 3, 24, 24), np.uint8),
         "reals: SWD needs square images whose size is a power of two of at least 16; got 24x24"),
        (np.zeros((4, 3, 32, 16), np.uint8), np.zeros((4, 3, 32, 16), np.uint8),
         "reals: SWD needs square images whose size is a power of two of at least 16; got 32x16"),
        (np.zeros((4, 3, 32, 32), np.uint8), np.zeros((4, 3, 16, 16), np.uint8),
         "SWD needs both sets at one size; got 32x32 reals and 16x16 fakes"),
        ([], [], "reals: no images given; SWD needs at least one per set"),
        ([np.zeros((4, 3, 32, 32), np.uint8)], [[0, 1]],
         "fakes: expected numpy arrays of uint8 images (N, C, H, W), got list"),
        ([np.zeros((2, 3, 32, 32), np.uint8), np.zeros((2, 3, 16, 16), np.uint8)], [],
         "reals: images of shape (3, 16, 16) after images of shape (3, 32, 32); "
         "all images of a set must have one shape"),
    ],
)
def test_bad_input_raises_clear_errors(reals, fakes, message):
    with pytest.raises(PgtoolsError) as info:
        sliced_wasserstein(reals, fakes)
    assert str(info.value) == message


def test_directions_projected_in_small_groups_give_the_same_distance(make_images, monkeypatch):
    # BLAS may round a projection differently by the number of directions multiplied at once (1 ulp
    # of float32, 1.2e-7 relative); gaps are about 1/100 of the projections: 1e-5 relative at most.
    a, b = make_images(16, 32, seed=14), make_images(16, 32, seed=15)
    whole = sliced_wasserstein(a, b)
    monkeypatch.setattr("pgtools.models.metrics.swd._PROJECTION_BYTES", 3 * 4 * 16 * 128)  # 3 directions
    grouped = sliced_wasserstein(a, b)
    assert grouped.levels == pytest.approx(whole.levels, rel=1e-5, abs=0)


def test_a_set_may_gather_some_levels_only(make_images):
    images = make_images(4, 64, seed=16)
    full, part = DescriptorSet(), DescriptorSet(levels=range(1, 2))
    full.add(images)
    part.add(images)
    assert part.resolutions == [32] and full.resolutions == [64, 32, 16]
    np.testing.assert_array_equal(np.concatenate(part.normalised_levels()[0]),
                                  np.concatenate(full.normalised_levels()[1]))


def test_level_groups_fit_the_memory_budget():
    per_level = 2 * 100 * 128 * 147 * 4  # both sets' descriptors of one level
    assert level_groups(128, 100, memory=2 * per_level) == [range(0, 2), range(2, 4)]
    assert level_groups(1024, 100, memory=1) == [range(i, i + 1) for i in range(7)]
    assert level_groups(128, 100, memory=10**12) == [range(0, 4)]
