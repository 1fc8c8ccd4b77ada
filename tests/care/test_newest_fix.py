"""The reads of an elder's newest fix are bounded by ``zone_state.last_fix_time`` so that
PostgreSQL reads only the newest day partitions; the bound must never change an answer.

Fixes go through ingest onto many days, then a fix the watch marked invalid, newer than all,
then a late fix (older than the newest valid one, so ingest leaves the zone state alone, but
received last). Each read is checked against what was sent; then the newest fixes are
deleted behind the zone state's back (its time no longer names a stored fix) and the reads
must still answer from the days before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, text

from data.access.queries import AreaScope
from data.care import queries as q
from data.policy import Action
from tests.care.conftest import District, day_partitions, enrol, osmand

NOW = datetime.now(UTC).replace(microsecond=0)
VALID_DAYS = (20, 13, 9, 2)  # days ago, sent oldest first: each the newest when it came
INVALID_AT = NOW - timedelta(days=1)  # the newest fix of all, marked invalid by the watch
LATE_AT = NOW - timedelta(days=5)  # sent after the others, older than the newest valid one


def _send(client: TestClient, elder: dict[str, Any], district: District) -> None:
    key, code = elder["api_key"], elder["device_id"]
    lon, lat = district.home_lon, district.home_lat
    for n, days in enumerate(VALID_DAYS):
        at = NOW - timedelta(days=days)
        assert osmand(client, key, code, lon, lat, at, batt=50 + n).status_code == 200
    r = osmand(client, key, code, lon, lat, INVALID_AT, batt=40, valid="false")
    assert r.status_code == 200
    assert osmand(client, key, code, lon, lat, LATE_AT, batt=30).status_code == 200


def _stored(conn: Connection, elder_id: int) -> list[Any]:
    """The elder's stored fixes, newest first: the answers to check the reads by."""
    return list(
        conn.execute(
            text(
                "SELECT id, time, grid_id, received_at, battery, valid FROM position "
                "WHERE elder_id = :e ORDER BY time DESC, id DESC"
            ),
            {"e": elder_id},
        )
    )


def _reads(conn: Connection, elder_id: int) -> dict[str, Any]:
    record = q.elder_record(conn, elder_id, AreaScope.everywhere(), to=Action.locate_elders)
    fix = q.last_fix(conn, elder_id)
    [glance] = [
        e
        for e in q.elders_at_a_glance(conn, AreaScope.everywhere(), search=None, limit=50)
        if e["id"] == elder_id
    ]
    return {
        "received": record["reports"]["last_fix_received_at"],
        "ref": q.last_position_ref(conn, elder_id),
        "fix": None if fix is None else (fix["id"], fix["time"], fix["valid"]),
        "glance": (glance["last_fix_time"], glance["battery"]),
    }


def _zone_time(conn: Connection, elder_id: int) -> Any:
    return conn.execute(
        text("SELECT last_fix_time FROM zone_state WHERE elder_id = :e"), {"e": elder_id}
    ).scalar_one()


