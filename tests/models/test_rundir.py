"""Run directories: numbering, stats lines, truncation on resume, TensorBoard when it imports."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
from PIL import Image

from pgtools.models.plots import draw_curves
from pgtools.models.rundir import RunDir, create_run_dir


def test_run_directories_are_numbered(tmp_path):
    (tmp_path / "00007-old").mkdir()
    (tmp_path / "notes").mkdir()
    assert create_run_dir(tmp_path, "mnist-32").name == "00008-mnist-32"
    assert create_run_dir(tmp_path, "mnist-32").name == "00009-mnist-32"
    assert create_run_dir(tmp_path / "new", "x").name == "00000-x"


def test_stats_lines_truncation_and_disabled_ranks(tmp_path):
    run = RunDir(tmp_path)
    for kimg in (1.0, 2.0, 3.0):
        run.append_stats({"kimg": kimg, "D/loss": float("nan"), "metrics": {"swd": {"average": 1.5}}}, nimg=0)
    lines = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert lines[0] == {"kimg": 1.0, "D/loss": "nan", "metrics": {"swd": {"average": 1.5}}}
    with open(tmp_path / "stats.jsonl", "a") as handle:
        handle.write('{"kimg": 1.5, "D/lo')  # killed while writing
    run.truncate_stats(2.0)
    assert [json.loads(line)["kimg"] for line in (tmp_path / "stats.jsonl").read_text().splitlines()] == [1.0, 2.0]
    silent = RunDir(tmp_path / "other", enabled=False)
    silent.log("x")
    silent.append_stats({"kimg": 1}, nimg=1)
    assert silent.save_grid("g.png", np.zeros((1, 3, 4, 4), np.uint8), 1) is None
    assert not (tmp_path / "other").exists()


def test_tensorboard_scalars_when_it_imports(tmp_path, monkeypatch):
    calls = []

    class SummaryWriter:
        def __init__(self, folder):
            calls.append(("open", folder))

        def add_scalar(self, name, value, global_step):
            calls.append((name, value, global_step))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=SummaryWriter))
    run = RunDir(tmp_path)
    run.append_stats({"kimg": 0.5, "phase": "fade-in", "D/loss": 1.25, "G/loss": float("inf"),
                      "metrics": {"swd": {"average": 3.0, "levels": [1, 2]}}}, nimg=500)
    run.close()
    assert calls == [("open", str(tmp_path)), ("kimg", 0.5, 500), ("D/loss", 1.25, 500),
                     ("metrics/swd/average", 3.0, 500), ("close",)]


def test_training_curves_png(tmp_path):
    history = [{"kimg": k / 10, "resolution": 4 if k < 5 else 8, "D/loss": 5 - k / 3, "G/loss": k / 4}
               for k in range(1, 11)]
    history.append({"kimg": 1.1, "resolution": 8, "D/loss": float("nan"), "G/loss": 2.0})
    draw_curves(history, tmp_path / "curves.png")
    image = np.asarray(Image.open(tmp_path / "curves.png"))
    assert image.shape == (420, 900, 3)
    assert (np.abs(image.astype(int) - (200, 40, 40)).sum(axis=2) == 0).sum() > 100  # the red D line
    assert (np.abs(image.astype(int) - (40, 90, 200)).sum(axis=2) == 0).sum() > 100  # the blue G line
    draw_curves([], tmp_path / "empty.png")
    assert Image.open(tmp_path / "empty.png").size == (900, 420)
