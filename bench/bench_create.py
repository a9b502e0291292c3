"""Benchmark pyramid creation from a folder of PNG files (issues 2 and 11).

Writes ``--count`` synthetic PNGs to a temporary folder, then times, each in a fresh process (so
that peak RSS and CPU time are its own):

- baseline: what the original h5tool did — Pillow decodes file after file in one process (CelebA:
  then crops), written with the original's layout (one image per chunk, gzip-4: ``compat=True``);
- ``--dataset custom`` (128x128 PNGs): pgtools (``open_custom`` + ``write_pyramid``) with every
  worker: the default layout, lzf, gzip-1 and ``compat=True``;
- ``--dataset celeba`` (aligned-CelebA-sized 178x218 PNGs, cropped to 128x128): pgtools
  ``open_celeba`` + ``write_pyramid`` with every worker, default layout and ``compat=True``; then a
  per-stage CPU breakdown of one image's work, measured in one process on a sample.

Usage: ``python bench/bench_create.py [--dataset custom|celeba] [--count 3000] [--workers N]``
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
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
from pgtools.pyramid import PyramidWriter, lod_levels, write_pyramid  # noqa: E402
from pgtools.sources.celeba import PNG_FOLDER, open_celeba  # noqa: E402
from pgtools.sources.custom import open_custom  # noqa: E402
from pgtools.sources.images import channels_first, load_pixels, read_header  # noqa: E402

# dataset -> case name -> (decode with pgtools' source and its workers?, write_pyramid options)
CASES = {
    "custom": {
        "baseline: 1 process, Pillow per file, compat layout": (False, {"compat": True}),
        "pgtools: all workers, default layout": (True, {}),
        "pgtools: all workers, --compression lzf": (True, {"compression": "lzf"}),
        "pgtools: all workers, --compression gzip-1": (True, {"compression": "gzip-1"}),
        "pgtools: all workers, compat layout": (True, {"compat": True}),
    },
    "celeba": {
        "baseline: 1 process, Pillow per file, compat layout": (False, {"compat": True}),
        "pgtools create_celeba: all workers, default layout": (True, {}),
        "pgtools create_celeba: all workers, compat layout": (True, {"compat": True}),
    },
}
CX, CY, HALF = 89, 121, 64  # create_celeba's default crop
BREAKDOWN_SAMPLE = 500  # images timed stage by stage


def decode_one_by_one(folder: Path, crop: bool):
    """The original's loop: every file in name order, decoded in this process (CelebA: then cropped)."""
    for path in sorted(folder.iterdir()):
        pixels = np.asarray(PIL.Image.open(path))
        if crop:
            pixels = pixels[CY - HALF:CY + HALF, CX - HALF:CX + HALF]
        yield pixels.transpose(2, 0, 1)[np.newaxis]


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_case(dataset: str, name: str, folder: Path, target: Path, workers: int | None) -> dict:
    """Create one pyramid; returns its figures (run in a fresh process)."""
    use_pgtools, options = CASES[dataset][name]
    cpu_before = cpu_seconds(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if use_pgtools:
        source = (open_celeba(folder, workers=workers) if dataset == "celeba" else open_custom(folder, workers=workers))
        count = write_pyramid(target, source.batches, resolution=source.resolution, channels=source.channels,
                              count=source.count, **options)
    else:
        images = folder / PNG_FOLDER if dataset == "celeba" else folder
        count = write_pyramid(target, decode_one_by_one(images, dataset == "celeba"), resolution=128, channels=3,
                              **options)
    seconds = time.perf_counter() - start
    return {
        "images": count, "seconds": seconds, "bytes": target.stat().st_size,
        "cpu_self": cpu_seconds(resource.RUSAGE_SELF) - cpu_before, "cpu_children": cpu_seconds(resource.RUSAGE_CHILDREN),
        **peak_rss_mib(),
    }


def _per_image_ms(work, items) -> float:
    """CPU milliseconds per item of ``work`` over ``items``, best of three."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for item in items:
            work(item)
        best = min(best, time.process_time() - start)
    return best / len(items) * 1e3


def breakdown(folder: Path, target: Path) -> dict[str, float]:
    """CPU ms per image of each stage of create_celeba's work, and of the baseline's, in this process."""
    paths = sorted((folder / PNG_FOLDER).iterdir())[:BREAKDOWN_SAMPLE]
    decoded = [load_pixels(path) for path in paths]
    crops = np.stack([_crop(pixels) for pixels in decoded])
    levels = lod_levels(crops, 128)
    n = len(paths)
    return {
        "worker: read header (Pillow)": _per_image_ms(read_header, paths),
        "worker: read + decode PNG (OpenCV)": _per_image_ms(load_pixels, paths),
        "worker: crop, channels first": _per_image_ms(_crop, decoded),
        "worker: all levels (integer sums)": _per_image_ms(lambda _: lod_levels(crops, 128), [0]) / n,
        "worker -> main: pickle + unpickle levels": _per_image_ms(lambda _: pickle.loads(pickle.dumps(levels)), [0]) / n,
        "main: HDF5 writes, default layout": _per_image_ms(lambda _: _write(target, levels, {}), [0]) / n,
        "baseline: decode PNG (Pillow)": _per_image_ms(lambda path: np.asarray(PIL.Image.open(path)), paths),
        "baseline: HDF5 writes, compat layout (gzip-4)": _per_image_ms(lambda _: _write(target, levels, {"compat": True}), [0]) / n,
    }


def _crop(pixels: np.ndarray) -> np.ndarray:
    return channels_first(pixels[CY - HALF:CY + HALF, CX - HALF:CX + HALF])


def _write(target: Path, levels: dict, options: dict) -> None:
    with PyramidWriter(target, resolution=128, channels=3, overwrite=True, **options) as writer:
        writer.add(levels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(CASES), default="custom",
                        help="custom: 128x128 PNGs; celeba: 178x218 PNGs cropped by create_celeba")
    parser.add_argument("--count", type=int, default=3000, help="synthetic PNG files to create")
    parser.add_argument("--workers", type=int, default=None, help="pgtools workers (default: all cores)")
    parser.add_argument("--pngs", type=Path, help="keep the PNGs in this folder and reuse them on the next run")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case, figures as JSON
        print(json.dumps(run_case(args.dataset, args.case, args.folder, args.target, args.workers)))
        return
    celeba = args.dataset == "celeba"
    width, height = (178, 218) if celeba else (128, 128)
    with tempfile.TemporaryDirectory(prefix="bench_create_") as temp:
        folder = args.pngs or Path(temp) / "pngs"
        images = folder / PNG_FOLDER if celeba else folder
        start = time.perf_counter()
        if not (images.is_dir() and len(list(images.iterdir())) == args.count):
            write_pngs(images, args.count, width, height)
        files = list(images.iterdir())
        png_bytes = sum(path.stat().st_size for path in files)
        print(f"{args.count} synthetic {width}x{height} RGB PNGs, {png_bytes / args.count / 1024:.1f} KiB each on average "
              f"(made in {time.perf_counter() - start:.1f}s); {usable_cpus()} cores, "
              f"workers={args.workers or usable_cpus()}")
        print(f"{'case':54} {'images/s':>9} {'ratio':>6} {'file MiB':>9} {'peak RSS MiB (self/children)':>29} "
              f"{'CPU ms/img (main/workers)':>26}")
        baseline = None
        for number, name in enumerate(CASES[args.dataset]):
            command = [sys.executable, __file__, "--dataset", args.dataset, "--case", name, "--folder", str(folder),
                       "--target", str(Path(temp) / f"case{number}.h5")]
            if args.workers is not None:
                command += ["--workers", str(args.workers)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            rate = result["images"] / result["seconds"]
            baseline = baseline or rate
            print(f"{name:54} {rate:9.0f} {rate / baseline:5.2f}x {result['bytes'] / 2**20:9.1f} "
                  f"{result['rss_self_mib']:14.0f} / {result['rss_children_mib']:<14.0f} "
                  f"{result['cpu_self'] / result['images'] * 1e3:10.2f} / {result['cpu_children'] / result['images'] * 1e3:.2f}")
        if celeba:
            print(f"\nCPU per image, stage by stage ({BREAKDOWN_SAMPLE} images in one process, best of 3):")
            for stage, ms in breakdown(folder, Path(temp) / "breakdown.h5").items():
                print(f"  {stage:50} {ms:6.3f} ms")


if __name__ == "__main__":
    main()
