"""Write outputs under a temporary name and move them into place only when complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pgtools.errors import PgtoolsError


def check_target(target: Path, overwrite: bool) -> None:
    """Raise if ``target`` exists and may not be replaced, or if its folder is missing or read-only."""
    if target.exists() and not overwrite:
        raise PgtoolsError(f"{target} already exists (use --overwrite to replace it)")
    if not target.parent.is_dir():
        raise PgtoolsError(f"cannot write {target}: folder {target.parent} does not exist")
    check_writable(target)


def check_writable(target: Path) -> None:
    """Raise if no file can be created next to ``target`` (read-only folder or file system), so that
    a command fails before it reads any input rather than after."""
    try:
        with tempfile.TemporaryFile(dir=target.parent):  # unnamed where the OS allows: nothing to clean up
            pass
    except OSError as err:
        raise PgtoolsError(f"cannot write {target}: folder {target.parent} is not writable ({err.strerror})") from None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _set_default_mode(path: Path, full: int) -> None:
    """Give a temporary the permissions a plain open()/mkdir() would (mkstemp makes it private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, full & ~umask)


@contextmanager
def atomic_output(target: str | os.PathLike, *, overwrite: bool = False, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` when the block succeeds.

    On any exception, KeyboardInterrupt included, the temporary is removed and ``target`` is left
    as it was. The temporary's name starts with ``.`` and ends with ``.partial`` so that it never
    looks like a finished output.
    """
    target = Path(target)
    check_target(target, overwrite)
    prefix = f".{target.name}."
    if is_dir:
        temp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".partial", dir=target.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=".partial", dir=target.parent)
        os.close(handle)
        temp = Path(name)
    _set_default_mode(temp, 0o777 if is_dir else 0o666)
    try:
        yield temp
        if is_dir and target.exists():
            _remove(target)
        os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise
