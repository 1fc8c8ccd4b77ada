"""The metric CRS on a read-only connection (a hot standby): measured, never written."""

from __future__ import annotations

from sqlalchemy import Engine, text

from data.crs import metric_epsg
from data.db import make_engine
from tests.conftest import own_database

PORTO_UTM = 32629


def _stored(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT value FROM deployment_setting WHERE key = 'metric_epsg'")
        ).scalar_one_or_none()


def test_a_read_only_transaction_gets_the_crs_and_the_primary_keeps_it(server_url: str) -> None:
    engine = make_engine(own_database(server_url, "gridwork_test_metric_crs", "porto"))
    try:
        with engine.begin() as conn:  # as on a fresh import, before anyone asked
            conn.execute(text("DELETE FROM deployment_setting WHERE key = 'metric_epsg'"))
        with engine.connect() as conn:
            conn.execute(text("SET TRANSACTION READ ONLY"))
            assert metric_epsg(conn) == PORTO_UTM  # an INSERT here would raise 25006
            conn.rollback()
        assert _stored(engine) is None
        with engine.begin() as conn:
            assert metric_epsg(conn) == PORTO_UTM
        assert _stored(engine) == str(PORTO_UTM)
    finally:
        engine.dispose()
