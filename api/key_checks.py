"""API keys checked against the database together when many arrive at once.

After a restart (of the API, or of PostGIS, which empties the principal cache), every
wearable's next report carries a key the process has not checked yet. One query per key,
each in its own thread with its own pooled connection, made the first minute after a restart
the slowest of the day. Here keys waiting to be checked share one query
(:class:`~api.batching.Batcher`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from api.batching import Batcher
from api.principals import Principal

Read = Callable[[Sequence[str]], dict[str, Principal]]
"""Keys → principals of the valid ones; a key missing from the answer is not valid."""

MAX_BATCH = 500


class KeyChecks(Batcher[str, Principal | None]):
    """Coalesces concurrent key checks on one event loop into calls of ``read``."""

    def __init__(self, read: Read, *, max_batch: int = MAX_BATCH) -> None:
        def read_batch(keys: Sequence[str]) -> list[Principal | None]:
            found = read(list(dict.fromkeys(keys)))  # a key asked twice is read once
            return [found.get(key) for key in keys]

        super().__init__(read_batch, max_batch=max_batch)

    async def check(self, key: str) -> Principal | None:
        """The key's principal, or ``None`` if it is unknown or revoked."""
        return await self.submit(key)
