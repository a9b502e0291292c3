"""Writing a pyramid when things go wrong: a full disk (real and injected), a read-only folder, a
run killed mid-way, two runs on one output."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from pgtools.errors import PgtoolsError
from pgtools.pyramid import PyramidWriter, labels_path, partial_path
from pgtools.pyramid.partial import lock_partial, remove_stale_partial

HDF5_ENOSPC = ("Can't synchronously write data (file write failed: time = Wed Dec  2 09:14:57 2026\n, filename = "
               "'x.partial', file descriptor = 4, errno = 28, error message = 'No space left on device', buf = 0x1)")


def images(count: int, side: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, side, side), dtype=np.uint8)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command in its own process: a crash shows as a signal, not as a dead test run."""
    return subprocess.run([sys.executable, "-m", "pgtools.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@contextlib.contextmanager
def mounted_tmpfs(path: Path, *options: str):
    """A small tmpfs at ``path`` (needs root and mount rights); skips the test where none can be made."""
    path.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip() or 'mount failed'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def write_mnist_folder(folder: Path, count: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "sources"))
    from dataset_files import write_mnist
    write_mnist(folder, count)


@pytest.mark.parametrize("size, num_images", [("2m", 3000), ("8m", 20_000)])
def test_a_real_full_disk_ends_in_one_error_line(tmp_path, size, num_images):
    write_mnist_folder(tmp_path / "mnist", 300)
    with mounted_tmpfs(tmp_path / "small", f"size={size}") as small:
        result = run_cli("create_mnist_rgb", small / "out.h5", tmp_path / "mnist", "--num_images", num_images, "-q")
        left = sorted(path.name for path in small.iterdir())
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"Error: no space left on device while writing {small / 'out.h5'}\n"
    assert left == []


def _fail_on_call(monkeypatch, owner, name: str, error: BaseException, call: int = 1) -> None:
    real = getattr(owner, name)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError(HDF5_ENOSPC)])
def test_an_injected_full_disk_while_writing_levels(tmp_path, monkeypatch, error):
    _fail_on_call(monkeypatch, h5py.Dataset, "__setitem__", error, call=3)
    target = tmp_path / "out.h5"
    with pytest.raises(PgtoolsError, match=f"^no space left on device while writing {target}$"):
        with PyramidWriter(target, resolution=8, channels=3, count=40) as writer:
            writer.add(images(40))
    assert list(tmp_path.iterdir()) == []


def test_an_injected_full_disk_while_closing_and_in_the_labels(tmp_path, monkeypatch):
    _fail_on_call(monkeypatch, h5py.File, "flush", RuntimeError(HDF5_ENOSPC), call=2)
    with pytest.raises(PgtoolsError, match="^no space left on device while writing"):
        with PyramidWriter(tmp_path / "a.h5", resolution=4, channels=3, count=5) as writer:
            writer.add(images(5, 4))
    monkeypatch.undo()
    _fail_on_call(monkeypatch, np, "save", OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(PgtoolsError, match="^no space left on device while writing"):
        with PyramidWriter(tmp_path / "b.h5", resolution=4, channels=3, count=5) as writer:
            writer.add(images(5, 4))
            writer.set_labels(np.eye(5))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("while_flushing_on_error", [False, True])
def test_a_full_disk_removes_even_a_file_kept_for_resume(tmp_path, monkeypatch, while_flushing_on_error):
    """create_celeba_hq keeps its partial file on errors, but not one the disk could not hold."""
    _fail_on_call(monkeypatch, h5py.Dataset, "__setitem__", OSError(errno.ENOSPC, "No space left on device"), call=4)
    with pytest.raises(PgtoolsError, match="^no space left on device while writing"):
        with PyramidWriter(tmp_path / "out.h5", resolution=4, channels=3, count=20, keep_partial=True) as writer:
            writer.add(images(5, 4))
            writer.flush()
            writer.add(images(5, 4))
            if while_flushing_on_error:
                raise KeyboardInterrupt  # the kept file's last flush meets the full disk
            writer.flush()
    assert list(tmp_path.iterdir()) == []


def test_an_injected_full_disk_while_creating_the_file(tmp_path, monkeypatch):
    _fail_on_call(monkeypatch, h5py.Group, "create_dataset", RuntimeError(HDF5_ENOSPC), call=2)
    with pytest.raises(PgtoolsError, match="^no space left on device while writing"):
        PyramidWriter(tmp_path / "out.h5", resolution=4, channels=3)
    assert list(tmp_path.iterdir()) == []


def test_other_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    _fail_on_call(monkeypatch, h5py.Dataset, "__setitem__", OSError(errno.EIO, "Input/output error"))
    with pytest.raises(OSError, match="Input/output error"):
        with PyramidWriter(tmp_path / "out.h5", resolution=4, channels=3, count=5) as writer:
            writer.add(images(5, 4))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder no file can be created in: chmod where that binds, else a read-only tmpfs (as root)."""
    folder = tmp_path / "ro"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with mounted_tmpfs(folder, "ro", "size=1m"):
        yield folder


def test_a_read_only_folder_is_refused_before_any_input_is_read(tmp_path, read_only_folder):
    result = run_cli("create_custom", read_only_folder / "out.h5", tmp_path / "no-such-input")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"Error: cannot write {read_only_folder / 'out.h5'}: folder {read_only_folder} "
                                    f"is not writable (")
    assert len(result.stderr.splitlines()) == 1


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from pgtools.pyramid import PyramidWriter
    writer = PyramidWriter(sys.argv[1], resolution=8, channels=3, count=6000)
    writer.add(np.full((1536, 3, 8, 8), 7, dtype=np.uint8))
    writer.flush()
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_run_records_what_it_wrote_and_the_next_run_removes_it(tmp_path):
    target = tmp_path / "out.h5"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(target)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    temp = partial_path(target)
    with h5py.File(temp, "r") as file:
        assert (file.attrs["count"], file.attrs["images_written"], bool(file.attrs["complete"])) == (6000, 1536, False)
        np.testing.assert_array_equal(file["data8x8"][:1536], 7)
    write_mnist_folder(tmp_path / "mnist", 20)
    again = run_cli("create_mnist", target, tmp_path / "mnist")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == f"Removed {temp}, left by an interrupted run"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mnist", "out.h5"]


def test_a_partial_file_in_use_is_never_removed(tmp_path):
    target = tmp_path / "out.h5"
    temp = partial_path(target)
    temp.write_bytes(b"another run's images")
    handle = lock_partial(temp, target)  # as a live writer holds it
    try:
        with pytest.raises(PgtoolsError, match=r"out.h5: another process is writing it now \(.out.h5.partial is in use\)"):
            remove_stale_partial(target)
        with pytest.raises(PgtoolsError, match="another process is writing it now"):
            PyramidWriter(target, resolution=4, channels=3)
    finally:
        os.close(handle)
    assert temp.read_bytes() == b"another run's images"
    assert not labels_path(target).exists() and not target.exists()


def test_a_file_system_without_locks_is_written_unguarded(tmp_path, monkeypatch):
    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr("pgtools.pyramid.partial.fcntl.flock", no_locks)
    with PyramidWriter(tmp_path / "out.h5", resolution=4, channels=3, count=2) as writer:
        writer.add(images(2, 4))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.h5"]
