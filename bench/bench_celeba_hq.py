"""Benchmark the CelebA-HQ rebuild (issue 3) on generated CelebA-style data.

Draws ``--count`` photos with known landmarks (a mix of the alignment paths: super-resolution
only, and reflect padding with blur), makes deltas for them with ``create_deltas``, then times,
each in a fresh process (so that peak RSS is its own):

- baseline: the original's approach, one process and one thread: for each row, decode the JPEG,
  align it, read the JPEG again for the key, open the zip, decrypt, add, check both MD5s;
- pgtools ``CelebAHQBuilder`` with 1 worker, and with every worker.

Wall-clock seconds per image are printed next to CPU seconds per image (process and workers),
which other load on the machine disturbs less, and the speed-up a pure-CPU control task gets from
all workers at that moment (the most the pool can give).

Usage: ``python bench/bench_celeba_hq.py [--count 24] [--workers N]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgtools.parallel import ordered_map, usable_cpus  # noqa: E402
from pgtools.sources.celeba_hq import align  # noqa: E402
from pgtools.sources.celeba_hq.build import CelebAHQBuilder  # noqa: E402
from pgtools.sources.celeba_hq.create_deltas import create_deltas  # noqa: E402
from pgtools.sources.celeba_hq.deltas import apply_delta, decrypt_delta, derive_key, member_name, zip_name  # noqa: E402
from pgtools.sources.celeba_hq.inputs import load_inputs, read_landmarks  # noqa: E402
from pgtools.sources.celeba_hq.synthetic import Face, smooth_target, write_celeba  # noqa: E402
from synthetic import peak_rss_mib  # noqa: E402

CASES = ("baseline: 1 process, 1 thread", "pgtools: 1 worker", "pgtools: all workers")


def faces(count: int) -> list[Face]:
    """CelebA-like photos: faces of varied size and tilt, every third one near an edge (padded)."""
    rng = np.random.default_rng(0)
    result = []
    for i in range(count):
        width, height = int(rng.integers(380, 520)), int(rng.integers(420, 560))
        eye_dist = float(rng.uniform(40, 90))
        cx = width * (0.85 if i % 3 == 2 else 0.5)
        result.append(Face(width, height, cx, height * 0.45, eye_dist, float(rng.uniform(-15, 15))))
    return result


def _target(args: tuple[Path, np.ndarray, int]) -> np.ndarray:
    path, landmarks, seed = args
    with PIL.Image.open(path) as img:
        proc, _ = align.align_face(img, landmarks)
    return smooth_target(proc, seed)


def make_data(root: Path, count: int) -> tuple[Path, Path]:
    """Write originals, landmarks, targets and deltas for ``count`` rows under ``root``."""
    celeba, targets, deltas = root / "celeba", root / "targets", root / "deltas"
    names = write_celeba(celeba, faces(count))
    landmarks, _ = read_landmarks(celeba / "Anno" / "list_landmarks_celeba.txt")
    targets.mkdir()
    jobs = [(celeba / "img_celeba" / name, landmarks[i], i) for i, name in enumerate(names)]
    for i, final in enumerate(ordered_map(_target, jobs)):
        PIL.Image.fromarray(final.transpose(1, 2, 0)).save(targets / ("%05d.png" % i))
    create_deltas(celeba, targets, deltas, pairs=[(i, i) for i in range(count)])
    return celeba, deltas


class _OneThread:
    """Stands in for align's ThreadPoolExecutor: the per-channel work runs in the calling thread."""

    def __init__(self, workers: int) -> None:
        pass

    def __enter__(self) -> "_OneThread":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def map(self, fn, items):
        return map(fn, items)


def baseline(celeba: Path, deltas: Path) -> int:
    """The original's loop in one process and one thread."""
    align.ThreadPoolExecutor = _OneThread
    inputs = load_inputs(celeba, deltas)
    for entry in inputs.entries:
        path = inputs.orig_path(entry)
        proc, _ = align.align_face(PIL.Image.open(path), inputs.landmarks[entry.orig_idx])
        assert hashlib.md5(proc.tobytes()).hexdigest() == entry.proc_md5
        with zipfile.ZipFile(deltas / zip_name(entry.idx)) as archive:
            token = archive.read(member_name(entry.idx))
        key = derive_key(path.read_bytes(), entry.orig_file)
        final = apply_delta(proc, decrypt_delta(token, key, name=entry.orig_file))
        assert hashlib.md5(final.tobytes()).hexdigest() == entry.final_md5
    return len(inputs.entries)


def _spin(_: int) -> int:
    return sum(range(3_000_000))


def core_scaling(workers: int | None) -> float:
    """How much faster a pure-CPU task runs with all workers than with one: the machine's headroom."""
    times = []
    for count in (1, workers):
        start = time.perf_counter()
        list(ordered_map(_spin, range(16), workers=count))
        times.append(time.perf_counter() - start)
    return times[0] / times[1]


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_case(name: str, celeba: Path, deltas: Path, workers: int | None) -> dict:
    """Rebuild every row once; returns the figures (run in a fresh process)."""
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    if name == CASES[0]:
        count = baseline(celeba, deltas)
    else:
        builder = CelebAHQBuilder(celeba, deltas, workers=1 if name == CASES[1] else workers)
        count = sum(1 for _ in builder.images())
        assert builder.stats.exact == count
    return {
        "images": count, "seconds": time.perf_counter() - start, "cpu_seconds": _cpu_seconds() - cpu_start,
        **peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=24, help="rows (generated photos) to rebuild")
    parser.add_argument("--workers", type=int, default=None, help="workers of the last case (default: all cores)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--celeba", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deltas", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case, figures as JSON
        print(json.dumps(run_case(args.case, args.celeba, args.deltas, args.workers)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_celeba_hq_") as temp:
        start = time.perf_counter()
        celeba, deltas = make_data(Path(temp), args.count)
        workers = args.workers or usable_cpus()
        print(f"{args.count} generated rows (deltas made in {time.perf_counter() - start:.1f}s); "
              f"{usable_cpus()} cores, all workers = {workers}; a pure-CPU control task runs "
              f"{core_scaling(workers):.2f}x faster with all workers than with one on this machine now")
        print(f"{'case':32} {'s/image':>8} {'speed-up':>9} {'CPU s/image':>12} {'peak RSS MiB (self/children)':>29}")
        baseline_seconds = None
        for name in CASES:
            command = [sys.executable, __file__, "--case", name, "--celeba", str(celeba), "--deltas", str(deltas)]
            if args.workers is not None:
                command += ["--workers", str(args.workers)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            per_image = result["seconds"] / result["images"]
            baseline_seconds = baseline_seconds or per_image
            print(f"{name:32} {per_image:8.2f} {baseline_seconds / per_image:8.2f}x {result['cpu_seconds'] / result['images']:12.2f} "
                  f"{result['rss_self_mib']:14.0f} / {result['rss_children_mib']:.0f}")


if __name__ == "__main__":
    main()
