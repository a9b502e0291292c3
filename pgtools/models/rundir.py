"""The files of a training run: numbered directory, config.json, log.txt, stats.jsonl, TensorBoard
events (when tensorboard is installed) and PNG images; finding and summarising the runs of a folder."""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from pgtools.atomic import atomic_output
from pgtools.errors import PgtoolsError
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


def numbered_runs(outdir: str | os.PathLike) -> list[Path]:
    """The numbered run directories in ``outdir``, by number (none if it does not exist)."""
    outdir = Path(outdir)
    found = [(int(m.group(1)), p) for p in outdir.iterdir() if p.is_dir() and (m := _RUN_ID.match(p.name))
             ] if outdir.is_dir() else []
    return [p for _, p in sorted(found)]


def latest_run(outdir: str | os.PathLike) -> Path:
    """The run directory with the highest number in ``outdir`` (what ``--resume latest`` continues)."""
    runs = numbered_runs(outdir)
    if not runs:
        raise PgtoolsError(f"--resume latest: no run directories (NNNNN-name) in {outdir}")
    return runs[-1]


def summarize_run(path: str | os.PathLike) -> dict:
    """A run at a glance from its files (no checkpoint is read): run, dataset, resolution, kimg
    reached (its last status line), total_kimg, checkpoint (the newest snapshot's name) and metrics
    (the last evaluation: kimg and one number per metric). Missing facts are None."""
    from pgtools.models.checkpoint import snapshots

    path = Path(path)
    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    config = config if isinstance(config, dict) else {}
    records = _records(path / STATS)
    ticks = [r for r in records if "tick" in r]
    evaluations = [r for r in records if isinstance(r.get("metrics"), dict)]
    found = snapshots(path)
    metrics = None
    if evaluations:
        last = evaluations[-1]
        metrics = {"kimg": last.get("kimg"), **{name: _headline(value) for name, value in last["metrics"].items()}}
    return {"run": path.name, "dataset": Path(config["dataset"]).name if config.get("dataset") else None,
            "resolution": config.get("resolution"), "kimg": ticks[-1].get("kimg") if ticks else None,
            "total_kimg": config.get("total_kimg"), "checkpoint": found[-1].name if found else None,
            "metrics": metrics}


def _records(stats: Path) -> list[dict]:
    """The whole JSON records of a stats.jsonl (none if it is missing)."""
    try:
        lines = stats.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _headline(result) -> float | None:
    """One number of a metric's result: SWD's average, MS-SSIM of the fakes."""
    if isinstance(result, dict):
        for key in ("average", "fakes"):
            if isinstance(result.get(key), (int, float)):
                return result[key]
    return None


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
