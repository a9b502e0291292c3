"""The unfinished ``.NAME.partial`` file of a pyramid being written: who owns it, and a full disk.

A writer holds an exclusive ``flock`` on its partial file for as long as it writes, so a partial
file that nobody holds was left by a run that died (SIGKILL, power cut) and may be removed.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from pgtools.errors import PgtoolsError
from pgtools.pyramid.format import partial_path

NO_SPACE = "No space left on device"  # what HDF5 puts in its messages for errno 28


def is_disk_full(err: BaseException) -> bool:
    """True for ENOSPC, whether the OS raised it or HDF5 wrapped it in its own message."""
    return getattr(err, "errno", None) == errno.ENOSPC or NO_SPACE in str(err)


def disk_full_error(target: Path) -> PgtoolsError:
    return PgtoolsError(f"no space left on device while writing {target}")


def lock_partial(temp: Path, target: Path) -> int:
    """Open (creating if needed) and exclusively lock ``temp``; returns the descriptor holding the lock.

    Raises:
        PgtoolsError: another live process holds it (is writing ``target`` now), or the folder
            cannot be written (a full disk included).
    """
    try:
        handle = os.open(temp, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(target) from None
        raise PgtoolsError(f"cannot write {target}: {err.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise PgtoolsError(f"{target}: another process is writing it now ({temp.name} is in use)") from None
    except OSError:
        pass  # a file system without locks (some network and FUSE mounts): written unguarded, as before
    return handle


def remove_stale_partial(target: str | os.PathLike) -> Path | None:
    """Remove the partial file of ``target`` left by a run that died; returns its path if removed.

    A partial file that a live process is writing is left alone (and makes this raise PgtoolsError).
    """
    temp = partial_path(Path(target))
    if not temp.is_file():
        return None
    handle = lock_partial(temp, Path(target))
    try:
        temp.unlink()
    finally:
        os.close(handle)
    return temp
