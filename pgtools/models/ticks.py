"""Per-tick statistics: averaging the step statistics (over ranks too), timing, memory, ETA, status line.

The ETA prices every remaining part of the schedule with :class:`SpeedModel`: a resolution already
trained at costs what its last tick measured; a later one costs a per-step overhead plus work that
grows with :func:`image_cost` (the convolutions' multiply-adds: pixels × feature maps²), the two
fitted through the two highest resolutions measured. With one resolution measured only the work
term scales, which overestimates where fixed overhead dominates (tiny networks). It is 0 once the
run is done.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from typing import Callable

import torch

from pgtools.models.distributed import World
from pgtools.models.networks import features
from pgtools.models.schedule import Phase, Schedule
from pgtools.progress import format_duration


def _rss_mib() -> float | None:
    """Resident memory from /proc (Linux), else the peak from getrusage, else None."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource  # Unix only
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_mib(device: torch.device) -> dict[str, float | None]:
    """Resident memory of this process and the CUDA peak since the last call, in MiB."""
    rss = _rss_mib()
    cuda = None
    if device.type == "cuda":
        cuda = torch.cuda.max_memory_allocated(device) / 2**20
        torch.cuda.reset_peak_memory_stats(device)
    return {"rss_mib": round(rss, 1) if rss is not None else None,
            "cuda_max_allocated_mib": round(cuda, 1) if cuda is not None else None}


def image_cost(resolution: int, *, fmap_base: int, fmap_max: int) -> float:
    """Relative work per image at a working resolution: pixels × feature maps² summed over the
    blocks from 4x4 up to it (proportional to their 3x3 convolutions' multiply-adds)."""
    blocks = [4 << i for i in range(resolution.bit_length() - 2)]
    return float(sum(r * r * features(r, fmap_base, fmap_max) ** 2 for r in blocks))


class SpeedModel:
    """Seconds per kimg at each working resolution: measured where training has been; elsewhere
    priced from the measurements as a per-step overhead plus work proportional to ``cost``."""

    def __init__(self, cost: Callable[[int], float], minibatch: dict[int, int]) -> None:
        self.cost = cost  # relative work per image at a resolution (image_cost)
        self.minibatch = minibatch  # minibatch per resolution: steps per kimg = 1000 / minibatch
        self.measured: dict[int, float] = {}  # resolution -> latest seconds per kimg

    def measure(self, resolution: int, sec_per_kimg: float) -> None:
        self.measured[resolution] = sec_per_kimg

    def sec_per_kimg(self, resolution: int) -> float:
        """Measured, else ``a · steps(r) + b · cost(r)`` through the two highest measured
        resolutions (a, b >= 0), else the highest one scaled by cost alone."""
        if resolution in self.measured:
            return self.measured[resolution]
        known = sorted(self.measured)
        top = known[-1]
        if len(known) > 1:
            (s1, c1, t1), (s2, c2, t2) = [(1000 / self.minibatch[r], self.cost(r), self.measured[r])
                                          for r in known[-2:]]
            det = s1 * c2 - s2 * c1
            if det:
                a, b = (t1 * c2 - t2 * c1) / det, (s1 * t2 - s2 * t1) / det
                if a >= 0 and b >= 0:
                    return a * 1000 / self.minibatch[resolution] + b * self.cost(resolution)
        return self.measured[top] * self.cost(resolution) / self.cost(top)


def eta_seconds(schedule: Schedule, *, kimg: float, speeds: SpeedModel) -> float:
    """Seconds left from ``kimg`` to the end of ``schedule`` at the speeds of ``speeds``."""
    seconds = 0.0
    for row in schedule.table():
        left = row["kimg_end"] - max(row["kimg_start"], kimg)
        if left > 0:
            seconds += left * speeds.sec_per_kimg(row["resolution"])
    return seconds


class Tick:
    """Accumulates step statistics from ``start_nimg`` on; :meth:`close` turns them into a record."""

    def __init__(self, start_nimg: int) -> None:
        self.start_nimg = start_nimg
        self.start_time = time.perf_counter()
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, float] = defaultdict(float)

    def add(self, stats: dict[str, float]) -> None:
        """Add one step's statistics; NaN/inf values are left out of the averages."""
        for name, value in stats.items():
            if math.isfinite(value):
                self.sums[name] += value
                self.counts[name] += 1

    def close(self, *, nimg: int, schedule: Schedule, speeds: SpeedModel, phase: Phase, world: World,
              tick: int, step: int, elapsed: float) -> dict:
        """The tick's stats.jsonl record (identical on every rank: averages over all ranks); its speed
        goes into ``speeds``, which prices the ETA."""
        names = sorted(set(self.sums) | {"D/loss", "G/loss"})
        reduced = world.mean({**{f"sum:{n}": self.sums[n] for n in names},
                              **{f"count:{n}": self.counts[n] for n in names}})
        means = {n: reduced[f"sum:{n}"] / reduced[f"count:{n}"] if reduced[f"count:{n}"] else math.nan
                 for n in names}
        seconds = max(time.perf_counter() - self.start_time, 1e-9)
        images = nimg - self.start_nimg
        rate = images / seconds
        eta = None
        if rate:
            speeds.measure(phase.resolution, 1000 / rate)
            eta = eta_seconds(schedule, kimg=nimg / 1000, speeds=speeds)
        return {
            "tick": tick, "kimg": round(nimg / 1000, 3), "step": step,
            "resolution": phase.resolution, "alpha": round(phase.alpha, 4), "lod": round(phase.lod, 4),
            "phase": "fade-in" if phase.transition else "stabilize",
            "minibatch": phase.minibatch, "lr": phase.lr, **means,
            "images_per_sec": round(rate, 2), "sec_per_kimg": round(1000 / rate, 3) if rate else None,
            "sec_per_tick": round(seconds, 3), "total_sec": round(elapsed, 1),
            "eta_sec": round(eta, 1) if eta is not None else None,
            **memory_mib(world.device),
        }


def status_line(record: dict) -> str:
    """One human line per tick, e.g.
    ``tick 12  kimg 48.1  16x16 fade-in a=0.40  mb 128  D -0.31 G 1.20  2.1 s/kimg  480 img/s  ETA 3h10m``."""
    fading = f" a={record['alpha']:.2f}" if record["phase"] == "fade-in" else ""
    parts = [
        f"tick {record['tick']:<4d}", f"kimg {record['kimg']:<9.3f}",
        f"{record['resolution']}x{record['resolution']} {record['phase']}{fading}",
        f"mb {record['minibatch']}", f"D {record['D/loss']:+.4f} G {record['G/loss']:+.4f}",
        f"{record['sec_per_kimg']:.2f} s/kimg" if record["sec_per_kimg"] else "",
        f"{record['images_per_sec']:.1f} img/s",
        f"ETA {format_duration(record['eta_sec'])}" if record["eta_sec"] is not None else "",
        f"RSS {record['rss_mib'] / 1024:.2f} GiB" if record["rss_mib"] else "",
        f"GPU {record['cuda_max_allocated_mib'] / 1024:.2f} GiB" if record["cuda_max_allocated_mib"] else "",
    ]
    return "  ".join(part for part in parts if part)
