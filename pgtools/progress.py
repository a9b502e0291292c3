"""A progress line for long commands: items done, rate and ETA, redrawn in place on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Callable progress counter: ``progress(n)`` records n more items done.

    Draws ``label: done/total (pct) rate/s ETA`` at most ``interval`` seconds apart when ``stream``
    is a terminal and ``enabled``; silent otherwise. :meth:`close` ends the line.
    """

    def __init__(self, label: str, total: int | None = None, *, unit: str = "images", enabled: bool = True,
                 stream: TextIO | None = None, interval: float = 0.5) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.interval = interval
        self.done = 0
        self.start = self._last = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def rate(self) -> float:
        return self.done / max(self.elapsed, 1e-9)

    def line(self) -> str:
        """The current status text."""
        text = f"{self.label}: {self.done:,}"
        if self.total:
            text += f"/{self.total:,} ({100 * self.done / self.total:.0f}%)"
        text += f" {self.unit}, {self.rate:,.1f}/s"
        if self.total and self.done:
            text += f", ETA {format_duration((self.total - self.done) / self.rate)}"
        return text

    def __call__(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self.stream.write("\r" + self.line() + "\033[K")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.line() + "\033[K\n")
            self.stream.flush()
