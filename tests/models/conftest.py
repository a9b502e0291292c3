"""Tiny pyramids and training configs for the trainer's tests (not autouse: opt in by name)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pgtools.models.config import resolve_config
from pgtools.pyramid import write_pyramid

# 16x16 networks a few kilobytes big; 8 images per step; 4 steps per stabilise or fade-in phase:
# 4x4 (4 steps), fade in 8x8 (4), 8x8 (4), fade in 16x16 (4), 16x16 (4) = 20 steps, 0.16 kimg.
TINY = dict(fmap_base=64, fmap_max=16, latent_dim=16, minibatch="8", stabilize_kimg=0.032,
            transition_kimg=0.032, total_kimg=0.16, tick_kimg=0.016, snapshot_kimg=0.08,
            image_snapshot_kimg=0.08, device="cpu", cache_gb=1.0, data_workers=0)
REPO = Path(__file__).resolve().parents[2]
# ``pgtools ...`` with the training commands registered (whether or not pgtools.cli has them yet).
LAUNCH = ("import sys; from pgtools.cli import main; from pgtools.cli.train import COMMANDS; "
          "[main.add_command(c) for c in COMMANDS if c.name not in main.commands]; "
          "main(sys.argv[1:], prog_name='pgtools')")
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def make_pyramid(path: Path, *, count: int = 64, classes: int = 0, channels: int = 3, seed: int = 0,
                 resolution: int = 16) -> Path:
    """A pyramid of blocky random images plus noise (with one-hot labels when ``classes``)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, channels, 4, 4)).astype(np.float64)
    scale = resolution // 4
    images = np.repeat(np.repeat(coarse, scale, axis=2), scale, axis=3)
    images = np.clip(np.round(images + rng.normal(0, 8, images.shape)), 0, 255).astype(np.uint8)
    labels = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, count)] if classes else None
    write_pyramid(path, [images], resolution=resolution, channels=channels, count=count, labels=labels)
    return path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_pyramid(tmp_path_factory.mktemp("data") / "tiny.h5")


@pytest.fixture(scope="session")
def labelled_dataset(tmp_path_factory) -> Path:
    return make_pyramid(tmp_path_factory.mktemp("data") / "labelled.h5", classes=3, seed=1)


@pytest.fixture
def tiny_config(tiny_dataset, tmp_path):
    """``tiny_config(**overrides)``: a resolved config for a tiny run under ``tmp_path/runs``."""

    def make(dataset: Path | None = None, **overrides):
        options = {**TINY, "outdir": str(tmp_path / "runs"), **overrides}
        return resolve_config(str(dataset or tiny_dataset), **options)

    return make


@pytest.fixture
def pyramid_maker():
    """The ``make_pyramid`` function, for tests that need other sizes, channels or labels."""
    return make_pyramid


def _short_run(dataset: Path, outdir: Path, **overrides) -> Path:
    from pgtools.models.loop import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(resolve_config(str(dataset), **{**TINY, "outdir": str(outdir), **overrides}))
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained_run(tiny_dataset, tmp_path_factory) -> Path:
    """A run directory trained to the middle of the 8x8 fade-in (kimg 0.048, alpha 0.5)."""
    return _short_run(tiny_dataset, tmp_path_factory.mktemp("trained"), total_kimg=0.048)


@pytest.fixture(scope="session")
def conditional_run(labelled_dataset, tmp_path_factory) -> Path:
    """A conditional (3 classes) run directory, 4x4 only."""
    return _short_run(labelled_dataset, tmp_path_factory.mktemp("conditional"), total_kimg=0.032,
                      conditional=True)


@pytest.fixture
def no_torchrun_env(monkeypatch):
    """No torchrun variables in the environment (the monkeypatch, to set some)."""
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def pgtools_process():
    """``pgtools_process(dataset, env={...}, **options)``: argv and environment running ``pgtools train
    DATASET`` with the TINY settings (overridden by ``options``; True for a flag) in a single-threaded
    subprocess."""

    def make(dataset: Path, env: dict | None = None, **options) -> tuple[list[str], dict]:
        argv = [sys.executable, "-c", LAUNCH, "train", str(dataset), "--quiet"]
        for name, value in {**TINY, **options}.items():
            argv += [f"--{name}"] if value is True else [f"--{name}", str(value)]
        base = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
        return argv, {**base, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env or {})}

    return make
