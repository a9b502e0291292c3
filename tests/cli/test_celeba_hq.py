"""create_celeba_hq and create_deltas through the CLI, on the sample bundled in deltas/sample."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pgtools.cli import celeba_hq as celeba_hq_cli
from pgtools.cli import main
from pgtools.pyramid import Pyramid, partial_path
from pgtools.sources.celeba_hq import CelebAHQBuilder

SAMPLE = Path(__file__).resolve().parents[2] / "deltas" / "sample"
ROWS = 3  # the first rows of the sample: enough for batches, resume and a bad row, quick to build


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def image_list(deltas: Path) -> list[list[str]]:
    return [line.split() for line in (deltas / "image_list.txt").read_text().splitlines()[1:]]


@pytest.fixture
def deltas(tmp_path) -> Path:
    """A copy of the sample's deltas folder listing only its first ROWS rows."""
    folder = tmp_path / "deltas"
    shutil.copytree(SAMPLE / "deltas", folder)
    lines = (folder / "image_list.txt").read_text().splitlines(keepends=True)
    (folder / "image_list.txt").write_text("".join(lines[: ROWS + 1]))
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The sample's first ROWS rows built in one uninterrupted run."""
    folder = tmp_path_factory.mktemp("reference")
    shutil.copytree(SAMPLE / "deltas", folder / "deltas")
    lines = (folder / "deltas" / "image_list.txt").read_text().splitlines(keepends=True)
    (folder / "deltas" / "image_list.txt").write_text("".join(lines[: ROWS + 1]))
    result = run("create_celeba_hq", folder / "hq.h5", SAMPLE / "celeba", folder / "deltas", "--quiet")
    assert result.exit_code == 0, result.output
    return folder / "hq.h5"


def test_builds_bit_exact_pyramid(reference):
    with Pyramid(reference) as pyramid:
        assert (pyramid.num_images, pyramid.resolution, pyramid.channels) == (ROWS, 1024, 3)
        finals = [hashlib.md5(pyramid.read(1024, i, i + 1)[0].tobytes()).hexdigest() for i in range(ROWS)]
        assert finals == [row[4] for row in image_list(SAMPLE / "deltas")[:ROWS]]
        assert (pyramid.attrs["bit_exact_images"], pyramid.attrs["signed_path_images"]) == (ROWS, 0)
        assert pyramid.attrs["tolerant"] == False  # noqa: E712 (numpy bool)


def test_summary_line(tmp_path, deltas):
    result = run("create_celeba_hq", tmp_path / "x.h5", SAMPLE / "celeba", deltas, "--workers", 0)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Found all inputs for {ROWS} images (the published set has 30,000)",
        f"Wrote {ROWS} images of 1024x1024 to {tmp_path / 'x.h5'} ({ROWS} bit-exact, 0 via the signed path)",
    ]


def test_interrupted_run_resumes_to_the_same_file(tmp_path, deltas, reference, monkeypatch):
    monkeypatch.setattr(celeba_hq_cli, "BATCH", 1)
    original = CelebAHQBuilder.batches

    def interrupted(self, start, size):
        for index, batch in enumerate(original(self, start, size)):
            if index == 2:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(CelebAHQBuilder, "batches", interrupted)
    output = tmp_path / "hq.h5"
    result = run("create_celeba_hq", output, SAMPLE / "celeba", deltas, "--workers", 0, "--num_threads", 0)
    assert result.exit_code == 1
    assert result.output.endswith(f"Error: interrupted; {partial_path(output).name} keeps the images made so far: "
                                  "add --resume to continue\n")
    assert not output.exists()
    with h5py.File(partial_path(output)) as partial:
        assert (partial.attrs["images_written"], partial.attrs["complete"]) == (2, False)
    monkeypatch.setattr(CelebAHQBuilder, "batches", original)
    result = run("create_celeba_hq", output, SAMPLE / "celeba", deltas, "--resume", "--workers", 0)
    assert result.exit_code == 0, result.output
    assert "Resuming after 2 images" in result.output
    assert f"({ROWS} bit-exact, 0 via the signed path)" in result.output
    assert not partial_path(output).exists()
    assert run("compare", output, reference).output == f"All {ROWS} images are identical.\n"
    with Pyramid(output) as pyramid:
        assert pyramid.attrs["bit_exact_images"] == ROWS


