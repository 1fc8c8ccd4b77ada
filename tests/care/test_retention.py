"""The 30-day retention of elders' positions, at its boundary: a fix an hour inside it is
stored and kept, one an hour outside it is refused at ingest and deleted by the purge, and a
fix exactly 30 days old is still kept ("older than" is strict)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import care_tasks
from data.care import service as care_use
from tests.care.conftest import District, count, enrol, osmand

DAYS = 30  # the setting's default, which the app under test uses
HOUR = timedelta(hours=1)


def _times(engine: Engine, device_id: str) -> list[datetime]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT p.time FROM position p JOIN device d ON d.id = p.device_id "
                    "WHERE d.device_code = :d ORDER BY p.time"
                ),
                {"d": device_id},
            ).scalars()
        )


def _copy_fix(engine: Engine, at: datetime) -> None:
    """Another row of the one stored fix, dated ``at`` (ingest refuses old fixes)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO position (device_id, elder_id, time, geom, raw_lon, raw_lat) "
                "SELECT device_id, elder_id, :at, geom, raw_lon, raw_lat FROM position LIMIT 1"
            ),
            {"at": at},
        )


def test_ingest_stores_a_fix_inside_the_period_and_refuses_one_outside(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-edge")
    now = datetime.now(UTC).replace(microsecond=0)
    inside, outside = now - timedelta(days=DAYS) + HOUR, now - timedelta(days=DAYS) - HOUR
    for when in (inside, outside):
        r = osmand(
            client, elder["api_key"], "watch-edge", district.home_lon, district.home_lat, when
        )
        assert r.status_code == 200, r.text
    assert _times(care, "watch-edge") == [inside]


def test_the_purge_deletes_what_is_older_than_30_days_and_keeps_the_rest(
    client: TestClient,
    care_app: Any,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-purge")
    now = datetime.now(UTC).replace(microsecond=0)
    r = osmand(client, elder["api_key"], "watch-purge", district.home_lon, district.home_lat, now)
    assert r.status_code == 200, r.text
    inside, outside = now - timedelta(days=DAYS) + HOUR, now - timedelta(days=DAYS) - HOUR
    for at in (inside, outside, now - timedelta(days=2 * DAYS)):
        _copy_fix(care, at)

    assert care_tasks.run_once(care_app, purge_now=True)["purged"] == 2
    assert _times(care, "watch-purge") == [inside, now]
    assert care_tasks.run_once(care_app, purge_now=True)["purged"] == 0


def test_a_fix_exactly_30_days_old_is_kept_and_a_microsecond_older_goes(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-exact")
    now = datetime.now(UTC).replace(microsecond=0)
    r = osmand(client, elder["api_key"], "watch-exact", district.home_lon, district.home_lat, now)
    assert r.status_code == 200, r.text
    cutoff = now - timedelta(days=DAYS)
    _copy_fix(care, cutoff)
    _copy_fix(care, cutoff - timedelta(microseconds=1))

    assert care_use.purge(care, now=now, retention=timedelta(days=DAYS)) == 1
    assert _times(care, "watch-exact") == [cutoff, now]
    assert count(care, "SELECT count(*) FROM position") == 2
