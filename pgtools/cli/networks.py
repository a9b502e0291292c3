"""``pgtools inspect`` for network files (NVIDIA pickles, pytorch_GAN_zoo checkpoints)."""

from __future__ import annotations

import json

import click


def print_network_info(info: dict, as_json: bool) -> None:
    """Print what :func:`pgtools.models.published.describe_network_file` found."""
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    kinds = {"nvidia-pickle": "NVIDIA TF release pickle (G, D, Gs)",
             "pytorch-gan-zoo": "pytorch_GAN_zoo checkpoint (netG, netD, avgG)"}
    working = f"{info['working_resolution']}x{info['working_resolution']}"
    rows = [("Network file", info["file"]), ("Kind", kinds[info["kind"]]),
            ("Resolution", f"{info['resolution']}x{info['resolution']}"),
            ("Working point", f"lod {info['lod']:g}: {working}, alpha {info['alpha']:g}"),
            ("Color channels", info["channels"]), ("Latent size", info["latent_size"]),
            ("Label size", info["label_size"] or "none"),
            ("Parameters", ", ".join(f"{name} {count:,}" for name, count in info["parameters"].items()))]
    for name, value in rows:
        click.echo(f"{name:<20}{value}")
    click.echo("Settings            " + ", ".join(f"{k}={v!r}" for k, v in info["settings"].items()))
