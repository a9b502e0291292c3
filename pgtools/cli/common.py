"""What every command shares: error handling, dashed aliases, output options, progress, metadata."""

from __future__ import annotations

import functools
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click
from click.core import ParameterSource

from pgtools.errors import Different, PgtoolsError
from pgtools.parallel import usable_cpus
from pgtools.progress import Progress
from pgtools.pyramid import COMPAT_COMPRESSION, COMPRESSIONS, DEFAULT_COMPRESSION

if TYPE_CHECKING:
    from pgtools.sources import Source


def option(*names: str, **kwargs) -> Callable:
    """A Click option whose underscored names (``--export_labels``) also accept dashes."""
    spelled = list(names)
    for name in names:
        if name.startswith("--") and "_" in name:
            spelled.append(name.replace("_", "-"))
    return click.option(*spelled, **kwargs)


def cap_to_cpus(per_cpu: int = 1) -> Callable:
    """A Click callback capping an option at ``per_cpu`` x the usable CPU cores, with a warning on stderr."""

    def callback(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
        limit = per_cpu * usable_cpus()
        if value is None or value <= limit:
            return value
        per = "" if per_cpu == 1 else f"{per_cpu} x "
        click.echo(f"Warning: {param.opts[0]} {value} capped at {limit} ({per}the usable CPU cores)", err=True)
        return limit

    return callback


def workers_option(func: Callable) -> Callable:
    return option("--workers", type=click.IntRange(min=0), default=None, callback=cap_to_cpus(),
                  help="Worker processes for decoding and resizing, at most the usable cores "
                       "[default: all cores; 0: none].")(func)


def quiet_option(func: Callable) -> Callable:
    return option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")(func)


def _refuse_compat_with_compression(func: Callable) -> Callable:
    """--compat writes gzip-4 as the original did: refuse another --compression rather than ignore it."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        explicit = ctx.get_parameter_source("compression") is not ParameterSource.DEFAULT
        if kwargs["compat"] and explicit and kwargs["compression"] != COMPAT_COMPRESSION:
            raise click.UsageError(f"--compat writes {COMPAT_COMPRESSION} as the original h5tool did; "
                                   f"drop --compat or --compression {kwargs['compression']}")
        return func(*args, **kwargs)

    return wrapper


def writer_options(func: Callable) -> Callable:
    """--overwrite, --compression and --compat: how a pyramid is written."""
    func = _refuse_compat_with_compression(func)
    decorators = [
        option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists."),
        option("--compression", type=click.Choice(COMPRESSIONS), default=DEFAULT_COMPRESSION, show_default=True,
               help="HDF5 compression of every level (uncompressed reads fastest)."),
        option("--compat", is_flag=True,
               help=f"The original h5tool's chunking and {COMPAT_COMPRESSION}, exactly (excludes --compression)."),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


def output_options(func: Callable) -> Callable:
    """--overwrite, --compression, --compat and --quiet for every create_* command."""
    return writer_options(quiet_option(func))


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


class _Finding(click.ClickException):
    """What a check found (files differ, levels damaged): printed as it is, without ``Error:``."""

    exit_code = Different.exit_code

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True, file=file)


def user_errors(func: Callable) -> Callable:
    """Turn PgtoolsError and OS errors into one line and the exit status of the error's kind.

    Exit statuses: 0 success, 1 error (``Error: ...``), 2 usage error (Click's own), 3 a check
    found the files different or damaged (:class:`pgtools.errors.Different`).
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Different as err:
            raise _Finding(str(err)) from None
        except PgtoolsError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            raise click.ClickException(f"{err.filename or ''}: {err.strerror or err}".lstrip(": ")) from None

    return wrapper
