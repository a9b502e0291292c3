"""Regenerate the bundled CelebA-HQ sample in ``deltas/sample/`` (deterministic).

Draws six CelebA-style photos with known landmarks, aligns five of them with the CelebA-HQ
procedure, makes each target image the aligned face plus a smooth perturbation, and writes the
deltas with :func:`create_deltas`. Run from the repository root::

    PYTHONPATH=. python deltas/make_sample.py

Rebuild the sample with ``pgtools.sources.celeba_hq.build.CelebAHQBuilder("deltas/sample/celeba",
"deltas/sample/deltas")``. The MD5s in image_list.txt hold for the library versions it was made
with (see deltas/README.md).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import PIL.Image

from pgtools.sources.celeba_hq.align import align_face
from pgtools.sources.celeba_hq.create_deltas import create_deltas
from pgtools.sources.celeba_hq.inputs import read_landmarks
from pgtools.sources.celeba_hq.synthetic import Face, smooth_target, write_celeba

FACES = [  # original index i is 00000{i+1}.jpg
    Face(420, 520, 210, 230, 60, 0),  # crop, super-resolution x8
    Face(480, 400, 400, 120, 70, -12),  # near the edge: crop, x4, reflect pad
    Face(300, 360, 150, 150, 40, 20),  # tilted: crop, x8
    Face(640, 480, 300, 260, 120, -4),  # crop, x4, pad
    Face(360, 300, 180, 130, 50, 8),  # unused by the list, like most CelebA photos
    Face(600, 640, 280, 300, 110, 3),  # crop, x4
]
PAIRS = [(0, 2), (1, 0), (2, 5), (3, 1), (4, 3)]  # (idx, orig_idx), in list order


def main(sample_dir: Path) -> None:
    """Write ``sample_dir/celeba`` and ``sample_dir/deltas``, replacing any previous sample."""
    with tempfile.TemporaryDirectory(dir=sample_dir.parent) as temp:
        staged = Path(temp) / "sample"
        celeba = staged / "celeba"
        write_celeba(celeba, FACES)
        landmarks, names = read_landmarks(celeba / "Anno" / "list_landmarks_celeba.txt")
        targets = Path(temp) / "targets"
        targets.mkdir()
        for idx, orig_idx in PAIRS:
            with PIL.Image.open(celeba / "img_celeba" / names[orig_idx]) as img:
                proc, _ = align_face(img, landmarks[orig_idx])
            final = smooth_target(proc, seed=idx)
            PIL.Image.fromarray(final.transpose(1, 2, 0)).save(targets / ("%05d.png" % idx))
        create_deltas(celeba, targets, staged / "deltas", pairs=PAIRS, deterministic=True)
        if sample_dir.exists():
            shutil.rmtree(sample_dir)
        staged.rename(sample_dir)


if __name__ == "__main__":
    main(Path(__file__).resolve().parent / "sample")
