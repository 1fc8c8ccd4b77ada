"""The safe-zone cache never hands one database's zone to another (one process, two DBs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from shapely.geometry import Point
from sqlalchemy import text

from data.care import queries as q
from data.db import make_engine, transaction
from data.models.care import ZoneKind
from geo.care.safezone import SafeZone
from tests.conftest import own_database

pytestmark = pytest.mark.db

EPSG = 32629  # metres around Porto; any metric CRS will do
SAME_TIME = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_two_databases_with_the_same_elder_and_zone_time_keep_their_own_zones(
    server_url: str,
) -> None:
    radii = {"a": 100.0, "b": 900.0}
    engines = {n: make_engine(own_database(server_url, f"gridwork_test_zones_{n}")) for n in radii}
    try:
        for name, engine in engines.items():
            with transaction(engine) as session:
                session.execute(
                    text(
                        "INSERT INTO elder (id, display_name, enrolled_by) VALUES (1, 'E', 't');"
                        "INSERT INTO zone_state (elder_id) VALUES (1)"
                    )
                )
                polygon = Point(530_000, 4_555_000).buffer(radii[name])
                q.save_zone(
                    session, 1, SafeZone(geometry=polygon), kind=ZoneKind.home_grid, epsg=EPSG
                )
                session.execute(text("UPDATE safe_zone SET updated_at = :t"), {"t": SAME_TIME})
        areas = {}
        for name, engine in engines.items():
            with transaction(engine) as session:
                areas[name] = q.lock_zones(session, [1], epsg=EPSG)[1].zone.geometry.area
        assert areas["a"] == pytest.approx(3.1416 * 100**2, rel=0.01)
        assert areas["b"] == pytest.approx(3.1416 * 900**2, rel=0.01)
    finally:
        for engine in engines.values():
            engine.dispose()
