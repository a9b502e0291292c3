"""Starting a new run from the weights of a checkpoint (``pgtools train --init``).

The networks' shape comes from the file: options that would change it are refused, and the run
starts at the schedule point of the file's level of detail with fresh optimizers.
"""

from __future__ import annotations

import os

from pgtools.errors import PgtoolsError
from pgtools.models.checkpoint import load_checkpoint

SHAPE_OPTIONS = ("resolution", "fmap_base", "fmap_max", "latent_dim", "mbstd_group_size", "fused_scale")


def shape_of(networks: dict) -> dict:
    """The training options that give a checkpoint's ``networks`` constructor arguments."""
    g, d = networks["G"], networks["D"]
    return {"resolution": g["resolution"], "fmap_base": g["fmap_base"], "fmap_max": g["fmap_max"],
            "latent_dim": g["latent_dim"], "mbstd_group_size": d.get("mbstd_group_size", 4),
            "fused_scale": bool(g.get("fused_scale", False))}


def init_options(path: str | os.PathLike, options: dict) -> dict:
    """``options`` with the network shape of the checkpoint at ``path``; conflicting ones are refused."""
    shape = shape_of(load_checkpoint(path)["networks"])
    conflicts = [f"--{name} {options[name]} (the file has {value})" for name, value in shape.items()
                 if options.get(name) is not None and options[name] != value]
    if conflicts:
        raise PgtoolsError(f"--init {path}: the networks' shape comes from the file; leave out "
                           f"{', '.join(conflicts)}")
    return {**options, **shape}


def check_networks(path: str | os.PathLike, saved: dict, run: dict) -> None:
    """Refuse a checkpoint whose networks differ from the run's (e.g. channels or labels of the data)."""
    if saved == run:
        return
    differ = [f"{role}.{key}: file {saved[role].get(key)!r}, run {run[role].get(key)!r}"
              for role in ("G", "D") for key in sorted(set(saved[role]) | set(run[role]))
              if saved[role].get(key) != run[role].get(key)]
    raise PgtoolsError(f"--init {path}: its networks do not fit this run ({'; '.join(differ)}); the dataset must "
                       "have the file's channels, and labels (--conditional) when the file has them")
