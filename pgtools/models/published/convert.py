"""An NVIDIA pickle as a pgtools checkpoint: generate from it, or start training from its weights."""

from __future__ import annotations

import os
from pathlib import Path

from pgtools.errors import PgtoolsError
from pgtools.models import checkpoint as ckpt
from pgtools.models.published import NVIDIA, read_published


def published_state(path: str | os.PathLike) -> dict:
    """A checkpoint dict (see :mod:`pgtools.models.checkpoint`) holding a published file's G, D and Gs.

    It has no optimizer, RNG or progress state: it starts runs (``train --init``), it does not
    resume them. ``position.kimg`` is None (the pickles do not record it).

    Raises:
        PgtoolsError: not a published file, or a pytorch_GAN_zoo file (its networks are not pgtools').
    """
    nets = read_published(path)
    if nets is None:
        raise PgtoolsError(f"{path}: not an NVIDIA network pickle or a pytorch_GAN_zoo checkpoint")
    if nets.kind != NVIDIA:
        raise PgtoolsError(f"{path}: a pytorch_GAN_zoo network cannot become a pgtools checkpoint: its layers "
                           "differ from pgtools' (per-pixel dense bias, scaled biases, free feature-map "
                           "counts); generate, interpolate and inspect read it directly")
    return {"config": {}, "networks": nets.options,
            "G": nets.generator("G").state_dict(), "D": nets.discriminator.state_dict(),
            "G_ema": nets.generator("Gs").state_dict(),
            "position": {"resolution": nets.resolution, "alpha": nets.alpha, "lod": nets.lod, "kimg": None},
            "source": {"file": str(path), "kind": nets.kind, "settings": nets.settings}}


def convert(path: str | os.PathLike, output: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the pgtools checkpoint of a published network file to ``output`` (atomically)."""
    state = published_state(path)
    if Path(output).exists() and not overwrite:
        raise PgtoolsError(f"{output} already exists (use --overwrite to replace it)")
    return ckpt.save_checkpoint(state, output)
