"""Concurrent checks of new API keys share one read (``api.key_checks.KeyChecks``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from api.key_checks import KeyChecks
from api.principals import Principal
from data.access.queries import AreaScope
from data.models import Role


def principal(key: str) -> Principal:
    return Principal(f"key:{key}", Role.device, None, AreaScope.everywhere(), "api_key")


class Store:
    """A key store whose reads are slow enough for callers to pile up behind one."""

    def __init__(self, valid: set[str], *, fail: bool = False) -> None:
        self.valid = valid
        self.fail = fail
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def read(self, keys: Sequence[str]) -> dict[str, Principal]:
        with self._lock:
            self.calls.append(list(keys))
        threading.Event().wait(0.02)
        if self.fail:
            raise ConnectionError("the database is down")
        return {k: principal(k) for k in keys if k in self.valid}


def test_each_caller_gets_its_own_answer_from_few_shared_reads() -> None:
    valid = {f"k{i}" for i in range(150)}
    store = Store(valid)
    asked = [f"k{i}" for i in range(200) for _ in "ab"]  # 50 unknown, each asked twice at once

    async def run() -> list[Principal | None]:
        checks = KeyChecks(store.read, max_batch=64)
        return await asyncio.gather(*(checks.check(k) for k in asked))

    answers = asyncio.run(run())
    assert [a.name if a else None for a in answers] == [
        f"key:{k}" if k in valid else None for k in asked
    ]
    read = [k for call in store.calls for k in call]
    assert sorted(read) == sorted(set(asked)), "a key was read twice, or not at all"
    assert max(len(call) for call in store.calls) <= 64
    assert len(store.calls) <= 8


def test_a_lone_key_is_read_at_once_and_alone() -> None:
    store = Store({"solo"})

    async def run() -> Principal | None:
        return await KeyChecks(store.read).check("solo")

    assert asyncio.run(run()) == principal("solo")
    assert store.calls == [["solo"]]


def test_a_failed_read_reaches_every_waiting_caller_and_the_next_check_reads_again() -> None:
    store = Store({"a", "b"}, fail=True)

    async def run() -> tuple[list[Principal | BaseException | None], Principal | None]:
        checks = KeyChecks(store.read)
        failed = await asyncio.gather(*(checks.check(k) for k in "ab"), return_exceptions=True)
        store.fail = False
        return failed, await checks.check("a")

    failed, again = asyncio.run(run())
    assert all(isinstance(f, ConnectionError) for f in failed)
    assert again == principal("a")


def test_a_caller_that_gave_up_does_not_disturb_the_others() -> None:
    store = Store({"a", "b"})

    async def run() -> Principal | None:
        checks = KeyChecks(store.read)
        first = asyncio.ensure_future(checks.check("a"))
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(checks.check("b"))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await asyncio.wait_for(first, 5)  # a reader that died would never answer

    assert asyncio.run(run()) == principal("a")
