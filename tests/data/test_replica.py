"""A real hot standby made by ``pg_basebackup`` and where :class:`ReadReplica` sends reads.

One primary and one standby for the module (tests/standby.py). The proof that a read went to
the standby is in the data: with replay paused, a row written on the primary is missing from
what the standby answers, and present once replay resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from data.cluster import LocalCluster, find_bindir
from data.db import make_engine
from data.replica import BEHIND_CHANGE, DOWN, LAGGING, NOT_STANDBY, ReadReplica, standby_engine
from geo.errors import Unavailable
from tests.standby import Pair, primary_and_standby


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with primary_and_standby(migrated=False) as made:
        with made.superuser(made.primary) as conn:
            conn.execute("CREATE TABLE note (id int PRIMARY KEY, said text)")
            conn.execute("GRANT SELECT ON note TO gridwork_app")
        made.wait_for_replay()
        yield made


@pytest.fixture(scope="module")
def primary(pair: Pair) -> Iterator[Engine]:
    engine = make_engine(pair.primary.url())
    yield engine
    engine.dispose()


@pytest.fixture
def reads(pair: Pair, primary: Engine) -> Iterator[ReadReplica]:
    """Reads as the API makes them: the app's own role on the standby; 1 s of lag allowed."""
    replica = ReadReplica(primary, standby_engine(pair.standby.app_url()), max_lag_s=1.0)
    yield replica
    replica.stop()
    replica.standby.dispose()
    pair.resume_replay()


def _write(primary: Engine, note_id: int) -> None:
    with primary.begin() as conn:
        conn.execute(text("INSERT INTO note VALUES (:i, 'hello')"), {"i": note_id})


def _has(engine: Engine, note_id: int) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT 1 FROM note WHERE id = :i"), {"i": note_id}).first()
            is not None
        )


def test_the_standby_replays_the_primary_and_refuses_writes(pair: Pair, primary: Engine) -> None:
    standby = standby_engine(pair.standby.app_url())
    try:
        with standby.connect() as conn:
            assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one() is True
            with pytest.raises(DBAPIError, match="read-only"):
                conn.execute(text("CREATE TABLE nope (x int)"))
        _write(primary, 1)
        pair.wait_for_replay()
        assert _has(standby, 1)
    finally:
        standby.dispose()


def test_a_standby_close_behind_is_read_and_its_lag_is_measured(
    pair: Pair, primary: Engine, reads: ReadReplica
) -> None:
    pair.wait_for_replay()
    health = reads.check()
    assert health.usable and health.lag_s is not None and health.lag_s < 0.5
    assert reads.engine() is reads.standby

    pair.pause_replay()
    _write(primary, 2)
    first = reads.check()  # the primary is ahead now, by no time yet
    assert first.usable and first.lag_s is not None and first.lag_s < 0.5
    assert not _has(reads.engine(), 2), "the read did not go to the (paused) standby"
    assert _has(primary, 2)

    time.sleep(1.2)  # stuck: the lag grows with the clock, past max_lag_s
    late = reads.check()
    assert late.reason == LAGGING and late.lag_s is not None and 1.2 <= late.lag_s < 3.0
    engine = reads.engine()
    assert engine is not reads.standby and _has(engine, 2)  # the primary answers
    assert reads.fallbacks[LAGGING] == 1

    pair.resume_replay()
    pair.wait_for_replay()
    back = reads.check()
    assert back.usable and back.lag_s is not None and back.lag_s < 0.5
    assert _has(reads.engine(), 2)


def test_an_idle_primary_is_no_lag(pair: Pair, primary: Engine, reads: ReadReplica) -> None:
    """The time since the last replayed commit grows while nothing is committed; the lag
    must not (``now() - pg_last_xact_replay_timestamp()`` would call it seconds), not even
    with WAL that no commit has flushed yet (an open transaction's, a page pruned by a
    read), which the standby cannot replay until something is committed."""
    pair.wait_for_replay()
    with primary.connect() as open_transaction:
        open_transaction.execute(text("INSERT INTO note VALUES (100, 'never committed')"))
        reads.check()
        time.sleep(1.5)
        health = reads.check()
        open_transaction.rollback()
    assert health.usable and health.lag_s is not None and health.lag_s < 0.5


