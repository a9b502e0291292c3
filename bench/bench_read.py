"""Benchmark reading random minibatches from pyramids of each layout (issue 2).

Writes ``--count`` synthetic 128x128 images into pyramids with the default layout under each
``--compression`` (none, lzf, gzip-1, gzip-4) and with ``compat=True`` (the original's layout:
one image per chunk, gzip-4), then times ``Pyramid.minibatch`` for minibatches of 16 and 64 at 4x4,
32x32 and 128x128. Baseline: the original's layout read the straightforward way, one h5py
fancy-indexing call ``ds[sorted_unique_indices]`` per minibatch. The files were just written, so
they sit in the OS page cache (no disk latency in these figures).

Usage: ``python bench/bench_read.py [--count 3000] [--seconds 0.4]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic import synthetic_batches  # noqa: E402

from pgtools.pyramid import Pyramid, level_name, write_pyramid  # noqa: E402

LAYOUTS = {  # name -> write_pyramid options
    "default (none)": {"compression": "none"},
    "--compression lzf": {"compression": "lzf"},
    "--compression gzip-1": {"compression": "gzip-1"},
    "--compression gzip-4": {"compression": "gzip-4"},
    "compat (original layout)": {"compat": True},
}
RESOLUTIONS = (4, 32, 128)
SIZES = (16, 64)


def rate(minibatch: Callable[[np.random.Generator], np.ndarray], seconds: float) -> float:
    """Images per second of ``minibatch(rng)``, run for at least ``seconds`` and 3 minibatches."""
    rng = np.random.default_rng(0)
    done, calls, start = 0, 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        done += len(minibatch(rng))
        calls += 1
    return done / (time.perf_counter() - start)


def fancy_indexing(dataset: h5py.Dataset, size: int) -> Callable[[np.random.Generator], np.ndarray]:
    """The straightforward read: the same random indices, one h5py call with them sorted and unique."""
    def minibatch(rng: np.random.Generator) -> np.ndarray:
        unique, inverse = np.unique(rng.integers(0, len(dataset), size), return_inverse=True)
        return dataset[unique][inverse]
    return minibatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="synthetic 128x128 images per pyramid")
    parser.add_argument("--seconds", type=float, default=0.4, help="minimum time per measurement")
    args = parser.parse_args()
    batches = list(synthetic_batches(args.count))
    with tempfile.TemporaryDirectory(prefix="bench_read_") as temp:
        paths = {}
        for number, (name, options) in enumerate(LAYOUTS.items()):
            paths[name] = Path(temp) / f"layout{number}.h5"
            start = time.perf_counter()
            write_pyramid(paths[name], batches, resolution=128, channels=3, count=args.count, **options)
            print(f"{name:26} {paths[name].stat().st_size / 2**20:7.1f} MiB, written at "
                  f"{args.count / (time.perf_counter() - start):.0f} images/s")
        baseline = {}
        with h5py.File(paths["compat (original layout)"], "r") as file:
            for r in RESOLUTIONS:
                for size in SIZES:
                    baseline[r, size] = rate(fancy_indexing(file[level_name(r)], size), args.seconds)
        print(f"\nrandom minibatches of {args.count} images, images/s (ratio vs baseline)")
        header = "".join(f"{f'{r}x{r} mb{size}':>20}" for r in RESOLUTIONS for size in SIZES)
        print(f"{'layout / reader':44}{header}")
        print(f"{'baseline: compat, ds[sorted_unique_indices]':44}"
              + "".join(f"{baseline[r, size]:>20,.0f}" for r in RESOLUTIONS for size in SIZES))
        for name, path in paths.items():
            cells = []
            with Pyramid(path) as pyramid:
                for r in RESOLUTIONS:
                    for size in SIZES:
                        value = rate(lambda rng: pyramid.minibatch(r, size, rng), args.seconds)
                        cells.append(f"{value:,.0f} ({value / baseline[r, size]:.1f}x)")
            print(f"{name + ', Pyramid.minibatch':44}" + "".join(f"{cell:>20}" for cell in cells))


if __name__ == "__main__":
    main()
