"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is a ``torch.save`` dict of plain data and tensors only (so ``torch.load`` with
``weights_only=True`` reads it):

- ``format``, ``version``; ``config`` (the run's TrainConfig as JSON data);
- ``networks``: constructor arguments of ``G`` and ``D``; ``G``, ``D``, ``G_ema``: state dicts;
- ``trainer``: both Adam states, the loss scalers, the level of detail they belong to, counters;
- ``position``: step, nimg, kimg, resolution, alpha, lod, phase_index of the next step;
- ``rng``: torch (CPU and CUDA), numpy and python random states;
- ``progress``: tick count, elapsed seconds, the loss history drawn in training_curves.png and the
  metric results so far.

``network-snapshot-<nimg>.pt`` files (nine digits: the number of real images shown, so no two
snapshots of a run share a name) are full checkpoints; ``latest.pt`` is a hard link to (or, where
links are not possible, a copy of) the newest one. Runs of earlier versions named snapshots by whole
kimg (six digits, ``network-snapshot-000120.pt``); they are still found, listed and pruned.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from pgtools.atomic import atomic_output
from pgtools.errors import PgtoolsError

FORMAT = "pgtools-pggan"
VERSION = 1
LATEST = "latest.pt"
SNAPSHOT_PATTERN = re.compile(r"network-snapshot-(\d{6}|\d{9})\.pt$")


def snapshot_name(nimg: int) -> str:
    """``network-snapshot-000120512.pt`` after 120,512 images shown."""
    return f"network-snapshot-{nimg:09d}.pt"


def snapshot_nimg(name: str) -> int | None:
    """The images shown at a snapshot named by :func:`snapshot_name` (or by whole kimg, six digits, as
    earlier versions did: their thousands), else None."""
    match = SNAPSHOT_PATTERN.match(name)
    if match is None:
        return None
    digits = match.group(1)
    return int(digits) * 1000 if len(digits) == 6 else int(digits)


def rng_state() -> dict:
    """The global random states of torch (CPU, CUDA), numpy and python, as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only where as many GPUs are visible)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` (see the module docstring) to ``path`` via a temporary file."""
    with atomic_output(path, overwrite=True) as temp:
        torch.save({"format": FORMAT, "version": VERSION, **state}, temp)
    return Path(path)


def link_latest(snapshot: Path) -> Path:
    """Point ``latest.pt`` next to ``snapshot`` at it (hard link, else a copy), atomically."""
    latest = snapshot.with_name(LATEST)
    handle, name = tempfile.mkstemp(prefix=".latest.", suffix=".partial", dir=snapshot.parent)
    os.close(handle)
    temp = Path(name)
    try:
        temp.unlink()
        try:
            os.link(snapshot, temp)
        except OSError:
            shutil.copyfile(snapshot, temp)
        os.replace(temp, latest)
    finally:
        temp.unlink(missing_ok=True)
    return latest


def snapshots(run_dir: str | os.PathLike) -> list[Path]:
    """The run's network snapshots, oldest first."""
    found = [(nimg, p) for p in Path(run_dir).iterdir() if (nimg := snapshot_nimg(p.name)) is not None]
    return [p for _, p in sorted(found)]


def prune_snapshots(run_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots (``latest.pt`` stays valid: it is a link)."""
    old = snapshots(run_dir)[:-keep] if keep > 0 else []
    for path in old:
        path.unlink()
    return old


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory's ``latest.pt`` (else its newest snapshot)."""
    path = Path(path)
    if path.is_dir():
        if (path / LATEST).is_file():
            return path / LATEST
        found = snapshots(path)
        if not found:
            raise PgtoolsError(f"{path}: no checkpoint in this folder (expected {LATEST} or "
                               "network-snapshot-*.pt)")
        return found[-1]
    if not path.is_file():
        raise PgtoolsError(f"{path}: no such checkpoint file or run directory")
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict:
    """Read and check a checkpoint written by :func:`save_checkpoint` (a file or a run directory)."""
    path = find_checkpoint(path)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before failing on them
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for damaged or foreign files
        first = str(err).strip().split("\n")[0].split(". ")[0]  # torch's messages run to many lines
        raise PgtoolsError(f"{path}: not a checkpoint written by pgtools train (torch.load failed: "
                           f"{type(err).__name__}: {first})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PgtoolsError(f"{path}: not a checkpoint written by pgtools train")
    if state.get("version") != VERSION:
        raise PgtoolsError(f"{path}: checkpoint version {state.get('version')} is not supported "
                           f"(this pgtools reads version {VERSION})")
    return state
