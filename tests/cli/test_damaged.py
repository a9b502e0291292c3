"""Damaged, truncated and interrupted pyramids: one line naming the file and the level, never a traceback."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pgtools.cli import main
from pgtools.errors import Damaged
from pgtools.pyramid import Pyramid, PyramidWriter, write_pyramid

IMAGES = np.random.default_rng(7).integers(0, 256, (40, 3, 16, 16), dtype=np.uint8)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _chunk(path, level, index=0):
    with h5py.File(path, "r") as file:
        return file[level].id.get_chunk_info(index)


def _overwrite(path, offset, data):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


@pytest.fixture
def gzip_damaged(tmp_path):
    """gzip chunks of 21 images at 8x8: the second chunk of data8x8 (images 21-39) has garbage in its middle."""
    path = tmp_path / "gz.h5"
    write_pyramid(path, [IMAGES], resolution=16, channels=3, count=40, compression="gzip-4")
    chunk = _chunk(path, "data8x8", 1)
    assert chunk.chunk_offset[0] == 21
    _overwrite(path, chunk.byte_offset + chunk.size // 2, b"\xa5" * 16)
    return path


@pytest.fixture
def index_damaged(tmp_path):
    """Uncompressed: the chunk index of data4x4 points past the end of the file."""
    path = tmp_path / "raw.h5"
    write_pyramid(path, [IMAGES], resolution=16, channels=3, count=40, compression="none")
    address = struct.pack("<Q", _chunk(path, "data4x4").byte_offset)
    data = path.read_bytes()
    assert data.count(address) == 1
    _overwrite(path, data.index(address), struct.pack("<Q", 2**40))
    return path


@pytest.fixture
def truncated(tmp_path):
    path = tmp_path / "cut.h5"
    write_pyramid(path, [IMAGES], resolution=16, channels=3, count=40)
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size * 2 // 3)
    return path, size


def test_gzip_chunk_damage_names_file_and_level(gzip_damaged):
    for args in (["grid", gzip_damaged, gzip_damaged.with_name("g.png"), "--resolution", 8, "--count", 40],
                 ["extract", gzip_damaged, gzip_damaged.with_name("out"), "--resolution", 8],
                 ["compare", gzip_damaged, gzip_damaged]):
        result = run(*args)
        assert result.exit_code == 1, args
        assert result.output.startswith(f"Error: {gzip_damaged}: level 8x8 is damaged ("), args
        assert len(result.output.splitlines()) == 1, args
    assert run("compare", gzip_damaged, gzip_damaged).output.endswith(
        "(can't read data (filter returned failure during read))\n")
    assert not gzip_damaged.with_name("g.png").exists()
    with Pyramid(gzip_damaged) as pyramid:  # pgtools' own fast path decompresses with zlib
        with pytest.raises(Damaged, match=r"level 8x8 is damaged \(can't decompress a chunk \(.+\)\)$"):
            pyramid.read_indices(8, [30])
        assert pyramid.read_indices(8, [0, 20]).shape == (2, 3, 8, 8)  # the other chunk still reads


def test_metrics_on_a_damaged_level_is_one_line(tmp_path):
    path = tmp_path / "gz.h5"
    write_pyramid(path, [IMAGES], resolution=16, channels=3, count=40, compression="gzip-4")
    chunk = _chunk(path, "data16x16", 2)
    _overwrite(path, chunk.byte_offset + chunk.size // 2, b"\xa5" * 16)
    result = run("metrics", path, "--fakes", path, "--num_images", 20, "--metric", "swd")
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert result.output.startswith(f"Error: {path}: level 16x16 is damaged (can't decompress a chunk (")  # zlib's words


def test_training_on_a_damaged_file_stops_with_one_line(index_damaged, tmp_path, one_thread):
    result = run("train", index_damaged, "--fmap_base", 64, "--fmap_max", 16, "--latent_dim", 16, "--minibatch", 8,
                 "--device", "cpu", "--cache_gb", 0, "--data_workers", 0, "--total_kimg", 0.048,
                 "--outdir", tmp_path / "runs")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(f"Error: {index_damaged}: level 4x4 is damaged (can't read data (")
    assert "Traceback" not in result.output


def test_damaged_chunk_index_names_the_level(index_damaged):
    result = run("extract", index_damaged, index_damaged.with_name("out"), "--resolution", 4)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(f"Error: {index_damaged}: level 4x4 is damaged (can't read data (")
    assert "Traceback" not in result.output


def test_truncated_file_is_one_line(truncated):
    path, size = truncated
    line = f"Error: {path}: file is damaged (truncated: {size * 2 // 3:,} of {size:,} bytes present)\n"
    for args in (["inspect", path], ["grid", path, path.with_name("g.png")], ["compare", path, path],
                 ["extract", path, path.with_name("out")]):
        result = run(*args)
        assert (result.exit_code, result.output) == (1, line), args


def test_verify_reports_damaged_levels_and_exits_3(gzip_damaged, index_damaged, truncated):
    result = run("inspect", gzip_damaged, "--verify")
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    table = lines[lines.index("level           read back") + 1:]
    assert table == [
        "data16x16       ok",
        "data8x8         damaged: images 21-39 (can't read data (filter returned failure during read))",
        "data4x4         ok",
        "data2x2         ok",
        "data1x1         ok",
        f"{gzip_damaged}: 1 of 5 levels damaged",
    ]
    result = run("inspect", index_damaged, "--verify", "--json")
    assert result.exit_code == 3
    checks = json.loads(result.output[:result.output.rindex("}") + 1])["verify"]
    assert [check["ok"] for check in checks] == [True, True, False, True, True]
    assert checks[2]["damaged_images"] == [[0, 40]] and checks[2]["level"] == "data4x4"
    path, _ = truncated
    result = run("inspect", path, "--verify")
    assert result.exit_code == 3 and result.output.startswith(f"{path}: file is damaged (truncated: ")


def test_verify_of_a_sound_file_exits_0(tmp_path):
    write_pyramid(tmp_path / "ok.h5", [IMAGES], resolution=16, channels=3, count=40, compression="gzip-1")
    result = run("inspect", tmp_path / "ok.h5", "--verify")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-5:] == [f"data{r}x{r}".ljust(16) + "ok" for r in (16, 8, 4, 2, 1)]


def test_interrupted_partial_file_says_how_many_were_written(tmp_path):
    """What a SIGKILL leaves: 16 of 40 planned images flushed, ``complete`` still false."""
    target = tmp_path / "p.h5"
    with pytest.raises(KeyboardInterrupt):
        with PyramidWriter(target, resolution=16, channels=3, count=40, compression="gzip-4", keep_partial=True) as writer:
            writer.add(IMAGES[:16])
            writer.flush()
            raise KeyboardInterrupt
    partial = tmp_path / ".p.h5.partial"
    result = run("inspect", partial)
    assert "Number of images    40 planned; incomplete: 16 of 40 written" in result.output.splitlines()
    assert "Warning: incomplete: 16 of 40 written (creation was interrupted)" in result.output
    assert json.loads(run("inspect", partial, "--json").output)["incomplete"] == "incomplete: 16 of 40 written"
    result = run("grid", partial, tmp_path / "g.png")
    assert result.output == (f"Error: {partial}: incomplete: 16 of 40 written (its creation was interrupted); "
                             "create it again\n")
    with h5py.File(partial, "r+") as file:  # no flag, no count: judged by the chunks written (5 images each)
        del file.attrs["complete"], file.attrs["images_written"]
    assert "Warning: incomplete: at most 20 of 40 written" in run("inspect", partial).output


def test_a_file_being_written_is_not_called_damaged(tmp_path):
    """HDF5 locks a file open for writing against other processes (this one may open it again)."""
    partial = tmp_path / ".p.h5.partial"
    with PyramidWriter(tmp_path / "p.h5", resolution=16, channels=3, count=40) as writer:
        writer.add(IMAGES)
        writer.flush()
        result = subprocess.run([sys.executable, "-m", "pgtools.cli", "inspect", str(partial)],
                                capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"Error: {partial}: another process is writing it (HDF5 file lock); try again when it is done\n"