def test_a_cache_refill_waits_for_the_change_or_reads_the_primary(
    pair: Pair, primary: Engine, reads: ReadReplica
) -> None:
    pair.wait_for_replay()
    reads.check()
    _write(primary, 3)  # the change a notification announces
    engine = reads.caught_up(wait_s=5.0)  # streaming: replayed within milliseconds
    assert engine is reads.standby and _has(engine, 3)

    pair.pause_replay()
    _write(primary, 4)
    assert reads.check().usable  # close behind, so ordinary reads still go there ...
    engine = reads.caught_up(wait_s=0.2)
    assert engine is not reads.standby and _has(engine, 4)  # ... but not this one
    assert reads.fallbacks[BEHIND_CHANGE] == 1


def test_reads_on_the_primary_are_read_only_too(reads: ReadReplica) -> None:
    """A route that writes fails on the primary as on the standby, not only when it lags."""
    assert reads.check().usable
    with pytest.raises(DBAPIError, match="read-only"), reads.session() as session:
        session.execute(text("CREATE TABLE nope (x int)"))
    reads.failed(RuntimeError("pretend it is down"))
    assert reads.engine() is reads.primary_reads
    with pytest.raises(DBAPIError, match="read-only"), reads.session() as session:
        session.execute(text("CREATE TABLE nope (x int)"))


def test_a_standby_that_goes_away_is_left_and_found_again(
    pair: Pair, primary: Engine, reads: ReadReplica, caplog: pytest.LogCaptureFixture
) -> None:
    pair.wait_for_replay()
    assert reads.check().usable
    with reads.session() as session:
        session.execute(text("SELECT 1"))  # a pooled connection to the standby, soon dead
    _write(primary, 5)
    pair.standby.stop()
    try:
        # Between two samples: the request finds the standby gone and the primary serves it.
        with caplog.at_level(logging.WARNING, logger="data.replica"), reads.session() as session:
            assert session.get_bind() is reads.primary_reads
            assert session.execute(text("SELECT count(*) FROM note WHERE id = 5")).scalar() == 1
        assert reads.health.reason == DOWN and reads.fallbacks[DOWN] == 1
        assert "reads go to the primary" in caplog.text
        assert reads.check().reason == DOWN and reads.health.lag_s is None
        for _ in range(3):  # each read counted, the warning not repeated
            assert reads.engine() is reads.primary_reads
        assert reads.fallbacks[DOWN] == 4
        assert caplog.text.count("reads go to the primary") == 1
    finally:
        pair.standby.start()
    pair.wait_for_replay()
    assert reads.check().usable and reads.engine() is reads.standby
    assert _has(reads.engine(), 5)


def test_a_server_not_in_recovery_is_not_a_standby(primary: Engine) -> None:
    reads = ReadReplica(primary, primary, max_lag_s=30.0)
    assert reads.check().reason == NOT_STANDBY
    assert reads.engine() is reads.primary_reads


def test_the_sampler_runs_until_stopped(pair: Pair, primary: Engine) -> None:
    reads = ReadReplica(
        primary, standby_engine(pair.standby.app_url()), max_lag_s=30.0, check_s=0.05
    )
    reads.start()
    try:
        assert reads.health.usable  # the first sample is taken before start returns
        reads.failed(RuntimeError("pretend"))
        deadline = time.monotonic() + 5
        while not reads.health.usable:  # the next sample finds it again
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        reads.stop()
        reads.standby.dispose()


def test_a_missing_pg_basebackup_is_named(
    tmp_path: Path, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = find_bindir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("initdb", "pg_ctl"):  # a server install without the client tools
        (bindir / tool).symlink_to(installed / tool)
    monkeypatch.setenv("GRIDWORK_PG_BINDIR", str(bindir))
    with pytest.raises(Unavailable, match="pg_basebackup not found"):
        LocalCluster(tmp_path / "standby").init_standby_of(pair.primary)
