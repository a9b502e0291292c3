"""An ordered, bounded process pool: results come back in input order, memory stays bounded."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def usable_cpus() -> int:
    """Number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def cap_workers(workers: int | None, items: int | None = None) -> int:
    """Worker processes to start: ``workers`` (None: all usable cores) capped at the usable cores
    and at ``items`` (tasks to run; None: unknown). 0 means "run in this process"."""
    capped = usable_cpus() if workers is None else min(workers, usable_cpus())
    return capped if items is None else min(capped, items)


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int | None = None,  # processes, at most the usable cores; None: all; 0 or 1: this process
    in_flight: int | None = None,  # tasks submitted but not yet yielded; None: 2 x workers
) -> Iterator[R]:
    """Apply ``fn`` to every item in a process pool and yield the results in input order.

    At most ``in_flight`` tasks are outstanding at any time, so memory is bounded whatever the
    number of items. An exception raised by ``fn`` propagates from the iterator.
    """
    workers = cap_workers(workers)
    if workers <= 1:
        yield from map(fn, items)
        return
    in_flight = max(1, in_flight or 2 * workers)
    pending: deque[Future] = deque()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
