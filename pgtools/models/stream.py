"""Stream a pyramid level that does not fit in memory, in a seeded block-shuffled order.

The stream of a level is an endless sequence of image indices, a pure function of
(seed, resolution, number of images, block size, blocks per window):

- the level is cut into blocks of consecutive images (``block_size``; the last may be shorter);
- epoch ``e`` visits every block once, in the order ``permutation(blocks)`` drawn from
  ``default_rng([seed, BLOCK_ORDER, resolution, e])``;
- consecutive groups of ``mix_blocks`` blocks of that order form windows; the images of window
  ``w`` are shuffled together with ``default_rng([seed, WINDOW_ORDER, resolution, e, w])``.

So every image appears once per epoch, and reading stays sequential on disk (whole blocks), while a
minibatch mixes ``mix_blocks`` distant parts of the dataset. Windows are read by worker processes
(h5py holds the GIL while it reads, so threads would stall the training thread), each opening the
file itself; which images come out never depends on timing.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from pgtools.pyramid import Pyramid

# Tags that keep the seeded generators of different purposes apart (numpy's SeedSequence treats
# [s] and [s, 0] alike, so keys of different meaning never share a prefix). Tag 1 drew the cached
# levels' minibatches (with replacement) in earlier versions.
FLIPS, BLOCK_ORDER, WINDOW_ORDER = 2, 3, 4


def seeded(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    """The generator for one purpose and key, e.g. ``seeded(seed, MINIBATCH, step)``."""
    return np.random.default_rng([seed, purpose, *keys])


def read_images(path: str | os.PathLike, resolution: int, indices: np.ndarray,
                blocks: list[tuple[int, int]]) -> np.ndarray:
    """Images ``indices`` (all inside ``blocks``, ranges of consecutive images) of one level.

    Reads whole blocks as slices when at least half of their images are wanted, else image by image.
    """
    with Pyramid(path) as pyramid:
        if 2 * len(indices) < sum(stop - start for start, stop in blocks):
            return pyramid.read_indices(resolution, indices)
        out = np.empty((len(indices), pyramid.channels, resolution, resolution), dtype=np.uint8)
        for start, stop in blocks:
            inside = (indices >= start) & (indices < stop)
            out[inside] = pyramid.read(resolution, start, stop)[indices[inside] - start]
        return out


@dataclass(frozen=True)
class Window:
    """One window of the stream: ``indices[j]`` is the image at stream position ``start + j``."""

    key: tuple[int, int]  # (epoch, window number)
    start: int  # stream position of its first image
    indices: np.ndarray  # image indices in stream order
    blocks: list[tuple[int, int]]  # the (start, stop) image ranges it covers


class BlockOrder:
    """The seeded stream order of one level (pure arithmetic, no I/O)."""

    def __init__(self, *, num_images: int, block_size: int, mix_blocks: int, seed: int, resolution: int) -> None:
        self.num_images, self.seed, self.resolution = num_images, seed, resolution
        self.block_starts = np.arange(0, num_images, block_size, dtype=np.int64)
        self.block_stops = np.minimum(self.block_starts + block_size, num_images)
        self.mix_blocks = mix_blocks
        self.windows_per_epoch = -(-len(self.block_starts) // mix_blocks)
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None

    def _layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(block order, window start offsets within the epoch) of an epoch."""
        if self._epoch is None or self._epoch[0] != epoch:
            order = seeded(self.seed, BLOCK_ORDER, self.resolution, epoch).permutation(len(self.block_starts))
            sizes = (self.block_stops - self.block_starts)[order]
            window_sizes = np.add.reduceat(sizes, np.arange(0, len(order), self.mix_blocks))
            self._epoch = (epoch, order, np.concatenate([[0], np.cumsum(window_sizes)]))
        return self._epoch[1], self._epoch[2]

    def locate(self, position: int) -> tuple[int, int]:
        """(epoch, window number) holding stream position ``position``."""
        epoch, offset = divmod(position, self.num_images)
        _, bounds = self._layout(epoch)
        return epoch, int(np.searchsorted(bounds, offset, side="right")) - 1

    def next_key(self, key: tuple[int, int]) -> tuple[int, int]:
        """The window after ``key`` in stream order."""
        epoch, window = key
        return (epoch, window + 1) if window + 1 < self.windows_per_epoch else (epoch + 1, 0)

    def indices(self, positions: np.ndarray) -> np.ndarray:
        """The image indices at ascending stream positions (no I/O)."""
        keys = [self.locate(int(p)) for p in positions]
        windows = {key: self.window(key) for key in dict.fromkeys(keys)}
        return np.array([windows[key].indices[p - windows[key].start] for key, p in zip(keys, positions)],
                        dtype=np.int64)

    def window(self, key: tuple[int, int]) -> Window:
        """The images of one window, in stream order."""
        epoch, number = key
        order, bounds = self._layout(epoch)
        chosen = order[number * self.mix_blocks:(number + 1) * self.mix_blocks]
        blocks = [(int(self.block_starts[b]), int(self.block_stops[b])) for b in chosen]
        indices = np.concatenate([np.arange(start, stop) for start, stop in blocks])
        shuffle = seeded(self.seed, WINDOW_ORDER, self.resolution, epoch, number).permutation(len(indices))
        return Window(key, epoch * self.num_images + int(bounds[number]), indices[shuffle], blocks)


