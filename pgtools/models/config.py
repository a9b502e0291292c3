"""Training configuration: the paper's presets and the one function that turns options into a config.

The trainer receives a plain :class:`TrainConfig`; it is written as ``config.json`` into every run
directory and saved inside every checkpoint, so a run can be resumed (or inspected) from either.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from pgtools.errors import PgtoolsError
from pgtools.models.schedule import TF_1GPU_MINIBATCH, Schedule

# The TF release's "preset-v2-1gpu" (minibatch per resolution, 600 + 600 kimg per resolution,
# 12,000 kimg in all, a higher learning rate at 1024) with each dataset's mirror setting.
PRESETS: dict[str, dict] = {
    "celebahq-1024": dict(resolution=1024, mirror=True, lr_per_resolution={1024: 0.0015}),
    "lsun-256": dict(resolution=256, mirror=True),
    "celeba-128": dict(resolution=128, mirror=True),
    "cifar10-32": dict(resolution=32, mirror=False),
    "mnist-32": dict(resolution=32, mirror=False),
    # Not the paper's: small quick runs on a CPU (the sample's main job, ~3.5 CPU minutes). Narrow
    # networks, minibatch 8 (steps, not images, are what a short run lacks), lr 0.003 (legible
    # digits in ~10 CPU minutes where 0.001 gave blurry strokes) and G_ema as a 0.5-kimg half-life
    # ramped up over the first 5% of training.
    "quick-32": dict(resolution=32, mirror=True, fmap_base=512, fmap_max=64, latent_dim=128, minibatch="8",
                     lr=0.003, stabilize_kimg=2, transition_kimg=2, total_kimg=18, ema_kimg=0.5, ema_rampup=0.05,
                     tick_kimg=1, image_snapshot_kimg=2, snapshot_kimg=6),
}

# Options that ``--resume`` may change; everything else would make the run a different run.
RESUME_OVERRIDES = ("total_kimg", "tick_kimg", "snapshot_kimg", "image_snapshot_kimg", "keep_snapshots",
                    "metrics", "metrics_kimg", "metrics_images", "device", "cache_gb", "data_workers")


@dataclass
class TrainConfig:
    """Everything a training run needs; JSON-serialisable through :meth:`to_json`."""

    dataset: str  # the pyramid (.h5) to train on, as an absolute path
    resolution: int  # final resolution of the networks (a level of the dataset)
    channels: int  # image channels, from the dataset
    num_classes: int = 0  # > 0: conditional (AC-GAN) on the dataset's labels
    preset: str | None = None  # the preset the defaults came from
    total_kimg: float = 12000  # length of the run in thousands of real images shown to D
    stabilize_kimg: float = 600  # kimg at each resolution before the next one fades in
    transition_kimg: float = 600  # kimg of each fade-in
    minibatch: dict[int, int] = field(default_factory=dict)  # global minibatch per resolution
    lr: float = 0.001  # Adam learning rate of G and D
    lr_per_resolution: dict[int, float] = field(default_factory=dict)  # overrides of lr
    lr_rampup_kimg: float = 0  # > 0: the Theano release's ramp-up over the first kimg
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas
    eps: float = 1e-8  # Adam epsilon
    gp_lambda: float = 10.0  # WGAN-GP penalty weight
    drift: float = 0.001  # weight of D(real)^2
    ema_beta: float = 0.999  # G_ema <- beta G_ema + (1 - beta) G, once per step (when ema_kimg is None)
    ema_kimg: float | None = None  # G_ema's half-life in kimg (beta from the minibatch); None: ema_beta
    ema_rampup: float | None = None  # with ema_kimg: half-life at most this fraction of the kimg so far
    latent_dim: int = 512  # length of z
    fmap_base: int = 8192  # feature maps: min(fmap_base / 2^(log2(res) - 1), fmap_max)
    fmap_max: int = 512
    mbstd_group_size: int = 4  # minibatch-stddev group size (within each rank's shard)
    fused_scale: bool = False  # TF release option: up/downsampling fused into the convs
    mirror: bool = False  # random horizontal flips of the reals
    seed: int = 0  # seeds the weights, every minibatch, latent and flip
    tick_kimg: float = 4  # kimg between status lines / stats.jsonl lines
    snapshot_kimg: float = 200  # kimg between checkpoints
    image_snapshot_kimg: float = 50  # kimg between fakes grids
    keep_snapshots: int = 0  # > 0: delete older network snapshots beyond this many
    metrics: list[str] = field(default_factory=list)  # e.g. ["swd", "ms-ssim"]
    metrics_kimg: float = 200  # kimg between metric evaluations
    metrics_images: int = 1024  # images per set for the metrics
    device: str = "auto"  # auto, cpu or cuda
    amp: bool = False  # mixed precision (bfloat16 where supported, else float16 + loss scaling)
    channels_last: bool = True  # NHWC memory layout for the networks and images
    tf32: bool = False  # TensorFloat-32 in CUDA convolutions and matmuls (off: float32 like the original)
    cache_gb: float = 4.0  # memory for whole pyramid levels (per machine); others are streamed
    data_workers: int = 2  # processes reading levels that are streamed from disk
    max_bad_steps: int = 10  # stop after this many consecutive steps with NaN/inf losses
    outdir: str = "training-runs"  # where numbered run directories are created

    def to_json(self) -> dict:
        """A plain dict (resolution keys become strings in JSON; :func:`from_json` restores them)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        """The config saved by :meth:`to_json`, with integer resolution keys restored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["minibatch"] = {int(k): int(v) for k, v in values.get("minibatch", {}).items()}
        values["lr_per_resolution"] = {int(k): float(v) for k, v in values.get("lr_per_resolution", {}).items()}
        values["betas"] = tuple(values.get("betas", (0.0, 0.99)))
        return cls(**values)

    def schedule(self) -> Schedule:
        """The progressive-growing schedule of this run."""
        return Schedule(final_resolution=self.resolution, stabilize_kimg=self.stabilize_kimg,
                        transition_kimg=self.transition_kimg, total_kimg=self.total_kimg,
                        minibatch=self.minibatch, lr=self.lr, lr_per_resolution=self.lr_per_resolution,
                        lr_rampup_kimg=self.lr_rampup_kimg)

    @property
    def run_name(self) -> str:
        """The name part of the run directory, e.g. ``celebahq-1024`` or ``mnist-32``."""
        return self.preset or f"{Path(self.dataset).stem}-{self.resolution}"


def default_cache_gb() -> float:
    """A quarter of the machine's physical memory, in GiB (4 where it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 4.0
    return round(total / 4 / 2**30, 2)


