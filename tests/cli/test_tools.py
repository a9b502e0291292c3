"""inspect, compare, extract, grid and display through the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pgtools.cli import main
from pgtools.cli.tools import _display_problem
from pgtools.inspection import contact_sheet
from pgtools.pyramid import lod_levels, write_pyramid

IMAGES = np.random.default_rng(5).integers(0, 256, (12, 3, 16, 16), dtype=np.uint8)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def pyramid(tmp_path):
    path = tmp_path / "p.h5"
    write_pyramid(path, [IMAGES], resolution=16, channels=3, count=12, attrs={"command": "pgtools test", "source": "/data"})
    return path


def test_inspect_prints_summary_and_level_table(pyramid):
    result = run("inspect", pyramid)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Number of images    12" in lines
    assert "Resolution          16x16" in lines
    assert "Color channels      3" in lines
    assert "Size per image      768.0 B" not in lines and lines[5].startswith("Size per image      0.8 KiB")
    assert "Command             pgtools test" in lines
    table = [line.split() for line in lines if line.startswith("data")]
    assert [row[0] for row in table] == ["data16x16", "data8x8", "data4x4", "data2x2", "data1x1"]
    assert table[0][1:4] == ["12x3x16x16", "12x3x16x16", "none"]


def test_inspect_json_and_incomplete_warning(pyramid):
    info = json.loads(run("inspect", "--json", pyramid).output)
    assert (info["num_images"], info["resolution"], info["channels"]) == (12, 16, 3)
    assert info["levels"][0] == {"name": "data16x16", "shape": [12, 3, 16, 16], "dtype": "uint8",
                                 "chunks": [12, 3, 16, 16], "compression": "none",
                                 "bytes_on_disk": 9216, "bytes_uncompressed": 9216}
    assert info["warnings"] == []
    with h5py.File(pyramid, "r+") as file:
        file.attrs["complete"] = False
        del file["data2x2"]
    result = run("inspect", pyramid)
    assert result.exit_code == 0
    assert "Warning: levels missing: data2x2 (perhaps creation was interrupted)" in result.output
    assert "Warning: incomplete: 12 written (creation was interrupted)" in result.output


def test_inspect_flags_a_file_without_complete_attribute(tmp_path):
    with h5py.File(tmp_path / "o.h5", "w") as file:
        for r, level in lod_levels(IMAGES, 16).items():
            file[f"data{r}x{r}"] = level
    assert "no 'complete' flag" in run("inspect", tmp_path / "o.h5").output


def test_errors_are_one_line(tmp_path):
    (tmp_path / "t.h5").write_text("x")
    result = run("inspect", tmp_path / "t.h5")
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 't.h5'}: not an HDF5 file\n"
    assert run("inspect", tmp_path / "missing.h5").output == f"Error: {tmp_path / 'missing.h5'}: no such file\n"


def test_compare_identical_and_different(tmp_path, pyramid):
    result = run("compare", pyramid, pyramid)
    assert (result.exit_code, result.output) == (0, "All 12 images are identical.\n")
    changed = IMAGES.copy()
    changed[3, 0, 0, 0] ^= 1  # too small to survive the 2x2 means after rounding? only at 16x16 for sure
    changed[9] = 255 - changed[9]
    write_pyramid(tmp_path / "b.h5", [changed[:10]], resolution=16, channels=3)
    result = run("compare", pyramid, tmp_path / "b.h5")
    assert result.exit_code == 3
    lines = result.output.splitlines()
    assert lines[-1] == f"{pyramid} and {tmp_path / 'b.h5'} differ"
    assert lines[0] == "Image count mismatch: 12 vs 10"
    assert lines[1] == "data16x16: 2 of 10 images differ: 3, 9"
    assert "data1x1: 1 of 10 images differ: 9" in lines
    assert "are identical" not in result.output


def test_exit_statuses_follow_the_readme_table(tmp_path, pyramid):
    """0 success, 1 error, 2 usage error, 3 a check found a difference."""
    write_pyramid(tmp_path / "b.h5", [255 - IMAGES], resolution=16, channels=3)
    statuses = {
        "identical": run("compare", pyramid, pyramid).exit_code,
        "error": run("compare", pyramid, tmp_path / "missing.h5").exit_code,
        "unknown option": run("compare", pyramid, pyramid, "--bogus").exit_code,
        "missing argument": run("inspect").exit_code,
        "bad value": run("grid", pyramid, tmp_path / "g.png", "--count", 0).exit_code,
        "different": run("compare", pyramid, tmp_path / "b.h5").exit_code,
    }
    assert statuses == {"identical": 0, "error": 1, "unknown option": 2, "missing argument": 2, "bad value": 2,
                        "different": 3}


def test_compare_channel_mismatch(tmp_path, pyramid):
    write_pyramid(tmp_path / "g.h5", [IMAGES[:, :1]], resolution=16, channels=1)
    result = run("compare", pyramid, tmp_path / "g.h5")
    assert (result.exit_code, result.output) == (3, f"Channel count mismatch: 3 vs 1\n{pyramid} and {tmp_path / 'g.h5'} differ\n")


def test_extract_writes_pngs_at_any_level(tmp_path, pyramid):
    out = tmp_path / "out"
    result = run("extract", pyramid, out, "--start", 2, "--stop", 8, "--step", 3, "--resolution", 8)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["img00000002.png", "img00000005.png"]
    level8 = lod_levels(IMAGES, 16)[8]
    np.testing.assert_array_equal(np.asarray(Image.open(out / "img00000005.png")), level8[5].transpose(1, 2, 0))
    result = run("extract", pyramid, out)
    assert result.exit_code == 1 and "out already holds img00000002.png, img00000005.png (use --overwrite" in result.output
    assert run("extract", pyramid, out, "--overwrite").exit_code == 0
    assert len(list(out.iterdir())) == 12
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    result = run("extract", pyramid, tmp_path / "o2", "--resolution", 32)
    assert result.output.endswith("no 32x32 level (levels: 1, 2, 4, 8, 16)\n") and result.exit_code == 1


def test_extract_overwrite_replaces_only_its_own_files(tmp_path, pyramid):
    mypics = tmp_path / "mypics"
    (mypics / "sub").mkdir(parents=True)
    (mypics / "notes.txt").write_text("notes")
    (mypics / "sub" / "photo.jpg").write_bytes(b"jpeg")
    (mypics / "img00000001.png").write_bytes(b"old")
    result = run("extract", pyramid, mypics, "--stop", 3)
    assert result.exit_code == 1
    assert result.output == (f"Error: {mypics} already holds img00000001.png (use --overwrite to replace such files; "
                             "nothing else in the folder is touched)\n")
    assert (mypics / "img00000001.png").read_bytes() == b"old"
    result = run("extract", pyramid, mypics, "--stop", 3, "--overwrite")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in mypics.iterdir()) == ["img00000000.png", "img00000001.png", "img00000002.png",
                                                         "notes.txt", "sub"]
    assert (mypics / "notes.txt").read_text() == "notes" and (mypics / "sub" / "photo.jpg").read_bytes() == b"jpeg"
    np.testing.assert_array_equal(np.asarray(Image.open(mypics / "img00000001.png")), IMAGES[1].transpose(1, 2, 0))
    (tmp_path / "afile").write_text("x")
    assert run("extract", pyramid, tmp_path / "afile").exit_code == 2  # Click: "is a file", a usage error


def test_extract_grayscale(tmp_path):
    write_pyramid(tmp_path / "g.h5", [IMAGES[:, :1]], resolution=16, channels=1)
    assert run("extract", tmp_path / "g.h5", tmp_path / "out", "--stop", 1).exit_code == 0
    image = Image.open(tmp_path / "out" / "img00000000.png")
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), IMAGES[0, 0])


def test_grid_is_a_contact_sheet(tmp_path, pyramid):
    result = run("grid", pyramid, tmp_path / "g.png", "--resolution", 8, "--count", 6, "--columns", 3)
    assert result.exit_code == 0, result.output
    sheet = np.asarray(Image.open(tmp_path / "g.png"))
    assert sheet.shape == (16, 24, 3)
    level8 = lod_levels(IMAGES, 16)[8]
    np.testing.assert_array_equal(sheet[8:16, 16:24], level8[5].transpose(1, 2, 0))
    assert run("grid", pyramid, tmp_path / "g.png").exit_code == 1


def test_grid_random_starts_at_start(tmp_path, pyramid):
    result = run("grid", pyramid, tmp_path / "r.png", "--random", 1, "--start", 10, "--count", 4, "--columns", 4)
    assert result.output == f"Wrote a grid of 2 images of 16x16 to {tmp_path / 'r.png'}\n"
    sheet = np.asarray(Image.open(tmp_path / "r.png"))
    np.testing.assert_array_equal(sheet[:, :32], np.concatenate([IMAGES[10], IMAGES[11]], axis=2).transpose(1, 2, 0))
    result = run("grid", pyramid, tmp_path / "s.png", "--random", 3, "--start", 4, "--count", 3, "--columns", 3)
    sheet = np.asarray(Image.open(tmp_path / "s.png"))
    picked = [int(np.flatnonzero((IMAGES == sheet[:, 16 * i:16 * (i + 1)].transpose(2, 0, 1)).all(axis=(1, 2, 3)))[0])
              for i in range(3)]
    assert picked == sorted(picked) and min(picked) >= 4 and len(set(picked)) == 3


def test_grid_format_follows_the_extension(tmp_path, pyramid):
    result = run("grid", pyramid, tmp_path / "g.jpg", "--count", 4)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(tmp_path / "g.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (32, 32))
        error = np.abs(np.asarray(image).astype(int) - contact_sheet(IMAGES[:4]).astype(int))
    assert error.mean() < 6  # uniform noise, the hardest case for JPEG: about 3 at quality 95
    assert run("grid", pyramid, tmp_path / "G.JPEG", "--count", 1).exit_code == 0
    assert Image.open(tmp_path / "G.JPEG").format == "JPEG"
    result = run("grid", pyramid, tmp_path / "g.bmp")
    assert (result.exit_code, result.output) == (1, f"Error: {tmp_path / 'g.bmp'}: cannot tell the image format from "
                                                    "'.bmp'; name it .png, .jpg, .jpeg\n")
    assert not (tmp_path / "g.bmp").exists()


def test_contact_sheet_layout():
    images = np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1)
    assert contact_sheet(images)[:, :, 0].tolist() == [[0, 1, 2], [3, 4, 0]]
    assert contact_sheet(images, columns=2, gap=1)[:, :, 0].tolist() == [[0, 0, 1], [0, 0, 0], [2, 0, 3], [0, 0, 0], [4, 0, 0]]


def test_display_without_a_screen_points_elsewhere(pyramid, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = run("display", pyramid)
    assert result.exit_code == 1
    assert result.output == ("Error: no display available here; use `pgtools grid FILE out.png` or "
                             "`pgtools extract FILE DIR` instead\n")


def test_display_with_an_unreachable_x_server_says_so(pyramid):
    """Without the check, OpenCV's Qt aborts the whole process (exit 134): so run it as one."""
    env = {key: value for key, value in os.environ.items() if key != "WAYLAND_DISPLAY"} | {"DISPLAY": ":4711"}
    result = subprocess.run([sys.executable, "-m", "pgtools.cli", "display", str(pyramid)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("Error: cannot open display :4711 (no X server answers there); use `pgtools grid FILE "
                             "out.png` or `pgtools extract FILE DIR` instead\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux's")
def test_display_check_accepts_a_listening_x_server(monkeypatch):
    with socket.socket(socket.AF_UNIX) as local, socket.socket() as remote:
        local.bind("\0/tmp/.X11-unix/X4712")
        local.listen()
        remote.bind(("127.0.0.1", 0))
        remote.listen()
        port = remote.getsockname()[1]
        for display, problem in ((":4712", None), ("unix:4712.0", None), (":4713", "cannot open display :4713"),
                                 ("nonsense", "cannot open display nonsense")):
            monkeypatch.setenv("DISPLAY", display)
            assert (_display_problem() or "").startswith(problem or ""), display
            assert bool(_display_problem()) == bool(problem), display
        if port > 6000:
            monkeypatch.setenv("DISPLAY", f"127.0.0.1:{port - 6000}")
            assert _display_problem() is None


def test_help_has_description_and_example():
    listing = run("--help").output
    for name in ("inspect", "compare", "extract", "display", "grid"):
        assert f"  {name} " in listing
        text = run(name, "--help").output
        assert "Example:" in text and f"pgtools {name} " in text
    assert run("create-mnist", "--help").exit_code in (0, 2)  # dashed alias resolves (2 until registered)
