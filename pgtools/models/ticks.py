"""Per-tick statistics: averaging the step statistics (over ranks too), timing, memory, status line."""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict

import torch

from pgtools.models.distributed import World
from pgtools.models.schedule import Phase
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

    def close(self, *, nimg: int, total_nimg: int, phase: Phase, world: World, tick: int, step: int,
              elapsed: float) -> dict:
        """The tick's stats.jsonl record (identical on every rank: averages over all ranks)."""
        names = sorted(set(self.sums) | {"D/loss", "G/loss"})
        reduced = world.mean({**{f"sum:{n}": self.sums[n] for n in names},
                              **{f"count:{n}": self.counts[n] for n in names}})
        means = {n: reduced[f"sum:{n}"] / reduced[f"count:{n}"] if reduced[f"count:{n}"] else math.nan
                 for n in names}
        seconds = max(time.perf_counter() - self.start_time, 1e-9)
        images = nimg - self.start_nimg
        rate = images / seconds
        return {
            "tick": tick, "kimg": round(nimg / 1000, 3), "step": step,
            "resolution": phase.resolution, "alpha": round(phase.alpha, 4), "lod": round(phase.lod, 4),
            "phase": "fade-in" if phase.transition else "stabilize",
            "minibatch": phase.minibatch, "lr": phase.lr, **means,
            "images_per_sec": round(rate, 2), "sec_per_kimg": round(1000 / rate, 3) if rate else None,
            "sec_per_tick": round(seconds, 3), "total_sec": round(elapsed, 1),
            "eta_sec": round((total_nimg - nimg) / rate, 1) if rate else None,
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
