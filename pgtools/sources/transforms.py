"""Making an image of any size R x R, as StyleGAN2-ADA's dataset_tool.py ``--transform`` does.

Every function takes uint8 (H, W) or (H, W, 3) pixels and returns the same kind at R x R, resized
with Pillow's LANCZOS:

- ``center-crop``: the central square of side min(H, W), from row (H - s) // 2 and column
  (W - s) // 2, resized to R x R (what create_lsun has always done).
- ``center-crop-wide``: the central 2:1 box (full width, or full height for images wider than 2:1),
  resized to R x R/2 and centred on a black R x R square (rows R/4 .. 3R/4 - 1).
- ``resize``: the whole image resized to R x R, squeezed if it is not square; unchanged if it is
  already R x R.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import PIL.Image

from pgtools.errors import PgtoolsError


def _resized(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    image = PIL.Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize((width, height), PIL.Image.Resampling.LANCZOS))


def _central(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (pixels.shape[0] - height) // 2, (pixels.shape[1] - width) // 2
    return pixels[top:top + height, left:left + width]


def center_crop(pixels: np.ndarray, resolution: int) -> np.ndarray:
    """The central square resized to ``resolution`` squared."""
    side = min(pixels.shape[:2])
    return _resized(_central(pixels, side, side), resolution, resolution)


def center_crop_wide(pixels: np.ndarray, resolution: int) -> np.ndarray:
    """The central 2:1 box resized to R x R/2, on a black R x R square."""
    if resolution < 2:
        raise PgtoolsError("--transform center-crop-wide needs --resolution 2 or more")
    height, width = pixels.shape[:2]
    box_height, box_width = (width // 2, width) if 2 * height >= width else (height, 2 * height)
    band = _resized(_central(pixels, max(1, box_height), box_width), resolution, resolution // 2)
    canvas = np.zeros((resolution, resolution, *pixels.shape[2:]), dtype=np.uint8)
    canvas[resolution // 4:resolution // 4 + resolution // 2] = band
    return canvas


def resize(pixels: np.ndarray, resolution: int) -> np.ndarray:
    """The whole image resized to ``resolution`` squared (unchanged if it already is)."""
    if pixels.shape[:2] == (resolution, resolution):
        return pixels
    return _resized(pixels, resolution, resolution)


TRANSFORMS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "center-crop": center_crop, "center-crop-wide": center_crop_wide, "resize": resize,
}
