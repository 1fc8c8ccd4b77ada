"""When a watch was last heard from is kept by ingest on the elder's zone state (migration
0023, issue 19), so the list of elders and the elder's page agree on it and neither reads a
day partition of ``position`` for it.

A late fix (older than the newest, sent last) lands in an old day while being the one
received last: both pages show its receipt. A repeated fix changes nothing; purging the fixes
(retention) or deleting them with a withdrawal of consent keeps the time, which is a fact about
the watch. The record's query is run under ``EXPLAIN ANALYZE`` over fixes spread across day
partitions: no position partition is read. And the migration fills the column from the fixes
stored before it.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alembic import command
from babel.dates import format_datetime
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, text

from data.access.queries import AreaScope
from data.care import queries as q
from data.db import alembic_config, transaction
from data.policy import Action
from tests.care.conftest import HOME_GRID, District, care_settings, day_partitions, enrol, osmand

NOW = datetime.now(UTC).replace(microsecond=0)
SENT_DAYS = (20, 13, 9, 2)  # days ago, sent oldest first: each the newest when it came
LATE_DAYS = 5  # sent last, older than the newest


def _send(client: TestClient, elder: dict[str, Any], district: District, days: int) -> None:
    at = NOW - timedelta(days=days)
    home = district.home_lon, district.home_lat
    r = osmand(client, elder["api_key"], elder["device_id"], *home, at, batt=60)
    assert r.status_code == 200, r.text


def _send_with_a_late_fix(client: TestClient, elder: dict[str, Any], district: District) -> None:
    """The fixes of ``SENT_DAYS``, then (a second later, so that the pages, which show
    seconds, tell the two receipts apart) the late one."""
    for days in SENT_DAYS:
        _send(client, elder, district, days)
    time.sleep(1.1)
    _send(client, elder, district, LATE_DAYS)


def _received(conn: Connection, elder_id: int) -> dict[datetime, datetime]:
    """Each stored fix's receipt by its time: the answers to check the pages by."""
    rows = conn.execute(
        text("SELECT time, received_at FROM position WHERE elder_id = :e"), {"e": elder_id}
    )
    return {r.time: r.received_at for r in rows}


def _glance(conn: Connection, elder_id: int) -> dict[str, Any]:
    [row] = [
        e
        for e in q.elders_at_a_glance(conn, AreaScope.everywhere(), search=None, limit=50)
        if e["id"] == elder_id
    ]
    return row


