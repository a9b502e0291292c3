"""CelebA-HQ: rebuild the 1024x1024 faces from CelebA and the published deltas, bit-exactly.

``open_celeba_hq`` gives a :class:`~pgtools.sources.Source` for the pyramid writer;
``CelebAHQBuilder`` is the same pipeline with explicit check, resume and counts;
``create_deltas`` makes deltas of the published format for new targets.
The file format is described in ``deltas/README.md`` at the repository root.
"""

from pgtools.sources.celeba_hq.build import BuildStats, CelebAHQBuilder, open_celeba_hq
from pgtools.sources.celeba_hq.create_deltas import create_deltas, read_pairs

__all__ = ["BuildStats", "CelebAHQBuilder", "create_deltas", "open_celeba_hq", "read_pairs"]
