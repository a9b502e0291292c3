"""Level-of-detail arithmetic exactly as the original h5tool computed it.

The original averages 2x2 blocks in float32, level after level, and rounds half to even. Up to
EXACT_HALVINGS halvings those float32 means are exact: a level k halvings down holds S / 4**k with S
the integer sum of 4**k pixels, and every partial sum fits float32's 24-bit significand. So
:func:`lod_levels` sums integers there (much faster, no float temporaries) and rounds S / 4**k half
to even with integer operations, which gives the same bytes; deeper levels continue in float32.
"""

from __future__ import annotations

import numpy as np

from pgtools.pyramid.format import is_power_of_two, level_resolutions

Levels = dict[int, np.ndarray]  # {r: uint8 (N, C, r, r)} for r = R, R/2, ..., 1
EXACT_HALVINGS = 8  # 255 * 4**8 < 2**24: every sum of 4**8 uint8 values is exact in float32


def halve(images: np.ndarray) -> np.ndarray:
    """Replace each 2x2 block by its float32 mean, summed top-left, top-right, bottom-left, bottom-right."""
    x = images.astype(np.float32, copy=False)
    return (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) * np.float32(0.25)


def quantize(values: np.ndarray) -> np.ndarray:
    """Store a float level as uint8: round half to even, clip to [0, 255]."""
    if values.dtype == np.uint8:
        return values
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def _block_sums(sums: np.ndarray, halvings: int) -> np.ndarray:
    """Sums of 2x2 blocks of ``sums`` (which are sums of 4**(halvings-1) pixels), in a dtype that holds them."""
    dtype = np.uint16 if 255 * 4**halvings <= np.iinfo(np.uint16).max else np.uint32
    rows = np.add(sums[..., 0::2, :], sums[..., 1::2, :], dtype=dtype)
    return np.add(rows[..., 0::2], rows[..., 1::2])


def _rounded_mean(sums: np.ndarray, halvings: int) -> np.ndarray:
    """uint8 of sums / 4**halvings rounded half to even: add just under a half, plus one when the quotient is odd."""
    if halvings == 0:
        return sums
    shift = 2 * halvings
    return ((sums + ((1 << (shift - 1)) - 1) + ((sums >> shift) & 1)) >> shift).astype(np.uint8)


def lod_levels(images: np.ndarray, resolution: int) -> Levels:
    """Every level of a batch, as the original computed them.

    Args:
        images: uint8 (N, C, S, S) with S >= resolution, S a power of two.
        resolution: the pyramid's top level R.
    Returns:
        {r: uint8 (N, C, r, r)} for r = R, R/2, ..., 1. Each level is computed from the previous
        level's float32 values, never from its rounded uint8.
    """
    side = images.shape[-1]
    if images.ndim != 4 or images.shape[-2] != side or not is_power_of_two(side) or side < resolution:
        raise ValueError(f"expected (N, C, S, S) images with S a power of two >= {resolution}, got {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    levels = {}
    sums, halvings, means = images, 0, None  # integer sums while exact, then float32 means
    for r in reversed(level_resolutions(resolution)):
        while side > r:
            if halvings < EXACT_HALVINGS:
                halvings += 1
                sums = _block_sums(sums, halvings)
            else:
                means = halve(sums.astype(np.float32) * np.float32(0.25**halvings) if means is None else means)
            side //= 2
        levels[r] = _rounded_mean(sums, halvings) if means is None else quantize(means)
    return levels
