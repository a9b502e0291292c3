"""train, generate and interpolate: training a Progressive GAN and using the result."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import click

from pgtools.cli.common import echo, option, quiet_option
from pgtools.errors import PgtoolsError
from pgtools.models.config import PRESETS
from pgtools.progress import Progress

DEVICES = click.Choice(["auto", "cpu", "cuda"])


def _schedule_table(rows: list[dict]) -> str:
    lines = [f"{'resolution':>10}  {'kimg':>21}  {'minibatch':>9}  {'lr':>8}  phase"]
    for row in rows:
        span = f"{row['kimg_start']:g} - {row['kimg_end']:g}"
        lines.append(f"{row['resolution']:>10}  {span:>21}  {row['minibatch']:>9}  {row['lr']:>8g}  {row['phase']}")
    return "\n".join(lines)


def _saved_config(run_dir: str) -> dict:
    """The config of a run to resume: its config.json, else the one inside its checkpoint."""
    import dataclasses

    from pgtools.models.checkpoint import load_checkpoint
    from pgtools.models.config import TrainConfig

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return load_checkpoint(run_dir)["config"]
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        saved = None
    required = {f.name for f in dataclasses.fields(TrainConfig) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING}
    if not isinstance(saved, dict) or not required <= set(saved):
        raise PgtoolsError(f"{run_dir}: not a pgtools training run (its config.json is not a pgtools train "
                           "config)")
    return saved


@click.command()
@click.argument("dataset", required=False, type=click.Path(dir_okay=False))
@option("--preset", type=click.Choice(list(PRESETS)),
        help="The paper's settings for a dataset (resolution, minibatch per resolution, mirror, lr); "
             "quick-32: small fast networks and schedule for CPU demos (not the paper's).")
@option("--resolution", type=int, help="Final resolution [default: the dataset's; lower stops earlier].")
@option("--total_kimg", type=float, help="Length of the run in thousands of real images [default: 12000].")
@option("--minibatch", help='One size for every resolution ("32") or per resolution ("4:64,8:64").')
@option("--lr", type=float, help="Adam learning rate [default: 0.001].")
@option("--fmap_base", type=int, help="Feature-map base [default: 8192].")
@option("--fmap_max", type=int, help="Most feature maps per layer [default: 512].")
@option("--latent_dim", type=int, help="Length of z [default: 512].")
@option("--fused_scale", is_flag=True, default=None, help="Fuse up/downsampling into the convs (TF option).")
@option("--ema_kimg", type=float, help="G_ema half-life in kimg [default: none, the paper's 0.999 per step].")
@option("--ema_rampup", type=float, help="With --ema_kimg: half-life at most this × kimg so far [default: none].")
@option("--stabilize_kimg", type=float, help="kimg per resolution before the next fades in [default: 600].")
@option("--transition_kimg", type=float, help="kimg of each fade-in [default: 600].")
@option("--mirror/--no-mirror", default=None, help="Random horizontal flips [default: the preset's, else off].")
@option("--conditional", is_flag=True, default=None, help="Condition on the dataset's labels (AC-GAN).")
@option("--seed", type=click.IntRange(min=0), help="Seeds weights, minibatches and latents [default: 0].")
@option("--tick_kimg", type=float, help="kimg between status lines [default: 4].")
@option("--snapshot_kimg", type=float, help="kimg between checkpoints [default: 200].")
@option("--image_snapshot_kimg", type=float, help="kimg between fakes grids [default: 50].")
@option("--keep_snapshots", type=click.IntRange(min=0), help="Keep only the newest N checkpoints [default: all].")
@option("--metrics", help="Metrics during training: swd, ms-ssim or swd,ms-ssim [default: none].")
@option("--metrics_kimg", type=float, help="kimg between metric evaluations [default: 200].")
@option("--metrics_images", type=click.IntRange(min=2), help="Images per set for the metrics [default: 1024].")
@option("--device", type=DEVICES, help="auto (CUDA when available), cpu or cuda [default: auto].")
@option("--amp", is_flag=True, default=None, help="Mixed precision in the G step (bfloat16, or float16 with loss scaling); "
        "D's loss and gradient penalty stay float32.")
@option("--channels_last/--no-channels_last", default=None,
        help="NHWC memory layout [default: on; +6% img/s at 16-32 px on CPU, faster on recent GPUs].")
@option("--tf32", is_flag=True, default=None, help="Allow TensorFloat-32 on CUDA [default: off, float32 as the original].")
@option("--cache_gb", type=float, help="Memory for whole pyramid levels [default: a quarter of RAM].")
@option("--data_workers", type=click.IntRange(min=0), help="Processes reading streamed levels [default: 2].")
@option("--outdir", type=click.Path(file_okay=False), help="Where run directories are made [default: training-runs].")
@option("--resume", type=click.Path(file_okay=False),
        help="Continue the run in this directory; latest: the newest run (highest number) in --outdir.")
@option("--init", type=click.Path(dir_okay=False), help="Start from this checkpoint's weights (e.g. made by "
        "convert), at its lod; the network shape comes from it.")
@option("--dry_run", is_flag=True, help="Print the resolved config and the schedule, then exit.")
@quiet_option
def train(dataset: str | None, preset: str | None, minibatch: str | None, conditional: bool | None,
          cache_gb: float | None, metrics: str | None, resume: str | None, init: str | None, dry_run: bool,
          quiet: bool, **options) -> None:
    """Train a Progressive GAN on a pyramid (.h5) made by a create_* command.

    Writes a numbered run directory (config.json, log.txt, stats.jsonl, reals.png, fakes<NIMG>.png,
    training_curves.png, network-snapshot-<NIMG>.pt, latest.pt; NIMG: nine digits, images shown).
    Ctrl-C or SIGTERM saves a checkpoint at the next step and exits with 130 or 143. Several GPUs:
    launch with torchrun --nproc_per_node N -m pgtools.cli train ...

    \b
    Examples:
      pgtools train celebahq-1024.h5 --preset celebahq-1024
      pgtools train mnist.h5 --preset mnist-32 --total_kimg 2000 --dry-run
      pgtools train --resume training-runs/00003-mnist-32 --total_kimg 4000
      pgtools train celebahq-1024.h5 --preset celebahq-1024 --init karras2018iclr-celebahq-1024x1024.pt
      pgtools train --resume latest
    """
    from pgtools.models.config import resolve_config, resume_config
    from pgtools.models.interrupt import Interrupted
    from pgtools.models.loop import train as run_training
    from pgtools.models.rundir import latest_run

    if resume == "latest":
        resume = str(latest_run(options.pop("outdir") or "training-runs"))
    if resume and init:
        raise PgtoolsError("--init starts a new run; --resume continues one: give only one of them")
    if init:
        from pgtools.models.warm_start import init_options

        options = init_options(init, options)
    if resume:
        if dataset or preset:
            raise PgtoolsError("--resume takes the dataset and preset from the run; do not give them again")
        given = dict(options, minibatch=minibatch, conditional=conditional, cache_gb=cache_gb, metrics=metrics)
        config = resume_config(_saved_config(resume), **given)
    else:
        config = resolve_config(dataset, preset=preset, minibatch=minibatch, conditional=bool(conditional),
                                cache_gb=cache_gb, metrics=metrics, **options)
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 prints
    if dry_run:
        if main_rank:
            click.echo(json.dumps(config.to_json(), indent=2))
            click.echo(_schedule_table(config.schedule().table()))
        return
    report = None if quiet else click.echo
    try:
        run_dir = run_training(config, resume=resume, init=init, report=report)
    except Interrupted as stop:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a late second signal must not kill the exit
            signal.signal(signum, signal.SIG_IGN)
        if main_rank:
            click.echo(str(stop)[0].upper() + str(stop)[1:], err=True)
        raise SystemExit(128 + stop.signum) from None
    echo(f"Finished: {run_dir}", quiet or not main_rank)


def _load(checkpoint: str, device: str):
    from pgtools.models.api import load

    return load(checkpoint, device=device)


def _check_class(model, class_index: int) -> int:
    if not model.num_classes:
        raise PgtoolsError("--class: this model is unconditional (it was trained without labels)")
    if class_index >= model.num_classes:
        raise PgtoolsError(f"--class {class_index}: the model has classes 0..{model.num_classes - 1}")
    return class_index


def _upscale(images, size: int | None):
    """Nearest-neighbour upscaling of generated images (a torch tensor) to ``--size``."""
    import torch.nn.functional as F

    if not size or size <= images.shape[-1]:
        return images
    if size % images.shape[-1]:
        raise PgtoolsError(f"--size {size} is not a multiple of the model's resolution {images.shape[-1]}")
    return F.interpolate(images, scale_factor=size // images.shape[-1], mode="nearest")


@click.command()
@click.argument("checkpoint", type=click.Path())
@option("--count", type=click.IntRange(min=1), default=64, show_default=True, help="Images to generate.")
@option("--grid", type=click.Path(dir_okay=False), help="Write all images as one PNG grid here.")
@option("--outdir", type=click.Path(file_okay=False), help="Write one PNG per image into this new folder.")
@option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Same seed, same images.")
@option("--class", "class_index", type=click.IntRange(min=0), help="Class of every image (conditional models).")
@option("--columns", type=click.IntRange(min=1), help="Grid width in images [default: about square].")
@option("--size", type=click.IntRange(min=1), help="Upscale (nearest) to this size [default: the model's].")
@option("--device", type=DEVICES, default="auto", show_default=True)
@option("--overwrite", is_flag=True, help="Replace existing outputs.")
@quiet_option
def generate(checkpoint: str, count: int, grid: str | None, outdir: str | None, seed: int,
             class_index: int | None, columns: int | None, size: int | None, device: str, overwrite: bool,
             quiet: bool) -> None:
    """Generate images with a model's averaged generator: a checkpoint, a run directory, an NVIDIA
    network pickle (.pkl) or a pytorch_GAN_zoo checkpoint (.pth).

    \b
    Examples:
      pgtools generate training-runs/00000-celebahq-1024 --count 64 --grid fakes.png
      pgtools generate network-snapshot-012000.pt --count 1000 --outdir fakes/ --seed 7
      pgtools generate karras2018iclr-celebahq-1024x1024.pkl --count 16 --grid celebahq.png
    """
    import torch

    from pgtools.inspection import contact_sheet
    from pgtools.models.api import to_uint8
    from pgtools.models.walk import write_frames
    from pgtools.png import image_format, save_image

    if not grid and not outdir:
        raise PgtoolsError("give --grid FILE.png and/or --outdir FOLDER")
    if grid:
        image_format(grid)  # refuse an unknown extension before any work
    model = _load(checkpoint, device)
    labels = model.random_labels(count, seed=seed)
    if class_index is not None:
        labels = torch.full((count,), _check_class(model, class_index), device=model.device)
    images = to_uint8(_upscale(model.generate(model.build_noise(count, seed=seed), labels), size))
    if grid:
        save_image(contact_sheet(images, columns), grid, overwrite=overwrite)
        echo(f"Wrote a grid of {count} images to {grid}", quiet)
    if outdir:
        write_frames(images, outdir, name="image", overwrite=overwrite)
        echo(f"Wrote {count} images to {outdir}/", quiet)


@click.command()
@click.argument("checkpoint", type=click.Path())
@click.argument("output", type=click.Path())
@option("--keyframes", type=click.IntRange(min=2), default=5, show_default=True, help="Random latents to visit.")
@option("--frames", type=click.IntRange(min=1), default=30, show_default=True, help="Frames between keyframes.")
@option("--method", type=click.Choice(["slerp", "lerp"]), default="slerp", show_default=True)
@option("--loop/--no-loop", default=True, show_default=True, help="Return to the first keyframe.")
@option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@option("--class", "class_index", type=click.IntRange(min=0), help="Class of every frame [default: 0] "
        "(conditional models).")
@option("--size", type=click.IntRange(min=1), help="Upscale (nearest) to this size [default: the model's].")
@option("--fps", type=click.FloatRange(min=1), default=30, show_default=True, help="Frames per second (.mp4).")
@option("--device", type=DEVICES, default="auto", show_default=True)
@option("--overwrite", is_flag=True, help="Replace an existing output.")
@quiet_option
def interpolate(checkpoint: str, output: str, keyframes: int, frames: int, method: str, loop: bool, seed: int,
                class_index: int, size: int | None, fps: float, device: str, overwrite: bool, quiet: bool) -> None:
    """Walk between random latents: OUTPUT.mp4 (OpenCV 'mp4v') or a folder of PNG frames.

    \b
    Examples:
      pgtools interpolate training-runs/00000-celebahq-1024 walk.mp4 --keyframes 8
      pgtools interpolate latest.pt frames/ --method lerp --frames 10 --no-loop
      pgtools interpolate celebAHQ-512.pth walk.mp4 (a pytorch_GAN_zoo checkpoint; .pkl works too)
    """
    import torch

    from pgtools.models.api import to_uint8
    from pgtools.models.walk import latent_walk, write_frames, write_video

    model = _load(checkpoint, device)
    latents = latent_walk(model.build_noise(keyframes, seed=seed).cpu(), frames, method=method, loop=loop)
    labels = None
    if model.num_classes or class_index is not None:
        labels = torch.full((len(latents),), _check_class(model, class_index or 0))
    progress = Progress(f"Writing {output}", len(latents), unit="frames", enabled=not quiet)

    def rendered():
        for start in range(0, len(latents), 16):
            part = None if labels is None else labels[start:start + 16]
            yield from to_uint8(_upscale(model.generate(latents[start:start + 16], part), size))

    if output.lower().endswith(".mp4"):
        count = write_video(rendered(), output, fps=fps, overwrite=overwrite, progress=progress)
    else:
        count = write_frames(rendered(), output, overwrite=overwrite, progress=progress)
    progress.close()
    echo(f"Wrote {count} frames to {output}", quiet)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@option("--overwrite", is_flag=True, help="Replace an existing OUTPUT.")
@quiet_option
def convert(file: str, output: str, overwrite: bool, quiet: bool) -> None:
    """Write an NVIDIA network pickle (G, D, Gs; no TensorFlow needed) as a pgtools checkpoint.

    The checkpoint works with generate, interpolate and train --init (fine-tuning from its weights).

    \b
    Example:
      pgtools convert karras2018iclr-celebahq-1024x1024.pkl celebahq-1024.pt
    """
    from pgtools.models.published.convert import convert as convert_file

    convert_file(file, output, overwrite=overwrite)
    echo(f"Wrote {output}", quiet)


COMMANDS = [train, generate, interpolate, convert]
