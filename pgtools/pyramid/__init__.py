"""The multi-resolution HDF5 pyramid: the one file format shared by dataset tools and the trainer.

A pyramid of resolution R = 2^k holds uint8 datasets ``data{r}x{r}`` of shape (N, C, r, r) for
r = R, R/2, ..., 1, images in the same order in every level (the layout of NVIDIA's h5tool).
"""

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
from pgtools.pyramid.levels import halve, lod_levels, quantize
from pgtools.pyramid.reader import Pyramid
from pgtools.pyramid.writer import PyramidWriter, write_pyramid

__all__ = [
    "BLOCK_BYTES", "CHUNK_BYTES", "COMPAT_COMPRESSION", "COMPRESSED_CHUNK_BYTES", "COMPRESSIONS", "DEFAULT_COMPRESSION", "Pyramid", "PyramidWriter", "halve",
    "images_per_chunk", "is_power_of_two", "labels_path", "level_name", "level_resolutions", "lod_levels",
    "parse_compression", "partial_path", "quantize", "write_pyramid",
]
