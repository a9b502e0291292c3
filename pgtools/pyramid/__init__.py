"""The multi-resolution HDF5 pyramid: the one file format shared by dataset tools and the trainer.

A pyramid of resolution R = 2^k holds uint8 datasets ``data{r}x{r}`` of shape (N, C, r, r) for
r = R, R/2, ..., 1, images in the same order in every level (the layout of NVIDIA's h5tool).

The format's names and constants load at once; the reader, writer and level arithmetic (h5py,
numpy) on first use, so that ``pgtools --help`` stays light.
"""

import importlib

from pgtools.pyramid.format import (
    BLOCK_BYTES,
    CHUNK_BYTES,
    COMPAT_COMPRESSION,
    COMPRESSED_CHUNK_BYTES,
    COMPRESSIONS,
    DEFAULT_COMPRESSION,
    images_per_chunk,
    is_power_of_two,
    labels_path,
    level_name,
    level_resolutions,
    parse_compression,
    partial_path,
)

_LAZY = {"halve": "levels", "lod_levels": "levels", "quantize": "levels", "Pyramid": "reader",
         "PyramidWriter": "writer", "write_pyramid": "writer"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)

__all__ = [
    "BLOCK_BYTES", "CHUNK_BYTES", "COMPAT_COMPRESSION", "COMPRESSED_CHUNK_BYTES", "COMPRESSIONS", "DEFAULT_COMPRESSION", "Pyramid", "PyramidWriter", "halve",
    "images_per_chunk", "is_power_of_two", "labels_path", "level_name", "level_resolutions", "lod_levels",
    "parse_compression", "partial_path", "quantize", "write_pyramid",
]
