"""API keys checked against the database together when many arrive at once.

After a restart (of the API, or of PostGIS, which empties the principal cache), every
wearable's next report carries a key the process has not checked yet. One query per key,
each in its own thread with its own pooled connection, made the first minute after a restart
the slowest of the day. Here keys waiting to be checked share one query: while one batch is
read, the next gathers, and a lone key waits for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import anyio.to_thread

from api.principals import Principal

Read = Callable[[Sequence[str]], dict[str, Principal]]
"""Keys → principals of the valid ones; a key missing from the answer is not valid."""

MAX_BATCH = 500


class KeyChecks:
    """Coalesces concurrent key checks on one event loop into calls of ``read``."""

    def __init__(self, read: Read, *, max_batch: int = MAX_BATCH) -> None:
        self.loop = asyncio.get_running_loop()
        self._read = read
        self._max_batch = max_batch
        self._waiting: dict[str, list[asyncio.Future[Principal | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def check(self, key: str) -> Principal | None:
        """The key's principal, or ``None`` if it is unknown or revoked."""
        future: asyncio.Future[Principal | None] = self.loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._reader is None:
            self._reader = self.loop.create_task(self._read_all())
        return await future

    async def _read_all(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[: self._max_batch]
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    found = await anyio.to_thread.run_sync(self._read, keys)
                except Exception as exc:  # the database is down: every waiting key hears it
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    for future in futures:
                        if not future.done():  # the client went away meanwhile
                            future.set_result(found.get(key))
        finally:
            self._reader = None
