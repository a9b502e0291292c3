"""Published Progressive GANs: NVIDIA's TF release pickles and pytorch_GAN_zoo checkpoints.

:func:`read_published` recognises a file by its content (not its extension) and returns its
networks as PyTorch modules; pgtools' own checkpoints and run directories are left to
:mod:`pgtools.models.checkpoint`.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pgtools.errors import PgtoolsError

if TYPE_CHECKING:  # torch is imported only when a network is read, so inspecting a pyramid stays light
    from torch import nn

NVIDIA, ZOO = "nvidia-pickle", "pytorch-gan-zoo"
_LEGACY_TORCH = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."  # torch.save before 1.6: magic number first
_ZOO_MARK = b"models.utils.config"


def sniff(path: str | os.PathLike) -> str | None:
    """NVIDIA or ZOO for a published network file, None for anything else (pgtools checkpoints, folders)."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, "rb") as file:
        head = file.read(1 << 20)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            return ZOO if pickles and _ZOO_MARK in archive.read(pickles[0]) else None
    if head.startswith(_LEGACY_TORCH):
        return ZOO if _ZOO_MARK in head else None
    return NVIDIA if head[:1] == b"\x80" else None


@dataclass
class PublishedNetworks:
    """The networks of a published file, as PyTorch modules, with where they stand."""

    kind: str  # NVIDIA or ZOO
    generators: dict[str, nn.Module]  # "Gs" (the averaged generator) and "G"
    discriminator: nn.Module | None  # D (None: a zoo file without netD)
    options: dict[str, dict]  # constructor arguments of "G" and "D" (pgtools networks) or the zoo's
    resolution: int  # working resolution the generator evaluates at
    alpha: float  # its fade-in weight (pgtools convention: 1 = the newest block only)
    output_resolution: int  # size of the images the original code returns
    lod: float  # level of detail (NVIDIA: the pickled ``lod``; zoo: from its alpha)
    settings: dict = field(default_factory=dict)  # the file's own options (static_kwargs / zoo config)

    def generator(self, name: str = "Gs") -> nn.Module:
        """``Gs`` (averaged; the zoo's ``avgG``) or ``G`` (the zoo's ``netG``)."""
        if name not in self.generators:
            raise PgtoolsError(f"network {name!r}: choose {' or '.join(self.generators)} (the discriminator "
                               "is PublishedNetworks.discriminator)")
        return self.generators[name]


def _read_nvidia(path: Path) -> PublishedNetworks:
    from pgtools.models.published.nvidia import to_pgtools, working_point
    from pgtools.models.published.tfpickle import read_tf_pickle

    G, D, Gs = read_tf_pickle(path)
    try:
        (g, g_options), (gs, _), (d, d_options) = (to_pgtools(G, "generator"), to_pgtools(Gs, "generator"),
                                                   to_pgtools(D, "discriminator"))
        lod = float(Gs.variables["lod"])
        resolution, alpha = working_point(lod, g_options["resolution"])
    except PgtoolsError as err:
        raise PgtoolsError(f"{path}: {err}") from None
    return PublishedNetworks(NVIDIA, {"Gs": gs, "G": g}, d, {"G": g_options, "D": d_options}, resolution, alpha,
                             g_options["resolution"], lod, dict(Gs.static_kwargs))


def _read_zoo(path: Path) -> PublishedNetworks:
    from pgtools.models.published.zoo import read_zoo, zoo_discriminator, zoo_generator, zoo_options

    state = read_zoo(path)
    try:
        generators = {name: zoo_generator(state, key) for name, key in (("Gs", "avgG"), ("G", "netG"))
                      if key in state}
        options = zoo_options(state["config"])
        discriminator = zoo_discriminator(state) if state.get("netD") else None
    except PgtoolsError as err:
        raise PgtoolsError(f"{path}: {err}") from None
    resolution = 4 << (len(options["depths"]) - 1)
    zoo_alpha = float(state["config"].get("alpha", 0)) if resolution > 4 else 0.0
    return PublishedNetworks(ZOO, generators, discriminator, {"G": options}, resolution, 1.0 - zoo_alpha, resolution,
                             zoo_alpha, state["config"])


def read_published(path: str | os.PathLike) -> PublishedNetworks | None:
    """The networks of an NVIDIA pickle or a zoo checkpoint; None when ``path`` is neither."""
    kind = sniff(path)
    if kind is None:
        return None
    return (_read_nvidia if kind == NVIDIA else _read_zoo)(Path(path))


def describe_network_file(path: str | os.PathLike) -> dict | None:
    """Facts about a published network file for ``pgtools inspect``; None when it is not one."""
    nets = read_published(path)
    if nets is None:
        return None
    gs = nets.generator("Gs")
    parameters = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.generators.items()}
    if nets.discriminator is not None:
        parameters["D"] = sum(p.numel() for p in nets.discriminator.parameters())
    return {"file": str(path), "kind": nets.kind, "resolution": gs.resolution, "channels": gs.channels,
            "latent_size": gs.latent_dim, "label_size": gs.num_classes, "lod": nets.lod,
            "working_resolution": nets.resolution, "alpha": nets.alpha, "parameters": parameters,
            "settings": nets.settings}
