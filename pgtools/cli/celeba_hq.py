"""create_celeba_hq and create_deltas: CelebA-HQ from CelebA plus the published deltas, and back.

The CelebA-HQ stack (SciPy, cryptography) is imported when a command runs, not with the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pgtools.atomic import check_target
from pgtools.cli.common import cap_to_cpus, command_line, echo, option, quiet_option, writer_options
from pgtools.errors import PgtoolsError
from pgtools.progress import Progress
from pgtools.pyramid import partial_path

BATCH = 8  # images written (and counted for --resume) at a time
COUNTS = ("bit_exact_images", "signed_path_images")
TASKS_PER_CPU = 8  # --num_tasks cap: each task holds a few 1024x1024 images


def _workers_option(func):
    return option("--workers", "--num_threads", "workers", type=click.IntRange(min=0), default=None,
                  callback=cap_to_cpus(), help="Worker processes, at most the usable cores [default: all cores; "
                                               "0: none]. --num_threads is the original's name.")(func)


@click.command("create_celeba_hq")
@click.argument("output", type=click.Path(dir_okay=False))
@click.argument("celeba_dir", type=click.Path())
@click.argument("deltas_dir", type=click.Path())
@option("--tolerant", is_flag=True,
        help="Where proc_md5 fails (other Pillow/libjpeg), add the delta as signed and go on instead of stopping.")
@option("--resume", is_flag=True, help="Continue an interrupted run of the same command where it stopped.")
@_workers_option
@option("--num_tasks", "in_flight", type=click.IntRange(min=1), default=None, callback=cap_to_cpus(TASKS_PER_CPU),
        help=f"Images in flight at once, bounding memory, at most {TASKS_PER_CPU} per usable core "
             f"[default: 2 x workers].")
@writer_options
@quiet_option
def create_celeba_hq(output: str, celeba_dir: str, deltas_dir: str, tolerant: bool, resume: bool, workers: int | None,
                     in_flight: int | None, overwrite: bool, compression: str, compat: bool, quiet: bool) -> None:
    """Rebuild the 1024x1024 CelebA-HQ pyramid from CelebA's photos and the published deltas.

    \b
    Example:
      pgtools create_celeba_hq celeba-hq-1024x1024.h5 ~/celeba ~/celeba-hq-deltas --tolerant
    """
    from pgtools.pyramid import PyramidWriter
    from pgtools.sources.celeba_hq import CelebAHQBuilder
    from pgtools.sources.celeba_hq.align import SIZE

    output_path = Path(output)
    check_target(output_path, overwrite)
    builder = CelebAHQBuilder(celeba_dir, deltas_dir, tolerant=tolerant, workers=workers, in_flight=in_flight)
    count = len(builder.check())
    echo(f"Found all inputs for {count:,} images (the published set has 30,000)", quiet)
    unfinished = partial_path(output_path)
    if unfinished.exists() and not resume:
        echo(f"Starting over: {unfinished} holds an unfinished run (use --resume to continue it)", quiet)
    attrs = {"command": command_line(), "options": json.dumps(click.get_current_context().params),
             "source": "celeba-hq", "celeba_dir": str(Path(celeba_dir).resolve()),
             "deltas_dir": str(Path(deltas_dir).resolve()), "tolerant": tolerant}
    progress = Progress(f"Building {output_path.name}", count, enabled=not quiet)
    writer = PyramidWriter(output_path, resolution=SIZE, channels=3, count=count, attrs=attrs, overwrite=overwrite,
                           compression=compression, compat=compat, resume=resume, keep_partial=True, progress=progress)
    start = writer.num_written
    progress.total = count - start
    exact, signed = previous = [int(writer.attrs.get(key, 0)) for key in COUNTS]
    if start:
        echo(f"Resuming after {start:,} images", quiet)
    try:
        with writer:
            for batch in builder.batches(start, BATCH):
                writer.add(batch)
                exact, signed = previous[0] + builder.stats.exact, previous[1] + builder.stats.signed
                writer.set_attrs(dict(zip(COUNTS, (exact, signed))))
                writer.flush()
    except (PgtoolsError, KeyboardInterrupt) as err:
        progress.close()
        kept = f"; {unfinished.name} keeps the images made so far: add --resume to continue" if unfinished.exists() else ""
        if isinstance(err, KeyboardInterrupt):
            raise click.ClickException(f"interrupted{kept}") from None
        raise PgtoolsError(f"{err}{kept}") from None
    progress.close()
    echo(f"Wrote {count:,} images of 1024x1024 to {output} ({exact:,} bit-exact, {signed:,} via the signed path)", quiet)


@click.command("create_deltas")
@click.argument("celeba_dir", type=click.Path())
@click.argument("targets", type=click.Path())
@click.argument("deltas_dir", type=click.Path(file_okay=False))
@option("--pairs", "pairs_file", type=click.Path(dir_okay=False), required=True,
        help="Table whose header names idx and orig_idx: which original each target is made from.")
@option("--deterministic", is_flag=True, help="Derive encryption IVs from the inputs, so reruns give identical zips.")
@option("--overwrite", is_flag=True, help="Replace DELTAS_DIR if it exists.")
@_workers_option
@quiet_option
def create_deltas(celeba_dir: str, targets: str, deltas_dir: str, pairs_file: str, deterministic: bool,
                  overwrite: bool, workers: int | None, quiet: bool) -> None:
    """Write deltas in the published CelebA-HQ format that rebuild TARGETS from CelebA's photos.

    TARGETS is a folder of 1024x1024 images named %05d.png by idx, or a pyramid whose image k goes
    with row k of --pairs.

    \b
    Example:
      pgtools create_deltas ~/celeba my_faces/ my_deltas/ --pairs pairs.txt
    """
    from pgtools.sources.celeba_hq import create_deltas as make_deltas, read_pairs

    check_target(Path(deltas_dir), overwrite)
    pairs = read_pairs(pairs_file)
    progress = Progress(f"Writing {Path(deltas_dir).name}", len(pairs), enabled=not quiet)
    written = make_deltas(celeba_dir, targets, deltas_dir, pairs=pairs, overwrite=overwrite,
                          deterministic=deterministic, workers=workers, progress=progress)
    progress.close()
    echo(f"Wrote deltas for {written:,} images to {deltas_dir} (image_list.txt and the zips)", quiet)


COMMANDS = [create_celeba_hq, create_deltas]