class LevelStream:
    """Serve stream positions of one level, reading windows ahead in worker processes.

    A rank of ``world_size`` only ever asks for positions ``p`` with ``p % world_size == rank`` and
    only those images are read. ``pool`` None reads in this process.
    """

    def __init__(self, path: str | os.PathLike, order: BlockOrder, *, rank: int, world_size: int,
                 pool: ProcessPoolExecutor | None, ahead: int) -> None:
        self.path, self.order = path, order
        self.rank, self.world_size = rank, world_size
        self.pool, self.ahead = pool, ahead
        self._loaded: dict[tuple[int, int], tuple[Window, Future | np.ndarray]] = {}

    def _first_slot(self, window: Window) -> int:
        return (self.rank - window.start) % self.world_size

    def _request(self, key: tuple[int, int]) -> None:
        if key in self._loaded:
            return
        window = self.order.window(key)
        wanted = window.indices[self._first_slot(window)::self.world_size]
        if self.pool is None:
            job: Future | np.ndarray = read_images(self.path, self.order.resolution, wanted, window.blocks)
        else:
            job = self.pool.submit(read_images, self.path, self.order.resolution, wanted, window.blocks)
        self._loaded[key] = (window, job)

    def _images(self, key: tuple[int, int]) -> tuple[Window, np.ndarray]:
        window, job = self._loaded[key]
        if isinstance(job, Future):
            job = job.result()
            self._loaded[key] = (window, job)
        return window, job

    def take(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(image indices, uint8 images) at ascending stream positions of this rank."""
        keys = [self.order.locate(int(p)) for p in positions]
        needed = list(dict.fromkeys(keys))
        upcoming = [needed[-1]]
        for _ in range(self.ahead):
            upcoming.append(self.order.next_key(upcoming[-1]))
        for key in [key for key in self._loaded if key not in needed and key not in upcoming]:
            self._drop(key)
        for key in needed + upcoming:
            self._request(key)
        indices, images = [], []
        for key in needed:
            window, data = self._images(key)
            mine = positions[[k == key for k in keys]]
            slots = (mine - window.start - self._first_slot(window)) // self.world_size
            indices.append(window.indices[mine - window.start])
            images.append(data[slots])
        return np.concatenate(indices), np.concatenate(images)

    def _drop(self, key: tuple[int, int]) -> None:
        _, job = self._loaded.pop(key)
        if isinstance(job, Future):
            job.cancel()

    def close(self) -> None:
        """Forget every window, cancelling reads not yet started."""
        for key in list(self._loaded):
            self._drop(key)


def _ignore_stop_signals() -> None:
    """Readers leave Ctrl-C and SIGTERM to the training process, which stops them when it is done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def worker_pool(workers: int) -> ProcessPoolExecutor | None:
    """A pool of ``workers`` spawned processes (never forked: the parent may hold CUDA state) that
    ignore SIGINT and SIGTERM (a Ctrl-C reaches every process of the terminal's group)."""
    if workers <= 0:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_stop_signals)