def _record(client: TestClient, headers: dict[str, str], elder_id: int) -> dict[str, Any]:
    r = client.get(f"/elders/{elder_id}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json()["reports"])


def _pages_heard(client: TestClient, headers: dict[str, str], elder_id: int) -> tuple[str, str]:
    """ "Last heard from" (its exact time, the cell's title) on the list of elders and on the
    elder's page, in English."""
    english = {**headers, "Accept-Language": "en"}
    listing = client.get("/app/elders", headers=english)
    page = client.get(f"/app/elders/{elder_id}", headers=english)
    assert listing.status_code == page.status_code == 200
    heard = r'<td data-label="Last heard from" title="([^"]*)"'
    row = re.search(rf'href="/app/elders/{elder_id}">.*?</td>\s*{heard}', listing.text)
    cell = re.search(r'Last heard from</dt><dd title="([^"]*)"', page.text)
    assert row is not None and cell is not None
    return row.group(1), cell.group(1)


def _shown(when: datetime, care_url: str) -> str:
    """``when`` as the pages show a time in English (``api.pages.frame.PageContext``)."""
    zone = ZoneInfo(care_settings(care_url).timezone)
    return str(format_datetime(when, format="medium", tzinfo=zone, locale="en"))


def test_a_late_fix_is_the_last_heard_on_the_list_and_on_the_record(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    care_url: str,
    district: District,
) -> None:
    headers = staff["care_staff"]
    elder = enrol(client, headers, "watch-late-heard")
    _send_with_a_late_fix(client, elder, district)
    with care.connect() as conn:
        received = _received(conn, elder["id"])
        glance = _glance(conn, elder["id"])
    late = received[NOW - timedelta(days=LATE_DAYS)]
    newest = received[NOW - timedelta(days=min(SENT_DAYS))]
    assert late == max(received.values()) and late - newest > timedelta(seconds=1)
    reports = _record(client, headers, elder["id"])
    assert reports["last_fix_received_at"] == reports["last_heard_at"] == late.isoformat()
    assert glance["last_heard_at"] == late
    assert glance["last_fix_time"] == NOW - timedelta(days=min(SENT_DAYS))  # unchanged
    assert _pages_heard(client, headers, elder["id"]) == (_shown(late, care_url),) * 2
    assert _shown(late, care_url) != _shown(newest, care_url)

    # The newest fix sent again is dropped as a repeat: it was not received as a fix.
    _send(client, elder, district, min(SENT_DAYS))
    with care.connect() as conn:
        assert _received(conn, elder["id"]) == received
        assert _glance(conn, elder["id"])["last_heard_at"] == late
    assert _record(client, headers, elder["id"])["last_fix_received_at"] == late.isoformat()


def test_purged_or_deleted_fixes_leave_the_time_of_their_receipt(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """Retention deletes every fix of one elder, a withdrawal of consent with
    ``delete_positions`` those of another: each still shows when the watch was last heard."""
    headers = staff["care_staff"]
    purged, withdrawn = (enrol(client, headers, f"watch-{w}") for w in ("purged", "withdrawn"))
    heard = {}
    for elder in (purged, withdrawn):
        _send_with_a_late_fix(client, elder, district)
        with care.connect() as conn:
            heard[elder["id"]] = max(_received(conn, elder["id"]).values())
    with transaction(care) as session:
        assert q.purge_positions(session, before=NOW + timedelta(minutes=1)) == 2 * (
            len(SENT_DAYS) + 1
        )
    r = client.delete(
        f"/elders/{withdrawn['id']}/consent", params={"delete_positions": "true"}, headers=headers
    )
    assert r.status_code == 200, r.text
    for elder in (purged, withdrawn):
        with care.connect() as conn:
            assert _received(conn, elder["id"]) == {}
            glance = _glance(conn, elder["id"])
        assert glance["last_fix_time"] is None  # no position is left to show
        assert glance["last_heard_at"] == heard[elder["id"]]
        reports = _record(client, headers, elder["id"])
        assert reports["last_fix_received_at"] == heard[elder["id"]].isoformat()
        assert reports["last_heard_at"] == heard[elder["id"]].isoformat()


def test_the_records_query_reads_no_position_partition(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """The plan PostgreSQL runs for :func:`data.care.queries.elder_record`, for an admin
    and for the staff of the elder's home grid: no partition of ``position`` is read, though
    the elder's fixes lie on five days (the days exist, so they could be)."""
    holding = {f"position_{(NOW - timedelta(days=d)):%Y%m%d}" for d in (*SENT_DAYS, LATE_DAYS)}
    assert holding <= day_partitions(care, days_back=21)
    elder = enrol(client, staff["care_staff"], "watch-record-plan")
    _send_with_a_late_fix(client, elder, district)
    with care.connect() as conn:
        home = conn.execute(text("SELECT id FROM grid WHERE code = :c"), {"c": HOME_GRID})
        home_staff = AreaScope(None, None, frozenset({home.scalar_one()}), None)
        for scope in (AreaScope.everywhere(), home_staff):
            seen: list[tuple[str, Any]] = []

            def keep(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
                seen.append((statement, parameters))  # noqa: B023 - removed below

            event.listen(conn, "before_cursor_execute", keep)
            record = q.elder_record(conn, elder["id"], scope, to=Action.locate_elders)
            event.remove(conn, "before_cursor_execute", keep)
            assert record["reports"]["last_fix_received_at"] is not None
            [(statement, parameters)] = seen
            plan = list(
                conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement,
                    parameters,
                ).scalars()
            )
            read = [
                line for line in plan if " on position" in line and "never executed" not in line
            ]
            assert read == [], "\n".join(plan)


def test_the_migration_fills_the_time_from_the_stored_fixes(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """Fixes stored before migration 0023 (its downgrade drops the column; the receipts
    are then moved, so that only a fill from the positions can give them back): each elder's
    last receipt is the latest of their fixes', and an elder without fixes has none."""
    headers = staff["care_staff"]
    elders = [enrol(client, headers, f"watch-before-{n}") for n in range(3)]
    for elder in elders[:2]:
        _send_with_a_late_fix(client, elder, district)
    config = alembic_config(care.url.render_as_string(hide_password=False))
    command.downgrade(config, "0022")
    try:
        with care.begin() as conn:
            conn.execute(
                text(
                    "UPDATE position SET received_at = received_at - make_interval(mins => "
                    "elder_id * 7 + extract(day FROM time)::int)"
                )
            )
            received = {e["id"]: _received(conn, e["id"]) for e in elders}
    finally:
        command.upgrade(config, "heads")
    with care.connect() as conn:
        rows = conn.execute(text("SELECT elder_id, last_received_at FROM zone_state")).all()
    kept: dict[int, datetime | None] = {int(r[0]): r[1] for r in rows}
    assert kept == {e["id"]: max(received[e["id"]].values(), default=None) for e in elders}
    assert kept[elders[0]["id"]] != kept[elders[1]["id"]] and kept[elders[2]["id"]] is None
    for elder in elders:
        expected = kept[elder["id"]]
        shown = _record(client, headers, elder["id"])["last_fix_received_at"]
        assert shown == (None if expected is None else expected.isoformat())
