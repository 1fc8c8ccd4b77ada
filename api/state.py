"""The application's state, typed: one object set by ``create_app`` and its lifespan.

Starlette's ``app.state`` is an untyped bag: attributes set from several modules, some made
on first use inside a router, read back as ``Any``. Here every one is a declared field, the
app keeps one :class:`AppState` on ``app.state`` and everything reads it through
:func:`app_state`, so mypy checks each use and a reader finds every piece of state in one
place. (The tipg sub-app keeps its own ``state``: tipg reads its pool and catalog there.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from api.alert_fanout import AlertFanout
from api.ingest_queue import IngestQueue
from api.key_checks import KeyChecks
from api.principals import Principals
from api.rate_limit import RateLimit
from api.road_warmup import RoadWarmup
from data.assignment.service import GridIndexCache
from data.changes import ChangeFeed
from data.coverage.service import NetworkCache
from data.replica import ReadReplica
from data.settings import Settings

T = TypeVar("T")


class PerLoop(Generic[T]):
    """An object bound to the running event loop, made again on another one.

    Loop-bound objects (queues, semaphores, batchers) cannot be made in ``create_app``: tests
    run one app on several loops, and each uvicorn worker its own."""

    def __init__(self) -> None:
        self._held: tuple[asyncio.AbstractEventLoop, T] | None = None

    def get(self, make: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        held = self._held
        if held is None or held[0] is not loop:
            held = self._held = (loop, make())
        return held[1]

    def peek(self) -> T | None:
        """The object of the running loop if one was made, without making one (metrics)."""
        held = self._held
        return held[1] if held is not None and held[0] is asyncio.get_running_loop() else None


@dataclass(eq=False)
class AppState:
    """Everything the app keeps between requests."""

    settings: Settings
    ogc: FastAPI  # the tipg sub-app mounted at /ogc
    # A test's engine from create_app, or the app's own made in the lifespan.
    database: Engine | None = None
    rate_limit: RateLimit = field(default_factory=RateLimit)
    principals: Principals = field(default_factory=Principals)
    # The hot standby of GRIDWORK_READ_DATABASE_URL while the lifespan runs, and where reads
    # go now (None: no standby, every read on the primary as before).
    reads: ReadReplica | None = None
    # The change feed while the lifespan runs (caches trust it only while it listens).
    changes: ChangeFeed | None = None
    # The deployment's metric CRS, read once on first use (it never changes once chosen).
    care_epsg: int | None = None
    # The planners' clock: tests set a callable returning an aware datetime to move time.
    clock: Callable[[], datetime] | None = None
    network_cache: NetworkCache = field(default_factory=NetworkCache)
    # Its graph built in the background at start-up (api.road_warmup).
    road_warmup: RoadWarmup = field(default_factory=RoadWarmup)
    grid_index: GridIndexCache = field(init=False)
    ingest_queue: PerLoop[IngestQueue] = field(default_factory=PerLoop)
    key_checks: PerLoop[KeyChecks] = field(default_factory=PerLoop)
    credential_reads: PerLoop[asyncio.Semaphore] = field(default_factory=PerLoop)
    # The open alert inboxes and the one look per wake they share.
    alert_fanout: PerLoop[AlertFanout] = field(default_factory=PerLoop)

    def __post_init__(self) -> None:
        self.grid_index = GridIndexCache(self.settings)

    @property
    def engine(self) -> Engine:
        """The database engine; only missing before the lifespan of an app that makes its own."""
        if self.database is None:
            raise RuntimeError("the app's engine is made when it starts: run its lifespan")
        return self.database

    def refill_engine(self) -> Engine:
        """Where a cache emptied by the change feed reads again: the standby once it has
        replayed what the primary had written when asked (a hot standby hears no NOTIFY
        and may not have the change yet: :mod:`data.replica`), else the primary."""
        return self.engine if self.reads is None else self.reads.caught_up()


def app_state(holder: HTTPConnection | FastAPI) -> AppState:
    """The app's :class:`AppState`, from the app or from a request to it."""
    app = holder.app if isinstance(holder, HTTPConnection) else holder
    state: AppState = app.state.gridwork
    return state


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel one of the app's background loops (none: it was off) and wait for it to end."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
