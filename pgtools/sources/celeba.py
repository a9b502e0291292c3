"""create_celeba: the aligned CelebA images, cropped to 128x128 around (cx, cy).

Reads ``DIR/img_align_celeba_png/*.png`` (the original's input: the JPEGs converted to PNG) or, when
that folder is missing, the official ``DIR/img_align_celeba/*.jpg`` directly, sorted by name, and
keeps rows cy-64 .. cy+63 and columns cx-64 .. cx+63 of each, as the original did. The JPEGs give
the pixels Pillow decodes: those of a PNG conversion made with Pillow (another converter's JPEG
decoder may differ by a level here and there).
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


def _image_folder(folder: Path) -> tuple[Path, str]:
    """img_align_celeba_png/ (the original's PNG conversion) if present, else the official JPEGs; and
    the suffix of their files."""
    for name, suffix in ((PNG_FOLDER, ".png"), (JPG_FOLDER, ".jpg")):
        if (folder / name).is_dir():
            return folder / name, suffix
    raise PgtoolsError(f"{folder}: neither {PNG_FOLDER}/ nor {JPG_FOLDER}/ is there (expected the aligned CelebA "
                       f"images, as PNG or as the official JPEGs)")


def open_celeba(folder: str | os.PathLike, *, cx: int = 89, cy: int = 121, workers: int | None = None) -> Source:
    """CelebA as 128x128 RGB crops centred at column ``cx``, row ``cy`` of the aligned images."""
    folder = Path(folder)
    images, suffix = _image_folder(folder)
    paths = list_files(images, f"*{suffix}")
    if not paths:
        raise PgtoolsError(f"{images}: no {suffix} files found")
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
             "cx": cx, "cy": cy, "celeba_images": images.name}
    return Source(resolution=SIDE, channels=3, count=len(paths),
                  batches=decode_files(paths, crop, resolution=SIDE, image_bytes=3 * SIDE * SIDE, workers=workers), attrs=attrs)
