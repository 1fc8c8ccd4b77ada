"""Which statements count as changing who may see what (the synchronous half of the feed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from data.changes import _WRITES_WATCHED, ChangeFeed
from data.db import make_engine


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE app_user SET role = CAST(%(r)s AS user_role) WHERE username = %(u)s",
        'INSERT INTO "grid" (code, geom) VALUES (%(code)s, %(geom)s)',
        "  delete from user_scope where user_id = 3",
        "INSERT INTO api_key(name, digest) VALUES ('a', 'b')",
        "TRUNCATE TABLE street CASCADE",
        "UPDATE grid\nSET valid_to = now()",
        "WITH old AS (SELECT id FROM grid) UPDATE grid SET valid_to = now() FROM old",
    ],
)
def test_writes_to_watched_tables_are_recognised(statement: str) -> None:
    assert _WRITES_WATCHED.search(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM grid",
        "INSERT INTO household (grid_id, geom) VALUES (1, 'POINT(0 0)')",
        "UPDATE grid_stats SET n = 1",
        "INSERT INTO audit_log (actor) VALUES ('x')",
        "INSERT INTO position (device_id) VALUES (1)",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "INSERT INTO deployment_setting (key) VALUES ('k') ON CONFLICT (key) DO UPDATE SET v = 1",
    ],
)
def test_other_statements_are_not(statement: str) -> None:
    assert not _WRITES_WATCHED.search(statement)


def test_a_connection_cut_mid_transaction_still_raises_the_database_error(db_url: str) -> None:
    """The feed's rollback hook must not replace "the database went away" (a 503 for the
    client, who retries) with an error of its own (a 500)."""
    engine = make_engine(db_url)
    feed = ChangeFeed.for_engine(engine)

    def cut_mid_transaction() -> None:
        with Session(engine) as session, session.begin():
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql")) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            session.execute(text("UPDATE app_user SET active = active WHERE false"))

    try:
        with pytest.raises(OperationalError):
            cut_mid_transaction()
    finally:
        feed.unwatch()
        engine.dispose()


@dataclass
class Running:
    """A started feed on its own engine, and a libpq URL to act on the database beside it."""

    feed: ChangeFeed
    engine: Engine
    libpq: str


@pytest.fixture
def running(db_url: str) -> Iterator[Running]:
    engine = make_engine(db_url)
    feed = ChangeFeed.for_engine(engine)
    feed.start()
    try:
        assert feed.live
        yield Running(feed, engine, db_url.replace("postgresql+psycopg", "postgresql"))
    finally:
        feed.stop()
        engine.dispose()


def test_the_feed_is_back_within_moments_after_its_connection_dies(running: Running) -> None:
    """Caches are off while the feed is away; after PostGIS restarts (down for a fraction of
    a second) it must not wait a whole retry period before listening again."""
    feed = running.feed
    generation, epoch = feed.generation, feed.epoch
    with psycopg.connect(running.libpq, autocommit=True) as other:
        other.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            "query LIKE 'LISTEN gridwork_%' AND datname = current_database()"
        )
    killed = time.monotonic()
    while not (feed.live and feed.generation >= generation + 2):
        assert time.monotonic() - killed < 0.8, "the feed took a whole retry period"
        time.sleep(0.005)
    assert feed.epoch >= epoch + 2  # lost, then back: what the tile cache keeps goes


def test_a_write_renews_the_generation_not_the_epoch(running: Running) -> None:
    """Caches that check the store themselves (the tile cache) start over only when the feed
    does or the store is restored; every watched write, heard or made here, renews the
    generation, which the others go by."""
    feed = running.feed
    generation, epoch = feed.generation, feed.epoch
    with running.engine.begin() as conn:
        conn.execute(text("UPDATE street SET code = code"))
    with psycopg.connect(running.libpq, autocommit=True) as other:
        other.execute("NOTIFY gridwork_change, 'grid'")
    waited = time.monotonic()
    while feed.generation < generation + 2:
        assert time.monotonic() - waited < 5, "the notice was not heard"
        time.sleep(0.005)
    assert feed.epoch == epoch
    with psycopg.connect(running.libpq, autocommit=True) as other:
        other.execute("NOTIFY gridwork_change, 'restore'")
    while feed.epoch == epoch:
        assert time.monotonic() - waited < 5, "the restore was not heard"
        time.sleep(0.005)
