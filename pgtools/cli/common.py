"""What every command shares: error handling, dashed aliases, output options, progress, metadata."""

from __future__ import annotations

import functools
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click

from pgtools.errors import PgtoolsError
from pgtools.progress import Progress
from pgtools.pyramid import COMPRESSIONS, DEFAULT_COMPRESSION

if TYPE_CHECKING:
    from pgtools.sources import Source


def option(*names: str, **kwargs) -> Callable:
    """A Click option whose underscored names (``--export_labels``) also accept dashes."""
    spelled = list(names)
    for name in names:
        if name.startswith("--") and "_" in name:
            spelled.append(name.replace("_", "-"))
    return click.option(*spelled, **kwargs)


def workers_option(func: Callable) -> Callable:
    return option("--workers", type=click.IntRange(min=0), default=None,
                  help="Worker processes for decoding and resizing [default: all cores; 0: none].")(func)


def quiet_option(func: Callable) -> Callable:
    return option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")(func)


def writer_options(func: Callable) -> Callable:
    """--overwrite, --compression and --compat: how a pyramid is written."""
    decorators = [
        option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists."),
        option("--compression", type=click.Choice(COMPRESSIONS), default=DEFAULT_COMPRESSION, show_default=True,
               help="HDF5 compression of every level (uncompressed reads fastest)."),
        option("--compat", is_flag=True, help="The original h5tool's chunking and gzip-4, exactly."),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


def output_options(func: Callable) -> Callable:
    """--overwrite, --compression, --compat, --workers and --quiet for every create_* command."""
    return writer_options(workers_option(quiet_option(func)))


def command_line() -> str:
    """The command as typed, for the file's metadata."""
    return shlex.join(["pgtools", *sys.argv[1:]])


def echo(message: str, quiet: bool = False) -> None:
    """Print a result line unless --quiet."""
    if not quiet:
        click.echo(message)


def write_source(output: str, source: Source, *, overwrite: bool, compression: str, compat: bool, quiet: bool,
                 options: dict, **writer_options) -> int:
    """Write a source as a pyramid with progress and metadata; print a one-line summary."""
    from pgtools.pyramid import PyramidWriter

    attrs = {"command": command_line(), "options": json.dumps(options, default=str), **source.attrs}
    progress = Progress(f"Writing {Path(output).name}", source.count, enabled=not quiet)
    with PyramidWriter(output, resolution=source.resolution, channels=source.channels, count=source.count,
                       attrs=attrs, overwrite=overwrite, compression=compression, compat=compat,
                       progress=progress, **writer_options) as writer:
        for batch in source.batches:
            writer.add(batch)
        writer.set_attrs({key: value for key, value in source.attrs.items() if value is not None})
        if source.labels is not None:
            writer.set_labels(source.labels)
    progress.close()
    echo(f"Wrote {writer.num_written:,} images of {source.resolution}x{source.resolution}x{source.channels} to {output} "
         f"in {progress.elapsed:.1f} s ({writer.num_written / max(progress.elapsed, 1e-9):,.0f} images/s)", quiet)
    return writer.num_written


def user_errors(func: Callable) -> Callable:
    """Turn PgtoolsError and OS errors into Click's one-line ``Error: ...`` and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except PgtoolsError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            raise click.ClickException(f"{err.filename or ''}: {err.strerror or err}".lstrip(": ")) from None

    return wrapper
