"""inspect, compare, extract, display and grid: looking at pyramids."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from pgtools.atomic import atomic_output
from pgtools.cli.common import echo, option, quiet_option
from pgtools.errors import PgtoolsError
from pgtools.progress import Progress

if TYPE_CHECKING:
    from pgtools.pyramid import Pyramid

EXISTING_FILE = click.Path(dir_okay=False)


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size / 2**10:,.1f} KiB"


@click.command()
@click.argument("file", type=EXISTING_FILE)
@option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def inspect(file: str, as_json: bool) -> None:
    """Summarise a pyramid: size, images, resolution, channels, every level's storage.

    \b
    Example:
      pgtools inspect celeba-128x128.h5 --json
    """
    from pgtools.inspection import describe

    info = describe(file)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    rows = [
        ("HDF5 file", info["file"]),
        ("Total size", _mib(info["size_bytes"])),
        ("Number of images", f"{info['num_images']:,}"),
        ("Resolution", f"{info['resolution']}x{info['resolution']}"),
        ("Color channels", info["channels"]),
        ("Size per image", f"{_mib(info['bytes_per_image'])} (all levels on disk: {_mib(info['bytes_on_disk_per_image'])})"),
        ("Labels", "x".join(map(str, info["labels"])) if info["labels"] else "none"),
    ]
    for key in ("command", "pgtools_version", "created", "source", "complete"):
        if key in info["attrs"]:
            rows.append((key.replace("_", " ").capitalize(), info["attrs"][key]))
    for name, value in rows:
        click.echo(f"{name:<20}{value}")
    click.echo(f"\n{'level':<16}{'shape':<24}{'chunks':<22}{'compression':<13}{'on disk':>12}{'ratio':>8}")
    for level in info["levels"]:
        ratio = level["bytes_uncompressed"] / max(level["bytes_on_disk"], 1)
        chunks = "x".join(map(str, level["chunks"])) if level["chunks"] else "contiguous"
        shape = "x".join(map(str, level["shape"]))
        click.echo(f"{level['name']:<16}{shape:<24}{chunks:<22}{level['compression']:<13}{_mib(level['bytes_on_disk']):>12}{ratio:>7.2f}x")
    for warning in info["warnings"]:
        click.echo(f"Warning: {warning}", err=True)


@click.command()
@click.argument("file_a", type=EXISTING_FILE)
@click.argument("file_b", type=EXISTING_FILE)
@option("--show", type=click.IntRange(min=1), default=10, show_default=True, help="Differing indices listed per level.")
def compare(file_a: str, file_b: str, show: int) -> None:
    """Compare two pyramids image by image at every level; exit 0 when identical, 1 when not.

    \b
    Example:
      pgtools compare mine.h5 theirs.h5
    """
    from pgtools.inspection import compare as compare_files

    result = compare_files(file_a, file_b, show=show)
    for problem in result.problems:
        click.echo(problem.capitalize())
    for level in result.levels:
        if level.differing:
            more = ", ..." if level.differing > len(level.first) else ""
            click.echo(f"data{level.resolution}x{level.resolution}: {level.differing:,} of {result.compared:,} images differ: "
                       + ", ".join(map(str, level.first)) + more)
    if result.identical:
        click.echo(f"All {result.compared:,} images are identical.")
    else:
        sys.exit(1)


def _range_options(func):
    for decorate in reversed([
        option("--start", type=click.IntRange(min=0), default=0, show_default=True, help="First image index."),
        option("--stop", type=click.IntRange(min=0), default=None, help="Stop before this index [default: all]."),
        option("--step", type=click.IntRange(min=1), default=1, show_default=True, help="Take every STEP-th image."),
        option("--resolution", type=int, default=None, help="Level to use [default: the full resolution]."),
    ]):
        func = decorate(func)
    return func


def _selection(pyramid: Pyramid, start: int, stop: int | None, step: int, resolution: int | None) -> tuple[range, int]:
    resolution = resolution or pyramid.resolution
    if resolution not in pyramid.levels:
        raise PgtoolsError(f"{pyramid.path}: no {resolution}x{resolution} level (levels: {', '.join(map(str, pyramid.levels))})")
    indices = range(start, min(pyramid.num_images, stop if stop is not None else pyramid.num_images), step)
    if not indices:
        raise PgtoolsError(f"no images selected: the file holds {pyramid.num_images:,} (indices 0..{pyramid.num_images - 1})")
    return indices, resolution


@click.command()
@click.argument("file", type=EXISTING_FILE)
@click.argument("outdir", type=click.Path(file_okay=False))
@_range_options
@option("--overwrite", is_flag=True, help="Replace OUTDIR if it exists.")
@quiet_option
def extract(file: str, outdir: str, start: int, stop: int | None, step: int, resolution: int | None,
            overwrite: bool, quiet: bool) -> None:
    """Write images as PNG files img%08d.png (by image index) into a new folder.

    \b
    Example:
      pgtools extract celeba-128x128.h5 out_dir --start 0 --stop 100 --resolution 64
    """
    from pgtools.png import to_pil
    from pgtools.pyramid import Pyramid

    with Pyramid(file) as pyramid:
        indices, resolution = _selection(pyramid, start, stop, step, resolution)
        progress = Progress(f"Extracting to {outdir}", len(indices), enabled=not quiet)
        with atomic_output(outdir, overwrite=overwrite, is_dir=True) as temp:
            for index in indices:
                to_pil(pyramid.read(resolution, index, index + 1)[0]).save(temp / f"img{index:08d}.png")
                progress()
        progress.close()
    echo(f"Wrote {len(indices):,} images of {resolution}x{resolution} to {outdir}", quiet)


@click.command()
@click.argument("file", type=EXISTING_FILE)
@click.argument("output", type=click.Path(dir_okay=False))
@option("--resolution", type=int, default=None, help="Level to show [default: the full resolution].")
@option("--count", type=click.IntRange(min=1), default=64, show_default=True, help="Images in the grid.")
@option("--start", type=click.IntRange(min=0), default=0, show_default=True, help="First image index.")
@option("--columns", type=click.IntRange(min=1), default=None, help="Images per row [default: square].")
@option("--random", "random_seed", type=int, default=None, help="Pick images at random with this seed.")
@option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def grid(file: str, output: str, resolution: int | None, count: int, start: int, columns: int | None,
         random_seed: int | None, overwrite: bool) -> None:
    """Write one PNG contact sheet of a pyramid's images.

    \b
    Example:
      pgtools grid celeba-128x128.h5 grid.png --resolution 64 --count 64
    """
    import numpy as np

    from pgtools.inspection import contact_sheet
    from pgtools.png import save_png
    from pgtools.pyramid import Pyramid

    with Pyramid(file) as pyramid:
        if random_seed is None:
            indices, resolution = _selection(pyramid, start, start + count, 1, resolution)
        else:
            _, resolution = _selection(pyramid, 0, None, 1, resolution)
            indices = np.sort(np.random.default_rng(random_seed).choice(pyramid.num_images, min(count, pyramid.num_images), replace=False))
        images = pyramid.read_indices(resolution, list(indices))
    save_png(contact_sheet(images, columns), output, overwrite=overwrite)
    click.echo(f"Wrote a grid of {len(images)} images of {resolution}x{resolution} to {output}")


def _has_display() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command()
@click.argument("file", type=EXISTING_FILE)
@_range_options
def display(file: str, start: int, stop: int | None, step: int, resolution: int | None) -> None:
    """Show images one at a time in a window: SPACE/ENTER for the next, ESC to quit.

    \b
    Example:
      pgtools display celeba-128x128.h5 --start 100 --step 10
    """
    instead = "use `pgtools grid FILE out.png` or `pgtools extract FILE DIR` instead"
    if not _has_display():
        raise PgtoolsError(f"no display available here; {instead}")
    import cv2

    from pgtools.pyramid import Pyramid

    with Pyramid(file) as pyramid:
        indices, resolution = _selection(pyramid, start, stop, step, resolution)
        click.echo("Press SPACE or ENTER for the next image, ESC to quit.")
        try:
            for index in indices:
                image = pyramid.read(resolution, index, index + 1)[0].transpose(1, 2, 0)
                cv2.imshow(f"{file}", image[:, :, ::-1] if image.shape[2] == 3 else image)
                click.echo(f"Image {index}")
                while (key := cv2.waitKey() & 0xFF) not in (32, 13, 10, 27):
                    pass
                if key == 27:
                    break
        except cv2.error as err:
            raise PgtoolsError(f"cannot open a window ({str(err).strip().splitlines()[-1]}); {instead}") from None
        finally:
            cv2.destroyAllWindows()


COMMANDS = [inspect, compare, extract, display, grid]
