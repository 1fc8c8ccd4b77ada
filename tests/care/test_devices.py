"""A watch is lost, reset or replaced: staff issue a new key, and the old one stops at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from data.care import queries as care_queries
from tests.care.conftest import District, count, enrol, osmand, wait_until_blocked

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now_at_each_test() -> None:
    """NOW is when each test starts, not when the module was imported: under pytest-xdist
    modules are imported as the run starts and a worker may reach their tests many minutes
    later, when a fix sent "3 minutes ago" would be older than that."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def _report(client: TestClient, key: str, code: str, district: District, seconds: int) -> int:
    when = NOW - timedelta(seconds=seconds)
    return osmand(client, key, code, district.home_lon, district.home_lat, when).status_code


def test_a_new_key_for_the_same_watch_ends_the_old_key_at_once(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-leaked")
    old = elder["api_key"]
    assert _report(client, old, "watch-leaked", district, 60) == 200
    r = client.put(
        f"/elders/{elder['id']}/device",
        json={"device_id": "watch-leaked", "datum": "gcj02"},
        headers=staff["care_staff"],
    )
    assert r.status_code == 200, r.text
    new = r.json()["api_key"]
    assert new != old
    assert _report(client, old, "watch-leaked", district, 50) == 401  # cached a moment ago
    assert _report(client, new, "watch-leaked", district, 40) == 200
    record = client.get(f"/elders/{elder['id']}", headers=staff["care_staff"]).json()
    assert (record["device_id"], record["datum"], record["device_active"]) == (
        "watch-leaked",
        "gcj02",
        True,
    )
    assert count(care, "SELECT count(*) FROM position") == 2


def test_a_replacement_watch_reports_and_the_old_one_cannot(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-broken")
    old = elder["api_key"]
    r = client.put(
        f"/elders/{elder['id']}/device",
        json={"device_id": "watch-spare", "datum": "wgs84"},
        headers=staff["care_staff"],
    )
    assert r.status_code == 200, r.text
    new = r.json()["api_key"]
    assert _report(client, old, "watch-broken", district, 30) == 401
    assert _report(client, new, "watch-broken", district, 20) == 403  # not this key's device
    assert _report(client, new, "watch-spare", district, 10) == 200
    stored = count(
        care,
        "SELECT count(*) FROM position p JOIN device d ON d.id = p.device_id "
        "WHERE d.device_code = 'watch-spare' AND p.elder_id = :e",
        e=elder["id"],
    )
    assert stored == 1


def test_a_deactivated_watch_is_refused_until_staff_issue_it_a_key_again(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-lost")
    r = client.delete(f"/elders/{elder['id']}/device", headers=staff["care_staff"])
    assert r.json() == {"deactivated": ["watch-lost"]}
    assert _report(client, elder["api_key"], "watch-lost", district, 30) == 401
    record = client.get(f"/elders/{elder['id']}", headers=staff["care_staff"]).json()
    assert record["device_active"] is False
    assert client.delete(f"/elders/{elder['id']}/device", headers=staff["care_staff"]).json() == {
        "deactivated": []
    }
    again = client.put(
        f"/elders/{elder['id']}/device",
        json={"device_id": "watch-lost", "datum": "wgs84"},
        headers=staff["care_staff"],
    )
    assert _report(client, again.json()["api_key"], "watch-lost", district, 20) == 200
    assert count(care, "SELECT count(*) FROM position") == 1


def test_another_elders_watch_cannot_be_taken_and_nothing_changes(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    mine = enrol(client, staff["care_staff"], "watch-a")
    theirs = enrol(client, staff["care_staff"], "watch-b")
    r = client.put(
        f"/elders/{mine['id']}/device",
        json={"device_id": "watch-b", "datum": "wgs84"},
        headers=staff["care_staff"],
    )
    assert r.status_code == 409
    assert r.json()["field"] == "device_id"
    assert _report(client, mine["api_key"], "watch-a", district, 20) == 200
    assert _report(client, theirs["api_key"], "watch-b", district, 10) == 200


def test_only_staff_of_the_area_manage_a_watch(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-guarded")
    path = f"/elders/{elder['id']}/device"
    body = {"device_id": "watch-guarded", "datum": "wgs84"}
    assert client.put(path, json=body, headers=staff["far_care"]).status_code == 404
    assert client.put(path, json=body, headers=staff["home_worker"]).status_code == 403
    assert client.delete(path, headers=staff["planner"]).status_code == 403
    device = {"X-API-Key": elder["api_key"]}
    assert client.delete(path, headers=device).status_code == 403
    assert _report(client, elder["api_key"], "watch-guarded", district, 10) == 200


def test_an_elder_who_leaves_is_forgotten_with_everything_kept_about_them(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-leaving")
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    assert _report(client, key, "watch-leaving", district, 120) == 200
    away = osmand(client, key, "watch-leaving", lon + 0.03, lat, NOW - timedelta(seconds=60))
    assert away.json()["stored"] == 1
    path = f"/elders/{elder['id']}"
    assert client.delete(path, headers=staff["care_staff"]).status_code == 422  # no reason
    assert (
        client.delete(path, params={"reason": "moved"}, headers=staff["far_care"]).status_code
        == 404
    )
    assert (
        client.delete(path, params={"reason": "moved"}, headers=staff["home_worker"]).status_code
        == 403
    )

    r = client.delete(path, params={"reason": "moved to her son's"}, headers=staff["care_staff"])
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == {"positions": 2, "alerts": 1, "devices": 1}
    assert client.get(path, headers=staff["care_staff"]).status_code == 404
    assert _report(client, key, "watch-leaving", district, 30) == 401
    for table in ("position", "alert", "device", "consent", "safe_zone", "zone_state"):
        assert count(care, f"SELECT count(*) FROM {table} WHERE elder_id = :e", e=elder["id"]) == 0
    assert count(care, "SELECT count(*) FROM api_key WHERE name LIKE 'device:watch-leaving%'") == 0
    audit = count(
        care,
        "SELECT count(*) FROM audit_log WHERE method = 'DELETE' AND subject_type = 'elder' "
        "AND :e = ANY(subject_ids) AND reason = 'moved to her son''s'",
        e=str(elder["id"]),
    )
    assert audit == 1


def test_a_report_in_flight_while_the_watch_is_deactivated_is_refused_and_not_stored(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-flight")
    with Session(care) as staff_tx, ThreadPoolExecutor(max_workers=1) as pool:
        staff_tx.begin()
        assert care_queries.retire_devices(staff_tx, elder["id"]) == ["watch-flight"]
        fix = pool.submit(_report, client, elder["api_key"], "watch-flight", district, 5)
        wait_until_blocked(care, fix)  # it passed the first look, the key still valid then
        staff_tx.commit()
        assert fix.result(timeout=10) == 401
    assert count(care, "SELECT count(*) FROM position") == 0
