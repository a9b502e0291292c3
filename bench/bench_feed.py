"""Benchmark RealImageFeed.batch(): images/s at 4x4, 32x32 and 128x128, cached and streamed.

Writes ``--count`` synthetic 128x128 images into a pyramid (default layout, and the original's
layout for the streamed 128x128 case), then calls ``batch(step, r, alpha, global_size)`` for
consecutive steps with the TF release's minibatch sizes, on the CPU, during a fade-in
(alpha 0.5, the costlier case) and when stable. The first call (worker start-up, first window) is
timed apart from the steady rate (it includes spawning the workers, which re-import the main
module). Files are in the OS page cache.

Usage: ``python bench/bench_feed.py [--count 3000] [--seconds 1.0]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic import write_synthetic_pyramid  # noqa: E402

from pgtools.models.data import RealImageFeed  # noqa: E402

MINIBATCH = {4: 128, 32: 64, 128: 16}  # the TF release's global minibatch per resolution
CASES = [  # (layout, resolution, cached?)
    ("default", 4, True), ("default", 32, True), ("default", 32, False),
    ("default", 128, True), ("default", 128, False), ("compat", 128, False),
]


def measure(path: Path, resolution: int, cached: bool, alpha: float, seconds: float,
            workers: int) -> tuple[float, float, float]:
    """(seconds of the first batch, steady images/s, CPU seconds of this process per image) of one feed."""
    with RealImageFeed(path, cache_bytes=1 << 40 if cached else 0, mirror=True, stream_workers=workers) as feed:
        size = MINIBATCH[resolution]
        start = time.perf_counter()
        feed.batch(0, resolution, alpha, size)
        first = time.perf_counter() - start
        step, start, cpu = 1, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            feed.batch(step, resolution, alpha, size)
            step += 1
        images = (step - 1) * size
        return first, images / (time.perf_counter() - start), (time.process_time() - cpu) / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="synthetic 128x128 images in the pyramid")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--workers", type=int, default=2, help="stream_workers for streamed levels")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more stall on a busy 2-core machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_feed_") as temp:
        paths = {"default": Path(temp) / "default.h5", "compat": Path(temp) / "compat.h5"}
        write_synthetic_pyramid(paths["default"], args.count)
        write_synthetic_pyramid(paths["compat"], args.count, compat=True)
        print(f"RealImageFeed.batch on {args.count} images, mirror on, CPU tensors "
              f"({torch.get_num_threads()} torch threads), stream_workers={args.workers}")
        print(f"{'level':8} {'layout':8} {'mode':9} {'minibatch':>9} {'first call':>11}   "
              "img/s (main-process CPU us/img)")
        print(f"{'':50} {'alpha=1':>18} {'alpha=0.5':>20}")
        for layout, resolution, cached in CASES:
            first, *stable = measure(paths[layout], resolution, cached, 1.0, args.seconds, args.workers)
            _, *fading = measure(paths[layout], resolution, cached, 0.5, args.seconds, args.workers)
            cells = "".join(f"{f'{rate:,.0f} ({cpu * 1e6:.0f})':>20}" for rate, cpu in (stable, fading))
            print(f"{f'{resolution}x{resolution}':8} {layout:8} {'cached' if cached else 'streamed':9} "
                  f"{MINIBATCH[resolution]:9} {first * 1000:9.0f}ms {cells}")


if __name__ == "__main__":
    main()
