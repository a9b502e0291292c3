"""Loader throughput next to training throughput, per working resolution.

For each resolution 4 ... --max_resolution, prints the images/s of
  - the loader alone (RealImageFeed.batch) with the level cached in memory, and streamed from disk
    by worker processes (--cache_gb 0 behaviour);
  - full training steps (one D step with the gradient penalty + one G step + the EMA update).
The loader must never be the bottleneck: both loader columns should be well above the training one.

The dataset is a synthetic pyramid written to a temporary folder (or --dataset). On CPU the default
network width is reduced (--fmap_base 2048 --fmap_max 128, a quarter of the paper's widths) and the
minibatch is 16 at every resolution, so that a run takes minutes; on CUDA the defaults are the
paper's networks (8192 / 512) and its minibatch table.

    python bench/bench_train.py --max_resolution 64
    python bench/bench_train.py --device cuda --max_resolution 1024 --images 4096
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pgtools.models.config import resolve_config
from pgtools.models.data import RealImageFeed
from pgtools.models.distributed import World, select_device
from pgtools.models.loop import build_networks
from pgtools.models.schedule import Phase
from pgtools.models.step import Trainer, draw_inputs
from pgtools.pyramid import write_pyramid


def synthetic_pyramid(path: Path, resolution: int, count: int) -> Path:
    """Smooth random RGB images (blocky colour fields plus noise), written in batches."""
    rng = np.random.default_rng(0)

    def batches():
        for start in range(0, count, 256):
            n = min(256, count - start)
            coarse = rng.integers(0, 256, (n, 3, 4, 4), dtype=np.uint8)
            images = np.repeat(np.repeat(coarse, resolution // 4, axis=2), resolution // 4, axis=3)
            yield np.clip(images + rng.integers(-8, 9, images.shape), 0, 255).astype(np.uint8)

    write_pyramid(path, batches(), resolution=resolution, channels=3, count=count)
    return path


def loader_rate(feed: RealImageFeed, resolution: int, minibatch: int, steps: int) -> float:
    """Images per second of feed.batch after one warm-up minibatch."""
    feed.batch(0, resolution, 1.0, minibatch)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        feed.batch(step, resolution, 1.0, minibatch)
    return steps * minibatch / (time.perf_counter() - start)


def training_rate(trainer: Trainer, feed: RealImageFeed, phase: Phase, config, world: World, steps: int,
                  warmup: int = 2) -> float:
    """Images per second of full training steps after ``warmup`` untimed steps."""
    def one(step: int) -> None:
        trainer.step(phase, draw_inputs(feed, phase, step, config=config, world=world,
                                        channels_last=config.channels_last), nimg=step * phase.minibatch)

    for step in range(warmup):
        one(step)
    if world.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(warmup, warmup + steps):
        one(step)
    if world.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * phase.minibatch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max_resolution", type=int, default=64)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dataset", type=Path, help="an existing pyramid instead of a synthetic one")
    parser.add_argument("--images", type=int, default=2048, help="images in the synthetic pyramid")
    parser.add_argument("--fmap_base", type=int, help="default: 8192 on CUDA, 2048 on CPU")
    parser.add_argument("--fmap_max", type=int, help="default: 512 on CUDA, 128 on CPU")
    parser.add_argument("--minibatch", help="default: the paper's table on CUDA, 16 on CPU")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per resolution")
    parser.add_argument("--loader_steps", type=int, default=50, help="timed loader minibatches per resolution")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--channels_last", action="store_true")
    args = parser.parse_args()
    device = select_device(args.device)
    cpu = device.type == "cpu"
    with tempfile.TemporaryDirectory() as folder:
        dataset = args.dataset or synthetic_pyramid(Path(folder) / "bench.h5", args.max_resolution, args.images)
        config = resolve_config(
            str(dataset), resolution=args.max_resolution, device=device.type, amp=args.amp,
            channels_last=args.channels_last, fmap_base=args.fmap_base or (2048 if cpu else 8192),
            fmap_max=args.fmap_max or (128 if cpu else 512), minibatch=args.minibatch or ("16" if cpu else None),
            outdir=folder, cache_gb=4.0)
        world = World(device=device)
        G, D, G_ema = build_networks(config, device)
        trainer = Trainer(G, D, G_ema, config=config, world=world)
        print(f"device {device}, torch threads {torch.get_num_threads()}, fmap_base {config.fmap_base}, "
              f"fmap_max {config.fmap_max}, G {sum(p.numel() for p in G.parameters()) / 1e6:.2f} M parameters, "
              f"D {sum(p.numel() for p in D.parameters()) / 1e6:.2f} M, amp {config.amp}")
        print(f"{'res':>5} {'minibatch':>9} {'loader cached':>14} {'loader streamed':>16} {'training':>10}  (images/s)")
        cached = RealImageFeed(dataset, cache_bytes=2**34, device=device)
        streamed = RealImageFeed(dataset, cache_bytes=0, stream_workers=2, device=device)
        try:
            for resolution in config.schedule().resolutions:
                halvings = int(math.log2(config.resolution // resolution))
                minibatch = config.minibatch[resolution]
                phase = Phase(kimg=0.0, resolution=resolution, alpha=1.0, lod=float(halvings), phase_index=0,
                              transition=False, minibatch=minibatch, lr=config.lr, gp_halvings=halvings)
                rates = [loader_rate(cached, resolution, minibatch, args.loader_steps),
                         loader_rate(streamed, resolution, minibatch, args.loader_steps),
                         training_rate(trainer, cached, phase, config, world, args.steps)]
                print(f"{resolution:>5} {minibatch:>9} {rates[0]:>14,.0f} {rates[1]:>16,.0f} {rates[2]:>10,.1f}")
        finally:
            cached.close()
            streamed.close()


if __name__ == "__main__":
    main()
