"""Reads past one database server: the non-personal reads on a hot standby.

A PostgreSQL hot standby (streaming replication) answers reads with the primary's data a
little later. gridwork sends it the reads that are neither personal nor written about —
grids, layers, maps, tiles, coverage (which routes is declared once, by their session
dependency, ``api.deps.ReadSessionDep``) — and keeps on the primary every write and every
audited read of personal data (its audit row is written in the same transaction).

A standby must never make an answer wrong, only later by at most ``max_lag_s``:

* :class:`ReadReplica` samples, every ``check_s``, the primary's WAL position (flushed by
  one empty commit, so that the standby can always reach it) and the standby's replay
  position. The lag is the age of the oldest primary position the standby has not
  replayed yet: 0 while it keeps up, growing by the second while it is stuck, and not
  fooled by an idle primary (``now() - pg_last_xact_replay_timestamp()`` grows on a
  standby that is fully caught up when nothing is written).
* A standby that is down, not in recovery, or further behind than ``max_lag_s`` is not
  read: reads go to the primary (read-only, like on the standby, so a route that writes
  fails the same way on both), each one counted in :attr:`ReadReplica.fallbacks` by reason,
  with a warning at most every ``warn_every_s``; the next good sample brings the standby
  back. A request that cannot connect to the standby marks it down at once and is served
  by the primary (:meth:`ReadReplica.session`), so a standby that dies between two samples
  costs no answer.
* A hot standby does not deliver ``NOTIFY``, so the change feed (:mod:`data.changes`) keeps
  listening on the primary. A cache refilled after a notification must not read a standby
  that has not replayed the change yet: it would file old data under the new generation
  and keep it until the next change. :meth:`ReadReplica.caught_up` gives the standby only
  once it has replayed what the primary had written when asked (waiting up to
  ``wait_s``), else the primary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from data.cluster import LocalCluster
from data.db import make_engine

log = logging.getLogger(__name__)

# Reasons a read went to the primary although a standby is configured.
DOWN = "down"  # it does not answer (or did not, at the last sample or request)
LAGGING = "lagging"  # further behind than max_lag_s
NOT_STANDBY = "not_standby"  # it answers but is not in recovery (promoted, or a primary)
BEHIND_CHANGE = "behind_change"  # a cache refill: it had not replayed the change in time
REASONS = (DOWN, LAGGING, NOT_STANDBY, BEHIND_CHANGE)
_SAYS = {
    DOWN: "the standby is down",
    LAGGING: "the standby is too far behind",
    NOT_STANDBY: "the read server is not a standby",
    BEHIND_CHANGE: "the standby has not replayed a change yet (a cache refill)",
}

# A position the standby can always reach: the primary's insert position (a record boundary)
# read in a transaction that takes a transaction id, so that its commit writes a record and
# flushes the WAL up to it. The write position (pg_current_wal_lsn) will not do: a record
# nobody commits after (a page pruned by a read, say) stays unflushed, unsent and unreplayed
# while the primary is idle, and the standby would look behind by as long.
_PRIMARY_LSN = text(
    "SELECT pg_current_xact_id(), pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"
)
_STANDBY_STATE = text(
    "SELECT pg_is_in_recovery(), "
    "coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)::bigint"
)


def make_standby(primary: LocalCluster, state_dir: Path, *, sync: bool = True) -> LocalCluster:
    """A hot standby of the private cluster ``primary``, kept under ``state_dir`` and not yet
    started (``pg_basebackup -R``: see :meth:`~data.cluster.LocalCluster.init_standby_of`).
    Its :meth:`~data.cluster.LocalCluster.app_url` is a ``GRIDWORK_READ_DATABASE_URL``."""
    standby = LocalCluster(state_dir, primary.database)
    standby.init_standby_of(primary, sync=sync)
    return standby


def standby_engine(url: str) -> Engine:
    """The standby's engine: a short connect timeout, so that a standby gone from the network
    delays a request by seconds, not minutes, before it is served by the primary; named in
    ``pg_stat_activity`` as ``gridwork-read``."""
    return make_engine(
        url, connect_args={"connect_timeout": 2, "application_name": "gridwork-read"}
    )


@dataclass(frozen=True)
class ReplicaHealth:
    """The last sample: whether reads may go to the standby, and why not."""

    usable: bool
    reason: str | None  # one of REASONS when not usable
    lag_s: float | None  # None: unknown (the standby did not answer)
    detail: str = ""


_UNCHECKED = ReplicaHealth(usable=False, reason=DOWN, lag_s=None, detail="not checked yet")


class ReadReplica:
    """Where a non-personal read goes: the standby while it is up and close behind, else the
    primary. Thread-safe; :meth:`engine` and :meth:`failed` never touch the database, so
    the event loop may call them."""

    def __init__(
        self,
        primary: Engine,
        standby: Engine,
        *,
        max_lag_s: float,
        check_s: float = 1.0,
        warn_every_s: float = 5.0,
    ) -> None:
        self.primary = primary
        self.standby = standby
        # On the primary, reads are read-only too: a route that writes fails on both alike.
        self.primary_reads = primary.execution_options(postgresql_readonly=True)
        self.max_lag_s = max_lag_s
        self.check_s = check_s
        self.warn_every_s = warn_every_s
        self.health = _UNCHECKED
        self._fallbacks = dict.fromkeys(REASONS, 0)
        self._lock = threading.Lock()
        self._last_warning = -float("inf")
        # (time, primary WAL position) of positions the standby had not replayed when seen;
        # bounded: once full, the lag is far past any max_lag_s anyway.
        self._unreplayed: deque[tuple[float, int]] = deque(maxlen=int(2 * max_lag_s / check_s) + 10)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._own_standby = False

    @classmethod
    def for_url(cls, primary: Engine, url: str, *, max_lag_s: float) -> ReadReplica:
        """Over a standby engine of its own, closed by :meth:`stop`."""
        reads = cls(primary, standby_engine(url), max_lag_s=max_lag_s)
        reads._own_standby = True
        return reads

    # --- the sampler ------------------------------------------------------------------------

    def start(self) -> None:
        """Take the first sample now (the first request knows where to read), then one every
        ``check_s`` in a thread."""
        self.check()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gridwork-replica", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_standby:
            self.standby.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.check()
            except Exception:  # the sampler must keep sampling
                log.exception("checking the standby failed")

    def check(self) -> ReplicaHealth:
        """One sample of both servers; the verdict every read follows until the next."""
        now = time.monotonic()
        try:
            primary_lsn: int | None = self._primary_position()
        except SQLAlchemyError:  # the primary's own trouble: judge on what was seen before
            primary_lsn = None
        try:
            with self.standby.connect() as conn:
                in_recovery, replayed = conn.execute(_STANDBY_STATE).one()
        except SQLAlchemyError as exc:
            return self._judge(ReplicaHealth(False, DOWN, None, _short(exc)))
        if not in_recovery:
            detail = "pg_is_in_recovery() is false: promoted, or not a standby"
            return self._judge(ReplicaHealth(False, NOT_STANDBY, None, detail))
        with self._lock:
            seen = self._unreplayed
            # Read before the standby's position: replayed ≥ primary_lsn means it has all of
            # what existed when the primary was asked.
            if primary_lsn is not None and (not seen or primary_lsn > seen[-1][1]):
                seen.append((now, primary_lsn))
            while seen and seen[0][1] <= replayed:
                seen.popleft()
            lag = time.monotonic() - seen[0][0] if seen else 0.0
        if lag > self.max_lag_s:
            detail = f"{lag:.1f} s behind (GRIDWORK_READ_MAX_LAG_S={self.max_lag_s:g})"
            return self._judge(ReplicaHealth(False, LAGGING, lag, detail))
        return self._judge(ReplicaHealth(True, None, lag))

    def _judge(self, health: ReplicaHealth) -> ReplicaHealth:
        was = self.health
        self.health = health
        if health.usable and not was.usable and was is not _UNCHECKED:
            log.warning("reads go to the standby again (%.1f s behind)", health.lag_s or 0.0)
        elif not health.usable:
            self._warn(health.reason or DOWN, health.detail)
        return health

    def _primary_position(self) -> int:
        """Where the primary's WAL is now, flushed: one empty commit (see ``_PRIMARY_LSN``),
        once per sample and per cache refill."""
        with self.primary.begin() as conn:
            _xid, lsn = conn.execute(_PRIMARY_LSN).one()
        return int(lsn)

    # --- where a read goes ------------------------------------------------------------------

    def engine(self) -> Engine:
        """The standby if the last sample allows it, else the primary (read-only; counted)."""
        health = self.health
        if health.usable:
            return self.standby
        self._fell_back(health.reason or DOWN, health.detail)
        return self.primary_reads

    def failed(self, exc: BaseException) -> None:
        """A read could not reach the standby: none goes there until a sample finds it again."""
        self.health = ReplicaHealth(False, DOWN, None, _short(exc))

    def fall_back(self, exc: BaseException) -> Engine:
        """:meth:`failed`, for a read that the primary then serves (counted): the primary."""
        self.failed(exc)
        self._fell_back(DOWN, _short(exc))
        return self.primary_reads

    def caught_up(self, *, wait_s: float = 0.5) -> Engine:
        """For a cache refilled after a change-feed notification: the standby once it has
        replayed everything the primary had written when asked (the change included), else
        the primary. The wait (up to ``wait_s``, polling) blocks: call it from a thread."""
        engine = self.engine()
        if engine is not self.standby:
            return engine
        try:
            target = self._primary_position()
        except SQLAlchemyError:
            return self.primary_reads  # the read will say what is wrong with the primary
        deadline = time.monotonic() + wait_s
        try:
            with self.standby.connect() as conn:
                while True:
                    _in_recovery, replayed = conn.execute(_STANDBY_STATE).one()
                    if replayed >= target:
                        return self.standby
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
        except SQLAlchemyError as exc:
            return self.fall_back(exc)
        self._fell_back(BEHIND_CHANGE, f"not at the primary's WAL position after {wait_s:g} s")
        return self.primary_reads

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One read-only unit of work where reads go now. The standby's connection is taken
        at once, so one that is gone is noticed here and the primary serves the read; one
        lost while the request runs marks the standby down for the requests after it."""
        engine = self.engine()
        session = Session(engine, expire_on_commit=False)
        if engine is self.standby:
            try:
                session.connection()
            except DBAPIError as exc:
                session.close()
                session = Session(self.fall_back(exc), expire_on_commit=False)
        with session:
            try:
                yield session
                session.commit()
            except BaseException as exc:
                session.rollback()
                if (
                    session.get_bind() is self.standby
                    and isinstance(exc, DBAPIError)
                    and exc.connection_invalidated
                ):
                    self.failed(exc)
                raise

    # --- what /metrics shows ----------------------------------------------------------------

    @property
    def fallbacks(self) -> Mapping[str, int]:
        """Reads sent to the primary because of the standby, by reason, since start."""
        with self._lock:
            return dict(self._fallbacks)

    def _fell_back(self, reason: str, detail: str) -> None:
        with self._lock:
            self._fallbacks[reason] += 1
        self._warn(reason, detail)

    def _warn(self, reason: str, detail: str) -> None:
        """At most one warning every ``warn_every_s``: a standby down under load would
        otherwise write one line per request."""
        now = time.monotonic()
        with self._lock:
            loud = now - self._last_warning >= self.warn_every_s
            if loud:
                self._last_warning = now
        if loud:
            log.warning("reads go to the primary: %s (%s)", _SAYS[reason], detail)


def _short(exc: BaseException) -> str:
    """The first line of a database error, for a log line (never a URL or a password:
    libpq's messages name the host and port only)."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return first[0][:200] if first else type(exc).__name__
