"""Level-of-detail arithmetic exactly as the original h5tool computed it."""

from __future__ import annotations

import numpy as np

from pgtools.pyramid.format import is_power_of_two, level_resolutions


def halve(images: np.ndarray) -> np.ndarray:
    """Replace each 2x2 block by its float32 mean, summed top-left, top-right, bottom-left, bottom-right."""
    x = images.astype(np.float32, copy=False)
    return (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) * np.float32(0.25)


def quantize(values: np.ndarray) -> np.ndarray:
    """Store a float level as uint8: round half to even, clip to [0, 255]."""
    if values.dtype == np.uint8:
        return values
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def lod_levels(images: np.ndarray, resolution: int) -> dict[int, np.ndarray]:
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
    levels = {}
    current = images
    for r in reversed(level_resolutions(resolution)):
        while current.shape[-1] > r:
            current = halve(current)
        levels[r] = quantize(current)
    return levels
