"""Knowing, within milliseconds, that the users, keys, scopes or grids changed.

The API caches who is behind a credential and the grid index, because reading them for every
request costs more than the request itself (a ``/locate`` is an in-memory lookup). A cache is
only as good as its invalidation, so:

* every write to those tables sends ``NOTIFY gridwork_change`` (migration 0007), which
  PostgreSQL delivers at commit to a thread here that ``LISTEN``\\ s and bumps
  :attr:`ChangeFeed.generation`;
* writes made through this process's own engine bump it synchronously at commit as well, so
  the next request of the same client never sees the state before its own change;
* while the listener is not connected (at start, or after the database went away) the feed
  is not :attr:`~ChangeFeed.live` and callers must not cache at all: a notification may have
  been missed. Reconnecting bumps the generation, dropping whatever was cached before.
* ``gridwork restore`` sends ``NOTIFY gridwork_change, 'restore'`` once the database was
  replaced: besides the bump, the watched engines' pooled connections are closed (their
  prepared statements describe the tables the restore dropped).

A cache entry is valid only under the generation it was read in (see :meth:`ChangeFeed.valid`).
A cache that checks the store itself before each use needs only :attr:`ChangeFeed.epoch`,
renewed by a restore and whenever the feed connects or loses its connection.

The same listener hears ``NOTIFY gridwork_alert``, sent in the transaction that raises alerts
(:func:`notify_alerts`): it rings :attr:`ChangeFeed.alerts`, a :class:`Bell` that wakes the
open alerts inboxes at once instead of each polling the alert table (``bench/inbox.py``). It
rings too whenever the listener connects or loses its connection, since a notification may
have been missed: an inbox looks at the table then, and polls while the feed is not live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "gridwork_change"
# The payload :func:`data.backup.restore` sends once the database was replaced under the
# running servers: their caches go, and so do their pooled connections, whose prepared
# statements describe tables that no longer exist ("cached plan must not change result type").
RESTORED = "restore"
# Sent when alerts are raised (no payload: an inbox reads what is new in its own area).
ALERTS = "gridwork_alert"
WATCHED = ("app_user", "user_scope", "api_key", "grid", "worker", "community", "street")

# A statement that writes one of the watched tables (ORM and hand-written SQL alike, also
# inside a WITH ... or after another statement).
_WRITES_WATCHED = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+"
    rf"(?:ONLY\s+)?\"?(?:{'|'.join(WATCHED)})\"?(?:\s|\(|$)",
    re.IGNORECASE,
)
_FLAG = "gridwork_wrote_watched"


def notify_alerts(db: Session | Connection) -> None:
    """Wake every inbox of every API process once this transaction commits (PostgreSQL
    delivers at commit, and folds repeats within a transaction into one)."""
    db.execute(text("SELECT pg_notify(:channel, '')"), {"channel": ALERTS})


class Bell:
    """Wakes the coroutines waiting for news, from the listener thread, on whatever event
    loop each waits in (each uvicorn worker has its own feed; tests run apps on several)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rings = 0
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def rings(self) -> int:
        """How often it rang: take it *before* looking, then :meth:`wait` for a change."""
        return self._rings

    def ring(self) -> None:
        with self._lock:
            self._rings += 1
            waiting = list(self._waiting)
        for loop, woken in waiting:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(woken.set)

    async def wait(self, seen: int, timeout_s: float) -> bool:
        """Until it rang after ``seen`` (True at once if it already has), or ``timeout_s``."""
        woken = asyncio.Event()
        entry = (asyncio.get_running_loop(), woken)
        with self._lock:
            if self._rings != seen:
                return True
            self._waiting.add(entry)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, timeout_s)):
                    await woken.wait()
        finally:
            with self._lock:
                self._waiting.discard(entry)
        return self._rings != seen


