"""create_celeba: the aligned CelebA images (as PNG), cropped to 128x128 around (cx, cy).

Reads ``DIR/img_align_celeba_png/*.png`` sorted by name and keeps rows cy-64 .. cy+63 and columns
cx-64 .. cx+63 of each, as the original did.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from pgtools.errors import PgtoolsError
from pgtools.sources import Source
from pgtools.sources.images import channels_first, check_alike, decode_files, list_files, load_pixels, scan_headers

PNG_FOLDER = "img_align_celeba_png"
JPG_FOLDER = "img_align_celeba"
SIDE = 128
OFFICIAL_COUNT = 202_599


def crop_image(path: Path, *, cx: int, cy: int, height: int, width: int) -> np.ndarray:
    """The 128x128 crop around (cx, cy) of one image, as uint8 (3, 128, 128)."""
    pixels = load_pixels(path)
    if pixels.shape != (height, width, 3):
        raise PgtoolsError(f"{path}: decoded to shape {pixels.shape}, expected ({height}, {width}, 3) "
                           f"(did the file change?)")
    half = SIDE // 2
    return channels_first(pixels[cy - half:cy + half, cx - half:cx + half])


def open_celeba(folder: str | os.PathLike, *, cx: int = 89, cy: int = 121, workers: int | None = None) -> Source:
    """CelebA as 128x128 RGB crops centred at column ``cx``, row ``cy`` of the aligned images."""
    folder = Path(folder)
    png_folder = folder / PNG_FOLDER
    if not png_folder.is_dir():
        hint = (f"; {folder / JPG_FOLDER} exists: convert its JPEGs to PNG into {PNG_FOLDER}/ first"
                if (folder / JPG_FOLDER).is_dir() else "")
        raise PgtoolsError(f"{png_folder}: no such folder (expected the aligned CelebA images as PNG){hint}")
    paths = list_files(png_folder, "*.png")
    if not paths:
        raise PgtoolsError(f"{png_folder}: no .png files found")
    headers = scan_headers(paths, workers=workers)
    first = headers[0]
    if first.channels != 3:
        raise PgtoolsError(f"{first.path} is {first.kind}; CelebA images must be RGB")
    half = SIDE // 2
    if not (half <= cx <= first.width - half and half <= cy <= first.height - half):
        raise PgtoolsError(
            f"--cx {cx} --cy {cy}: the 128x128 crop (rows {cy - half}..{cy + half - 1}, columns "
            f"{cx - half}..{cx + half - 1}) does not fit in {first.path.name} ({first.size}); "
            f"cx must be {half}..{first.width - half} and cy {half}..{first.height - half}"
        )
    check_alike(headers)
    crop = functools.partial(crop_image, cx=cx, cy=cy, height=first.height, width=first.width)
    attrs = {"source": str(folder.resolve()), "source_format": "celeba", "source_images": len(paths),
             "cx": cx, "cy": cy}
    return Source(resolution=SIDE, channels=3, count=len(paths),
                  batches=decode_files(paths, crop, resolution=SIDE, image_bytes=3 * SIDE * SIDE, workers=workers), attrs=attrs)
