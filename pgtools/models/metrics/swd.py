"""Sliced Wasserstein distance between the 7x7 patch distributions of two image sets (PGGAN paper).

Each image's Laplacian pyramid (full resolution down to 16x16) gives 128 random 7x7x3 patches per
level; each level's descriptors are normalised per colour channel within their set and compared
along 4 x 128 random unit directions by the mean gap between the sorted projections. Only the
descriptors are kept, so image sets stream through in batches; a set may gather only some levels
(``levels``), so that large comparisons can run a few levels per pass over the images
(``level_groups``) and keep memory bounded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from pgtools.errors import PgtoolsError
from pgtools.models.metrics.batches import Images, check_batch, cpu_workers, iter_batches

# 1-D factor of the 5x5 binomial kernel: outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.
_BINOMIAL = np.float32([1, 4, 6, 4, 1]) / 16

# SeedSequence spawn keys: patch centres and projection directions come from separate streams.
_CENTRES, _DIRECTIONS = 0, 1

_GROUP_PIXELS = 8 * 128 * 128  # pixels per pyramid task (8 images at 128x128, 1 from 512x512 up):
# small groups keep the float32 temporaries in cache, and small at 1024x1024
_BLOCK = 256  # images per stored descriptor block; fixed, so results never depend on batching
_PROJECTION_BYTES = 128 << 20  # per projection buffer: directions are projected in groups this big


@dataclass(frozen=True)
class SWDResult:
    """SWD of one comparison, in the paper's units (distance x 10^3)."""

    resolutions: list[int]  # pyramid level sizes, finest first (128 -> [128, 64, 32, 16])
    levels: list[float]  # distance x 1e3 per level, finest first
    average: float  # mean of ``levels``
    num_images: int  # images in each set


def format_swd(result: SWDResult) -> str:
    """The paper's format: per-level distances finest first, then their average (``3.42, ... / 8.15``)."""
    return ", ".join(f"{d:.2f}" for d in result.levels) + f" / {result.average:.2f}"


def _blur(x: np.ndarray, axis: int, gain: float = 1.0) -> np.ndarray:
    return ndimage.convolve1d(x, _BINOMIAL * np.float32(gain), axis=axis, mode="mirror")


def pyr_down(x: np.ndarray) -> np.ndarray:
    """Blur float32 (N, C, H, W) with the binomial kernel ('mirror' borders), keep every 2nd pixel."""
    x = _blur(x, 2)[:, :, ::2]
    return _blur(x, 3)[:, :, :, ::2]


def pyr_up(x: np.ndarray) -> np.ndarray:
    """Double float32 (N, C, H, W) by zero insertion, then blur with the binomial kernel x 4."""
    n, c, h, w = x.shape
    rows = np.zeros((n, c, 2 * h, w), np.float32)
    rows[:, :, ::2] = x
    rows = _blur(rows, 2, gain=2.0)
    out = np.zeros((n, c, 2 * h, 2 * w), np.float32)
    out[:, :, :, ::2] = rows
    return _blur(out, 3, gain=2.0)


def laplacian_pyramid(images: np.ndarray, min_resolution: int = 16, depth: int | None = None) -> list[np.ndarray]:
    """Levels of (N, C, S, S) images as float32, finest first, down to ``min_resolution``.

    Every level is the band-pass ``level - up(down(level))`` except the last, the low-pass image.
    With ``depth``, only the first ``depth`` levels are built (the same values as in the full pyramid).
    """
    levels = [images.astype(np.float32)]
    while levels[-1].shape[-1] > min_resolution and (depth is None or len(levels) <= depth):
        low = pyr_down(levels[-1])
        levels[-1] -= pyr_up(low)
        levels.append(low)
    return levels[:depth]


