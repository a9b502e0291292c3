"""The create_* commands end to end: files written, labels, options, bad inputs, interruption."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))
from dataset_files import (  # noqa: E402
    LABELS_MAGIC, lsun_values, smooth_image, write_cifar10, write_cifar100, write_idx, write_images, write_lmdb,
    write_mnist,
)

import pgtools.cli.datasets as datasets  # noqa: E402
from pgtools.cli import main  # noqa: E402
from pgtools.pyramid import Pyramid, labels_path, lod_levels  # noqa: E402
from pgtools.sources import Source, custom  # noqa: E402


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def out(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def read_all(path: Path) -> dict[int, np.ndarray]:
    with Pyramid(path) as pyramid:
        return {r: pyramid.read(r) for r in pyramid.levels}


def padded(digits: np.ndarray) -> np.ndarray:
    return np.pad(digits, [(0, 0), (2, 2), (2, 2)])[:, np.newaxis]


def test_create_mnist_with_labels(tmp_path, out):
    digits, labels = write_mnist(tmp_path / "mnist", 120)
    result = run("create_mnist", out / "mnist.h5", tmp_path / "mnist", "--export_labels")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Found 120 images in {tmp_path / 'mnist'} (the official set has 60,000)"
    assert lines[1].startswith(f"Wrote 120 images of 32x32x1 to {out / 'mnist.h5'} in ")
    levels = read_all(out / "mnist.h5")
    np.testing.assert_array_equal(levels[32], padded(digits))
    for r, level in lod_levels(padded(digits), 32).items():
        np.testing.assert_array_equal(levels[r], level)
    onehot = np.eye(10, dtype=np.float32)[labels]
    np.testing.assert_array_equal(np.load(labels_path(out / "mnist.h5")), onehot)
    with Pyramid(out / "mnist.h5") as pyramid:
        np.testing.assert_array_equal(pyramid.file["labels"][()], onehot)
        assert pyramid.attrs["source_format"] == "mnist" and pyramid.attrs["label_classes"] == 10
        assert json.loads(pyramid.attrs["options"])["export_labels"] is True


def test_dashed_aliases_are_the_same_command(tmp_path, out):
    write_mnist(tmp_path / "mnist", 30)
    dashed = run("create-mnist-rgb", out / "a.h5", tmp_path / "mnist", "--num-images", 70, "--random-seed", 5, "-q")
    plain = run("create_mnist_rgb", out / "b.h5", tmp_path / "mnist", "--num_images", 70, "--random_seed", 5, "--quiet")
    assert dashed.exit_code == plain.exit_code == 0 and dashed.output == plain.output == ""
    np.testing.assert_array_equal(read_all(out / "a.h5")[32], read_all(out / "b.h5")[32])
    assert run("create-mnist", out / "c.h5", tmp_path / "mnist", "--export-labels").exit_code == 0
    assert labels_path(out / "c.h5").is_file()


def test_create_cifar10_and_cifar100_with_labels(tmp_path, out):
    rows, labels = write_cifar10(tmp_path / "c10", 8)
    assert run("create_cifar10", out / "c10.h5", tmp_path / "c10", "--export_labels", "--compression", "lzf").exit_code == 0
    np.testing.assert_array_equal(read_all(out / "c10.h5")[32], rows.reshape(-1, 3, 32, 32))
    with Pyramid(out / "c10.h5") as pyramid:
        assert pyramid.file["data32x32"].compression == "lzf"
    np.testing.assert_array_equal(np.load(labels_path(out / "c10.h5")), np.eye(10, dtype=np.float32)[labels])
    rows, _, coarse = write_cifar100(tmp_path / "c100", 20)
    result = run("create_cifar100", out / "c100.h5", tmp_path / "c100", "--export-labels", "--label-type", "coarse")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_all(out / "c100.h5")[32], rows.reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(np.load(labels_path(out / "c100.h5")), np.eye(20, dtype=np.float32)[coarse])


def make_custom(folder: Path, count: int = 50, side: int = 16) -> None:
    rng = np.random.default_rng(0)
    write_images(folder, [smooth_image(rng, side, side) for _ in range(count)], [f"{i:03d}.png" for i in range(count)])


def make_celeba(folder: Path, count: int = 20) -> None:
    rng = np.random.default_rng(0)
    write_images(folder / "img_align_celeba_png", [smooth_image(rng, 218, 178) for _ in range(count)],
                 [f"{i:06d}.png" for i in range(count)])


@pytest.mark.parametrize("command, make, extra", [
    ("create_custom", make_custom, []),
    ("create_celeba", make_celeba, ["--cx", 80, "--cy", 100]),
    ("create_lsun", lambda folder: write_lmdb(folder, lsun_values(40)), ["--resolution", 32]),
])
def test_workers_do_not_change_the_arrays(tmp_path, out, command, make, extra):
    make(tmp_path / "in")
    for workers in (0, 2):
        result = run(command, out / f"w{workers}.h5", tmp_path / "in", "--workers", workers, *extra)
        assert result.exit_code == 0, result.output
    one, two = read_all(out / "w0.h5"), read_all(out / "w2.h5")
    assert one.keys() == two.keys()
    for r in one:
        np.testing.assert_array_equal(one[r], two[r])


def test_overwrite_refused_then_accepted(tmp_path, out):
    make_custom(tmp_path / "a", 5)
    make_custom(tmp_path / "b", 7)
    assert run("create_custom", out / "x.h5", tmp_path / "a").exit_code == 0
    before = (out / "x.h5").read_bytes()
    refused = run("create_custom", out / "x.h5", tmp_path / "b")
    assert refused.exit_code == 1
    assert refused.output == f"Error: {out / 'x.h5'} already exists (use --overwrite to replace it)\n"
    assert (out / "x.h5").read_bytes() == before
    assert run("create_custom", out / "x.h5", tmp_path / "b", "--overwrite").exit_code == 0
    with Pyramid(out / "x.h5") as pyramid:
        assert pyramid.num_images == 7
    assert sorted(p.name for p in out.iterdir()) == ["x.h5"]


def test_lsun_skip_bad_reports_the_skipped_records(tmp_path, out):
    records = lsun_values(30)
    write_lmdb(tmp_path / "db", records + [(b"!bad", b"garbage"), (b"zzbad", b"")])
    failed = run("create_lsun", out / "l.h5", tmp_path / "db", "--resolution", 16, "--workers", 0)
    assert failed.exit_code == 1
    assert failed.output.splitlines()[-1].startswith(f"Error: {tmp_path / 'db'}: record 0 (key !bad) is not a decodable image")
    assert list(out.iterdir()) == []
    result = run("create_lsun", out / "l.h5", tmp_path / "db", "--resolution", 16, "--skip-bad", "--max-images", 100)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Found 32 records in {tmp_path / 'db'}"
    assert lines[-1] == "Skipped 2 undecodable record(s): keys !bad, zzbad"
    with Pyramid(out / "l.h5") as pyramid:
        assert pyramid.num_images == 30 and pyramid.attrs["source_format"] == "lsun"


def bad_mnist_magic(folder: Path) -> list:
    write_mnist(folder, 5)
    write_idx(folder / "train-images-idx3-ubyte.gz", LABELS_MAGIC, np.zeros(5, np.uint8))
    return ["create_mnist", folder]


def bad_mnist_gzip(folder: Path) -> list:
    write_mnist(folder, 30)
    data = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(data[:100])
    return ["create_mnist", folder]


def bad_mnist_counts(folder: Path) -> list:
    write_mnist(folder, 5)
    write_idx(folder / "train-labels-idx1-ubyte.gz", LABELS_MAGIC, np.zeros(4, np.uint8))
    return ["create_mnist", folder, "--export_labels"]


def bad_cifar_keys(folder: Path) -> list:
    write_cifar100(folder, 3)
    return ["create_cifar10", folder]


def bad_lmdb_value(folder: Path) -> list:
    write_lmdb(folder, lsun_values(3) + [(b"ffff", b"\x00" * 50)])
    return ["create_lsun", folder, "--resolution", 16, "--workers", 2]


def bad_custom(writer) -> callable:
    def make(folder: Path) -> list:
        make_custom(folder, 4)
        writer(folder)
        return ["create_custom", folder]
    return make


BAD_INPUTS = {
    "missing folder": (lambda folder: ["create_custom", folder / "nowhere"], "nowhere: no such folder"),
    "missing file": (lambda folder: (folder.mkdir(), ["create_mnist", folder])[1], "train-images-idx3-ubyte.gz: no such file"),
    "idx magic": (bad_mnist_magic, "wrong IDX magic number: expected 2051 (0x00000803, an IDX image file), found 2049"),
    "truncated gzip": (bad_mnist_gzip, "train-images-idx3-ubyte.gz: truncated gzip file"),
    "label count": (bad_mnist_counts, "image/label count mismatch: 5 images in"),
    "pickle keys": (bad_cifar_keys, "data_batch_1: no such file"),
    "lmdb value": (bad_lmdb_value, "record 3 (key ffff) is not a decodable image"),
    "mixed sizes": (bad_custom(lambda f: write_images(f, [smooth_image(np.random.default_rng(0), 8, 8)], ["001b.png"])),
                    "001b.png is 8x8 but the first image 000.png is 16x16"),
    "rgba": (bad_custom(lambda f: write_images(f, [np.zeros((16, 16, 4), np.uint8)], ["002b.png"])),
             "002b.png: mode RGBA (RGB with alpha) is not accepted; images must be 8-bit grayscale (L) or 8-bit RGB"),
    "not an image": (bad_custom(lambda f: (f / "list.png").write_text("a,b")), "list.png: not an image file"),
    "empty folder": (lambda folder: (folder.mkdir(), ["create_custom", folder])[1], "the folder is empty"),
    "bad celeba crop": (lambda folder: (make_celeba(folder, 2), ["create_celeba", folder, "--cy", 10])[1],
                        "--cx 89 --cy 10: the 128x128 crop"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_fail_with_one_line_and_leave_nothing(tmp_path, out, case):
    make, fragment = BAD_INPUTS[case]
    command, *args = make(tmp_path / "in")
    result = run(command, out / "x.h5", *args)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and result.output.endswith(errors[0] + "\n"), result.output
    assert fragment in errors[0]
    assert list(out.iterdir()) == []


def test_missing_output_folder(tmp_path):
    make_custom(tmp_path / "in", 2)
    result = run("create_custom", tmp_path / "no" / "x.h5", tmp_path / "in")
    assert result.exit_code == 1 and "folder" in result.output and "does not exist" in result.output


def test_interrupted_source_leaves_no_file(tmp_path, out, monkeypatch):
    seen = []

    def interrupted(folder, **_):
        def batches():
            yield np.zeros((3, 1, 8, 8), np.uint8)
            seen.extend(path.name for path in out.iterdir())  # the writer has its partial file by now
            raise KeyboardInterrupt

        return Source(resolution=8, channels=1, count=6, batches=batches(), attrs={"source": str(folder)})

    monkeypatch.setattr(custom, "open_custom", interrupted)  # the command imports it when it runs
    result = run("create_custom", out / "x.h5", tmp_path)
    assert result.exit_code == 1 and "Aborted!" in result.output
    assert seen == [".x.h5.partial"]
    assert list(out.iterdir()) == []


WORKER_COMMANDS = ("create_lsun", "create_celeba", "create_custom")  # those that decode images in workers


@pytest.mark.parametrize("command", [c.name for c in datasets.COMMANDS])
def test_help_has_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert f"  Example:\n    pgtools {command} " in result.output
    for name in ("--overwrite", "--compression", "--compat", "--quiet"):
        assert name in result.output
    assert ("--workers" in result.output) == (command in WORKER_COMMANDS)
