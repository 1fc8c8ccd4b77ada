"""Ingest as a hostile or broken device sees it: every refusal is a 4xx with a reason, and
nothing is stored by a refused request."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.app import create_app
from data.care import queries as care_queries
from data.care import service as care_use
from tests.care.conftest import (
    CONSENT,
    District,
    care_settings,
    count,
    enrol,
    osmand,
    wait_until_blocked,
)
from tests.conftest import statements_on

NOW = datetime.now(UTC).replace(microsecond=0)
WITHDRAWN_AT_US = (
    "SELECT (extract(epoch FROM withdrawn_at) * 1e6)::bigint FROM consent WHERE elder_id = :e"
)


@pytest.fixture(autouse=True)
def _now_at_each_test() -> None:
    """NOW is when each test starts, not when the module was imported: under pytest-xdist
    modules are imported as the run starts and a worker may reach their tests many minutes
    later, when a fix sent "3 minutes ago" would be older than that."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def _positions(engine: Engine) -> int:
    return count(engine, "SELECT count(*) FROM position")


def test_without_consent_ingest_is_403_and_nothing_is_stored(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-nc", consent=False)
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    r = osmand(client, key, "watch-nc", lon, lat, NOW)
    assert r.status_code == 403
    assert "consent" in r.json()["detail"]
    assert _positions(care) == 0

    added = client.post(f"/elders/{elder['id']}/consent", json=CONSENT, headers=staff["care_staff"])
    assert added.status_code == 201
    assert osmand(client, key, "watch-nc", lon, lat, NOW).status_code == 200
    assert _positions(care) == 1

    gone = client.delete(f"/elders/{elder['id']}/consent", headers=staff["care_staff"])
    assert gone.json()["withdrawn"] == 1
    later = osmand(client, key, "watch-nc", lon, lat, NOW + timedelta(seconds=5))
    assert later.status_code == 403
    assert _positions(care) == 1
    assert (
        client.get(f"/elders/{elder['id']}", headers=staff["care_staff"]).json()["consent"] is False
    )


def test_withdrawing_one_elders_consent_leaves_every_other_elder_reporting(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """A withdrawal is the elder's own: a neighbour's watch keeps reporting, and withdrawing
    twice changes nothing the second time (the first withdrawal's time stays on record)."""
    lon, lat = district.home_lon, district.home_lat
    leaving = enrol(client, staff["care_staff"], "watch-wd-1")
    staying = enrol(client, staff["care_staff"], "watch-wd-2")
    gone = client.delete(f"/elders/{leaving['id']}/consent", headers=staff["care_staff"])
    assert gone.json()["withdrawn"] == 1
    first_time = count(care, WITHDRAWN_AT_US, e=leaving["id"])
    again = client.delete(f"/elders/{leaving['id']}/consent", headers=staff["care_staff"])
    assert again.json()["withdrawn"] == 0
    assert count(care, WITHDRAWN_AT_US, e=leaving["id"]) == first_time

    assert osmand(client, leaving["api_key"], "watch-wd-1", lon, lat, NOW).status_code == 403
    assert osmand(client, staying["api_key"], "watch-wd-2", lon, lat, NOW).status_code == 200
    assert client.get(f"/elders/{staying['id']}", headers=staff["care_staff"]).json()["consent"]


def test_a_repeated_fix_is_dropped_and_a_late_one_does_not_replace_the_last(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-dup")
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    first = osmand(client, key, "watch-dup", lon, lat, NOW - timedelta(minutes=1))
    again = osmand(client, key, "watch-dup", lon, lat, NOW - timedelta(minutes=1))
    assert first.json() == {"stored": 1, "duplicates": 0}
    assert again.status_code == 200  # so the device stops resending
    assert again.json() == {"stored": 0, "duplicates": 1}
    late = osmand(client, key, "watch-dup", lon + 0.001, lat, NOW - timedelta(minutes=5))
    assert late.json() == {"stored": 1, "duplicates": 0}
    assert _positions(care) == 2
    where = client.get(
        f"/elders/{elder['id']}/location", params={"reason": "test"}, headers=staff["care_staff"]
    ).json()
    assert where["time"] == (NOW - timedelta(minutes=1)).isoformat()
    assert where["wgs84"] == {"lon": lon, "lat": lat}


# A report without a position, the 0,0 marker, a clock far ahead and a fix older than the
# retention period are answered 200 now (a buffering client would resend them for ever):
# tests/care/test_clients.py.
BAD: list[tuple[str, dict[str, str], int, str]] = [
    ("missing lon", {"lon": ""}, 422, "lon"),
    ("lat out of range", {"lat": "95.5"}, 422, "lat"),
    ("lon out of range", {"lon": "-181"}, 422, "lon"),
    ("not a number", {"lat": "forty-five"}, 422, "lat"),
    ("NaN", {"lon": "nan"}, 422, "lon"),
    ("malformed location", {"lat": "", "lon": "", "location": "45.6;84.8"}, 422, "location"),
    ("garbled timestamp", {"timestamp": "yesterday"}, 422, "timestamp"),
    ("battery over 100", {"batt": "180"}, 422, "batt"),
    ("alarm too long", {"alarm": "x" * 65}, 422, "alarm"),
    ("too many attributes", {f"extra{i}": "1" for i in range(40)}, 422, "attributes"),
    ("unknown device", {"id": "watch-nobody"}, 403, "id"),
]


@pytest.mark.parametrize(("why", "change", "status", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_a_reason_and_nothing_is_stored(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
    why: str,
    change: dict[str, str],
    status: int,
    field: str,
) -> None:
    key = enrol(client, staff["care_staff"], "watch-bad")["api_key"]
    params: dict[str, Any] = {
        "id": "watch-bad",
        "lat": str(district.home_lat),
        "lon": str(district.home_lon),
        "timestamp": str(int(NOW.timestamp())),
        "key": key,
        **change,
    }
    r = client.get("/ingest/osmand", params={k: v for k, v in params.items() if v != ""})
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert r.json()["detail"]
    assert _positions(care) == 0


def test_keys_are_checked_and_a_device_cannot_post_for_another(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    mine = enrol(client, staff["care_staff"], "watch-mine")
    theirs = enrol(client, staff["care_staff"], "watch-theirs")
    lon, lat = district.home_lon, district.home_lat
    forged = osmand(client, "gw_not_a_key", "watch-mine", lon, lat, NOW)
    assert forged.status_code == 401
    crossed = osmand(client, theirs["api_key"], "watch-mine", lon, lat, NOW)
    assert crossed.status_code == 403
    assert "watch-theirs" not in crossed.text  # the answer says nothing of the key's own device
    header = client.get(
        "/ingest/osmand",
        params={"id": "watch-mine", "lat": lat, "lon": lon},
        headers={"X-API-Key": mine["api_key"]},
    )
    assert header.status_code == 200
    post = client.post(
        "/ingest/osmand",
        params={"key": mine["api_key"]},
        data={"id": "watch-mine", "lat": lat, "lon": lon, "timestamp": "2020-01-01"},
    )
    # Form body read; that date is older than retention: answered, not stored.
    assert post.status_code == 200 and post.json()["stored"] == 0
    assert _positions(care) == 1
    with care.connect() as conn:
        attributes = conn.exec_driver_sql("SELECT attributes::text FROM position").scalar_one()
    assert mine["api_key"] not in attributes  # ?key= is never kept as an attribute
    # ?key= is accepted on ingest routes only.
    assert client.get("/me", params={"key": mine["api_key"]}).status_code == 401
    assert client.get("/me", headers={"X-API-Key": mine["api_key"]}).json()["role"] == "device"


def test_staff_cannot_ingest_and_devices_cannot_read(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-roles")
    device = {"X-API-Key": elder["api_key"]}
    params: dict[str, Any] = {
        "id": "watch-roles",
        "lat": district.home_lat,
        "lon": district.home_lon,
    }
    assert client.get("/ingest/osmand", params=params, headers=staff["admin"]).status_code == 403
    assert client.get("/ingest/osmand", params=params).status_code == 401
    for path in ("/elders", f"/elders/{elder['id']}", "/alerts"):
        assert client.get(path, headers=device).status_code == 403
    where = f"/elders/{elder['id']}/location"
    assert client.get(where, params={"reason": "curious"}, headers=device).status_code == 403


def test_the_batch_endpoint_is_all_or_nothing(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    key = {"X-API-Key": enrol(client, staff["care_staff"], "watch-batch")["api_key"]}
    fixes: list[dict[str, Any]] = [
        {
            "id": "watch-batch",
            "lat": district.home_lat,
            "lon": district.home_lon + i * 1e-4,
            "timestamp": int((NOW - timedelta(minutes=10 - i)).timestamp()),
            "batt": 90,
        }
        for i in range(5)
    ]
    bad = [*fixes[:2], {**fixes[2], "lat": 123.0}, {**fixes[3], "location": "1,2,3"}]
    r = client.post("/ingest/batch", json={"fixes": bad}, headers=key)
    assert r.status_code == 422
    assert "fixes[2].lat" in r.json()["detail"] and "fixes[3].location" in r.json()["detail"]
    assert _positions(care) == 0
    unknown = client.post("/ingest/batch", json={"fixes": [{**fixes[0], "x": 1}]}, headers=key)
    assert unknown.status_code == 422  # strict model: unknown fields refused
    ok = client.post("/ingest/batch", json={"fixes": [*fixes, fixes[0]]}, headers=key)
    assert ok.json() == {"stored": 5, "duplicates": 1}
    assert _positions(care) == 5


def test_a_body_over_the_limit_is_refused(
    care_engine: Engine, care_url: str, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    app = create_app(care_settings(care_url, max_body_bytes=2048), engine=care_engine)
    with TestClient(app) as small:
        r = small.post(
            "/ingest/osmand",
            params={"key": "gw_whatever"},
            content=b"id=x&lat=1&lon=2&pad=" + b"x" * 4096,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert r.status_code == 413
    assert "body" in r.json()["detail"]
    assert _positions(care) == 0


def test_ingest_is_rate_limited(
    care_engine: Engine,
    care_url: str,
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
) -> None:
    key = enrol(client, staff["care_staff"], "watch-limit")["api_key"]
    app = create_app(care_settings(care_url, ingest_per_minute=3), engine=care_engine)
    with TestClient(app) as limited:
        codes = [
            osmand(
                limited,
                key,
                "watch-limit",
                district.home_lon,
                district.home_lat,
                NOW - timedelta(seconds=i),
            ).status_code
            for i in range(5)
        ]
    assert codes == [200, 200, 200, 429, 429]
    assert _positions(care) == 3


def test_concurrent_requests_are_committed_together_and_answered_each_on_its_own(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Group commit: a refused request in a batch does not stop the others, a fix sent twice
    at once is stored once, and every 200 answer is a stored fix."""
    keys = {
        f"watch-c{i}": enrol(client, staff["care_staff"], f"watch-c{i}", consent=i != 0)["api_key"]
        for i in range(24)
    }
    jobs = [(code, key, NOW - timedelta(seconds=5)) for code, key in keys.items()]
    jobs += [(code, key, NOW - timedelta(seconds=9)) for code, key in list(keys.items())[1:9]] * 2

    def send(job: tuple[str, str, datetime]) -> tuple[str, int, dict[str, Any]]:
        code, key, when = job
        r = osmand(client, key, code, district.home_lon, district.home_lat, when)
        return code, r.status_code, r.json()

    batches: list[int] = []
    ingest_many = care_use.ingest_many

    def recorded(session: Any, requests: Any, **kwargs: Any) -> Any:
        batches.append(len(requests))
        time.sleep(0.01)  # a slow commit, so that requests gather behind it
        return ingest_many(session, requests, **kwargs)

    monkeypatch.setattr(care_use, "ingest_many", recorded)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, jobs))
    assert sum(batches) == len(jobs) and max(batches) > 1
    assert [a for a in answers if a[1] != 200] == [
        ("watch-c0", 403, a[2]) for a in answers if a[0] == "watch-c0"
    ]
    stored = sum(a[2]["stored"] for a in answers if a[1] == 200)
    duplicates = sum(a[2]["duplicates"] for a in answers if a[1] == 200)
    assert (stored, duplicates) == (23 + 8, 8)
    assert _positions(care) == stored


def test_the_api_docs_show_what_traccar_client_sends_and_what_it_gets_back(
    client: TestClient,
) -> None:
    doc = client.get("/openapi.json").json()
    for method in ("get", "post"):
        operation = doc["paths"]["/ingest/osmand"][method]
        names = {p["name"] for p in operation["parameters"]}
        assert {"key", "id", "lat", "lon", "location", "timestamp", "batt", "alarm"} <= names
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/IngestAnswer"}
    assert set(doc["components"]["schemas"]["IngestAnswer"]["properties"]) == {
        "stored",
        "duplicates",
        "not_stored",
        "notes",
    }


def test_a_withdrawal_racing_a_batch_of_fixes_leaves_no_fix_behind(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """Consent is withdrawn (and the positions deleted) while a fix is being written. Read
    committed, the fix's first look at consent predates the withdrawal; had it gone on to
    insert after the withdrawal's deletion, it would be left behind. It must wait for the
    withdrawal instead, then be refused, and nothing be stored."""
    elder = enrol(client, staff["care_staff"], "watch-race")
    with Session(care) as withdrawal, ThreadPoolExecutor(max_workers=1) as pool:
        withdrawal.begin()
        assert care_queries.withdraw_consent(withdrawal, elder["id"], by="t-race") == 1
        # The fix passes the first look at consent (the withdrawal is not committed yet)
        # and must then wait for the elder's zone lock, held by the withdrawal.
        fix = pool.submit(
            osmand,
            client,
            elder["api_key"],
            "watch-race",
            district.home_lon,
            district.home_lat,
            NOW,
        )
        wait_until_blocked(care, fix)
        care_queries.delete_positions_of(withdrawal, elder["id"])
        withdrawal.commit()
        answer = fix.result(timeout=10)
    assert answer.status_code == 403, answer.text
    assert "consent" in answer.json()["detail"]
    assert _positions(care) == 0


def test_safe_zones_are_ready_in_metres_before_the_first_report_after_a_start(
    care_engine: Engine,
    care_url: str,
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-warm")
    care_queries._ZONES.clear()  # as in a process that just started
    started = create_app(care_settings(care_url), engine=care_engine)
    with (
        TestClient(started) as fresh,
        statements_on(care_engine, "ST_AsBinary(ST_Transform(geom") as polygon_reads,
    ):
        r = osmand(fresh, elder["api_key"], "watch-warm", district.home_lon, district.home_lat, NOW)
    assert r.status_code == 200, r.text
    assert polygon_reads == [], "the zone was transformed on the first report"
