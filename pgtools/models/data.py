"""Real images for the trainer, read from a pyramid at the level matching the working resolution.

Which images make up global minibatch ``step`` is a pure function of the arguments, so a resumed
run (a new feed, same arguments) continues bit-identically and the result never depends on timing.
Every level is drawn in the seeded block-shuffled order of :mod:`pgtools.models.stream` (every
image once per epoch): minibatch ``step`` holds stream positions
``[step * global_size, (step + 1) * global_size)``, so pass a step counter that rises by one per
minibatch (counted from the start of training or of the resolution: both work). The cache only
decides where the bytes come from, never which images are drawn, so ``cache_bytes`` (and how it is
split over ranks) does not change a run:

- **Cached levels** (chosen once, ascending from 1x1, while their uncompressed size fits in what
  is left of ``cache_bytes``) are loaded whole on first use;
- **streamed levels** are read block by block by worker processes.

Mirror flips are per-sample coins from ``default_rng([seed, FLIPS, step])``. Rank ``r`` of
``world_size`` W gets samples r, r + W, r + 2W, ... of the global minibatch, so minibatch-stddev
groups are the same whatever the number of ranks.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from pgtools.models.stream import FLIPS, BlockOrder, LevelStream, seeded, worker_pool
from pgtools.pyramid import Pyramid

BLOCK_BYTES = 64 * 1024 * 1024  # a streamed block never holds more than this many bytes


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [-1, 1]: ``x * (2/255) - 1``."""
    return images.to(torch.float32, copy=True).mul_(2 / 255).sub_(1)


def fade(images: torch.Tensor, alpha: float) -> torch.Tensor:
    """``lerp(upsample(avgpool(x)), x, alpha)``: blend float images with their own 2x2 box average.

    The average sums top-left, top-right, bottom-left, bottom-right then multiplies by 0.25; the
    upsample repeats each value 2x2; the blend is ``up + (x - up) * alpha``.
    """
    if alpha >= 1:
        return images
    down = images[..., 0::2, 0::2] + images[..., 0::2, 1::2]
    down.add_(images[..., 1::2, 0::2]).add_(images[..., 1::2, 1::2]).mul_(0.25)
    up = down.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    return (images - up).mul_(alpha).add_(up)


class RealImageFeed:
    """This rank's shard of every global minibatch of real images, as float32 tensors in [-1, 1].

    Streamed levels are read by spawned worker processes (``stream_workers``), so a script that
    streams must guard its entry point with ``if __name__ == "__main__":``. Use as a context
    manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike,  # the pyramid (.h5)
        *,
        cache_bytes: int,  # memory for whole levels; levels that do not fit are streamed
        mirror: bool = False,  # random horizontal flips
        seed: int = 0,  # defines every minibatch
        rank: int = 0,  # this process's rank
        world_size: int = 1,  # number of ranks sharing each global minibatch
        stream_workers: int = 2,  # processes reading streamed levels; 0: read in this process
        block_images: int = 256,  # images per streamed block (fewer if a block would pass BLOCK_BYTES)
        mix_blocks: int = 4,  # blocks shuffled together in a streamed window
        ahead: int | None = None,  # windows read ahead of the current one; None: max(1, stream_workers)
        device: torch.device | str = "cpu",  # where batches are converted and returned
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        if cache_bytes < 0 or seed < 0 or stream_workers < 0 or block_images < 1 or mix_blocks < 1:
            raise ValueError("cache_bytes, seed and stream_workers must be >= 0, block_images and mix_blocks >= 1")
        self.pyramid = Pyramid(path)
        self.resolution, self.channels = self.pyramid.resolution, self.pyramid.channels
        self.num_images = self.pyramid.num_images
        labels = self.pyramid.labels
        self.labels = None if labels is None else torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32))
        self.num_classes = 0 if labels is None else labels.shape[1]
        self.mirror, self.seed, self.rank, self.world_size = mirror, seed, rank, world_size
        self.device = torch.device(device)
        self.block_images, self.mix_blocks = block_images, mix_blocks
        self.ahead = max(1, stream_workers) if ahead is None else ahead
        self.cached_levels = self._plan_cache(cache_bytes)
        self._stream_workers = stream_workers
        self._pool = None
        self._stream: LevelStream | None = None
        self._block_order: BlockOrder | None = None

    def _plan_cache(self, budget: int) -> list[int]:
        cached = []
        for r in self.pyramid.levels:
            if self.pyramid.level_nbytes(r) <= budget:
                budget -= self.pyramid.level_nbytes(r)
                cached.append(r)
        return cached

    def batch(self, step: int, resolution: int, alpha: float,
              global_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's share of global minibatch ``step`` at ``resolution``, faded by ``alpha``.

        Returns float32 (global_size // world_size, C, r, r) images in [-1, 1] and one-hot float32
        labels (or None), both on ``device``.
        """
        self._check(step, resolution, alpha, global_size)
        positions = np.arange(step * global_size + self.rank, (step + 1) * global_size, self.world_size)
        if resolution in self.cached_levels:
            indices = self._order(resolution).indices(positions)
            images = self.pyramid.load_level(resolution)[indices]
        else:
            indices, images = self._level_stream(resolution).take(positions)
        if self.mirror:
            flips = seeded(self.seed, FLIPS, step).integers(0, 2, global_size).astype(bool)[self.rank::self.world_size]
            images[flips] = images[flips, ..., ::-1]
        x = fade(to_float(torch.from_numpy(images).to(self.device)), alpha)
        labels = None if self.labels is None else self.labels[torch.from_numpy(indices)].to(self.device)
        return x, labels

    def _check(self, step: int, resolution: int, alpha: float, global_size: int) -> None:
        if resolution not in self.pyramid.levels:
            raise ValueError(f"no {resolution}x{resolution} level in {self.pyramid.path} "
                             f"(levels: {self.pyramid.levels})")
        if global_size < 1 or global_size % self.world_size:
            raise ValueError(f"global_size {global_size} is not a positive multiple of world_size {self.world_size}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if not 0 <= alpha <= 1 or (alpha < 1 and resolution < 2):
            raise ValueError(f"alpha must be in [0, 1] (1 at 1x1), got {alpha} at {resolution}x{resolution}")

    def _order(self, resolution: int) -> BlockOrder:
        """The stream order of a level (kept for the level in use)."""
        if self._block_order is None or self._block_order.resolution != resolution:
            block_size = min(self.block_images, max(1, BLOCK_BYTES // (self.channels * resolution * resolution)))
            self._block_order = BlockOrder(num_images=self.num_images, block_size=block_size,
                                           mix_blocks=self.mix_blocks, seed=self.seed, resolution=resolution)
        return self._block_order

    def _level_stream(self, resolution: int) -> LevelStream:
        if self._stream is None or self._stream.order.resolution != resolution:
            if self._stream is not None:
                self._stream.close()
            if self._pool is None:
                self._pool = worker_pool(self._stream_workers)
            self._stream = LevelStream(self.pyramid.path, self._order(resolution), rank=self.rank,
                                       world_size=self.world_size, pool=self._pool, ahead=self.ahead)
        return self._stream

    def close(self) -> None:
        """Stop the readers (waiting for reads in progress) and close the file."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.pyramid.close()

    def __enter__(self) -> "RealImageFeed":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
