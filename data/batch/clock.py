"""Where a batch job's time went, kept and reported the same way by every job.

A job reads the store, has tasks run, and writes back, in a loop over tables or communities;
it adds up the seconds of each phase over the loop (:class:`Stopwatch`) and reports them
with the runner it ran on (:class:`BatchTimes`), so that ``bench.batch`` can tell the store's
share of a run from the spread work's on any job.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class BatchTimes:
    """The runner a batch ran on and its seconds: reading the store, writing back (none for
    a job that only reads), and in all. A job's own phases are fields of its subclass."""

    runner: str
    read_s: float
    write_s: float = 0.0
    total_s: float


class Stopwatch:
    """The seconds of each phase of a batch, added up over its loop, from its start on."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Adds the time the block takes to ``name``'s seconds, whether it ends or raises."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def times(self, runner: str) -> dict[str, Any]:
        """:class:`BatchTimes`' fields as of now, to spread into a job's result."""
        return {
            "runner": runner,
            "read_s": self.seconds["read"],
            "write_s": self.seconds["write"],
            "total_s": time.perf_counter() - self.started,
        }
