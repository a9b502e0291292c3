"""train, generate and interpolate through the CLI: dry run, errors, a tiny run, resume, outputs."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pgtools.cli import Commands, main
from pgtools.cli.train import COMMANDS
from pgtools.pyramid import write_pyramid

if "train" in main.commands:
    CLI = main
else:  # until the commands are registered in pgtools.cli
    CLI = Commands("pgtools")
    for command in COMMANDS:
        CLI.add_command(command)

TINY = ["--fmap_base", "64", "--fmap_max", "16", "--latent_dim", "16", "--minibatch", "8",
        "--stabilize_kimg", "0.032", "--transition_kimg", "0.032", "--tick_kimg", "0.016", "--device", "cpu",
        "--cache_gb", "1", "--data_workers", "0"]


def run(*args):
    return CliRunner().invoke(CLI, [str(a) for a in args])


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    images = np.random.default_rng(0).integers(0, 256, (32, 3, 16, 16), dtype=np.uint8)
    path = tmp_path_factory.mktemp("data") / "dots.h5"
    write_pyramid(path, [images], resolution=16, channels=3)
    return path


@pytest.fixture(scope="module")
def run_dir(dataset, tmp_path_factory):
    """A run trained to kimg 0.048 (8x8 fading in) through the CLI."""
    outdir = tmp_path_factory.mktemp("runs")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    result = run("train", dataset, *TINY, "--total_kimg", "0.048", "--outdir", outdir)
    torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    return outdir / "00000-dots-16"


def test_dry_run_prints_config_and_schedule(dataset, tmp_path):
    result = run("train", dataset, "--dry-run", "--total_kimg", "3000", "--minibatch", "16:32",
                 "--outdir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    text, table = result.output.split("\n}\n")
    config = json.loads(text + "}")
    assert config["dataset"] == str(dataset) and config["minibatch"] == {"4": 128, "8": 128, "16": 32}
    assert table.splitlines() == [
        "resolution                   kimg  minibatch        lr  phase",
        "         4                0 - 600        128     0.001  stabilize",
        "         8             600 - 1200        128     0.001  fade-in",
        "         8            1200 - 1800        128     0.001  stabilize",
        "        16            1800 - 2400         32     0.001  fade-in",
        "        16            2400 - 3000         32     0.001  stabilize",
    ]
    assert not (tmp_path / "runs").exists()


def test_bad_inputs_exit_1_with_one_line(dataset, tmp_path):
    (tmp_path / "fake.h5").write_bytes(b"\x89HDF not really")
    with h5py.File(tmp_path / "empty.h5", "w") as file:
        file.attrs["complete"] = True
    incomplete = tmp_path / "incomplete.h5"
    incomplete.write_bytes(dataset.read_bytes())
    with h5py.File(incomplete, "a") as file:
        file.attrs["complete"] = False
    cases = [
        ([tmp_path / "fake.h5"], "fake.h5: not an HDF5 file"),
        ([tmp_path / "empty.h5"], "empty.h5: not a pyramid (no data<r>x<r> datasets)"),
        ([incomplete], "incomplete.h5: incomplete: 32 written (its creation was interrupted)"),
        ([dataset, "--resolution", "32"], "resolution 32 is not in the file (it holds levels up to 16x16"),
        ([dataset, "--minibatch", "4:x"], "--minibatch '4:x': expected a positive integer, got 'x'"),
        ([], "a dataset is required"),
    ]
    if not torch.cuda.is_available():
        cases.append(([dataset, "--device", "cuda"], "--device cuda: CUDA is not available"))
    for args, message in cases:
        result = run("train", *args, "--outdir", tmp_path / "runs")
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and message in result.output, result.output
        assert result.output.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_train_then_resume_further(run_dir, tmp_path):
    # Issue 12 item 2: grids and snapshots are named by images shown, so the end-of-run ones (kimg 0.048)
    # do not replace those of kimg 0, and the resumed run keeps the checkpoint it started from.
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "fakes000000000.png", "fakes000000048.png", "latest.pt", "log.txt",
        "network-snapshot-000000048.pt", "reals.png", "stats.jsonl", "training_curves.png"]
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for path in run_dir.iterdir():
        (resumed / path.name).write_bytes(path.read_bytes())
    result = run("train", "--resume", resumed, "--total_kimg", "0.064")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"resumed from {resumed / 'latest.pt'} at kimg 0.048 (step 6, 8x8, alpha 0.500)")
    assert lines[-1] == f"Finished: {resumed}"
    assert json.loads((resumed / "config.json").read_text())["total_kimg"] == 0.064
    kimgs = [json.loads(line)["kimg"] for line in (resumed / "stats.jsonl").read_text().splitlines()]
    assert kimgs == [0.016, 0.032, 0.048, 0.064]
    assert sorted(p.name for p in resumed.glob("[fn]*")) == [
        "fakes000000000.png", "fakes000000048.png", "fakes000000064.png", "network-snapshot-000000048.pt",
        "network-snapshot-000000064.pt"]
    assert (resumed / "network-snapshot-000000048.pt").read_bytes() == (run_dir / "network-snapshot-000000048.pt"
                                                                         ).read_bytes()
    for args, message in ((["--lr", "0.1"], "these cannot change: --lr"),
                          ([run_dir / "x.h5"], "--resume takes the dataset and preset from the run")):
        result = run("train", "--resume", resumed, *args)
        assert result.exit_code == 1 and message in result.output, result.output


def test_resume_latest_lists_runs_and_refuses_foreign_folders(run_dir, dataset, tmp_path):
    outdir = tmp_path / "runs"
    outdir.mkdir()
    for name in ("00001-dots-16", "00007-dots-16"):
        (outdir / name).mkdir()
        for path in run_dir.iterdir():
            (outdir / name / path.name).write_bytes(path.read_bytes())
    with open(outdir / "00001-dots-16" / "stats.jsonl", "a") as stats:
        stats.write('{"kimg": 0.048, "metrics": {"swd": {"average": 12.345}, "ms-ssim": {"fakes": 0.25}}}\n')
    (outdir / "00003-empty").mkdir()
    (outdir / "notes").mkdir()
    result = run("train", "--resume", "latest", "--outdir", outdir, "--total_kimg", "0.064")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"resumed from {outdir / '00007-dots-16' / 'latest.pt'} at kimg 0.048")
    result = run("runs", outdir)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "run            dataset  res  kimg           checkpoint                     last metric",
        "00001-dots-16  dots.h5  16   0.048 / 0.048  network-snapshot-000000048.pt  swd 12.35, ms-ssim 0.25 (kimg 0.048)",
        "00003-empty    -        -    - / -          -                              -",
        "00007-dots-16  dots.h5  16   0.064 / 0.064  network-snapshot-000000064.pt  -"]
    listed = json.loads(run("runs", outdir, "--json").output)
    assert listed[2] == {"run": "00007-dots-16", "dataset": "dots.h5", "resolution": 16, "kimg": 0.064,
                         "total_kimg": 0.064, "checkpoint": "network-snapshot-000000064.pt", "metrics": None}
    assert run("runs", tmp_path / "none").output == f"No run directories in {tmp_path / 'none'}\n"
    # Issue 12 item 10b: a folder whose config.json is something else's.
    card = tmp_path / "model-card"
    card.mkdir()
    (card / "config.json").write_text('{"model_type": "resnet"}')
    for folder, message in ((card, f"Error: {card}: not a pgtools training run (its config.json is not a "
                                   "pgtools train config)"),
                            (tmp_path / "empty", f"Error: --resume latest: no run directories (NNNNN-name) in "
                                                 f"{tmp_path / 'empty'}")):
        result = run("train", "--resume", folder) if folder == card else run(
            "train", "--resume", "latest", "--outdir", folder)
        assert (result.exit_code, result.output) == (1, message + "\n")


@pytest.mark.parametrize("name, content, reason", [
    ("dots.h5", None, "not a checkpoint written by pgtools"),
    ("notes.txt", b"hello\n", "not a checkpoint written by pgtools"),
    ("pickle.pt", b"\x80\x04\x95", "not a readable network pickle (UnpicklingError: pickle data was truncated)")])
def test_generate_on_something_else_is_one_error_line(dataset, tmp_path, name, content, reason):
    path = dataset if content is None else tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = run("generate", path, "--grid", tmp_path / "g.png")
    assert result.exit_code == 1 and result.output.startswith(f"Error: {path}: {reason}")
    assert result.output.count("\n") == 1, result.output


def test_generate_grid_and_folder_are_reproducible(run_dir, tmp_path):
    first, again, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for path, seed in ((first, 1), (again, 1), (other, 2)):
        result = run("generate", run_dir, "--count", "6", "--grid", path, "--seed", seed, "--columns", "3")
        assert result.exit_code == 0, result.output
    assert result.output == f"Wrote a grid of 6 images to {other}\n"
    assert Image.open(first).size == (3 * 8, 2 * 8)  # saved mid 8x8 fade-in: 8x8 images
    assert first.read_bytes() == again.read_bytes() != other.read_bytes()
    result = run("generate", run_dir / "latest.pt", "--count", "6", "--outdir", tmp_path / "each", "--seed", 1,
                 "--size", 16, "--quiet")
    assert result.exit_code == 0 and result.output == "", result.output
    files = sorted((tmp_path / "each").iterdir())
    assert [p.name for p in files] == [f"image{i:06d}.png" for i in range(6)]
    big = np.asarray(Image.open(files[4]))
    assert big.shape == (16, 16, 3)
    grid = np.asarray(Image.open(first))
    np.testing.assert_array_equal(big[::2, ::2], grid[8:16, 8:16])  # image 4: row 1, column 1
    for args, message in ((["--count", "2"], "give --grid FILE.png and/or --outdir FOLDER"),
                          (["--grid", tmp_path / "d.png", "--class", "1"], "--class: this model is unconditional")):
        result = run("generate", run_dir, *args)
        assert result.exit_code == 1 and message in result.output, result.output


def test_generate_grid_format_follows_the_extension(run_dir, tmp_path):
    result = run("generate", run_dir, "--count", "4", "--grid", tmp_path / "g.jpg", "--seed", 1)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
    result = run("generate", run_dir, "--count", "4", "--grid", tmp_path / "g.gif")
    assert result.exit_code == 1 and "cannot tell the image format from '.gif'" in result.output, result.output
    assert not (tmp_path / "g.gif").exists()


def test_interpolate_frames_and_video(run_dir, tmp_path):
    result = run("interpolate", run_dir, tmp_path / "frames", "--keyframes", 3, "--frames", 4, "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "frames").iterdir())) == 12  # 3 segments back to the start
    result = run("interpolate", run_dir, tmp_path / "frames", "--keyframes", 3, "--frames", 4, "--no-loop",
                 "--overwrite", "--method", "lerp")
    assert result.exit_code == 0 and result.output.endswith(f"Wrote 9 frames to {tmp_path / 'frames'}\n")
    video = tmp_path / "walk.mp4"
    result = run("interpolate", run_dir, video, "--keyframes", 2, "--frames", 5, "--size", 16, "--quiet")
    if "cannot open an MP4 writer" in result.output:
        pytest.skip("this OpenCV build has no 'mp4v' encoder")
    assert result.exit_code == 0, result.output
    capture = cv2.VideoCapture(str(video))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (16, 16, 3) and frames == 10
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
