"""The alignment procedure: the fixture's proc MD5s and every optional step."""

from __future__ import annotations

import hashlib

import numpy as np
import PIL.Image

from pgtools.sources.celeba_hq.align import AlignSteps, align_face, oriented_quad
from pgtools.sources.celeba_hq.inputs import read_landmarks, read_table
from pgtools.sources.celeba_hq.synthetic import Face, draw_face


def test_fixture_proc_md5_and_steps(fixture_dir):
    entries = read_table(fixture_dir / "deltas" / "image_list.txt")
    landmarks, _ = read_landmarks(fixture_dir / "celeba" / "Anno" / "list_landmarks_celeba.txt")
    expected_steps = [
        AlignSteps(shrink=1, cropped=True, superres=4, padded=True),
        AlignSteps(shrink=1, cropped=True, superres=8, padded=False),
    ]
    for entry, expected in zip(entries, expected_steps):
        with PIL.Image.open(fixture_dir / "celeba" / "img_celeba" / entry.orig_file) as img:
            proc, steps = align_face(img, landmarks[entry.orig_idx])
        assert proc.shape == (3, 1024, 1024) and proc.dtype == np.uint8
        assert hashlib.md5(proc.tobytes()).hexdigest() == entry.proc_md5
        assert steps == expected


def test_oriented_quad_types_and_geometry():
    lm = np.float32([[100, 100], [140, 100], [120, 120], [104, 140], [136, 140]])
    quad, zoom = oriented_quad(lm)
    assert quad.dtype == np.float32 and isinstance(zoom, float)
    # x = (40 + 40, 0) scaled to max(2 * 40, 1.8 * 40) = 80; centre = eye_avg + 0.1 * eye_to_mouth
    np.testing.assert_array_equal(quad, np.float32([[40.5, 24.5], [40.5, 184.5], [200.5, 184.5], [200.5, 24.5]]))
    assert zoom == 1024 / 160


def test_shrink_branch_on_a_large_face():
    # eyes 1030 px apart: zoom = 1024 / 4120 < 0.25, so the photo is shrunk by 2 first
    img, lm = draw_face(Face(5000, 5000, 2500, 2350, 1030, 0), seed=1)
    proc, steps = align_face(img, lm.astype(np.float32))
    assert steps == AlignSteps(shrink=2, cropped=True, superres=1, padded=False)
    # the eyes land a quarter of the width from either side, just above the centre row
    np.testing.assert_array_equal(proc[:, 488, 384], [40, 30, 20])
    np.testing.assert_array_equal(proc[:, 488, 640], [40, 30, 20])
    assert proc[0, 700, 512] > 190  # skin below the nose


def test_grayscale_photo_is_converted_to_rgb():
    img, lm = draw_face(Face(200, 240, 100, 110, 30, 0), seed=2)
    gray_proc, _ = align_face(img.convert("L").convert("RGB"), lm.astype(np.float32))
    proc, _ = align_face(img.convert("L"), lm.astype(np.float32))
    np.testing.assert_array_equal(proc, gray_proc)
