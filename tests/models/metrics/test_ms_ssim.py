"""MS-SSIM against a plain loop implementation and hand-worked values, then pairing and errors."""

import numpy as np
import pytest

from pgtools.errors import PgtoolsError
from pgtools.models.metrics.ms_ssim import PairedMSSSIM, gaussian_window, ms_ssim, ms_ssim_pairs

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def loop_ssim_and_cs(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """One scale of SSIM for one (C, H, W) float64 pair, written out position by position."""
    _, h, w = a.shape
    size = min(11, h, w)
    sigma = size * 1.5 / 11
    centre = (size - 1) / 2
    window = np.array(
        [[np.exp(-((i - centre) ** 2 + (j - centre) ** 2) / (2 * sigma**2)) for j in range(size)]
         for i in range(size)]
    )
    window /= window.sum()
    ssims, css = [], []
    for c in range(a.shape[0]):
        for y in range(h - size + 1):
            for x in range(w - size + 1):
                pa, pb = a[c, y : y + size, x : x + size], b[c, y : y + size, x : x + size]
                mu_a, mu_b = (window * pa).sum(), (window * pb).sum()
                var_a = (window * pa * pa).sum() - mu_a**2
                var_b = (window * pb * pb).sum() - mu_b**2
                cov = (window * pa * pb).sum() - mu_a * mu_b
                cs = (2 * cov + C2) / (var_a + var_b + C2)
                css.append(cs)
                ssims.append(cs * (2 * mu_a * mu_b + C1) / (mu_a**2 + mu_b**2 + C1))
    return float(np.mean(ssims)), float(np.mean(css))


def loop_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a.astype(np.float64), b.astype(np.float64)
    css = []
    for scale in range(5):
        ssim, cs = loop_ssim_and_cs(x, y)
        css.append(max(cs, 0.0))
        h, w = x.shape[1] // 2, x.shape[2] // 2
        x = np.array([[[x[c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean() for j in range(w)]
                       for i in range(h)] for c in range(x.shape[0])])
        y = np.array([[[y[c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean() for j in range(w)]
                       for i in range(h)] for c in range(y.shape[0])])
    return float(np.prod([cs**wt for cs, wt in zip(css[:4], WEIGHTS[:4])]) * max(ssim, 0.0) ** WEIGHTS[4])


def test_gaussian_window_odd_and_even_sizes():
    g = np.exp(-np.array([4.0, 1.0, 0.0, 1.0, 4.0]) / (2 * 1.5**2))
    np.testing.assert_allclose(gaussian_window(5, 1.5), g / g.sum(), rtol=1e-15)
    g = np.exp(-np.array([2.25, 0.25, 0.25, 2.25]) / (2 * 0.5**2))
    np.testing.assert_allclose(gaussian_window(4, 0.5), g / g.sum(), rtol=1e-15)


@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 24, 16), (3, 32, 32)])
def test_ms_ssim_matches_a_plain_loop(shape):
    # 16x16 exercises the shrinking window (8, 4, 2 and 1 pixels at scales 2 to 5).
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.repeat(rng.integers(0, 256, (2, shape[0], shape[1] // 4, shape[2] // 4)), 4, 2), 4, 3)
    noise = rng.integers(-30, 31, smooth.shape)
    images = np.clip(smooth + noise, 0, 255).astype(np.uint8)
    got = ms_ssim_pairs(images[:1], images[1:])
    assert got.shape == (1,) and got.dtype == np.float64
    assert got[0] == pytest.approx(loop_ms_ssim(images[0], images[1]), rel=1e-10)


def test_constant_images_give_the_luminance_term_only():
    # Zero variance everywhere: cs = 1 at every scale, so MS-SSIM = ssim_last ** w5.
    a = np.full((1, 3, 16, 16), 100, np.uint8)
    b = np.full((1, 3, 16, 16), 150, np.uint8)
    expected = ((2 * 100 * 150 + C1) / (100**2 + 150**2 + C1)) ** 0.1333
    assert ms_ssim_pairs(a, b)[0] == pytest.approx(expected, rel=1e-12)


def test_identical_pairs_give_exactly_one(make_images):
    images = np.repeat(make_images(4, 32, seed=0), 2, axis=0)
    assert ms_ssim(images) == 1.0


def test_anticorrelated_pairs_are_clipped_to_zero():
    checker = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)
    pair = np.stack([checker, 255 - checker])[:, None]
    assert ms_ssim_pairs(pair[:1], pair[1:])[0] == 0.0


def test_pairs_are_consecutive_images(make_images):
    a, b, c = make_images(3, 32, seed=1)
    images = np.stack([a, a, b, c])
    expected = (1.0 + ms_ssim_pairs(b[None], c[None])[0]) / 2
    assert ms_ssim(images) == pytest.approx(expected, rel=1e-15)


def test_streaming_in_odd_batches_matches_one_array(make_images):
    images = make_images(10, 32, seed=2)
    whole = ms_ssim(images)
    assert whole == pytest.approx(ms_ssim_pairs(images[0::2], images[1::2]).mean(), rel=1e-14)
    seen = []
    streamed = ms_ssim(iter([images[:3], images[3:8], images[8:]]), progress=seen.append)
    assert streamed == pytest.approx(whole, rel=1e-14) and seen == [3, 5, 2]


def test_grayscale_equals_tiled_rgb(make_images):
    gray = make_images(4, 16, seed=3, channels=1)
    assert ms_ssim(gray) == pytest.approx(ms_ssim(np.repeat(gray, 3, axis=1)), rel=1e-14)


def test_near_duplicates_score_higher_than_independent_images(make_images):
    base = make_images(4, 32, seed=4)
    noisy = np.clip(base.astype(int) + np.random.default_rng(5).integers(-10, 11, base.shape), 0, 255)
    duplicates = np.stack([base, noisy.astype(np.uint8)], axis=1).reshape(8, 3, 32, 32)
    assert ms_ssim(duplicates) > 0.9
    assert ms_ssim(make_images(8, 32, seed=6)) < 0.3


def test_paired_accumulator_waits_for_the_second_image(make_images):
    images = make_images(2, 16, seed=7)
    pairs = PairedMSSSIM("fakes")
    pairs.add(images[:1])
    assert pairs.pairs == 0
    with pytest.raises(PgtoolsError) as info:
        pairs.value()
    assert str(info.value) == "fakes: MS-SSIM pairs consecutive images and needs an even count; got 1"
    pairs.add(images[1:])
    assert pairs.value() == pytest.approx(ms_ssim_pairs(images[:1], images[1:])[0], rel=1e-15)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((3, 3, 16, 16), np.uint8),
         "images: MS-SSIM pairs consecutive images and needs an even count; got 3"),
        (np.zeros((2, 3, 8, 8), np.uint8), "MS-SSIM needs images of at least 16x16 for 5 scales; got 8x8"),
        (np.zeros((2, 3, 16, 16), np.int16), "images: expected uint8 images, got int16"),
        (np.zeros((2, 4, 16, 16), np.uint8),
         "images: expected images of shape (N, C, H, W) with C 1 or 3, got shape (2, 4, 16, 16)"),
        ([], "images: no images given; MS-SSIM needs at least one pair"),
        ([np.zeros((1, 3, 16, 16), np.uint8), np.zeros((1, 3, 32, 32), np.uint8)],
         "images: images of shape (3, 32, 32) after images of shape (3, 16, 16); "
         "all images of a set must have one shape"),
    ],
)
def test_bad_input_raises_clear_errors(images, message):
    with pytest.raises(PgtoolsError) as info:
        ms_ssim(images)
    assert str(info.value) == message


def test_pairs_of_different_shapes_are_refused():
    with pytest.raises(PgtoolsError) as info:
        ms_ssim_pairs(np.zeros((1, 3, 16, 16), np.uint8), np.zeros((1, 1, 16, 16), np.uint8))
    assert str(info.value) == (
        "MS-SSIM pairs need images of one shape; got (1, 3, 16, 16) and (1, 1, 16, 16)"
    )
