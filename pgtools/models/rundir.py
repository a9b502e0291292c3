"""The files of a training run: numbered directory, config.json, log.txt, stats.jsonl, TensorBoard
events (when tensorboard is installed) and PNG images."""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from pgtools.atomic import atomic_output
from pgtools.inspection import contact_sheet
from pgtools.png import save_png

CONFIG, LOG, STATS = "config.json", "log.txt", "stats.jsonl"
_RUN_ID = re.compile(r"^(\d+)-")


def create_run_dir(outdir: str | os.PathLike, name: str) -> Path:
    """Make ``outdir/<NNNNN>-<name>`` with the next free number (``00000-celebahq-1024``, ...)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in outdir.iterdir() if (m := _RUN_ID.match(p.name))]
    number = max(ids, default=-1) + 1
    while True:
        path = outdir / f"{number:05d}-{name}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            number += 1


def _open_tensorboard(path: Path):
    """A SummaryWriter when ``torch.utils.tensorboard`` imports (tensorboard installed), else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def _json_value(value):
    """NaN and inf as strings, so that every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


class RunDir:
    """Writes one run's files; with ``enabled=False`` (ranks other than 0) it writes nothing."""

    def __init__(self, path: str | os.PathLike, *, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._tensorboard = _open_tensorboard(self.path) if enabled else None

    def write_config(self, config: dict) -> None:
        """Write ``config.json`` (atomically)."""
        if self.enabled:
            with atomic_output(self.path / CONFIG, overwrite=True) as temp:
                temp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    def log(self, line: str) -> None:
        """Append a time-stamped line to ``log.txt``."""
        if self.enabled:
            stamp = datetime.datetime.now().isoformat(timespec="seconds")
            with open(self.path / LOG, "a", encoding="utf-8") as handle:
                handle.write(f"{stamp} {line}\n")

    def append_stats(self, record: dict, *, nimg: int) -> None:
        """One line of ``stats.jsonl``; numeric values (also nested one level) go to TensorBoard."""
        if not self.enabled:
            return
        with open(self.path / STATS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(_json_value(record)) + "\n")
        if self._tensorboard is not None:
            for name, value in _flatten(record):
                self._tensorboard.add_scalar(name, value, global_step=nimg)
            self._tensorboard.flush()

    def truncate_stats(self, kimg: float) -> None:
        """Drop ``stats.jsonl`` lines past ``kimg`` and any half-written line (left by a run killed
        after its last snapshot)."""
        stats = self.path / STATS
        if not self.enabled or not stats.is_file():
            return
        lines = stats.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if _kimg_of(line) <= kimg]
        if len(kept) != len(lines):
            with atomic_output(stats, overwrite=True) as temp:
                temp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def remove_partials(self) -> list[Path]:
        """Delete temporaries (``.*.partial``) of writes cut short by a killed run."""
        found = list(self.path.glob(".*.partial*")) if self.enabled else []
        for path in found:
            path.unlink(missing_ok=True)
        return found

    def save_grid(self, name: str, images: np.ndarray, columns: int) -> Path | None:
        """Lay uint8 (N, C, r, r) images out ``columns`` wide and write ``name`` (a PNG)."""
        if not self.enabled:
            return None
        return save_png(contact_sheet(images, columns), self.path / name)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None


def _kimg_of(line: str) -> float:
    """The ``kimg`` of a stats line; infinity for a line that is not a whole JSON record."""
    try:
        return float(json.loads(line)["kimg"])
    except (ValueError, KeyError, TypeError):
        return math.inf


def _flatten(record: dict, prefix: str = ""):
    """(name, number) pairs of a stats record; nested dicts give ``outer/inner`` names."""
    for key, value in record.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            yield f"{prefix}{key}", value
