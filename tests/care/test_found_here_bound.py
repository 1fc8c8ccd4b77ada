"""``data.policy.ELDER_FOUND_HERE_SQL`` (an open alert lets the staff of the grid an elder is
in read them) looks for the newest fix from ``zone_state.last_fix_time`` on first, so that
PostgreSQL reads only the newest day partitions; the bound must never change who may read.

The elder's fixes lie on several days in two grids, home and far; an alert is open. Who may
read is checked against the grid of the stored newest fix (valid first), as the fixes change:
an invalid fix newer than all, a late fix, and the newest days deleted behind the zone
state's back (its time then names no stored fix and the read falls back to all days).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from data.care.queries import NewAlert, insert_alerts
from data.db import transaction
from data.policy import ELDER_FOUND_HERE_SQL
from tests.care.conftest import (
    OTHER_STREET_COMMUNITY,
    District,
    day_partitions,
    enrol,
    osmand,
)

NOW = datetime.now(UTC).replace(microsecond=0)
FOUND_HERE = f"SELECT e.id FROM elder e WHERE e.id = :e AND {ELDER_FOUND_HERE_SQL}"


def _places(district: District) -> dict[str, tuple[float, float]]:
    """A point in the elder's home grid and one in a grid of another street."""
    far = district.grids[district.grids["community_code"] == OTHER_STREET_COMMUNITY]
    point = far.sort_values("code").iloc[0].geometry.representative_point()
    return {"home": (district.home_lon, district.home_lat), "far": (point.x, point.y)}


def _send(
    client: TestClient, elder: dict[str, Any], at: tuple[float, float], days: int, **kw: Any
) -> None:
    when = NOW - timedelta(days=days)
    r = osmand(client, elder["api_key"], elder["device_id"], *at, when, **kw)
    assert r.status_code == 200, r.text


def _grid_of_newest(conn: Connection, elder_id: int) -> int | None:
    """The answer the predicate must give, read from the stored fixes in Python."""
    fixes = list(
        conn.execute(
            text("SELECT grid_id, valid FROM position WHERE elder_id = :e ORDER BY time DESC"),
            {"e": elder_id},
        )
    )
    return next((f.grid_id for f in fixes if f.valid), fixes[0].grid_id)


def _readers(conn: Connection, elder_id: int) -> set[int]:
    """The grids (of all the elder's fixes) whose staff the predicate lets read the elder."""
    grids = conn.execute(
        text("SELECT DISTINCT grid_id FROM position WHERE elder_id = :e AND grid_id IS NOT NULL"),
        {"e": elder_id},
    ).scalars()
    return {
        g
        for g in grids
        if conn.execute(text(FOUND_HERE), {"e": elder_id, "grid_ids": [g]}).first() is not None
    }


def _zone_time(conn: Connection, elder_id: int) -> Any:
    return conn.execute(
        text("SELECT last_fix_time FROM zone_state WHERE elder_id = :e"), {"e": elder_id}
    ).scalar_one()


def _lost(
    client: TestClient,
    who: dict[str, str],
    care: Engine,
    district: District,
    device: str,
    trail: tuple[tuple[int, str, str], ...],
) -> tuple[dict[str, Any], dict[str, tuple[float, float]]]:
    """An elder enrolled with ``device``, fixes sent as ``trail`` (days ago, place, valid)
    oldest first, and an alert about them left open."""
    elder = enrol(client, who, device)
    place = _places(district)
    for days, where, valid in trail:
        _send(client, elder, place[where], days, valid=valid)
    with transaction(care) as session:
        insert_alerts(session, [NewAlert(elder["id"], "sos", NOW, None, None, None, "lost")])
    return elder, place


def _only_the_newest_grid_reads(care: Engine, elder_id: int, zone_time: Any) -> int | None:
    """Checks that the staff of the newest fix's grid, and none other, may read the elder
    (the zone state's time being ``zone_time``); returns that grid."""
    with care.connect() as conn:
        assert _zone_time(conn, elder_id) == zone_time
        grid = _grid_of_newest(conn, elder_id)
        assert _readers(conn, elder_id) == {grid}
    return grid


def test_the_staff_where_the_newest_fix_lies_read_the_elder_bound_or_no_bound(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    trail = ((20, "home", "true"), (13, "far", "true"), (9, "home", "true"), (3, "far", "true"))
    elder, place = _lost(client, staff["care_staff"], care, district, "watch-found", trail)
    bound = NOW - timedelta(days=3)
    far = _only_the_newest_grid_reads(care, elder["id"], bound)
    # Newer than all, but marked invalid at home: the valid fix far away still decides.
    _send(client, elder, place["home"], 1, valid="false")
    # Late (older than the zone state's fix) and at home: the newest valid fix is unchanged.
    _send(client, elder, place["home"], 5)
    assert _only_the_newest_grid_reads(care, elder["id"], bound) == far
    # The fixes from three days ago on are deleted; the zone state still names one: nothing
    # lies at or after the bound, and the newest left (the late one, at home) decides.
    with care.begin() as conn:
        conn.execute(
            text("DELETE FROM position WHERE elder_id = :e AND time >= :t"),
            {"e": elder["id"], "t": bound},
        )
    assert _only_the_newest_grid_reads(care, elder["id"], bound) not in (far, None)


def test_only_invalid_fixes_the_newest_decides(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """No valid fix: the zone state holds no time, and the newest invalid fix decides."""
    trail = ((6, "home", "false"), (3, "far", "false"))
    elder, _ = _lost(client, staff["care_staff"], care, district, "watch-invalid", trail)
    _only_the_newest_grid_reads(care, elder["id"], None)


def test_the_bound_leaves_the_older_day_partitions_unread(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """The plan PostgreSQL runs for the predicate: of the day partitions holding the
    elder's fixes, only those from the zone state's day on are read."""
    holding = {f"position_{(NOW - timedelta(days=d)):%Y%m%d}" for d in (20, 13, 9, 2)}
    assert holding <= day_partitions(care, days_back=21)  # else every fix is in the default
    trail = ((20, "home", "true"), (13, "far", "true"), (9, "home", "true"), (2, "far", "true"))
    elder, _ = _lost(client, staff["care_staff"], care, district, "watch-found-plan", trail)
    with care.connect() as conn:
        far = _grid_of_newest(conn, elder["id"])
        explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + FOUND_HERE
        lines = list(conn.execute(text(explain), {"e": elder["id"], "grid_ids": [far]}).scalars())
        assert conn.execute(text(FOUND_HERE), {"e": elder["id"], "grid_ids": [far]}).first()
    read = {
        line.split(" on ")[1].split()[0]
        for line in lines
        if " on position_" in line and "never executed" not in line
    }
    assert holding & read == {f"position_{NOW - timedelta(days=2):%Y%m%d}"}, "\n".join(lines)