def parse_minibatch(text: str, resolutions: list[int], base: dict[int, int]) -> dict[int, int]:
    """``"32"`` (every resolution) or ``"4:64,8:64"`` (those resolutions; the rest from ``base``)."""
    text = text.strip()
    if text.isdigit():
        return {r: _positive_int(text, f"--minibatch {text!r}") for r in resolutions}
    table = dict(base)
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition(":")
        if not sep or not key.strip().isdigit():
            raise PgtoolsError(f"--minibatch {text!r}: expected one number or pairs like '4:64,8:32'")
        res = int(key)
        if res not in resolutions:
            raise PgtoolsError(f"--minibatch {text!r}: {res} is not a working resolution of this run "
                               f"({', '.join(map(str, resolutions))})")
        table[res] = _positive_int(value.strip(), f"--minibatch {text!r}")
    return table


def _positive_int(text: str, what: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise PgtoolsError(f"{what}: expected a positive integer, got {text!r}")
    return int(text)


def check_minibatch(minibatch: dict[int, int], *, world_size: int, group_size: int) -> None:
    """Every global minibatch must split evenly over the ranks and into minibatch-stddev groups."""
    for res, size in sorted(minibatch.items()):
        if size % world_size:
            raise PgtoolsError(f"the minibatch of {size} at {res}x{res} does not split evenly over "
                               f"{world_size} processes; use a multiple of {world_size}")
        local = size // world_size
        group = min(group_size, local) if group_size > 1 else 1
        if local % group:
            raise PgtoolsError(f"the minibatch of {local} per process at {res}x{res} is not a multiple of "
                               f"the minibatch-stddev group size {group}")


def check_device(device: str) -> None:
    """Raise a clear error for an unknown device or CUDA requested where there is none."""
    if device not in ("auto", "cpu", "cuda"):
        raise PgtoolsError(f"--device {device!r}: choose auto, cpu or cuda")
    if device != "cuda":
        return
    import torch  # here, so that reading presets and configs does not need PyTorch

    if not torch.cuda.is_available():
        build = "this PyTorch has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise PgtoolsError(f"--device cuda: CUDA is not available ({build}); use --device cpu or auto")


def _check_positive(values: dict) -> None:
    for name, value in values.items():
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise PgtoolsError(f"--{name} must be a positive number, got {value!r}")


def _dataset_facts(dataset: str, resolution: int | None, conditional: bool) -> tuple[int, int, int]:
    """(resolution, channels, num_classes) of a run on ``dataset``; validates the file."""
    from pgtools.pyramid import Pyramid  # h5py only when a dataset is read, not for the CLI's presets

    with Pyramid(dataset) as pyramid:
        working = [r for r in pyramid.levels if r >= 4]
        if not working:
            raise PgtoolsError(f"{dataset}: its top level is {pyramid.resolution}x{pyramid.resolution}; "
                               "training needs at least 4x4")
        resolution = resolution or pyramid.resolution
        if resolution in pyramid.levels and resolution < 4:
            raise PgtoolsError(f"--resolution {resolution}: training needs 4x4 or more (choose one of "
                               f"{', '.join(map(str, working))})")
        if resolution not in working:
            raise PgtoolsError(f"{dataset}: resolution {resolution} is not in the file (it holds levels up to "
                               f"{pyramid.resolution}x{pyramid.resolution}; choose one of "
                               f"{', '.join(map(str, working))})")
        labels = pyramid.labels
        if conditional and labels is None:
            raise PgtoolsError(f"{dataset}: --conditional needs labels, but the file has none")
        return resolution, pyramid.channels, labels.shape[1] if conditional else 0


def resolve_config(
    dataset: str | None,  # the pyramid; required
    *,
    preset: str | None = None,  # a key of PRESETS, or None for the paper's defaults
    minibatch: str | None = None,  # "32" or "4:64,8:32"; None: the preset's table
    conditional: bool = False,  # condition on the dataset's labels
    cache_gb: float | None = None,  # None: a quarter of physical memory
    metrics: str | list[str] | None = None,  # "swd,ms-ssim" or a list
    **options,  # any other TrainConfig field; None means "not given"
) -> TrainConfig:
    """Validate command-line style options against the dataset and build the run's config.

    Raises:
        PgtoolsError: with a message naming the option and what is accepted.
    """
    if not dataset:
        raise PgtoolsError("a dataset is required: pgtools train DATASET.h5 [options] (or --resume RUN_DIR)")
    if preset is not None and preset not in PRESETS:
        raise PgtoolsError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    options = {k: v for k, v in options.items() if v is not None}
    unknown = set(options) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise PgtoolsError(f"unknown training options: {', '.join(sorted(unknown))}")
    values = {**PRESETS.get(preset, {}), **options}
    preset_minibatch = values.pop("minibatch", None)  # a preset's is a string like the option
    minibatch = minibatch or preset_minibatch
    _check_positive({k: values.get(k) for k in ("total_kimg", "stabilize_kimg", "transition_kimg", "lr",
                                                "tick_kimg", "snapshot_kimg", "image_snapshot_kimg",
                                                "metrics_kimg", "metrics_images", "fmap_base", "fmap_max",
                                                "latent_dim", "ema_kimg", "ema_rampup")})
    if cache_gb is not None and not (math.isfinite(cache_gb) and cache_gb >= 0):
        raise PgtoolsError(f"--cache_gb must be >= 0, got {cache_gb}")
    check_device(values.get("device", "auto"))
    resolution, channels, num_classes = _dataset_facts(dataset, values.pop("resolution", None), conditional)
    resolutions = [4 << i for i in range(resolution.bit_length() - 2)]
    table = {r: TF_1GPU_MINIBATCH.get(r, 4) for r in resolutions}
    values["minibatch"] = parse_minibatch(minibatch, resolutions, table) if minibatch else table
    values["metrics"] = _metric_names(metrics)
    config = TrainConfig(dataset=str(Path(dataset).resolve()), resolution=resolution, channels=channels,
                         num_classes=num_classes, preset=preset,
                         cache_gb=default_cache_gb() if cache_gb is None else cache_gb, **values)
    validate(config)
    return config


def _metric_names(metrics: str | list[str] | None) -> list[str]:
    if not metrics:
        return []
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    return [name.strip() for name in names if name.strip()]


def validate(config: TrainConfig, world_size: int = 1) -> Schedule:
    """Check the parts of a config that do not need the dataset; returns its schedule."""
    try:
        schedule = config.schedule()
    except ValueError as err:
        raise PgtoolsError(f"invalid schedule: {err}") from None
    check_minibatch({r: config.minibatch[r] for r in schedule.resolutions}, world_size=world_size,
                    group_size=config.mbstd_group_size)
    if config.metrics:
        from pgtools.models.metrics import METRICS

        unknown = [name for name in config.metrics if name not in METRICS]
        if unknown:
            raise PgtoolsError(f"--metrics: unknown metric {', '.join(unknown)}; choose from {', '.join(METRICS)}")
        if "ms-ssim" in config.metrics and config.metrics_images % 2:
            raise PgtoolsError("--metrics_images must be even for ms-ssim (it pairs consecutive images)")
    if config.ema_rampup is not None and config.ema_kimg is None:
        raise PgtoolsError("--ema_rampup needs --ema_kimg (the ramp-up limits the EMA half-life)")
    if config.keep_snapshots < 0 or config.data_workers < 0 or config.seed < 0:
        raise PgtoolsError("--keep_snapshots, --data_workers and --seed must be >= 0")
    return schedule


def resume_config(saved: dict, **overrides) -> TrainConfig:
    """The config of a run being resumed, with the few options that may change (RESUME_OVERRIDES)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    refused = sorted(set(given) - set(RESUME_OVERRIDES))
    if refused:
        raise PgtoolsError(f"--resume continues a run with its saved settings; these cannot change: "
                           f"{', '.join('--' + name for name in refused)} (allowed: "
                           f"{', '.join('--' + name for name in RESUME_OVERRIDES)})")
    if "metrics" in given:
        given["metrics"] = _metric_names(given["metrics"])
    _check_positive({k: given.get(k) for k in ("total_kimg", "tick_kimg", "snapshot_kimg",
                                               "image_snapshot_kimg", "metrics_kimg", "metrics_images")})
    check_device(given.get("device", "auto"))
    config = dataclasses.replace(TrainConfig.from_json(saved), **given)
    validate(config)
    return config
