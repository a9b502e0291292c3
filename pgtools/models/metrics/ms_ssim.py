"""Multi-scale SSIM between consecutive image pairs (0-1, 2-3, ...), the PGGAN paper's variation metric.

Standard parameters: max value 255, k1 0.01, k2 0.03, 11x11 Gaussian window with sigma 1.5 and
'valid' filtering (smaller images shrink the window to their size and sigma in proportion), 5
scales with 2x2 box downsampling, negative values clipped to 0. A pair's value is the product of
cs^w over the first four scales times ssim^w at the last; a set's value is the mean over pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

from pgtools.errors import PgtoolsError
from pgtools.models.metrics.batches import Images, check_batch, cpu_workers, iter_batches

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # per scale, finest first
MAX_VALUE = 255.0
K1, K2 = 0.01, 0.03
FILTER_SIZE, FILTER_SIGMA = 11, 1.5
# float64 (E[x^2] - E[x]^2 of 0-255 values loses digits in float32); a few pairs per step keep
# the temporaries in cache; steps run in threads (scipy.ndimage and numpy release the GIL).
_PAIRS_PER_STEP = 4


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """1-D factor (sums to 1) of the ``size`` x ``size`` Gaussian window, centred between pixels if even."""
    offsets = np.arange(size) - (size - 1) / 2
    window = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return window / window.sum()


def _filter_valid(x: np.ndarray, size: int) -> np.ndarray:
    # Separable Gaussian over the last two axes of (..., H, W), 'valid' (no padding): filter with
    # any border mode, then keep the outputs whose window lies inside the image.
    window = gaussian_window(size, size * FILTER_SIGMA / FILTER_SIZE)
    first = size // 2  # correlate1d puts window tap size // 2 on the output pixel
    h, w = x.shape[-2] - size + 1, x.shape[-1] - size + 1
    x = ndimage.correlate1d(x, window, axis=-1)[..., first : first + w]
    return ndimage.correlate1d(x, window, axis=-2)[..., first : first + h, :]


def _ssim_and_cs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Per pair: mean SSIM and mean contrast-structure term over channels and valid positions.
    # In-place arithmetic keeps the temporaries few; identical inputs still give exactly 1.
    moments = np.empty((5, *a.shape))
    moments[0], moments[1] = a, b
    np.multiply(a, a, out=moments[2])
    np.multiply(b, b, out=moments[3])
    np.multiply(a, b, out=moments[4])
    mu_a, mu_b, aa, bb, ab = _filter_valid(moments, min(FILTER_SIZE, *a.shape[-2:]))
    c1 = (K1 * MAX_VALUE) ** 2
    c2 = (K2 * MAX_VALUE) ** 2
    mu_ab = mu_a * mu_b
    mu_aa, mu_bb = np.square(mu_a, out=mu_a), np.square(mu_b, out=mu_b)
    ab -= mu_ab  # covariance
    ab *= 2.0
    ab += c2
    aa -= mu_aa  # variances
    bb -= mu_bb
    aa += bb
    aa += c2
    cs = np.divide(ab, aa, out=ab)
    mu_ab *= 2.0
    mu_ab += c1
    mu_aa += mu_bb
    mu_aa += c1
    ssim = np.divide(mu_ab, mu_aa, out=mu_ab)
    ssim *= cs
    return ssim.mean(axis=(1, 2, 3)), cs.mean(axis=(1, 2, 3))


def _box_down(x: np.ndarray) -> np.ndarray:
    # 2x2 mean; an odd last row or column is dropped.
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]) * 0.25


def ms_ssim_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MS-SSIM of each pair (a[i], b[i]) of uint8 (N, C, H, W) images, C 1 or 3, H and W >= 16.

    Returns float64 (N,). Grayscale needs no tiling: the mean over three equal channels is the same.
    """
    check_batch(a, "images")
    check_batch(b, "images")
    if a.shape != b.shape:
        raise PgtoolsError(f"MS-SSIM pairs need images of one shape; got {a.shape} and {b.shape}")
    smallest = 2 ** (len(WEIGHTS) - 1)
    if min(a.shape[-2:]) < smallest:
        raise PgtoolsError(
            f"MS-SSIM needs images of at least {smallest}x{smallest} for {len(WEIGHTS)} scales; "
            f"got {a.shape[-2]}x{a.shape[-1]}"
        )
    steps = [slice(start, start + _PAIRS_PER_STEP) for start in range(0, len(a), _PAIRS_PER_STEP)]
    with ThreadPoolExecutor(max(1, min(cpu_workers(), len(steps)))) as pool:
        blocks = list(pool.map(lambda step: _ms_ssim_block(a[step], b[step]), steps))
    return np.concatenate(blocks) if blocks else np.zeros(0)


def _ms_ssim_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x, y = a.astype(np.float64), b.astype(np.float64)
    ssims, css = [], []
    for scale in range(len(WEIGHTS)):
        if scale:
            x, y = _box_down(x), _box_down(y)
        ssim, cs = _ssim_and_cs(x, y)
        ssims.append(ssim)
        css.append(cs)
    weights = np.array(WEIGHTS)[:, None]
    ssim = np.clip(np.array(ssims), 0.0, None)
    cs = np.clip(np.array(css), 0.0, None)
    return np.prod(cs[:-1] ** weights[:-1], axis=0) * ssim[-1] ** weights[-1]


class PairedMSSSIM:
    """Mean MS-SSIM over consecutive pairs (0-1, 2-3, ...) of a stream of same-shape batches.

    A batch may end in the middle of a pair; its last image waits for the next batch.
    """

    def __init__(self, name: str = "images") -> None:
        self.name = name  # the set's name in error messages
        self.pairs = 0
        self.total = 0.0
        self._waiting: np.ndarray | None = None

    def add(self, images: np.ndarray) -> None:
        """Pair up a uint8 (n, C, H, W) batch after any image left over from the previous one."""
        check_batch(images, self.name)
        if self._waiting is not None:
            images = np.concatenate([self._waiting, images])
        even = len(images) // 2 * 2
        self._waiting = images[even:].copy() if even < len(images) else None
        if even:
            values = ms_ssim_pairs(images[0:even:2], images[1:even:2])
            self.total += float(values.sum())
            self.pairs += len(values)

    def value(self) -> float:
        """Mean over all pairs; PgtoolsError if the count was odd or zero."""
        if self._waiting is not None:
            raise PgtoolsError(
                f"{self.name}: MS-SSIM pairs consecutive images and needs an even count; "
                f"got {2 * self.pairs + 1}"
            )
        if self.pairs == 0:
            raise PgtoolsError(f"{self.name}: no images given; MS-SSIM needs at least one pair")
        return self.total / self.pairs


def ms_ssim(
    images: Images,  # uint8 (N, C, H, W) array or iterable of such batches, N even
    *,
    progress: Callable[[int], None] | None = None,  # called with the images just processed
) -> float:
    """Mean MS-SSIM of consecutive pairs 0-1, 2-3, ... (lower means more variation)."""
    pairs = PairedMSSSIM("images")
    for batch in iter_batches(images, "images"):
        pairs.add(batch)
        if progress is not None:
            progress(len(batch))
    return pairs.value()