def test_each_read_answers_the_newest_fix_late_and_invalid_ones_included(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-newest")
    _send(client, elder, district)
    with care.connect() as conn:
        fixes = _stored(conn, elder["id"])
        assert [f.time for f in fixes] == sorted(
            [INVALID_AT, LATE_AT, *(NOW - timedelta(days=d) for d in VALID_DAYS)], reverse=True
        )
        newest, newest_valid = fixes[0], next(f for f in fixes if f.valid)
        late = next(f for f in fixes if f.time == LATE_AT)
        # what the bound rests on: ingest keeps the newest valid fix's time, not the late one
        assert _zone_time(conn, elder["id"]) == newest_valid.time == NOW - timedelta(days=2)
        assert late.received_at == max(f.received_at for f in fixes) > newest.received_at
        reads = _reads(conn, elder["id"])
    assert reads["received"] == late.received_at.isoformat()
    assert reads["ref"] == q.PositionRef(newest.id, INVALID_AT, newest.grid_id)
    assert reads["fix"] == (newest_valid.id, newest_valid.time, True)
    assert reads["glance"] == (INVALID_AT, 40)


def test_the_reads_still_answer_when_the_zone_states_fix_is_gone(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """The fixes from two days ago on are deleted and the zone state still names one: no fix
    lies at or after the bound, and the reads fall back to the days before it."""
    elder = enrol(client, staff["care_staff"], "watch-gone")
    _send(client, elder, district)
    with care.begin() as conn:
        conn.execute(
            text("DELETE FROM position WHERE elder_id = :e AND time >= :t"),
            {"e": elder["id"], "t": NOW - timedelta(days=2)},
        )
    with care.connect() as conn:
        assert _zone_time(conn, elder["id"]) == NOW - timedelta(days=2)
        fixes = _stored(conn, elder["id"])
        assert fixes[0].time == LATE_AT  # the newest left, valid, and received last
        reads = _reads(conn, elder["id"])
    assert reads["received"] == fixes[0].received_at.isoformat()
    assert reads["ref"] == q.PositionRef(fixes[0].id, LATE_AT, fixes[0].grid_id)
    assert reads["fix"] == (fixes[0].id, LATE_AT, True)
    # The battery is the zone state's (0030): what the newest report said (the invalid fix's
    # 40), a fact about the watch kept when fixes are deleted, as last_received_at is.
    assert reads["glance"] == (LATE_AT, 40)


def test_a_watch_with_only_invalid_fixes_and_an_elder_without_fixes(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """No valid fix: the zone state holds no time, and the invalid fix is the answer."""
    silent, elder = (enrol(client, staff["care_staff"], f"watch-{w}") for w in ("off", "in"))
    for days in (6, 3):
        at = NOW - timedelta(days=days)
        home = district.home_lon, district.home_lat
        r = osmand(client, elder["api_key"], "watch-in", *home, at, valid="false")
        assert r.status_code == 200
    with care.connect() as conn:
        assert _zone_time(conn, elder["id"]) is None
        newest = _stored(conn, elder["id"])[0]
        reads = _reads(conn, elder["id"])
        nothing = _reads(conn, silent["id"])
    assert newest.time == NOW - timedelta(days=3)
    assert reads["ref"] == q.PositionRef(newest.id, newest.time, newest.grid_id)
    assert reads["fix"] == (newest.id, newest.time, False)
    assert reads["glance"][0] == newest.time
    assert nothing == {"received": None, "ref": None, "fix": None, "glance": (None, None)}


def test_a_bounded_read_leaves_the_older_day_partitions_unread(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """The plan PostgreSQL runs for ``last_position_ref``: of the day partitions holding
    the elder's fixes, only the newest (from the zone state's day on) are read; the older
    ones are pruned, or never executed."""
    made = day_partitions(care, days_back=21)
    older = {f"position_{(NOW - timedelta(days=d)):%Y%m%d}" for d in (20, 13, 9, 5)}
    assert older <= made, made  # the days exist, so "not read" below means something
    elder = enrol(client, staff["care_staff"], "watch-plan")
    _send(client, elder, district)
    seen: list[tuple[str, Any]] = []
    with care.connect() as conn:

        def keep(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            seen.append((statement, parameters))

        event.listen(conn, "before_cursor_execute", keep)
        q.last_position_ref(conn, elder["id"])
        event.remove(conn, "before_cursor_execute", keep)
        [(statement, parameters)] = seen  # the bound found it: no second read, of all days
        plan = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement, parameters
        ).scalars()
        read = {
            line.split(" on ")[1].split()[0]
            for line in plan
            if " on position_" in line and "never executed" not in line
        }
    # Older than the newest valid fix: never read. Whether the newest valid fix's own day is
    # read depends on the plan (an ordered Append stops at the invalid fix's day; a Merge
    # Append starts both), so only the day that holds the answer is required.
    assert not older & read, read
    assert f"position_{INVALID_AT:%Y%m%d}" in read, read
