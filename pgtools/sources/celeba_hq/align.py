"""Crop and align one CelebA photo into the 1024x1024 "proc" image, exactly as CelebA-HQ did.

The original ran on NumPy 1.x, whose type promotion (before NEP 50) is part of the result: point
vectors stay float32, scalars derived from lengths are float64, and a float64 scalar applied to a
float32 vector is rounded to float32 first. Every such spot below spells the dtype out, so the
output is the same under NumPy 2.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import PIL.Image
import scipy.ndimage

SIZE = 1024  # side of the proc image
TRANSFORM_SIZE = 4096  # side of the intermediate QUAD transform

_LANCZOS = PIL.Image.Resampling.LANCZOS


@dataclass(frozen=True)
class AlignSteps:
    """Which optional steps of the procedure ran for one image (for tests and diagnostics)."""

    shrink: int  # factor the photo was shrunk by (1: not shrunk)
    cropped: bool  # whether the photo was cropped around the face
    superres: int  # simulated super-resolution factor (1: none)
    padded: bool  # whether reflect padding with blur and median fade ran


class _Float32(float):
    """A float32 value as Pillow's QUAD set-up saw it under NumPy 1.x.

    Pillow turns the quad corners into bilinear coefficients in Python: corner differences
    (``ne[0] - x0``, ``se[0] - sw[0] - ne[0] + x0``) were float32 arithmetic on the original's
    float32 array, and the products with Pillow's ``1.0 / 4096`` were float64. This class rounds
    sums and differences with another ``_Float32`` to float32 and multiplies as a plain float.
    """

    def __add__(self, other: float) -> float:
        if isinstance(other, _Float32):
            return _Float32(np.float32(self) + np.float32(other))
        return float(self) + other

    def __sub__(self, other: float) -> float:
        if isinstance(other, _Float32):
            return _Float32(np.float32(self) - np.float32(other))
        return float(self) - other


def _rot90(v: np.ndarray) -> np.ndarray:
    return np.array([-v[1], v[0]], dtype=np.float32)


def _length(v: np.ndarray) -> np.float32:
    return np.hypot(v[0], v[1])


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    """Integer bounding box (left, top, right, bottom) of the float32 quad."""
    return (
        int(np.floor(quad[:, 0].min())),
        int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())),
        int(np.ceil(quad[:, 1].max())),
    )


def _add_offset(quad: np.ndarray, offset: tuple[int, int]) -> None:
    """``quad += offset`` computed in float64 and stored back as float32 (NumPy 1.x semantics)."""
    quad[...] = quad.astype(np.float64) + np.asarray(offset, dtype=np.float64)


def oriented_quad(lm: np.ndarray) -> tuple[np.ndarray, float]:
    """Return the float32 (4, 2) crop quad for five float32 landmarks, and the float64 zoom."""
    lm = np.asarray(lm, dtype=np.float32)
    eye_avg = (lm[0] + lm[1]) * 0.5 + 0.5
    mouth_avg = (lm[3] + lm[4]) * 0.5 + 0.5
    eye_to_eye = lm[1] - lm[0]
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - _rot90(eye_to_mouth)
    x /= _length(x)
    scale = max(float(_length(eye_to_eye)) * 2.0, float(_length(eye_to_mouth)) * 1.8)
    x *= np.float32(scale)
    y = _rot90(x)
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    zoom = SIZE / (float(_length(x)) * 2)
    return quad, zoom


def _pad_and_fade(img: PIL.Image.Image, pad: np.ndarray, zoom: float) -> PIL.Image.Image:
    """Reflect-pad by ``pad`` (left, top, right, bottom), blur and fade the border to the median.

    The original worked on the whole H x W x 3 array at once. Every step (a Gaussian filter that
    does not smooth across channels, a per-channel median, elementwise blends) treats the channels
    independently, so doing them channel by channel gives the same bits with less temporary
    memory; the three Gaussian filters run in threads (SciPy releases the GIL).
    """
    left, top, right, bottom = (int(p) for p in pad)
    arr = np.pad(np.asarray(img, dtype=np.float32), ((top, bottom), (left, right), (0, 0)), "reflect")
    h, w, channels = arr.shape
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)[:, None]
    dist_x = np.minimum(xs / np.float32(left), (np.float32(w - 1) - xs) / np.float32(right))
    dist_y = np.minimum(ys / np.float32(top), (np.float32(h - 1) - ys) / np.float32(bottom))
    mask = np.float32(1.0) - np.minimum(dist_x[None, :], dist_y)
    blur_weight = np.clip(mask * np.float32(3.0) + np.float32(1.0), 0.0, 1.0)
    fade_weight = np.clip(mask, 0.0, 1.0, out=mask)
    sigma = SIZE * 0.02 / zoom

    def blurred(c: int) -> np.ndarray:
        return scipy.ndimage.gaussian_filter(arr[:, :, c], sigma)

    with ThreadPoolExecutor(channels) as pool:
        for c, smooth in enumerate(pool.map(blurred, range(channels))):
            channel = arr[:, :, c]
            smooth -= channel
            smooth *= blur_weight
            channel += smooth
            del smooth
    for c in range(channels):
        channel = arr[:, :, c]
        fade = np.median(channel) - channel
        fade *= fade_weight
        channel += fade
    np.round(arr, out=arr)
    np.clip(arr, 0, 255, out=arr)
    return PIL.Image.fromarray(arr.astype(np.uint8), "RGB")


def align_face(img: PIL.Image.Image, lm: np.ndarray) -> tuple[np.ndarray, AlignSteps]:
    """Align one RGB photo by its five landmarks into the proc image.

    Args:
        img: the original photo (converted to RGB if it is not).
        lm: float32 (5, 2) landmarks: left eye, right eye, nose, left and right mouth corner.

    Returns:
        The proc image as uint8 (3, 1024, 1024), and the steps that ran.
    """
    if img.mode != "RGB":
        img = img.convert("RGB")
    quad, zoom = oriented_quad(lm)

    shrink = int(np.floor(0.5 / zoom))
    if shrink > 1:
        size = (int(np.round(img.size[0] / shrink)), int(np.round(img.size[1] / shrink)))
        img = img.resize(size, _LANCZOS)
        quad /= shrink
        zoom *= shrink

    border = max(int(np.round(SIZE * 0.1 / zoom)), 3)
    left, top, right, bottom = _bounds(quad)
    width, height = img.size
    crop = (max(left - border, 0), max(top - border, 0), min(right + border, width), min(bottom + border, height))
    cropped = crop[2] - crop[0] < width or crop[3] - crop[1] < height
    if cropped:
        img = img.crop(crop)
        _add_offset(quad, (-crop[0], -crop[1]))

    superres = int(np.exp2(np.ceil(np.log2(zoom))))
    if superres > 1:
        img = img.resize((img.size[0] * superres, img.size[1] * superres), _LANCZOS)
        quad *= superres
        zoom /= superres

    left, top, right, bottom = _bounds(quad)
    width, height = img.size
    pad = (max(-left + border, 0), max(-top + border, 0), max(right - width + border, 0), max(bottom - height + border, 0))
    padded = max(pad) > border - 4
    if padded:
        pad_arr = np.maximum(pad, int(np.round(SIZE * 0.3 / zoom)))
        img = _pad_and_fade(img, pad_arr, zoom)
        _add_offset(quad, (int(pad_arr[0]), int(pad_arr[1])))

    data = [_Float32(v) for v in (quad + np.float32(0.5)).flatten().tolist()]
    img = img.transform((TRANSFORM_SIZE, TRANSFORM_SIZE), PIL.Image.Transform.QUAD, data, PIL.Image.Resampling.BILINEAR)
    img = img.resize((SIZE, SIZE), _LANCZOS)
    proc = np.asarray(img).transpose(2, 0, 1).copy()
    return proc, AlignSteps(shrink=max(shrink, 1), cropped=cropped, superres=max(superres, 1), padded=padded)
