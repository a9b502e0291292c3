"""create_* options that used to be accepted and ignored: --workers without workers, --compat with
--compression, unbounded --workers/--num_threads/--num_tasks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))
from dataset_files import smooth_image, write_images, write_mnist  # noqa: E402

import pgtools.parallel  # noqa: E402
import pgtools.sources.images  # noqa: E402
from pgtools.cli import main  # noqa: E402
from pgtools.pyramid import Pyramid  # noqa: E402


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("command", ["create_mnist", "create_mnist_rgb", "create_cifar10", "create_cifar100"])
def test_workers_is_refused_where_no_worker_would_start(tmp_path, command):
    result = run(command, tmp_path / "out.h5", tmp_path, "--workers", 8)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: No such option '--workers'."
    assert list(tmp_path.iterdir()) == []


def test_compat_with_another_compression_is_refused(tmp_path):
    write_mnist(tmp_path / "mnist", 10)
    result = run("create_mnist", tmp_path / "out.h5", tmp_path / "mnist", "--compat", "--compression", "lzf")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == ("Error: --compat writes gzip-4 as the original h5tool did; "
                                              "drop --compat or --compression lzf")
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("extra", [[], ["--compression", "gzip-4"]])
def test_compat_writes_gzip_4(tmp_path, extra):
    write_mnist(tmp_path / "mnist", 10)
    result = run("create_mnist", tmp_path / "out.h5", tmp_path / "mnist", "--compat", "-q", *extra)
    assert result.exit_code == 0, result.output
    with Pyramid(tmp_path / "out.h5") as pyramid:
        dataset = pyramid.file["data32x32"]
        assert (dataset.compression, dataset.compression_opts) == ("gzip", 4)


def test_workers_are_capped_at_the_usable_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(pgtools.parallel, "usable_cpus", lambda: 2)
    monkeypatch.setattr(pgtools.cli.common, "usable_cpus", lambda: 2)
    monkeypatch.setattr(pgtools.sources.images, "MAX_TASK_IMAGES", 4)  # 12 images: 3 tasks
    started = []
    real = pgtools.parallel.ProcessPoolExecutor
    monkeypatch.setattr(pgtools.parallel, "ProcessPoolExecutor",
                        lambda max_workers: started.append(max_workers) or real(max_workers=max_workers))
    rng = np.random.default_rng(0)
    write_images(tmp_path / "in", [smooth_image(rng, 64, 64) for _ in range(12)], [f"{i}.png" for i in range(12)])
    result = run("create_custom", tmp_path / "out.h5", tmp_path / "in", "--workers", 100_000, "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Warning: --workers 100000 capped at 2 (the usable CPU cores)\n"
    assert started == [2]


def test_workers_are_capped_at_the_tasks(monkeypatch):
    monkeypatch.setattr(pgtools.parallel, "usable_cpus", lambda: 64)
    assert pgtools.parallel.cap_workers(None) == 64
    assert pgtools.parallel.cap_workers(100_000) == 64
    assert pgtools.parallel.cap_workers(100_000, items=3) == 3
    assert pgtools.parallel.cap_workers(0, items=3) == 0


@pytest.mark.parametrize("option, value, line", [
    ("--num_threads", 100_000, "Warning: --workers 100000 capped at 2 (the usable CPU cores)"),
    ("--num_tasks", 100_000, "Warning: --num_tasks 100000 capped at 16 (8 x the usable CPU cores)"),
])
def test_celeba_hq_counts_are_capped(tmp_path, monkeypatch, option, value, line):
    monkeypatch.setattr(pgtools.cli.common, "usable_cpus", lambda: 2)
    result = run("create_celeba_hq", tmp_path / "out.h5", tmp_path / "nowhere", tmp_path / "nowhere", option, value)
    assert result.exit_code == 1  # the inputs are missing; the cap is applied while parsing
    assert result.stderr.splitlines()[0] == line


def test_create_custom_on_a_photo_folder(tmp_path):
    rng = np.random.default_rng(7)
    photos = tmp_path / "photos"
    write_images(photos / "2024", [smooth_image(rng, 60, 80) for _ in range(3)], ["a.jpg", "b.JPG", "c.png"])
    write_images(photos, [smooth_image(rng, 90, 40)], ["top.jpeg"])
    (photos / "2024" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    (photos / "index.html").write_text("<html>")
    (photos / "2024" / "notes.txt").write_text("x")
    result = run("create_custom", tmp_path / "out.h5", photos, "--resolution", 32, "--transform", "center-crop",
                 "--skip_bad", "--workers", 0)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Found 5 images in {photos.resolve()}"
    assert lines[1].startswith(f"Wrote 4 images of 32x32x3 to {tmp_path / 'out.h5'} in ")
    assert lines[2:] == ["Skipped 2 non-image file(s): 2024/notes.txt, index.html",
                         "Skipped 1 unreadable or undecodable image file(s): 2024/broken.jpg"]
    with Pyramid(tmp_path / "out.h5") as pyramid:
        top = pyramid.read(32)
        assert pyramid.attrs["transform"] == "center-crop"
        assert (pyramid.attrs["skipped_files"], pyramid.attrs["non_image_files"]) == (1, 2)
    first = np.asarray(Image.open(photos / "2024" / "a.jpg"))[:, 10:70]  # the central 60x60 of 80x60
    expected = np.asarray(Image.fromarray(first).resize((32, 32), Image.Resampling.LANCZOS)).transpose(2, 0, 1)
    assert top.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(top[0], expected)


def test_create_custom_transform_needs_resolution(tmp_path):
    write_images(tmp_path / "in", [smooth_image(np.random.default_rng(0), 8, 8)], ["a.png"])
    result = run("create_custom", tmp_path / "out.h5", tmp_path / "in", "--transform", "resize")
    assert (result.exit_code, result.output) == (1, "Error: --transform resize needs --resolution\n")