def num_levels(resolution: int, min_resolution: int = 16) -> int:
    """Pyramid levels from ``resolution`` down to ``min_resolution`` (128 -> 4, 1024 -> 7)."""
    return (resolution // min_resolution).bit_length()


def level_groups(
    resolution: int,  # image size
    count: int,  # images per set
    *,
    memory: int,  # bytes of descriptors (both sets) to hold at once
    nhood_size: int = 7,  # patch side in pixels
    nhoods_per_image: int = 128,  # patches per image and level
    min_resolution: int = 16,  # size of the coarsest level
) -> list[range]:
    """Pyramid levels to gather per pass over the images: as many as ``memory`` holds, at least one.

    Every level holds the same number of descriptors: 2 sets x ``count`` x 128 x 147 float32.
    """
    per_level = 2 * count * nhoods_per_image * 3 * nhood_size**2 * 4
    step = max(1, memory // per_level)
    total = num_levels(resolution, min_resolution)
    return [range(start, min(start + step, total)) for start in range(0, total, step)]


def patch_descriptors(level: np.ndarray, centres: np.ndarray, nhood_size: int = 7) -> np.ndarray:
    """Cut ``nhood_size``-square patches around ``centres`` and flatten them to descriptors.

    Args:
        level: float32 (n, C, S, S), C 1 (tiled to 3) or 3.
        centres: integer (n, P, 2) patch centres (y, x) per image, inside [k//2, S - k//2).
    Returns:
        float32 (n * P, 3 * k * k), image-major, each row channel-major like the patch.
    """
    n, per_image, _ = centres.shape
    half = nhood_size // 2
    windows = sliding_window_view(level, (nhood_size, nhood_size), axis=(2, 3))
    image = np.repeat(np.arange(n), per_image)
    corner = centres.reshape(-1, 2) - half
    patches = windows[image, :, corner[:, 0], corner[:, 1]]  # (n * P, C, k, k)
    if patches.shape[1] == 1:
        patches = np.repeat(patches, 3, axis=1)
    return patches.reshape(n * per_image, -1)


def image_keys(images: np.ndarray) -> list[int]:
    """A 64-bit digest of each image's pixels (grayscale counted as tiled RGB)."""
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    return [int.from_bytes(hashlib.blake2b(image.tobytes(), digest_size=8).digest(), "little") for image in images]


def _draw_centres(seed: int, keys: list[int], level: int, per_image: int, size: int, half: int) -> np.ndarray:
    # Uniform in [half, size - half), from a stream of the image's own content: the same image gets
    # the same patches wherever it stands in a set and however the set is batched, so SWD does not
    # depend on image order.
    draws = np.stack([_stream(seed, _CENTRES, level, key).random((per_image, 2)) for key in keys])
    return half + (draws * (size - 2 * half)).astype(np.intp)


def _stream(seed: int, kind: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(kind, *key)))


class DescriptorSet:
    """The patch descriptors of one image set, gathered batch by batch (images are not kept).

    Patch centres follow each image's content, and before any arithmetic across images the
    descriptors are put in a canonical order (by the images' content digests) in blocks of a fixed
    number of images. So the result depends only on the multiset of images, never on their order,
    on how they were batched or on the CPU and thread count: identical sets give SWD exactly 0.
    """

    def __init__(
        self,
        *,
        seed: int = 0,  # seeds the patch centres
        nhood_size: int = 7,  # patch side in pixels
        nhoods_per_image: int = 128,  # patches per image and level
        min_resolution: int = 16,  # size of the coarsest (low-pass) level
        levels: range | None = None,  # pyramid levels to gather (0 = finest) [default: all]
        name: str = "images",  # the set's name in error messages
    ) -> None:
        self.seed = seed
        self.nhood_size = nhood_size
        self.nhoods_per_image = nhoods_per_image
        self.min_resolution = min_resolution
        self.levels = levels
        self.name = name
        self.count = 0
        self.resolution: int | None = None
        self._keys: list[int] = []  # content digest of each image, in arrival order
        self._blocks: list[list[np.ndarray]] = []  # [level][block] -> float32 (rows, 3 * k * k)
        self._normalised = False

    @property
    def resolutions(self) -> list[int]:
        """Sizes of the gathered pyramid levels, finest first (empty before the first batch)."""
        return [self.resolution >> i for i in self.levels] if self.resolution else []

    def _start(self, shape: tuple[int, ...]) -> None:
        size = shape[-1]
        base = self.min_resolution
        if shape[-2] != size or size < base or size & (size - 1) or base & (base - 1):
            raise PgtoolsError(
                f"{self.name}: SWD needs square images whose size is a power of two of at least "
                f"{base}; got {shape[-2]}x{size}"
            )
        self.resolution = size
        every = range(num_levels(size, base))
        self.levels = every if self.levels is None else every[self.levels.start:self.levels.stop]
        self._blocks = [[] for _ in self.levels]

    def add(self, images: np.ndarray) -> None:
        """Gather the descriptors of a uint8 (n, C, S, S) batch, C 1 or 3."""
        if self._normalised:
            raise RuntimeError("DescriptorSet.add after normalised_levels()")
        check_batch(images, self.name)
        if self.resolution is None:
            self._start(images.shape)
        elif images.shape[-2:] != (self.resolution, self.resolution):
            raise PgtoolsError(
                f"{self.name}: images of {images.shape[-2]}x{images.shape[-1]} after "
                f"{self.resolution}x{self.resolution} ones; all images of a set must have one size"
            )
        # Pyramids and patches are built for small groups of images (cache-sized temporaries) in
        # threads: scipy.ndimage and numpy release the GIL.
        n = len(images)
        half = self.nhood_size // 2
        keys = image_keys(images)
        self._keys += keys
        centres = [
            _draw_centres(self.seed, keys, level, self.nhoods_per_image, size, half)
            for level, size in zip(self.levels, self.resolutions)
        ]

        def describe(part: slice) -> list[np.ndarray]:
            pyramid = laplacian_pyramid(images[part], self.min_resolution, self.levels.stop)
            wanted = pyramid[self.levels.start:]
            return [patch_descriptors(lv, c[part], self.nhood_size) for lv, c in zip(wanted, centres)]

        group = max(1, _GROUP_PIXELS // self.resolution**2)
        parts = [slice(start, start + group) for start in range(0, n, group)]
        with ThreadPoolExecutor(max(1, min(cpu_workers(), len(parts)))) as pool:
            for part, group in zip(parts, pool.map(describe, parts)):
                for blocks, rows in zip(self._blocks, group):
                    self._store(blocks, rows)
                self.count += len(images[part])

    def _store(self, blocks: list[np.ndarray], rows: np.ndarray) -> None:
        # Append one level's descriptors of the next images after self.count images.
        block_rows = _BLOCK * self.nhoods_per_image
        filled = self.count * self.nhoods_per_image % block_rows
        start = 0
        while start < len(rows):
            if filled == 0:
                blocks.append(np.empty((block_rows, rows.shape[1]), np.float32))
            take = min(block_rows - filled, len(rows) - start)
            blocks[-1][filled : filled + take] = rows[start : start + take]
            start += take
            filled = (filled + take) % block_rows

    def normalised_levels(self) -> list[list[np.ndarray]]:
        """Per level, the descriptor blocks in canonical order, normalised per colour channel to
        mean 0 and std 1.

        The first call reorders, trims and normalises in place; no images can be added afterwards.
        """
        if not self._normalised:
            order = np.argsort(np.array(self._keys, np.uint64), kind="stable")
            used = self.count * self.nhoods_per_image % (_BLOCK * self.nhoods_per_image)
            for blocks in self._blocks:
                _permute_images(blocks, order, self.nhoods_per_image)
                if used:
                    blocks[-1] = blocks[-1][:used]
                _normalise(blocks)
            self._normalised = True
        return self._blocks


def _permute_images(blocks: list[np.ndarray], order: np.ndarray, rows: int) -> None:
    # In place, image i's rows become those of image order[i] (cycle by cycle, one image's rows of
    # extra memory), so identical multisets of images give bit-identical blocks.
    per_block = len(blocks[0]) // rows

    def image(i: int) -> np.ndarray:
        start = i % per_block * rows
        return blocks[i // per_block][start : start + rows]

    done = np.zeros(len(order), bool)
    for first in range(len(order)):
        if done[first] or order[first] == first:
            continue
        saved = image(first).copy()
        i = first
        while order[i] != first:
            image(i)[:] = image(order[i])
            done[i] = True
            i = order[i]
        image(i)[:] = saved
        done[i] = True


def _normalise(chunks: list[np.ndarray]) -> None:
    views = [chunk.reshape(len(chunk), 3, -1) for chunk in chunks]
    values = sum(v.shape[0] * v.shape[2] for v in views)
    mean = sum(v.sum(axis=(0, 2), dtype=np.float64) for v in views) / values
    for v in views:
        v -= mean.astype(np.float32)[:, None]
    var = sum(np.square(v).sum(axis=(0, 2), dtype=np.float64) for v in views) / values
    std = np.sqrt(var)
    std[std == 0] = 1.0  # a constant channel (e.g. flat images) stays at 0 instead of NaN
    for v in views:
        v /= std.astype(np.float32)[:, None]


def _sort_rows(x: np.ndarray) -> None:
    # np.sort releases the GIL, so rows split across threads sort in parallel.
    workers = max(1, min(cpu_workers(), len(x)))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda part: part.sort(axis=1), np.array_split(x, workers)))


def _project_sorted(chunks: list[np.ndarray], directions: np.ndarray, out: np.ndarray) -> None:
    # out (directions, descriptors): each row the sorted projections onto one direction.
    start = 0
    for chunk in chunks:
        np.matmul(directions, chunk.T, out=out[:, start : start + len(chunk)])
        start += len(chunk)
    _sort_rows(out)


def sliced_distance(
    a: np.ndarray | list[np.ndarray],  # (n, dim) descriptors, or a list of row chunks
    b: np.ndarray | list[np.ndarray],  # the other set: as many rows as ``a``
    *,
    rng: np.random.Generator,  # draws the directions
    dirs_per_repeat: int = 128,  # random unit directions per repeat
    dir_repeats: int = 4,  # repeats averaged
) -> float:
    """Sliced 1-D Wasserstein distance: mean |sorted(a.d) - sorted(b.d)| over rows and directions d.

    Directions are projected in groups that keep each of the two buffers under 128 MiB.
    """
    a_chunks = [a] if isinstance(a, np.ndarray) else a
    b_chunks = [b] if isinstance(b, np.ndarray) else b
    dim = a_chunks[0].shape[1]
    rows = sum(len(chunk) for chunk in a_chunks)
    group = max(1, min(dirs_per_repeat, _PROJECTION_BYTES // (4 * rows)))
    # Two buffers serve every group: fresh ones would page-fault gigabytes at 8k images.
    gaps = np.empty((group, rows), np.float32)
    other = np.empty_like(gaps)
    total = 0.0
    for _ in range(dir_repeats):
        directions = rng.standard_normal((dirs_per_repeat, dim))
        directions /= np.sqrt(np.square(directions).sum(axis=1, keepdims=True))
        directions = directions.astype(np.float32)
        repeat = 0.0
        for start in range(0, dirs_per_repeat, group):
            part = directions[start : start + group]
            mine, theirs = gaps[: len(part)], other[: len(part)]
            _project_sorted(a_chunks, part, mine)
            _project_sorted(b_chunks, part, theirs)
            np.subtract(mine, theirs, out=mine)
            repeat += float(np.abs(mine, out=mine).sum(dtype=np.float64))
        total += repeat / (dirs_per_repeat * rows)
    return total / dir_repeats


def level_distances(reals: DescriptorSet, fakes: DescriptorSet, *, seed: int = 0, **directions: int) -> list[float]:
    """SWD x 10^3 of each gathered level (normalises both sets in place); ``directions``:
    ``dirs_per_repeat`` and ``dir_repeats`` for :func:`sliced_distance`."""
    for s in (reals, fakes):
        if s.count == 0:
            raise PgtoolsError(f"{s.name}: no images given; SWD needs at least one per set")
    if reals.count != fakes.count:
        raise PgtoolsError(
            f"SWD needs the same number of images in both sets; got {reals.count} {reals.name} "
            f"and {fakes.count} {fakes.name}"
        )
    if reals.resolutions != fakes.resolutions:
        raise PgtoolsError(
            f"SWD needs both sets at one size; got {reals.resolution}x{reals.resolution} "
            f"{reals.name} and {fakes.resolution}x{fakes.resolution} {fakes.name}"
        )
    pairs = zip(reals.levels, reals.normalised_levels(), fakes.normalised_levels())
    return [1e3 * sliced_distance(a, b, rng=_stream(seed, _DIRECTIONS, level), **directions) for level, a, b in pairs]


def compare_descriptor_sets(
    reals: DescriptorSet,
    fakes: DescriptorSet,
    *,
    seed: int = 0,  # seeds the projection directions
    dirs_per_repeat: int = 128,  # random unit directions per repeat
    dir_repeats: int = 4,  # repeats averaged
) -> SWDResult:
    """SWD between two sets that gathered every level (normalises both in place)."""
    levels = level_distances(reals, fakes, seed=seed, dirs_per_repeat=dirs_per_repeat, dir_repeats=dir_repeats)
    return SWDResult(reals.resolutions, levels, float(np.mean(levels)), reals.count)


def sliced_wasserstein(
    reals: Images,  # uint8 (N, C, S, S) array or iterable of such batches; C 1 (tiled) or 3
    fakes: Images,  # the same, with as many images as ``reals``
    *,
    seed: int = 0,  # seeds patch centres and directions
    nhood_size: int = 7,  # patch side in pixels
    nhoods_per_image: int = 128,  # patches per image and level
    dirs_per_repeat: int = 128,  # random unit directions per repeat
    dir_repeats: int = 4,  # repeats averaged
    min_resolution: int = 16,  # size of the coarsest (low-pass) level
    progress: Callable[[int], None] | None = None,  # called with the images just processed
) -> SWDResult:
    """SWD between two image sets, per pyramid level (x 10^3, finest first) and averaged."""
    if isinstance(reals, np.ndarray) and isinstance(fakes, np.ndarray) and len(reals) != len(fakes):
        raise PgtoolsError(
            "SWD needs the same number of images in both sets; "
            f"got {len(reals)} reals and {len(fakes)} fakes"
        )
    sets = []
    for name, images in (("reals", reals), ("fakes", fakes)):
        descriptors = DescriptorSet(
            seed=seed,
            nhood_size=nhood_size,
            nhoods_per_image=nhoods_per_image,
            min_resolution=min_resolution,
            name=name,
        )
        for batch in iter_batches(images, name):
            descriptors.add(batch)
            if progress is not None:
                progress(len(batch))
        sets.append(descriptors)
    return compare_descriptor_sets(
        *sets, seed=seed, dirs_per_repeat=dirs_per_repeat, dir_repeats=dir_repeats
    )
