"""Time SWD and MS-SSIM on synthetic images on the CPU, next to a straightforward baseline; or
SWD's peak memory with every level's descriptors held at once against level by level.

The baseline is the obvious per-image / per-pair code (2-D scipy convolutions, a Python loop over
patches, one image at a time, single-threaded sorts along the slow axis), timed on a subset in
the same run and extrapolated linearly.

    python bench/bench_metrics.py --num_images 8192 --resolution 128 --pairs 10000
    python bench/bench_metrics.py --memory --num_images 1024 --resolution 256

``--memory`` runs ``compute_metrics(["swd"])`` on sources (images regenerated for every pass) in a
fresh process per case, so that each peak RSS is its own: every level in one pass (the old
descriptor store), the default budget, and one level per pass.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from scipy import ndimage, signal

from pgtools.models.metrics.ms_ssim import FILTER_SIGMA, FILTER_SIZE, K1, K2, MAX_VALUE, WEIGHTS
from pgtools.models.metrics import SWD_MEMORY, compute_metrics, count_passes
from pgtools.models.metrics.ms_ssim import ms_ssim, ms_ssim_pairs
from pgtools.models.metrics.swd import DescriptorSet, SWDResult, compare_descriptor_sets, format_swd

BATCH = 256
KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256


def _linear_upsampling(src: int, dst: int) -> np.ndarray:
    # (dst, src) matrix of linear interpolation between pixel centres (edges clamped).
    position = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    low = np.minimum(position.astype(int), src - 2)
    matrix = np.zeros((dst, src), np.float32)
    matrix[np.arange(dst), low] = 1 - (position - low)
    matrix[np.arange(dst), low + 1] = position - low
    return matrix


def synthetic_images(count: int, resolution: int, seed: int, blur: float = 0.0) -> list[np.ndarray]:
    """Structured noise: smooth colour fields at 1/8 and 1/2 scale plus pixel noise, in batches."""
    return list(synthetic_batches(count, resolution, seed, blur))


def synthetic_batches(count: int, resolution: int, seed: int, blur: float = 0.0, batch: int = BATCH):
    """The images of ``synthetic_images``, made batch by batch as they are read."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, batch):
        n = min(batch, count - start)
        x = 128 + 12 * rng.standard_normal((n, 3, resolution, resolution), np.float32)
        for factor, amplitude in ((8, 55), (2, 25)):
            up = _linear_upsampling(resolution // factor, resolution)
            field = rng.standard_normal((n, 3, resolution // factor, resolution // factor), np.float32)
            x += amplitude * (up @ field @ up.T)
        if blur:
            x = ndimage.gaussian_filter(x, (0, 0, blur, blur))
        yield np.clip(np.round(x), 0, 255).astype(np.uint8)


def baseline_descriptors(image: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """One image's descriptors per level, the plain way: 2-D convolutions and a patch loop."""
    kernel = KERNEL[None]
    level = image.astype(np.float32)
    levels = []
    while level.shape[-1] > 16:
        low = ndimage.convolve(level, kernel, mode="mirror")[:, ::2, ::2]
        zeros = np.zeros_like(level)
        zeros[:, ::2, ::2] = low
        levels.append(level - ndimage.convolve(zeros, kernel * 4, mode="mirror"))
        level = low
    levels.append(level)
    out = []
    for band in levels:
        patches = []
        for _ in range(128):
            y, x = rng.integers(3, band.shape[-1] - 3, size=2)
            patches.append(band[:, y - 3 : y + 4, x - 3 : x + 4].reshape(-1))
        out.append(np.stack(patches))
    return out


def baseline_ms_ssim_pair(a: np.ndarray, b: np.ndarray) -> float:
    """One pair's MS-SSIM the plain way: 2-D FFT convolutions per channel, float64."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    css, ssim = [], 0.0
    for scale in range(len(WEIGHTS)):
        size = min(FILTER_SIZE, x.shape[-1])
        grid = np.arange(size) - (size - 1) / 2
        sigma = size * FILTER_SIGMA / FILTER_SIZE
        window = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * sigma**2))
        window = (window / window.sum())[None]
        mu1 = signal.fftconvolve(x, window, mode="valid", axes=(1, 2))
        mu2 = signal.fftconvolve(y, window, mode="valid", axes=(1, 2))
        s11 = signal.fftconvolve(x * x, window, mode="valid", axes=(1, 2)) - mu1 * mu1
        s22 = signal.fftconvolve(y * y, window, mode="valid", axes=(1, 2)) - mu2 * mu2
        s12 = signal.fftconvolve(x * y, window, mode="valid", axes=(1, 2)) - mu1 * mu2
        c1, c2 = (K1 * MAX_VALUE) ** 2, (K2 * MAX_VALUE) ** 2
        cs_map = (2 * s12 + c2) / (s11 + s22 + c2)
        css.append(max(cs_map.mean(), 0.0))
        ssim = max((cs_map * (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)).mean(), 0.0)
        x = (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) / 4
        y = (y[:, 0::2, 0::2] + y[:, 1::2, 0::2] + y[:, 0::2, 1::2] + y[:, 1::2, 1::2]) / 4
    return float(np.prod(np.power(css[:-1], WEIGHTS[:-1])) * ssim ** WEIGHTS[-1])


def baseline_compare_seconds(reals: DescriptorSet, fakes: DescriptorSet) -> float:
    """Seconds of one level and one repeat of the plain distance (sort along axis 0), x levels x 4."""
    a = np.concatenate(reals.normalised_levels()[0])
    b = np.concatenate(fakes.normalised_levels()[0])
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    dirs = rng.standard_normal((a.shape[1], 128))
    dirs = (dirs / np.sqrt(np.square(dirs).sum(axis=0, keepdims=True))).astype(np.float32)
    np.mean(np.abs(np.sort(a @ dirs, axis=0) - np.sort(b @ dirs, axis=0)))
    return (time.perf_counter() - start) * len(reals.resolutions) * 4


class Timer:
    """Wall-clock and process CPU seconds of a block (CPU well below threads x wall = contention)."""

    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.1f} s (CPU {self.cpu:.1f} s)"


def bench_swd(args: argparse.Namespace) -> None:
    n, res = args.num_images, args.resolution
    reals = synthetic_images(n, res, args.seed)
    fakes = synthetic_images(n, res, args.seed + 1, blur=0.7)
    print(f"SWD: {n} reals vs {n} fakes at {res}x{res}; {2 * n} images in all; "
          f"load average {os.getloadavg()[0]:.1f}")
    with Timer() as gather:
        sets = [DescriptorSet(name="reals"), DescriptorSet(name="fakes")]
        for descriptors, batches in zip(sets, (reals, fakes)):
            for batch in batches:
                descriptors.add(batch)
    with Timer() as compare:
        result = compare_descriptor_sets(*sets)
    ours = gather.wall + compare.wall
    print(f"  result: {format_swd(result)}")
    print(f"  vectorised: descriptors {gather} + distance {compare} = {ours:.1f} s, "
          f"{2 * n / ours:.0f} images/s")

    subset = np.concatenate(reals)[: args.baseline_images]
    rng = np.random.default_rng(0)
    with Timer() as plain:
        for image in subset:
            baseline_descriptors(image, rng)
    base_gather = plain.wall * 2 * n / len(subset)
    base_compare = baseline_compare_seconds(*sets)
    base = base_gather + base_compare
    print(f"  baseline: descriptors {base_gather:.1f} s (loop over {len(subset)} images, "
          f"extrapolated) + distance {base_compare:.1f} s (1 level x 1 repeat timed, "
          f"x{len(sets[0].resolutions) * 4}) = {base:.1f} s, {2 * n / base:.0f} images/s")
    print(f"  speed-up: {base / ours:.1f}x (descriptors {base_gather / gather.wall:.1f}x, "
          f"distance {base_compare / compare.wall:.1f}x); load average {os.getloadavg()[0]:.1f}")


def bench_ms_ssim(args: argparse.Namespace) -> None:
    pairs, res = args.pairs, args.resolution
    images = synthetic_images(2 * pairs, res, args.seed + 2)
    print(f"MS-SSIM: {pairs} pairs at {res}x{res}; load average {os.getloadavg()[0]:.1f}")
    with Timer() as ours:
        value = ms_ssim(images)
    print(f"  result: {value:.4f}")
    print(f"  vectorised: {ours}, {pairs / ours.wall:.0f} pairs/s")

    subset = np.concatenate(images[:2])[: 2 * args.baseline_pairs]
    with Timer() as plain:
        values = [baseline_ms_ssim_pair(subset[i], subset[i + 1]) for i in range(0, len(subset), 2)]
    base = plain.wall * pairs / len(values)
    gap = np.abs(np.array(values) - ms_ssim_pairs(subset[0::2], subset[1::2])).max()
    print(f"  baseline: {base:.1f} s ({len(values)} pairs one by one, extrapolated), "
          f"{pairs / base:.0f} pairs/s; largest per-pair difference {gap:.1e}")
    print(f"  speed-up: {base / ours.wall:.1f}x; load average {os.getloadavg()[0]:.1f}")


MEMORY_CASES = {  # case -> bytes of descriptors held at once
    "every level in one pass (old store)": sys.maxsize,
    f"default budget ({SWD_MEMORY / 2**30:.0f} GiB)": SWD_MEMORY,
    "one level per pass": 1,
}


def memory_case(args: argparse.Namespace) -> None:
    """One case of ``--memory`` (in its own process): print time, peak RSS and the result as JSON."""
    n, res, memory = args.num_images, args.resolution, MEMORY_CASES[args.case]
    batch = max(1, min(BATCH, (16 << 20) // (3 * res * res)))  # small: the float32 synthesis is 12x bigger
    start = time.perf_counter()
    result = compute_metrics(["swd"], lambda: synthetic_batches(n, res, args.seed, batch=batch),
                             lambda: synthetic_batches(n, res, args.seed + 1, 0.7, batch=batch),
                             num_images=n, memory=memory)["swd"]
    print(json.dumps({"seconds": time.perf_counter() - start, "passes": count_passes(["swd"], res, n, memory),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "swd": result}))


def bench_memory(args: argparse.Namespace) -> None:
    n, res = args.num_images, args.resolution
    print(f"SWD memory: {n} vs {n} images at {res}x{res}; each case in a fresh process; "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {}
    for case in MEMORY_CASES:
        command = [sys.executable, __file__, "--case", case, "--num_images", str(n), "--resolution", str(res),
                   "--seed", str(args.seed)]
        results[case] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    first = next(iter(results.values()))
    print(f"  {'case':40} {'passes':>6} {'seconds':>8} {'peak RSS MiB':>13} {'RSS ratio':>9}  SWD x1e3")
    for case, r in results.items():
        print(f"  {case:40} {r['passes']:6} {r['seconds']:8.1f} {r['peak_rss_mib']:13.0f} "
              f"{r['peak_rss_mib'] / first['peak_rss_mib']:9.2f}  {format_swd(SWDResult(**r['swd']))}")
    same = all(r["swd"] == first["swd"] for r in results.values())
    print(f"  identical results: {same}; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_images", type=int, default=8192, help="images per SWD set")
    parser.add_argument("--resolution", type=int, default=128, help="image size (power of two)")
    parser.add_argument("--pairs", type=int, default=10000, help="MS-SSIM pairs")
    parser.add_argument("--baseline_images", type=int, default=64, help="SWD baseline subset")
    parser.add_argument("--baseline_pairs", type=int, default=100, help="MS-SSIM baseline subset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory", action="store_true", help="SWD's peak RSS per descriptor budget")
    parser.add_argument("--case", choices=MEMORY_CASES, help=argparse.SUPPRESS)  # one --memory case
    args = parser.parse_args()
    if args.case:
        return memory_case(args)
    if args.memory:
        return bench_memory(args)
    print(f"CPU threads available: {len(os.sched_getaffinity(0))}")
    bench_swd(args)
    bench_ms_ssim(args)


if __name__ == "__main__":
    main()
