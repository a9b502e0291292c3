"""Shared image makers for the metric tests."""

from collections.abc import Callable

import numpy as np
import pytest
from scipy import ndimage


def structured(count: int, size: int, seed: int, channels: int = 3) -> np.ndarray:
    """uint8 (count, channels, size, size): smooth colour fields plus pixel noise, never constant."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(count, channels, size // 4, size // 4))
    fields = ndimage.zoom(coarse, (1, 1, 4, 4), order=1)
    fine = rng.normal(size=(count, channels, size, size))
    return np.clip(np.round(128 + 50 * fields + 20 * fine), 0, 255).astype(np.uint8)


@pytest.fixture
def make_images() -> Callable[..., np.ndarray]:
    """The ``structured`` image maker."""
    return structured
