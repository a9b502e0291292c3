"""Benchmark pyramid creation from a folder of PNG files (issue 2).

Writes ``--count`` synthetic 128x128 PNGs to a temporary folder, then times, each in a fresh
process (so that peak RSS is its own):

- baseline: what the original h5tool did — Pillow decodes file after file in one process, written
  with the original's layout (one image per chunk, gzip-4: ``compat=True``);
- pgtools (``open_custom`` + ``write_pyramid``) with every worker: the default layout, lzf, gzip-1
  and ``compat=True``.

Usage: ``python bench/bench_create.py [--count 3000] [--workers N]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic import peak_rss_mib, write_pngs  # noqa: E402

from pgtools.parallel import usable_cpus  # noqa: E402
from pgtools.pyramid import write_pyramid  # noqa: E402
from pgtools.sources.custom import open_custom  # noqa: E402

# case name -> (decode with pgtools' open_custom and its workers?, write_pyramid options)
CASES = {
    "baseline: 1 process, Pillow per file, compat layout": (False, {"compat": True}),
    "pgtools: all workers, default layout": (True, {}),
    "pgtools: all workers, --compression lzf": (True, {"compression": "lzf"}),
    "pgtools: all workers, --compression gzip-1": (True, {"compression": "gzip-1"}),
    "pgtools: all workers, compat layout": (True, {"compat": True}),
}


def decode_one_by_one(folder: Path):
    """The original's loop: every file in name order, decoded in this process."""
    for path in sorted(folder.iterdir()):
        yield np.asarray(PIL.Image.open(path)).transpose(2, 0, 1)[np.newaxis]


def run_case(name: str, folder: Path, target: Path, workers: int | None) -> dict:
    """Create one pyramid; returns its figures (run in a fresh process)."""
    use_pgtools, options = CASES[name]
    start = time.perf_counter()
    if use_pgtools:
        source = open_custom(folder, workers=workers)
        count = write_pyramid(target, source.batches, resolution=source.resolution, channels=source.channels,
                              count=source.count, **options)
    else:
        count = write_pyramid(target, decode_one_by_one(folder), resolution=128, channels=3, **options)
    seconds = time.perf_counter() - start
    return {
        "images": count, "seconds": seconds, "bytes": target.stat().st_size,
        **peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="synthetic PNG files to create")
    parser.add_argument("--workers", type=int, default=None, help="pgtools workers (default: all cores)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case, figures as JSON
        print(json.dumps(run_case(args.case, args.folder, args.target, args.workers)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_create_") as temp:
        folder = Path(temp) / "pngs"
        start = time.perf_counter()
        write_pngs(folder, args.count)
        png_bytes = sum(path.stat().st_size for path in folder.iterdir())
        print(f"{args.count} synthetic 128x128 RGB PNGs, {png_bytes / args.count / 1024:.1f} KiB each on average "
              f"(made in {time.perf_counter() - start:.1f}s); {usable_cpus()} cores, "
              f"workers={args.workers or usable_cpus()}")
        print(f"{'case':54} {'images/s':>9} {'ratio':>6} {'file MiB':>9} {'peak RSS MiB (self/children)':>29}")
        baseline = None
        for number, name in enumerate(CASES):
            command = [sys.executable, __file__, "--case", name, "--folder", str(folder),
                       "--target", str(Path(temp) / f"case{number}.h5")]
            if args.workers is not None:
                command += ["--workers", str(args.workers)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            rate = result["images"] / result["seconds"]
            baseline = baseline or rate
            print(f"{name:54} {rate:9.0f} {rate / baseline:5.2f}x {result['bytes'] / 2**20:9.1f} "
                  f"{result['rss_self_mib']:14.0f} / {result['rss_children_mib']:.0f}")


if __name__ == "__main__":
    main()
