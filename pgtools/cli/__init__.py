"""The ``pgtools`` command: thin Click wiring over the library."""

from __future__ import annotations

import click

from pgtools import __version__
from pgtools.cli.common import user_errors


class Commands(click.Group):
    """Accepts dashed spellings of commands (``create-mnist``) and turns user errors into one line."""

    def get_command(self, ctx: click.Context, name: str):
        return super().get_command(ctx, name) or super().get_command(ctx, name.replace("-", "_"))

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.callback = user_errors(cmd.callback)
        super().add_command(cmd, name)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110, "terminal_width": 110})
@click.version_option(__version__, prog_name="pgtools")
def main() -> None:
    """Datasets and training for Progressive Growing of GANs.

    \b
    Example:
      pgtools create_custom mine.h5 ~/my_images && pgtools inspect mine.h5
    """


def _register() -> None:
    from pgtools.cli import celeba_hq, datasets, metrics, runs, tools, train

    for module in (datasets, celeba_hq, tools, train, runs, metrics):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
