"""Group commit for device ingest: fixes from concurrent requests share one transaction.

A fix costs a few short statements and one commit, and the commit (a WAL flush) is most of
the time. With many devices reporting at once, requests queue here; while one batch is being
written the next one gathers, and it is written as soon as a slot frees — no timer, so a
lone fix waits for nothing. Each request still gets its own answer: a refused request (no
consent, a foreign device) does not stop the others in its batch, and a request is answered
only after its batch has committed, so an acknowledged fix is never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import anyio.to_thread
from sqlalchemy.exc import OperationalError

from data.care import IngestRequest, IngestResult
from geo.errors import GridworkError

Outcome = IngestResult | GridworkError
Store = Callable[[Sequence[IngestRequest]], list[Outcome]]

MAX_BATCH = 500
FLUSHES = 2  # batches written at once: one commits while the next one's statements run


class IngestQueue:
    """Batches ingest requests on one event loop; ``store`` writes a batch in one transaction."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH, flushes: int = FLUSHES):
        self.loop = asyncio.get_running_loop()
        self._store = store
        self._max_batch = max_batch
        self._slots = asyncio.Semaphore(flushes)
        self._pending: list[tuple[IngestRequest, asyncio.Future[IngestResult]]] = []
        self._queued = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, request: IngestRequest) -> IngestResult:
        future: asyncio.Future[IngestResult] = self.loop.create_future()
        self._pending.append((request, future))
        self._kick()
        return await future

    def _kick(self) -> None:
        """Make sure one drain is waiting for a slot whenever requests are pending."""
        if self._pending and self._queued == 0:
            self._queued += 1
            task = self.loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        async with self._slots:
            self._queued -= 1
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._kick()
            if not batch:
                return
            requests = [request for request, _ in batch]
            try:
                outcomes: Sequence[Outcome | BaseException] = await anyio.to_thread.run_sync(
                    self._write, requests
                )
            except Exception as exc:  # the database is down: every request hears it
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the client went away; its fix may still be stored
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _write(self, requests: Sequence[IngestRequest]) -> Sequence[Outcome | BaseException]:
        """The batch in one transaction; if it fails for a reason other than the database
        being unreachable, each request is retried alone so one bad request fails alone."""
        try:
            return self._store(requests)
        except OperationalError:
            raise
        except Exception:
            if len(requests) == 1:
                raise
        alone: list[Outcome | BaseException] = []
        for request in requests:
            try:
                alone.extend(self._store([request]))
            except Exception as exc:
                alone.append(exc)
        return alone
