"""Write outputs under a temporary name and move them into place only when complete."""

from __future__ import annotations

import os
import re
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
def atomic_output(target: str | os.PathLike, *, overwrite: bool = False, is_dir: bool = False,
                  own_files: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` when the block succeeds.

    On any exception, KeyboardInterrupt included, the temporary is removed and ``target`` is left
    as it was. The temporary's name starts with ``.`` and ends with ``.partial`` so that it never
    looks like a finished output.

    A folder (``is_dir``) replaces an existing one only if that holds nothing but files named like
    ``own_files`` (a regular expression: what the command writes), so no user file is ever removed.
    """
    target = Path(target)
    check_target(target, overwrite)
    if is_dir and target.is_dir():
        foreign = sorted(path.name for path in target.iterdir() if not re.fullmatch(own_files, path.name))
        if foreign:
            raise PgtoolsError(f"{target} holds {_listing(foreign)}, which this command did not write; "
                               "choose an empty or new folder (nothing was removed)")
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


def _listing(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f", ... ({len(names):,} files)" if len(names) > shown else "")


def output_folder(folder: str | os.PathLike, pattern: str, *, overwrite: bool) -> Path:
    """Create ``folder`` for files named like ``pattern`` (a regular expression), or reuse it.

    A folder already holding such files is refused unless ``overwrite``, which lets the command
    replace them file by file. Nothing else in the folder is ever touched or removed.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise PgtoolsError(f"{folder} exists and is not a folder")
    if not folder.parent.is_dir():
        raise PgtoolsError(f"cannot write into {folder}: folder {folder.parent} does not exist")
    if folder.is_dir() and not overwrite:
        clashes = sorted(path.name for path in folder.iterdir() if re.fullmatch(pattern, path.name))
        if clashes:
            raise PgtoolsError(f"{folder} already holds {_listing(clashes)} (use --overwrite to replace "
                               "such files; nothing else in the folder is touched)")
    folder.mkdir(exist_ok=True)
    return folder
