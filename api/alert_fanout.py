"""One look at the alert table per wake, shared by every open live inbox of this process.

Each open ``/app/alerts/stream`` used to run its own query and write its own audit row when
the bell rang (``NOTIFY gridwork_alert``): one alert, a hundred inboxes, a hundred reads and
a hundred writes queued on the pool behind the ingest (``bench/inbox.py``). Here the first
inbox woken looks for all of them, the others wait for that look: which alerts are new (ids,
and the grids that decide who sees them), then the rows of those, once; each inbox is handed
the ones its reader may see (``data.policy.sees_alert``, the rule of every alert query), and
the audit rows — one per reader handed something, as each stream wrote before — go in one
statement, in the transaction of the look, before anything is handed over.

A look also asks which alerts were acknowledged or closed in the last :data:`SETTLE_S`
seconds (by a colleague, or by itself when the watch reported again), and hands each reader
who may see one the alert as it is now, once per status, for the card the page already shows.

Late commits: an alert's id is taken before its transaction commits, so alert 11 may be
visible before alert 10. A look does not stop at the highest id seen: it also takes the
alerts below it raised in the last :data:`SETTLE_S` seconds that it has not seen yet. (An
alert whose transaction commits later than that after raising it reaches an inbox when the
page is loaded again.)
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from sqlalchemy import Engine

from data.access.queries import AreaScope, AuditRow, write_audits
from data.care import queries as q
from data.changes import Bell
from data.policy import sees_alert

#: How long after raising an alert its transaction may commit and still reach open inboxes.
SETTLE_S = 30.0


@dataclass(eq=False)
class Inbox:
    """One open stream: whose it is (for the area rule and the audit row) and what it got."""

    actor: str
    role: str
    scope: AreaScope
    route: str
    sent: set[int] = field(default_factory=set)  # ids handed to this inbox (never twice)
    pending: list[dict[str, Any]] = field(default_factory=list)  # handed, not yet sent
    changed: list[dict[str, Any]] = field(default_factory=list)  # acknowledged or closed since


@dataclass(frozen=True)
class _Look:
    ring: int | None  # the bell's count when the look began (None: no bell, polling)
    began: float  # time.monotonic()


class AlertFanout:
    """The open inboxes of one event loop, and the looks they share (single flight)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # what the looking thread and the loop both touch
        self._inboxes: set[Inbox] = set()
        self._high: int | None = None  # the highest id seen; None before the first look
        self._seen: set[int] = set()  # ids handed out (or there at the first look), recent
        self._changes: set[tuple[int, str]] = set()  # (id, status) handed out, in the window
        self._looking: tuple[_Look, asyncio.Future[None]] | None = None
        self._last: _Look | None = None  # the newest look that ended well

    async def open(self, engine: Engine, inbox: Inbox) -> None:
        """Hand ``inbox`` whatever the looks find from now on (it reads what came before
        itself, after this). A look first: the process's first one only marks where the looks
        start, and so does one that finds the ids gone back (the database was restored)."""
        await self.look(engine, None, since=time.monotonic())
        with self._lock:
            self._inboxes.add(inbox)

    def close(self, inbox: Inbox) -> None:
        with self._lock:
            self._inboxes.discard(inbox)

    def claim(self, inbox: Inbox, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Those of ``alerts`` (read by the inbox itself) not handed to it yet, now marked."""
        with self._lock:
            fresh = [a for a in alerts if a["id"] not in inbox.sent]
            inbox.sent.update(a["id"] for a in fresh)
        return fresh

    def take(self, inbox: Inbox) -> list[dict[str, Any]]:
        """What the looks handed this inbox since it last took, oldest first."""
        with self._lock:
            taken, inbox.pending = inbox.pending, []
        return sorted(taken, key=lambda a: int(a["id"]))

    def take_changes(self, inbox: Inbox) -> list[dict[str, Any]]:
        """The alerts acknowledged or closed since it last took, as they are now."""
        with self._lock:
            taken, inbox.changed = inbox.changed, []
        return taken

    async def look(
        self, engine: Engine, bell: Bell | None, *, rung: int | None = None, since: float = math.inf
    ) -> int | None:
        """Until a look has ended that began after ``bell`` rang past ``rung``, or (polling)
        at or after ``since`` (monotonic): joined if one is under way that began late enough,
        else begun. The bell's count when that look began: wait for it to ring past that."""
        while True:
            last = self._last
            if last is not None and (
                (rung is not None and last.ring is not None and last.ring > rung)
                or last.began >= since
            ):
                return last.ring
            looking = self._looking
            if looking is not None and looking[1].done():
                # Ended, its callback not run yet: awaiting it would not yield to the loop.
                self._ended(*looking)
                looking[1].result()  # its failure is this caller's too
                continue
            if looking is None:
                begun = _Look(None if bell is None else bell.rings, time.monotonic())
                task = asyncio.ensure_future(anyio.to_thread.run_sync(self._look, engine))
                looking = self._looking = (begun, task)
                task.add_done_callback(functools.partial(self._ended, begun))
            await asyncio.shield(looking[1])

    def _ended(self, look: _Look, task: asyncio.Future[None]) -> None:
        if self._looking is None or self._looking[1] is not task:
            return  # already done by a waiter
        self._looking = None
        if not task.cancelled() and task.exception() is None:
            self._last = look

    def _look(self, engine: Engine) -> None:
        with self._lock:
            high = self._high
        with engine.begin() as conn:
            newest = q.newest_alert_id(conn)
            changes = q.alert_changes_since(conn, recent_s=SETTLE_S)
            if high is None or newest < high:  # where to start, handing nothing out
                found = q.alert_ids_since(conn, high=newest, recent_s=SETTLE_S)
                with self._lock:
                    self._seen = {i for i, _, _ in found}
                    self._high = max([newest, *(i for i, _, _ in found)])
                    self._changes = {(i, status) for i, status, _, _ in changes}
                return
            found = q.alert_ids_since(conn, high=high, recent_s=SETTLE_S)
            with self._lock:  # the inboxes open once the ids were read: a later one reads
                new = [f for f in found if f[0] not in self._seen]  # its own catch-up
                fresh_ids = {i for i, _, _ in new}
                moved = [
                    c
                    for c in changes
                    if (c[0], c[1]) not in self._changes and c[0] not in fresh_ids
                ]
                inboxes = list(self._inboxes)
            handed: list[tuple[Inbox, list[dict[str, Any]]]] = []
            told: list[tuple[Inbox, list[dict[str, Any]]]] = []
            if (new or moved) and inboxes:
                grids = {i: (g, h) for i, g, h in new} | {i: (g, h) for i, _, g, h in moved}
                rows = q.alerts_by_id(conn, list(grids))
                for inbox in inboxes:
                    seen = [
                        a
                        for a in rows
                        if sees_alert(
                            inbox.scope, grid_id=grids[a["id"]][0], home_grid_id=grids[a["id"]][1]
                        )
                    ]
                    mine = [a for a in seen if a["id"] in fresh_ids and a["id"] not in inbox.sent]
                    now = [a for a in seen if a["id"] not in fresh_ids]
                    if mine:
                        handed.append((inbox, mine))
                    if now:
                        told.append((inbox, now))
                readers: dict[int, list[dict[str, Any]]] = {}
                for inbox, alerts in [*handed, *told]:
                    readers.setdefault(id(inbox), []).extend(alerts)
                write_audits(
                    conn,
                    [
                        AuditRow(
                            actor=inbox.actor,
                            role=inbox.role,
                            method="GET",
                            route=inbox.route,
                            subject_type="elder",
                            subject_ids=sorted({a["elder_id"] for a in readers[id(inbox)]}),
                            reason=None,
                        )
                        for inbox in {id(i): i for i, _ in [*handed, *told]}.values()
                    ],
                )
        # Committed, audit rows and all: now hand them over.
        with self._lock:
            for inbox, mine in handed:
                fresh = [a for a in mine if a["id"] not in inbox.sent]
                inbox.sent.update(a["id"] for a in fresh)
                inbox.pending.extend(fresh)
            for inbox, now in told:
                inbox.changed.extend(now)
            self._changes = {(i, status) for i, status, _, _ in changes}
            self._seen.update(i for i, _, _ in new)
            self._high = max([high, *(i for i, _, _ in found)])
            floor = self._high - q.RECENT_IDS  # no look asks below it again
            self._seen = {i for i in self._seen if i > floor}
