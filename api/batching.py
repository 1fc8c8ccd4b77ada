"""Concurrent requests on one event loop served by shared calls: group commit, shared reads.

While one batch is being processed in a worker thread, the items submitted meanwhile wait;
as soon as it is done they go together as the next batch. There is no timer: a lone item
waits for nothing, and under load a batch grows as large as the time the previous one took
(so a slower database or disk means larger batches, not a longer queue).

One batch at a time per event loop: each batch has a fixed cost (a pooled connection,
statements, a commit), and on two shared cores two overlapping batches of half the size
cost more CPU than they saved in waiting (measured with ``bench.ingest``'s load while
choosing; the number in flight is not a setting, so no command compares the two today).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import anyio.to_thread

from geo.errors import Unavailable

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class Batcher(Generic[Item, Outcome]):
    """``process`` gets a batch and returns one outcome per item, in order; an exception
    among the outcomes goes to that item's caller alone, an exception raised by ``process``
    to every caller in the batch.

    With ``max_pending``, an item arriving while that many wait is refused at once
    (:class:`~geo.errors.Unavailable`, a 503): when the database falls behind, callers that
    retry (devices do) hear it in milliseconds instead of piling up until they time out."""

    def __init__(
        self,
        process: Callable[[Sequence[Item]], Sequence[Outcome | BaseException]],
        *,
        max_batch: int,
        max_pending: int | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._process = process
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._pending: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._runner: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Items waiting for the next batch (the one being processed not counted)."""
        return len(self._pending)

    async def submit(self, item: Item) -> Outcome:
        if self._max_pending is not None and len(self._pending) >= self._max_pending:
            raise Unavailable(
                f"{len(self._pending)} requests are waiting to be written; send again shortly"
            )
        future: asyncio.Future[Outcome] = self.loop.create_future()
        self._pending.append((item, future))
        if self._runner is None:
            self._runner = self.loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                items = [item for item, _ in batch]
                try:
                    outcomes = await anyio.to_thread.run_sync(self._process, items)
                except Exception as exc:  # e.g. the database is down: every caller hears it
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # the caller went away meanwhile
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._runner = None
