"""Everything a newly lent GPU machine should show, in one go (about 8 minutes on one GPU).

1. Throughput: the paper's networks (fmap_base 8192, fmap_max 512, latent 512) and its minibatch
   per resolution; training img/s and peak memory at every resolution 4 ... 1024, in float32 and
   with --amp, each with and without --channels_last (a few dozen steps each).
2. A real training run of about 3 minutes (pgtools train in a subprocess, sized from the measured
   rates): a checkpoint, a SIGKILL, then --resume to the end.
3. Data parallelism over every GPU present (torchrun, nccl); skipped with one GPU.

Writes one JSON (--out) and prints a table. On the CPU, ``--device cpu --quick`` runs the same
code with tiny networks up to 16x16 in seconds (the test suite runs it).

    python bench/gpu_check.py --out gpu_check.json
    python bench/gpu_check.py --device cpu --quick --out /tmp/check.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_train import synthetic_pyramid, training_rate
from pgtools.models.checkpoint import load_checkpoint
from pgtools.models.config import resolve_config
from pgtools.models.data import RealImageFeed
from pgtools.models.distributed import World, select_device
from pgtools.models.loop import build_networks
from pgtools.models.precision import set_tf32
from pgtools.models.schedule import TF_1GPU_MINIBATCH, Phase
from pgtools.models.step import Trainer

VARIANTS = [dict(amp=amp, channels_last=cl) for amp in (False, True) for cl in (False, True)]
# The full check and the CPU smoke test: networks, sizes and how long each part may take.
FULL = dict(fmap_base=8192, fmap_max=512, latent_dim=512, resolution=1024, minibatch=None, steps=24, warmup=4, images=64,
            run_resolution=64, run_seconds=180, ddp_seconds=60)
QUICK = dict(fmap_base=64, fmap_max=16, latent_dim=16, resolution=16, minibatch="8", steps=2, warmup=1, images=32,
             run_resolution=16, run_seconds=6, ddp_seconds=10)


def throughput(dataset: Path, device: torch.device, sizes: dict, folder: str) -> list[dict]:
    """img/s and peak CUDA memory of full training steps per resolution and variant."""
    rows = []
    with RealImageFeed(dataset, cache_bytes=2**34, device=device) as feed:
        for variant in VARIANTS:
            config = resolve_config(str(dataset), device=device.type, outdir=folder, cache_gb=4.0,
                                    **{k: sizes[k] for k in ("fmap_base", "fmap_max", "latent_dim", "resolution",
                                                             "minibatch")},
                                    **variant)
            world = World(device=device)
            G, D, G_ema = build_networks(config, device)
            trainer = Trainer(G, D, G_ema, config=config, world=world)
            for resolution in config.schedule().resolutions:
                halvings = int(math.log2(config.resolution // resolution))
                phase = Phase(kimg=0.0, resolution=resolution, alpha=1.0, lod=float(halvings), phase_index=0,
                              transition=False, minibatch=config.minibatch[resolution], lr=config.lr,
                              gp_halvings=halvings)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                rate = training_rate(trainer, feed, phase, config, world, sizes["steps"], warmup=sizes["warmup"])
                peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
                rows.append(dict(variant, resolution=resolution, minibatch=phase.minibatch,
                                 images_per_sec=round(rate, 2), peak_mib=None if peak is None else round(peak, 1)))
            del G, D, G_ema, trainer
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def _train_command(dataset: Path, outdir: Path, device: str, sizes: dict, schedule: dict) -> list[str]:
    options = dict(resolution=sizes["run_resolution"], fmap_base=sizes["fmap_base"], fmap_max=sizes["fmap_max"],
                   latent_dim=sizes["latent_dim"], device=device, outdir=outdir, cache_gb=4, data_workers=0,
                   image_snapshot_kimg=schedule["total_kimg"], **schedule)
    if sizes["minibatch"]:
        options["minibatch"] = sizes["minibatch"]
    argv = [sys.executable, "-m", "pgtools.cli", "train", str(dataset), "--quiet"]
    for name, value in options.items():
        argv += [f"--{name}", str(value)]
    return argv


def run_schedule(rows: list[dict], sizes: dict, seconds: float) -> dict:
    """A growing schedule up to ``run_resolution`` that lasts about ``seconds`` at the measured
    float32 channels-last rates (each phase gets the same kimg)."""
    rates = {r["resolution"]: r["images_per_sec"] for r in rows if not r["amp"] and r["channels_last"]}
    resolutions = [r for r in sorted(rates) if r <= sizes["run_resolution"]]
    # Phases: stabilise 4, then fade in + stabilise each higher resolution; time per kimg of each.
    sec_per_kimg = [1000 / rates[resolutions[0]]] + [2000 / rates[r] for r in resolutions[1:]]
    at_least = 4 * max(r["minibatch"] for r in rows) / 1000  # four steps of the largest minibatch
    phase_kimg = max(round(0.6 * seconds / sum(sec_per_kimg), 3), at_least)
    total = phase_kimg * (2 * len(resolutions) - 1)
    return dict(stabilize_kimg=phase_kimg, transition_kimg=phase_kimg, total_kimg=round(total, 3),
                tick_kimg=round(total / 12, 4), snapshot_kimg=round(total / 3, 4))


def kill_and_resume(dataset: Path, device: torch.device, sizes: dict, schedule: dict, folder: Path) -> dict:
    """Train, SIGKILL after the first checkpoint, --resume to the end; what happened and how long."""
    command = _train_command(dataset, folder, device.type, sizes, schedule)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = None
    while process.poll() is None and run is None:
        time.sleep(0.1)
        run = next(iter(folder.glob("*/latest.pt")), None)
    killed_at = None
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        killed_at = round(time.perf_counter() - start, 1)
    first = process.communicate()[0]
    runs = sorted(p for p in folder.iterdir() if p.is_dir())
    if not runs:
        return dict(ok=False, error=f"no run directory; output: {first[-2000:]}")
    resume = subprocess.run([sys.executable, "-m", "pgtools.cli", "train", "--resume", str(runs[-1]), "--quiet"],
                            capture_output=True, text=True)
    seconds = round(time.perf_counter() - start, 1)
    state = load_checkpoint(runs[-1])
    log = (runs[-1] / "log.txt").read_text()
    done = state["position"]["kimg"] >= schedule["total_kimg"] - 1e-9
    return dict(ok=resume.returncode == 0 and done and killed_at is not None and "resumed from" in log,
                seconds=seconds, killed_at_sec=killed_at, final_kimg=state["position"]["kimg"],
                final_resolution=state["position"]["resolution"], schedule=schedule,
                error=None if resume.returncode == 0 else resume.stderr[-2000:])


def data_parallel(dataset: Path, device: torch.device, sizes: dict, schedule: dict, folder: Path) -> dict:
    """``torchrun --nproc_per_node N`` over every GPU (nccl); skipped below two GPUs."""
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if count < 2:
        return dict(ok=None, skipped=f"needs 2 or more CUDA GPUs, {count} visible")
    unit = 4 * count  # one minibatch-stddev group of 4 per GPU at least
    minibatch = {r: max(m // unit, 1) * unit for r, m in TF_1GPU_MINIBATCH.items() if r <= sizes["run_resolution"]}
    command = _train_command(dataset, folder, "cuda", sizes, schedule)
    command[1:3] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={count}", "-m", "pgtools.cli"]
    command += ["--minibatch", ",".join(f"{r}:{m}" for r, m in minibatch.items())]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    return dict(ok=result.returncode == 0, gpus=count, seconds=round(time.perf_counter() - start, 1),
                error=None if result.returncode == 0 else result.stderr[-2000:])


def table(report: dict) -> str:
    """The throughput rows as one line per resolution, then the two runs."""
    lines = [f"{'res':>5} {'mb':>4}" + "".join(f" {name:>22}" for name in ("fp32", "fp32 channels_last",
                                                                           "amp", "amp channels_last"))]
    by_resolution: dict[int, list[dict]] = {}
    for row in report["throughput"]:
        by_resolution.setdefault(row["resolution"], []).append(row)
    for resolution, rows in sorted(by_resolution.items()):
        cells = [f"{r['images_per_sec']:>9.1f} img/s" + (f" {r['peak_mib'] / 1024:>5.2f}G" if r["peak_mib"] else "")
                 for r in rows]
        lines.append(f"{resolution:>5} {rows[0]['minibatch']:>4}" + "".join(f" {c:>22}" for c in cells))
    lines.append(f"train + SIGKILL + --resume: {json.dumps(report['kill_and_resume'])}")
    lines.append(f"data parallel: {json.dumps(report['data_parallel'])}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="tiny networks up to 16x16 (a smoke test)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the JSON report")
    args = parser.parse_args()
    device = select_device(args.device)
    sizes = QUICK if args.quick else FULL
    set_tf32(False)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as pgtools train does
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        dataset = synthetic_pyramid(Path(folder) / "check.h5", sizes["resolution"], sizes["images"])
        rows = throughput(dataset, device, sizes, folder)
        schedule = run_schedule(rows, sizes, sizes["run_seconds"])
        (Path(folder) / "kill").mkdir()
        resumed = kill_and_resume(dataset, device, sizes, schedule, Path(folder) / "kill")
        ddp_schedule = run_schedule(rows, sizes, sizes["ddp_seconds"])
        (Path(folder) / "ddp").mkdir()
        parallel = data_parallel(dataset, device, sizes, ddp_schedule, Path(folder) / "ddp")
    report = dict(device=str(device), name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                  torch=torch.__version__, quick=args.quick, threads=torch.get_num_threads(),
                  networks={k: sizes[k] for k in ("fmap_base", "fmap_max", "latent_dim")},
                  seconds=round(time.perf_counter() - started, 1), throughput=rows, kill_and_resume=resumed,
                  data_parallel=parallel)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"wrote {args.out} ({report['seconds']} s)")
    return 0 if resumed["ok"] and parallel["ok"] is not False else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