def test_resume_refuses_other_settings(tmp_path, deltas):
    output = tmp_path / "hq.h5"
    with h5py.File(partial_path(output), "w") as partial:
        for r in (1024, 512):
            partial.create_dataset(f"data{r}x{r}", shape=(ROWS, 3, r, r), dtype=np.uint8)
        partial.attrs.update(images_written=1, tolerant=True, source="celeba-hq")
    result = run("create_celeba_hq", output, SAMPLE / "celeba", deltas, "--resume")
    assert result.exit_code == 1
    assert "it was started with tolerant=True, not False; delete it to start again" in result.output


def _break_proc_md5(deltas: Path, row: int) -> None:
    lines = (deltas / "image_list.txt").read_text().splitlines(keepends=True)
    lines[row + 1] = lines[row + 1].replace(image_list(deltas)[row][3], "0" * 32)
    (deltas / "image_list.txt").write_text("".join(lines))


def test_strict_mode_stops_at_a_mismatch_and_tolerant_mode_goes_on(tmp_path, deltas):
    _break_proc_md5(deltas, 0)
    output = tmp_path / "hq.h5"
    result = run("create_celeba_hq", output, SAMPLE / "celeba", deltas, "--workers", 0)
    assert result.exit_code == 1
    error = result.output.splitlines()[-1]
    assert error.startswith("Error: idx 0 (000003.jpg): proc_md5 mismatch") and "Pillow" in error
    assert "--resume" not in error  # nothing was made, so nothing is kept
    assert list(tmp_path.glob("*hq.h5*")) == []
    result = run("create_celeba_hq", output, SAMPLE / "celeba", deltas, "--tolerant", "--overwrite", "--workers", 0)
    assert result.exit_code == 0, result.output
    assert f"({ROWS - 1} bit-exact, 1 via the signed path)" in result.output
    with Pyramid(output) as pyramid:
        assert (pyramid.attrs["bit_exact_images"], pyramid.attrs["signed_path_images"]) == (ROWS - 1, 1)


def test_missing_inputs_are_named_before_any_work(tmp_path, deltas):
    (deltas / "deltas00000.zip").unlink()
    result = run("create_celeba_hq", tmp_path / "hq.h5", SAMPLE / "celeba", deltas)
    assert result.exit_code == 1
    assert "deltas00000.zip" in result.output and len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.glob("*hq.h5*")) == []


def test_create_deltas_round_trip(tmp_path, deltas, reference):
    pairs = deltas / "image_list.txt"
    result = run("create_deltas", SAMPLE / "celeba", reference, tmp_path / "new", "--pairs", pairs, "--deterministic")
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"Wrote deltas for {ROWS} images to {tmp_path / 'new'} (image_list.txt and the zips)\n")
    assert image_list(tmp_path / "new") == image_list(deltas)
    result = run("create_celeba_hq", tmp_path / "again.h5", SAMPLE / "celeba", tmp_path / "new")
    assert result.exit_code == 0, result.output
    assert run("compare", tmp_path / "again.h5", reference).exit_code == 0
    result = run("create_deltas", SAMPLE / "celeba", reference, tmp_path / "new", "--pairs", pairs)
    assert result.exit_code == 1 and "already exists (use --overwrite" in result.output
    (tmp_path / "new" / "notes.txt").write_text("mine")  # --overwrite never removes a file it did not write
    result = run("create_deltas", SAMPLE / "celeba", reference, tmp_path / "new", "--pairs", pairs, "--overwrite")
    assert result.exit_code == 1 and "holds notes.txt, which this command did not write" in result.output
    assert (tmp_path / "new" / "notes.txt").read_text() == "mine" and image_list(tmp_path / "new") == image_list(deltas)
    (tmp_path / "new" / "notes.txt").unlink()
    result = run("create_deltas", SAMPLE / "celeba", reference, tmp_path / "new", "--pairs", pairs, "--overwrite",
                 "--deterministic")
    assert result.exit_code == 0 and image_list(tmp_path / "new") == image_list(deltas), result.output
