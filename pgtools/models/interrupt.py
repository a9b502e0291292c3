"""Stopping training on SIGINT (Ctrl-C) or SIGTERM: the handlers only ask, the loop stops at a step
boundary and saves, then :class:`Interrupted` carries the outcome to the caller."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Training stopped by SIGINT or SIGTERM at a step boundary, after its checkpoint was saved."""

    def __init__(self, signum: int, kimg: float, checkpoint: Path | None, run_dir: Path) -> None:
        self.signum, self.kimg, self.checkpoint, self.run_dir = signum, kimg, checkpoint, run_dir
        saved = (f"saved {checkpoint}; continue with pgtools train --resume {run_dir}" if checkpoint
                 else "no checkpoint could be saved (the weights were not finite)")
        super().__init__(f"interrupted by {signal.Signals(signum).name} at kimg {kimg:.3f}: {saved}")


@contextmanager
def stop_requests(request: Callable[[int], None]) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM only call ``request(signum)`` (so a second Ctrl-C
    during a checkpoint changes nothing); the previous handlers come back after. Not in other
    threads, where Python cannot install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, lambda signum, frame: request(signum)) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