class ChangeFeed:
    """A listener thread on ``gridwork_change`` and the generation it keeps (and on
    ``gridwork_alert``, ringing :attr:`alerts`)."""

    def __init__(self, url: str, *, retry_s: float = 1.0, first_retry_s: float = 0.05) -> None:
        self._url = url
        # Back-off between attempts to reconnect, from first_retry_s doubling up to retry_s:
        # caches are off until the feed is back, so after PostGIS restarts (down for a
        # fraction of a second) waiting a whole second cost every request a credential check.
        self._retry_s = retry_s
        self._first_retry_s = min(first_retry_s, retry_s)
        self._lock = threading.Lock()
        self._generation = 0
        self._epoch = 0
        self._live = False
        self._connected = threading.Event()  # set the first time the listener is live
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hooks: list[tuple[Engine, str, Any]] = []
        # Called in the listener thread each time it is live again (and first), before
        # start() returns: to warm what the reconnect's bump just emptied.
        self.on_live: Callable[[], object] | None = None
        self.alerts = Bell()

    @classmethod
    def for_engine(cls, engine: Engine) -> ChangeFeed:
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        feed = cls(url)
        feed.watch(engine)
        return feed

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def epoch(self) -> int:
        """Renewed only when the feed connects or loses its connection and when the database
        is restored: what a cache must start over on when it checks the store itself before
        each use (the tile cache reads the versions of what a tile shows) and so needs no
        notice of ordinary writes."""
        return self._epoch

    @property
    def live(self) -> bool:
        return self._live

    def valid(self, generation: int) -> bool:
        """May something read under ``generation`` still be used?"""
        return self._live and generation == self._generation

    def bump(self) -> None:
        with self._lock:
            self._generation += 1

    def _start_over(self) -> None:
        """A new epoch (and generation): what was cached may belong to another store."""
        with self._lock:
            self._epoch += 1
            self._generation += 1

    def watch(self, engine: Engine) -> None:
        """Bump at commit whenever this engine wrote a watched table (no wait for NOTIFY)."""
        key = (_FLAG, id(self))  # one flag per feed: several apps may share an engine

        # The hooks must never raise: one raising during the rollback of a connection the
        # database cut would replace the real error (a 503) with its own (a 500).

        def flag(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if _WRITES_WATCHED.search(statement):
                conn.info[key] = True

        def bump(conn: Any) -> None:
            try:
                wrote = conn.invalidated or conn.info.pop(key, False)
            except SQLAlchemyError:
                wrote = True  # cannot tell: assume it did
            if wrote:
                self.bump()

        def forget(conn: Any) -> None:
            if conn.invalidated:
                return  # its flag goes with it; at worst a spare bump later
            with contextlib.suppress(SQLAlchemyError):
                conn.info.pop(key, None)

        for name, hook in (("before_cursor_execute", flag), ("commit", bump), ("rollback", forget)):
            event.listen(engine, name, hook)
            self._hooks.append((engine, name, hook))

    def unwatch(self) -> None:
        for engine, name, hook in self._hooks:
            event.remove(engine, name, hook)
        self._hooks.clear()

    def _restored(self) -> None:
        """The database was restored from a backup: every pooled connection of the watched
        engines is closed (connections in use are closed when they are given back)."""
        engines = {id(engine): engine for engine, _, _ in self._hooks}
        for engine in engines.values():
            try:
                engine.dispose()
            except Exception:  # the listener must keep listening
                log.exception("closing the pooled connections after a restore failed")
        log.warning("the database was restored from a backup: caches and connections dropped")
        self._start_over()

    # --- the listener thread ------------------------------------------------------------

    def start(self, *, wait_s: float = 5.0) -> None:
        """Start listening; wait up to ``wait_s`` for the first connection (caching is off
        until it is made, so a slow start only costs speed)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gridwork-changes", daemon=True)
        self._thread.start()
        self._connected.wait(wait_s)

    def stop(self) -> None:
        self.unwatch()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._live = False

    def _warm(self) -> None:
        if self.on_live is None:
            return
        try:
            self.on_live()
        except Exception:  # a cold cache only costs speed; the feed must keep listening
            log.exception("warming the caches after the change feed connected failed")

    def _run(self) -> None:
        delay = self._first_retry_s
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {ALERTS}")
                    # Anything cached before this point may predate a missed notification.
                    self._start_over()
                    self._live = True
                    self.alerts.ring()  # and an alert may have been raised meanwhile
                    delay = self._first_retry_s
                    self._warm()
                    self._connected.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if note.channel == ALERTS:
                                self.alerts.ring()
                                continue
                            self.bump()
                            if note.payload == RESTORED:
                                self._restored()
                        if conn.closed:
                            break
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    # Once per outage (and until the first connection is made); the attempts
                    # to reconnect that follow an outage stay quiet.
                    loud = self._live or not self._connected.is_set()
                    report = log.warning if loud else log.debug
                    report("change feed lost its connection (%s); caches are off", exc)
            finally:
                if self._live:
                    self._live = False
                    self._start_over()
                    self.alerts.ring()  # inboxes poll until the feed is back
            self._stop.wait(delay)
            delay = min(delay * 2, self._retry_s)
