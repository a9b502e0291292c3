"""Raw dataset formats, one module each; every ``open_*`` function returns a :class:`Source`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import numpy as np

    from pgtools.pyramid.levels import Levels


@dataclass
class Source:
    """Images ready for the pyramid writer, produced lazily in dataset order."""

    resolution: int  # R, a power of two: the pyramid's top level
    channels: int  # 1 or 3
    count: int | None  # images that will be produced; None when not known up front
    batches: Iterator[np.ndarray | Levels]  # uint8 (n, C, S, S) with S >= R a power of two, or their levels
    labels: np.ndarray | None = None  # one-hot float32 (count, classes)
    attrs: dict = field(default_factory=dict)  # metadata stored in the file (source path, counts)
