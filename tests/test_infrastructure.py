"""atomic_output, ordered_map and Progress."""

from __future__ import annotations

import io
import os

import pytest

from pgtools.atomic import atomic_output
from pgtools.errors import PgtoolsError
from pgtools.parallel import ordered_map
from pgtools.progress import Progress, format_duration


def test_atomic_file_appears_only_on_success(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as temp:
            temp.write_bytes(b"half")
            assert temp.name.startswith(".out.bin.") and temp.name.endswith(".partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as temp:
        temp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]
    with pytest.raises(PgtoolsError, match="already exists"):
        with atomic_output(target):
            pass
    with atomic_output(target, overwrite=True) as temp:
        temp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_atomic_directory_replaces_only_when_done(tmp_path):
    target = tmp_path / "dir"
    target.mkdir()
    (target / "old").write_text("x")
    with pytest.raises(RuntimeError):
        with atomic_output(target, overwrite=True, is_dir=True, own_files="old|new") as temp:
            (temp / "new").write_text("y")
            raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"] and os.listdir(target) == ["old"]
    with atomic_output(target, overwrite=True, is_dir=True, own_files="old|new") as temp:
        (temp / "new").write_text("y")
    assert os.listdir(target) == ["new"]
    (target / "mine.txt").write_text("z")  # a file the command does not write: the folder is never replaced
    with pytest.raises(PgtoolsError, match="holds mine.txt, which this command did not write"):
        with atomic_output(target, overwrite=True, is_dir=True, own_files="old|new"):
            pass
    assert sorted(os.listdir(target)) == ["mine.txt", "new"]


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "f") as temp:
            temp.write_bytes(b"x")
        with atomic_output(tmp_path / "d", is_dir=True):
            pass
    finally:
        os.umask(umask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_atomic_needs_an_existing_folder(tmp_path):
    with pytest.raises(PgtoolsError, match="folder .*nope does not exist"):
        with atomic_output(tmp_path / "nope" / "x"):
            pass


def _square(x: int) -> int:
    if x == 13:
        raise ValueError("unlucky")
    return x * x


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_ordered_map_keeps_order(workers):
    assert list(ordered_map(_square, range(12), workers=workers, in_flight=3)) == [x * x for x in range(12)]


def test_ordered_map_bounds_what_it_consumes():
    consumed = []

    def items():
        for x in range(100):
            consumed.append(x)
            yield x

    results = ordered_map(_square, items(), workers=2, in_flight=4)
    assert next(results) == 0
    assert len(consumed) <= 5
    results.close()


def test_ordered_map_propagates_errors():
    with pytest.raises(ValueError, match="unlucky"):
        list(ordered_map(_square, range(20), workers=2))


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_and_silence():
    stream = Terminal()
    progress = Progress("Writing", 200, stream=stream, interval=0)
    progress(50)
    assert "Writing: 50/200 (25%) images," in stream.getvalue() and "ETA" in stream.getvalue()
    progress.close()
    assert stream.getvalue().endswith("\n")
    quiet = io.StringIO()  # not a terminal: nothing is drawn
    progress = Progress("Writing", 10, stream=quiet, interval=0)
    progress(5)
    progress.close()
    assert quiet.getvalue() == ""
    assert [format_duration(s) for s in (5, 75, 3725)] == ["5s", "1m15s", "1h02m"]
