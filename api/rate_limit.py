"""The per-process rate limiter, apart from the middleware so that the typed app state
(:mod:`api.state`) can hold one without importing the middleware that reads it."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from geo.errors import TooManyRequests


class RateLimit:
    """A sliding one-minute window per (bucket, client); in memory, per process."""

    MAX_KEYS = 100_000  # past this many (bucket, client) pairs, idle ones are forgotten

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _window(self, bucket: str, client: str, now: float) -> deque[float]:
        if len(self._hits) > self.MAX_KEYS:  # a flood of new names or addresses
            for k in [k for k, q in self._hits.items() if not q or now - q[-1] > 60]:
                del self._hits[k]
        q = self._hits[(bucket, client)]
        while q and now - q[0] > 60:
            q.popleft()
        return q

    @staticmethod
    def _refuse(q: deque[float], now: float, what: str, field: str) -> None:
        retry = int(60 - (now - q[0])) + 1
        raise TooManyRequests(f"too many {what}; retry in {retry} s", field=field)

    def hit(self, bucket: str, client: str, per_minute: int) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._window(bucket, client, now)
            if len(q) >= per_minute:
                self._refuse(q, now, f"{bucket} requests", bucket)
            q.append(now)

    def check(self, bucket: str, client: str, per_minute: int, *, what: str, field: str) -> None:
        """Refuse (429) if ``client`` already used up ``bucket``, without counting this call:
        for limits on failures only (:meth:`record`), such as wrong passwords per account."""
        now = time.monotonic()
        with self._lock:
            q = self._window(bucket, client, now)
            if len(q) >= per_minute:
                self._refuse(q, now, what, field)

    def record(self, bucket: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._window(bucket, client, now).append(now)
