"""Shared CelebA-HQ test data: the 2-entry shared fixture and a generated round-trip set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from pgtools.sources.celeba_hq.align import align_face
from pgtools.sources.celeba_hq.create_deltas import create_deltas
from pgtools.sources.celeba_hq.inputs import read_landmarks
from pgtools.sources.celeba_hq.synthetic import Face, smooth_target, write_celeba

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"
# Cheap faces (crop and super-resolution, no padding); the third original is listed by no row.
FACES = [Face(420, 520, 210, 230, 60, 0), Face(300, 360, 150, 150, 40, 20), Face(360, 300, 180, 130, 50, 8)]
PAIRS = [(2003, 1), (7, 0)]  # sparse idx in two zips, not in idx order


@dataclass(frozen=True)
class HQSet:
    """A generated CelebA + deltas set and the images it must rebuild."""

    celeba: Path
    deltas: Path
    targets: Path  # folder of %05d.png
    procs: list[np.ndarray]  # proc image of each row, list order
    finals: list[np.ndarray]  # target image of each row, list order


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    path = SHARED / "fixtures" / "celebahq_small"
    if not path.is_dir():
        pytest.skip(f"shared fixture folder {path} is absent")
    return path


@pytest.fixture(scope="session")
def hq_set(tmp_path_factory) -> HQSet:
    root = tmp_path_factory.mktemp("hq")
    celeba, targets = root / "celeba", root / "targets"
    names = write_celeba(celeba, FACES)
    landmarks, _ = read_landmarks(celeba / "Anno" / "list_landmarks_celeba.txt")
    targets.mkdir()
    procs, finals = [], []
    for idx, orig_idx in PAIRS:
        with PIL.Image.open(celeba / "img_celeba" / names[orig_idx]) as img:
            proc, _ = align_face(img, landmarks[orig_idx])
        final = smooth_target(proc, seed=idx)
        PIL.Image.fromarray(final.transpose(1, 2, 0)).save(targets / ("%05d.png" % idx))
        procs.append(proc)
        finals.append(final)
    create_deltas(celeba, targets, root / "deltas", pairs=PAIRS, workers=0)
    return HQSet(celeba=celeba, deltas=root / "deltas", targets=targets, procs=procs, finals=finals)
