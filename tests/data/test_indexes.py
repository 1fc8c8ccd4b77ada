"""Statements that run often at city size find their rows through an index (0015, 0020, 0031,
0034).

Real PostGIS, enough rows that the planner chooses honestly (sequential scans stay enabled):
20,000 alerts, each pointing at a fix, 6,000 grids and 30,000 buildings in 300 communities,
40,000 audit rows about 10,000 elders.
Each test fails on a schema without the index, where the same plan is a sequential scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from data.access.queries import READ_AUDIT_SQL
from data.care.queries import ALERT_CHANGES_SQL, purge_positions
from data.db import make_engine
from tests.conftest import own_database

ALERTS = 20_000
COMMUNITIES, GRIDS_EACH = 300, 20
BUILDINGS = 30_000
AUDIT_ROWS = 40_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def big(server_url: str) -> Iterator[Engine]:
    """A database of its own, filled by ``generate_series`` and analysed."""
    engine = make_engine(own_database(server_url, "gridwork_test_indexes"))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_key (name, prefix, digest, role) "
                "VALUES ('watch', 'idx', 'x', 'device')"
            )
        )
        conn.execute(text("INSERT INTO elder (display_name, enrolled_by) VALUES ('E', 'test')"))
        conn.execute(
            text(
                "INSERT INTO device (device_code, elder_id, api_key_id, datum) "
                "SELECT 'w1', e.id, k.id, 'wgs84' FROM elder e, api_key k"
            )
        )
        conn.execute(
            text(
                "INSERT INTO position (device_id, elder_id, time, geom, raw_lon, raw_lat) "
                "SELECT d.id, d.elder_id, :t0 + make_interval(mins => i), "
                "ST_SetSRID(ST_MakePoint(84.87, 45.6), 4326), 84.87, 45.6 "
                "FROM device d, generate_series(1, :n) i"
            ),
            {"t0": T0, "n": ALERTS},
        )
        conn.execute(
            text(
                "INSERT INTO alert (elder_id, kind, status, event_time, position_id, "
                "position_time, acknowledged_at, closed_at) SELECT p.elder_id, 'left_zone', "
                "'closed', p.time, p.id, p.time, p.time + interval '2 minutes', "
                "p.time + interval '5 minutes' FROM position p"
            )
        )
        conn.execute(
            text(
                "INSERT INTO community (code, name, kind, geom) "
                "SELECT 'C' || c, 'C' || c, 'community', ST_MakeEnvelope("
                "84 + c * 0.01, 45, 84.01 + c * 0.01, 45.01, 4326) "
                "FROM generate_series(1, :n) c"
            ),
            {"n": COMMUNITIES},
        )
        conn.execute(
            text(
                "INSERT INTO grid (code, community_id, geom) "
                "SELECT c.code || '-' || g, c.id, ST_MakeEnvelope("
                "84 + c.id * 0.01, 45 + g * 0.0005, 84.01 + c.id * 0.01, 45.0005 + g * 0.0005, "
                "4326) FROM community c, generate_series(0, :n - 1) g"
            ),
            {"n": GRIDS_EACH},
        )
        conn.execute(
            text(
                "INSERT INTO building (source_id, households_estimated, community_id, geom) "
                "SELECT 'b' || i, false, c.id, ST_MakeEnvelope(84 + c.id * 0.01, 45, "
                "84.0001 + c.id * 0.01, 45.0001, 4326) "
                "FROM generate_series(1, :n) i JOIN community c ON c.code = 'C' || (1 + i % :c)"
            ),
            {"n": BUILDINGS, "c": COMMUNITIES},
        )
        conn.execute(
            text(
                "INSERT INTO audit_log (actor, role, method, route, subject_type, subject_ids) "
                "SELECT 'care-' || (i % 20), 'care_staff', 'GET', '/app/elders', 'elder', "
                "ARRAY[CAST(i % :elders AS varchar)] FROM generate_series(1, :n) i"
            ),
            {"n": AUDIT_ROWS, "elders": AUDIT_ROWS // 4},
        )
        conn.execute(text("ANALYZE position, alert, community, grid, building, audit_log"))
    yield engine
    engine.dispose()


def _plan(engine: Engine, sql: str, params: dict[str, object]) -> str:
    with engine.connect() as conn:
        rows = conn.execute(text("EXPLAIN " + sql), params).scalars().all()
    return "\n".join(rows)


def test_the_purge_finds_the_alerts_of_each_deleted_fix_by_index(big: Engine) -> None:
    # What position's delete trigger (migration 0027) runs for a statement that deleted one
    # fix, with the deleted rows as a one-row table: planned afresh each time (EXECUTE), so
    # a one-fix deletion must find its alerts by index, not by reading every alert.
    with big.connect() as conn:
        some, at = conn.execute(
            text("SELECT id, time FROM position ORDER BY id DESC LIMIT 1")
        ).one()
    plan = _plan(
        big,
        "UPDATE alert a SET position_id = NULL, position_time = NULL "
        "FROM (VALUES (CAST(:p AS bigint), CAST(:t AS timestamptz))) o(id, time) "
        "WHERE a.position_id = o.id AND a.position_time = o.time",
        {"p": some, "t": at},
    )
    assert "ix_alert_position_id" in plan or "ix_alert_position_time" in plan, plan
    assert "Seq Scan on alert" not in plan, plan


def test_a_purge_keeps_the_alerts_and_drops_their_reference(big: Engine) -> None:
    with big.begin() as conn:
        gone = purge_positions(conn, before=T0 + timedelta(minutes=101))
        assert gone == 100
        cleared, kept = conn.execute(
            text("SELECT count(*) FILTER (WHERE position_id IS NULL), count(*) FROM alert")
        ).one()
        conn.rollback()
    assert (cleared, kept) == (100, ALERTS)


@pytest.mark.parametrize(
    "sql",
    [
        # data/planning/workspace.py: a unit's grid today (one lookup per unit of a plan)
        "SELECT g.code FROM grid g WHERE g.community_id = :c AND g.valid_to IS NULL "
        "ORDER BY g.code",
        # data/planning/service.py: when the community's current grids began
        "SELECT max(valid_from) FROM grid WHERE community_id = :c AND valid_to IS NULL",
        # data/planning/service.py: the switch closes the community's current grids
        "UPDATE grid SET valid_to = current_date WHERE community_id = :c AND valid_to IS NULL",
    ],
)
def test_a_communitys_grids_are_read_by_index(big: Engine, sql: str) -> None:
    with big.connect() as conn:
        c = conn.execute(text("SELECT id FROM community WHERE code = 'C150'")).scalar_one()
    plan = _plan(big, sql, {"c": c})
    assert "ix_grid_community_id" in plan, plan
    assert "Seq Scan on grid" not in plan, plan


def test_a_communitys_households_are_counted_through_its_buildings_by_index(big: Engine) -> None:
    """The per-community count of the oversize report, the communities layer and the checks
    (migration 0020): one index probe per community, not every building per community."""
    sql = (
        "SELECT c.code, (SELECT count(*) FROM household h JOIN building b "
        "ON b.id = h.building_id WHERE b.community_id = c.id) FROM community c"
    )
    plan = _plan(big, sql, {})
    assert "ix_building_community_id" in plan, plan
    assert "Seq Scan on building" not in plan, plan


def test_who_read_one_elder_is_found_by_index(big: Engine) -> None:
    """The audit page's question (migration 0031): the rows naming one subject, through the
    GIN index on ``subject_ids``, not by reading the log backwards until 50 are found."""
    params: dict[str, object] = {
        "since": None,
        "until": None,
        "actor": None,
        "kind": "elder",
        "subject": "4242",
        "before": None,
        "limit": 51,
        "offset": 0,
    }
    plan = _plan(big, READ_AUDIT_SQL, params)
    assert "ix_audit_log_subject_ids" in plan, plan
    assert "Seq Scan on audit_log" not in plan, plan


def test_the_live_inboxes_find_the_alerts_changed_lately_by_index(big: Engine) -> None:
    """Every look of the live inboxes asks which alerts were acknowledged or closed in the last
    half minute (migration 0034): through the two indexes, not by reading 20,000 alerts."""
    plan = _plan(big, ALERT_CHANGES_SQL, {"recent": 30.0})
    assert "ix_alert_acknowledged_at" in plan and "ix_alert_closed_at" in plan, plan
    assert "Seq Scan on alert" not in plan, plan
