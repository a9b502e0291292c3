"""inspect, compare, extract, display and grid: looking at pyramids."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from typing import TYPE_CHECKING

import click

from pgtools.atomic import output_folder
from pgtools.cli.common import echo, option, quiet_option
from pgtools.errors import Damaged, Different, PgtoolsError
from pgtools.progress import Progress
from pgtools.pyramid import level_name

if TYPE_CHECKING:
    from pgtools.pyramid import Pyramid
    from pgtools.pyramid.integrity import LevelCheck

EXISTING_FILE = click.Path(dir_okay=False)


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size / 2**10:,.1f} KiB"


def _ranges(spans: list[tuple[int, int]], shown: int = 4) -> str:
    text = ", ".join(f"{start}-{stop - 1}" if stop - start > 1 else f"{start}" for start, stop in spans[:shown])
    return text + (", ..." if len(spans) > shown else "")


def _verified(file: str, info: dict, quiet: bool) -> list[LevelCheck]:
    from pgtools.inspection import verify as verify_file

    progress = Progress(f"Verifying {file}", sum(level["shape"][0] for level in info["levels"]), enabled=not quiet)
    checks = verify_file(file, progress)
    progress.close()
    return checks


@click.command()
@click.argument("file", type=EXISTING_FILE)
@option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
@option("--verify", is_flag=True, help="Read back every chunk of every level; exit 3 if any is damaged.")
def inspect(file: str, as_json: bool, verify: bool) -> None:
    """Summarise a pyramid: size, images, resolution, channels, every level's storage.

    An NVIDIA network pickle or a pytorch_GAN_zoo checkpoint is described too (kind, resolution,
    latent size, labels, parameters).

    \b
    Example:
      pgtools inspect celeba-128x128.h5 --json
      pgtools inspect celeba-128x128.h5 --verify
      pgtools inspect karras2018iclr-celebahq-1024x1024.pkl
    """
    from pgtools.inspection import describe
    from pgtools.models.published import describe_network_file

    network = describe_network_file(file)
    if network is not None:
        from pgtools.cli.networks import print_network_info

        return print_network_info(network, as_json)
    try:
        info = describe(file)
        checks = _verified(file, info, as_json) if verify else []
    except Damaged as err:
        raise (Different(str(err)) if verify else err) from None
    damaged = [check for check in checks if not check.ok]
    if as_json:
        if verify:
            info["verify"] = [{"level": level_name(check.resolution), "ok": check.ok, "damaged_images": check.damaged,
                               "reason": check.reason} for check in checks]
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        _print_summary(info)
        if checks:
            click.echo(f"\n{'level':<16}read back")
        for check in checks:
            state = "ok" if check.ok else f"damaged: images {_ranges(check.damaged)} ({check.reason})"
            click.echo(f"{level_name(check.resolution):<16}{state}")
        if checks and not damaged and any(not level["compression"].startswith("gzip") for level in info["levels"]):
            click.echo("Every chunk read back. Without gzip a chunk carries no checksum: changed bytes inside it "
                       "go unnoticed.")
    if damaged:
        raise Different(f"{file}: {len(damaged)} of {len(checks)} levels damaged")


def _print_summary(info: dict) -> None:
    images = f"{info['num_images']:,}"
    if info["incomplete"]:
        images += f" planned; {info['incomplete']}"
    rows = [
        ("HDF5 file", info["file"]),
        ("Total size", _mib(info["size_bytes"])),
        ("Number of images", images),
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
    """Compare two pyramids image by image at every level; exit 0 when identical, 3 when not.

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
    if not result.identical:
        raise Different(f"{file_a} and {file_b} differ")
    click.echo(f"All {result.compared:,} images are identical.")


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
@option("--overwrite", is_flag=True, help="Replace img*.png files already in OUTDIR (nothing else there is touched).")
@quiet_option
def extract(file: str, outdir: str, start: int, stop: int | None, step: int, resolution: int | None,
            overwrite: bool, quiet: bool) -> None:
    """Write images as PNG files img%08d.png (by image index) into a folder, new or existing.

    \b
    Example:
      pgtools extract celeba-128x128.h5 out_dir --start 0 --stop 100 --resolution 64
    """
    from pgtools.png import save_png
    from pgtools.pyramid import Pyramid

    with Pyramid(file) as pyramid:
        indices, resolution = _selection(pyramid, start, stop, step, resolution)
        folder = output_folder(outdir, r"img\d{8}\.png", overwrite=overwrite)
        progress = Progress(f"Extracting to {outdir}", len(indices), enabled=not quiet)
        for index in indices:
            save_png(pyramid.read(resolution, index, index + 1)[0], folder / f"img{index:08d}.png")
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
@option("--random", "random_seed", type=int, default=None,
        help="Pick COUNT images at random (from --start on) with this seed.")
@option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def grid(file: str, output: str, resolution: int | None, count: int, start: int, columns: int | None,
         random_seed: int | None, overwrite: bool) -> None:
    """Write one contact sheet of a pyramid's images, PNG or JPEG as OUTPUT's extension says.

    \b
    Example:
      pgtools grid celeba-128x128.h5 grid.png --resolution 64 --count 64
    """
    import numpy as np

    from pgtools.inspection import contact_sheet
    from pgtools.png import image_format, save_image
    from pgtools.pyramid import Pyramid

    image_format(output)  # refuse an unknown extension before reading anything
    with Pyramid(file) as pyramid:
        if random_seed is None:
            indices, resolution = _selection(pyramid, start, start + count, 1, resolution)
        else:
            pool, resolution = _selection(pyramid, start, None, 1, resolution)
            picked = np.random.default_rng(random_seed).choice(len(pool), min(count, len(pool)), replace=False)
            indices = np.sort(np.asarray(pool)[picked])
        images = pyramid.read_indices(resolution, list(indices))
    save_image(contact_sheet(images, columns), output, overwrite=overwrite)
    click.echo(f"Wrote a grid of {len(images)} images of {resolution}x{resolution} to {output}")


def _x_server_answers(display: str) -> bool:
    """Whether something accepts connections at an X display such as ``:0``, ``unix:1`` or ``host:10.0``."""
    parsed = re.fullmatch(r"(?P<host>[^:]*):(?P<number>\d+)(\.\d+)?", display)
    if not parsed:
        return False
    number = int(parsed["number"])
    if parsed["host"] in ("", "unix"):
        kind, addresses = socket.AF_UNIX, [f"\0/tmp/.X11-unix/X{number}", f"/tmp/.X11-unix/X{number}"]
    else:
        kind, addresses = socket.AF_INET, [(parsed["host"], 6000 + number)]
    for address in addresses:
        with socket.socket(kind, socket.SOCK_STREAM) as connection:
            connection.settimeout(2)
            try:
                connection.connect(address)
                return True
            except OSError:
                pass
    return False


def _display_problem() -> str | None:
    """Why OpenCV cannot open a window here, or None; its Qt build (X only) aborts the process instead of raising."""
    if sys.platform in ("win32", "darwin"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        return "no display available here" + (" (OpenCV's window needs X: DISPLAY is not set)"
                                              if os.environ.get("WAYLAND_DISPLAY") else "")
    if not _x_server_answers(display):
        return f"cannot open display {display} (no X server answers there)"
    return None


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
    problem = _display_problem()
    if problem:
        raise PgtoolsError(f"{problem}; {instead}")
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
