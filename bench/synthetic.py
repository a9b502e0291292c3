"""Photo-like synthetic images for the benchmarks: smooth gradients, soft shapes and mild noise."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import PIL.Image

from pgtools.parallel import ordered_map
from pgtools.pyramid import write_pyramid


def synthetic_image(seed: int, side: int = 128, height: int | None = None) -> np.ndarray:
    """One uint8 (height, side, 3) image (height defaults to side), a pure function of ``seed``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height or side, 0:side].astype(np.float32) / side
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    low, high = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    image = low + (high - low) * ramp
    for _ in range(rng.integers(3, 9)):
        cx, cy = rng.uniform(0, 1, 2)
        rx, ry = rng.uniform(0.05, 0.4, 2)
        distance = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        weight = np.clip((1 - distance) * 6, 0, 1)[..., None]  # soft edge
        image = image * (1 - weight) + rng.uniform(0, 255, 3).astype(np.float32) * weight
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _save_png(seed: int, folder: Path, side: int, height: int | None) -> None:
    PIL.Image.fromarray(synthetic_image(seed, side, height)).save(folder / f"img{seed:06d}.png")


def write_pngs(folder: Path, count: int, side: int = 128, height: int | None = None) -> None:
    """``count`` PNG files ``img000000.png``... of ``side`` x ``height`` into ``folder``, made on every core."""
    folder.mkdir(parents=True, exist_ok=True)
    save = functools.partial(_save_png, folder=folder, side=side, height=height)
    for _ in ordered_map(save, range(count), in_flight=64):
        pass


def synthetic_batches(count: int, side: int = 128, batch: int = 500):
    """The same images as uint8 (n, 3, side, side) batches, without files."""
    for start in range(0, count, batch):
        seeds = range(start, min(start + batch, count))
        yield np.stack([synthetic_image(seed, side) for seed in seeds]).transpose(0, 3, 1, 2)


def write_synthetic_pyramid(path: Path, count: int, side: int = 128, **options) -> None:
    """A pyramid of ``count`` synthetic images (options go to ``write_pyramid``)."""
    write_pyramid(path, synthetic_batches(count, side), resolution=side, channels=3, count=count, **options)


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory so far of this process and of its finished children, in MiB."""
    import resource

    return {"rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
