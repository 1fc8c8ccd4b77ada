"""Group commit under overload: what waits is bounded, and the rest hear 503 at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from api.batching import Batcher
from geo.errors import Unavailable


def test_beyond_max_pending_callers_are_refused_at_once_and_the_others_served() -> None:
    gate = threading.Event()
    batches: list[list[int]] = []

    def process(items: Sequence[int]) -> list[int]:
        gate.wait(5)  # the database is slow
        batches.append(list(items))
        return [i * 10 for i in items]

    async def run() -> tuple[list[int | BaseException], float]:
        batcher: Batcher[int, int] = Batcher(process, max_batch=100, max_pending=3)
        first = asyncio.ensure_future(batcher.submit(0))  # taken at once, being written
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        started = asyncio.get_running_loop().time()
        with pytest.raises(Unavailable, match="3 requests are waiting"):
            await batcher.submit(4)
        refused_after = asyncio.get_running_loop().time() - started
        gate.set()
        return list(await asyncio.gather(first, *waiting, return_exceptions=True)), refused_after

    answers, refused_after = asyncio.run(run())
    assert answers == [0, 10, 20, 30]
    assert refused_after < 0.5  # not after the slow batch
    assert batches == [[0], [1, 2, 3]]
