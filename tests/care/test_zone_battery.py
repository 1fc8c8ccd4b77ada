"""The battery staff are shown is the zone state's (migration 0030): what the elder's newest
report said, fix or keep-alive. The list and the elder's page show the same figure; a late
fix does not change it; the migration fills it from the fixes stored before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.access.queries import AreaScope
from data.care import queries as q
from data.db import alembic_config
from data.policy import Action
from tests.care import clients
from tests.care.conftest import District, enrol, osmand

NOW = datetime.now(UTC).replace(microsecond=0)


def _shown(care: Engine, elder_id: int) -> tuple[float | None, float | None]:
    """The battery on the elder's page and in the list."""
    with care.connect() as conn:
        record = q.elder_record(conn, elder_id, AreaScope.everywhere(), to=Action.locate_elders)
        [row] = [
            e
            for e in q.elders_at_a_glance(conn, AreaScope.everywhere(), search=None, limit=500)
            if e["id"] == elder_id
        ]
    return record["reports"]["battery"], row["battery"]


def _fix(
    client: TestClient, elder: dict[str, Any], district: District, at: datetime, **extra: Any
) -> None:
    home = district.home_lon, district.home_lat
    r = osmand(client, elder["api_key"], elder["device_id"], *home, at, **extra)
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text


def test_the_newest_report_gives_the_battery_on_both_pages(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-battery")
    assert _shown(care, elder["id"]) == (None, None)
    _fix(client, elder, district, NOW - timedelta(hours=2), batt=71)
    assert _shown(care, elder["id"]) == (71, 71)
    # A keep-alive after the fix: the watch is indoors, its battery still falls.
    beat = clients.traccar10(
        client, elder["api_key"], "watch-battery", NOW - timedelta(hours=1), battery=64
    )
    assert beat.status_code == 200, beat.text
    assert _shown(care, elder["id"]) == (64, 64)
    # A late fix (older than both) says what the battery was then, not now.
    _fix(client, elder, district, NOW - timedelta(hours=3), batt=90)
    assert _shown(care, elder["id"]) == (64, 64)
    # A newer fix without a battery leaves the last figure.
    _fix(client, elder, district, NOW - timedelta(minutes=5))
    assert _shown(care, elder["id"]) == (64, 64)


def test_the_migration_fills_the_battery_from_the_newest_stored_fix(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elders = [enrol(client, staff["care_staff"], f"watch-batt-{n}") for n in range(2)]
    for hours, batt in ((5, 80), (1, 55), (8, 99)):  # the last one is late
        _fix(client, elders[0], district, NOW - timedelta(hours=hours), batt=batt)
    config = alembic_config(care.url.render_as_string(hide_password=False))
    command.downgrade(config, "0029")
    command.upgrade(config, "heads")
    with care.connect() as conn:
        rows = conn.execute(text("SELECT elder_id, battery FROM zone_state")).all()
    kept: dict[int, float | None] = {int(r[0]): r[1] for r in rows}
    assert kept[elders[0]["id"]] == 55 and kept[elders[1]["id"]] is None
