"""Real tracking clients, replayed: the status each needs, and what gridwork stored.

A buffering client (Traccar Client 10, the legacy Android client) resends its oldest report
until it is answered 2xx, so a report a retry cannot cure must be answered 200 (with
``stored: 0`` and why) unless it must not be stored *and* the device can do something about
it: no key, a wrong key, a device the key may not report for, no consent, a report that
cannot be read. The request shapes come from the clients' sources (``tests/care/clients.py``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import care_tasks
from tests.care import clients
from tests.care.conftest import CONSENT, HOME_CODE, District, count, enrol

NOW = datetime.now(UTC).replace(microsecond=0)
FAR_EAST = 0.03  # ~2.3 km east of home: outside the home grid + 200 m


@pytest.fixture(autouse=True)
def _now_at_each_test() -> None:
    """NOW is when each test starts, not when the module was imported: under pytest-xdist
    modules are imported as the run starts and a worker may reach their tests many minutes
    later, when a fix sent "3 minutes ago" would be older than that."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def _positions(engine: Engine, device_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.time, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, p.speed_mps, "
                "p.accuracy_m, p.battery, p.charging, p.alarm, p.valid, p.attributes "
                "FROM position p JOIN device d ON d.id = p.device_id "
                "WHERE d.device_code = :c ORDER BY p.time"
            ),
            {"c": device_id},
        ).mappings()
        return [dict(r) for r in rows]


def _alerts(engine: Engine, elder_id: int) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind::text, detail FROM alert WHERE elder_id = :e ORDER BY id"),
            {"e": elder_id},
        ).all()
    return [(r[0], r[1]) for r in rows]


def _record(client: TestClient, staff: dict[str, dict[str, str]], elder_id: int) -> Any:
    r = client.get(f"/elders/{elder_id}", headers=staff["care_staff"])
    assert r.status_code == 200, r.text
    return r.json()


def _codes(answer: Any) -> list[str]:
    return [note.split(":")[0].split(" ")[-1] for note in answer.get("notes", [])]


# --------------------------------------------------------------------------- positions


@pytest.mark.parametrize("shape", ["traccar10", "traccar10_json", "traccar9", "android", "osmand"])
def test_a_position_from_each_client_is_stored_with_its_speed_in_metres_per_second(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
    shape: str,
) -> None:
    """Traccar clients send knots, OsmAnd (with speed_unit=mps in its template) and Traccar
    Client 9.x's JSON m/s: all end as the same speed_mps."""
    device = f"watch-{shape}"
    key = enrol(client, staff["care_staff"], device)["api_key"]
    lon, lat, when = district.home_lon, district.home_lat, NOW - timedelta(minutes=2)
    if shape == "traccar10":
        r = clients.traccar10(client, key, device, when, lat=lat, lon=lon, speed_mps=1.5)
    elif shape == "traccar10_json":
        r = clients.traccar10_json(client, key, device, [(when, lat, lon)])
    elif shape == "traccar9":
        location = clients.traccar9_location(when, lat, lon, speed_mps=1.5, device_id=device)
        r = clients.traccar9(client, key, device, location)
    elif shape == "android":
        r = clients.legacy_android(client, key, device, when, lat, lon, speed_mps=1.5)
    else:
        r = clients.osmand_live(client, key, device, when, lat, lon, speed_mps=1.5)
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 1, "duplicates": 0}
    [stored] = _positions(care, device)
    assert stored["time"] == when
    assert stored["lon"] == pytest.approx(lon, abs=1e-6)
    assert stored["lat"] == pytest.approx(lat, abs=1e-6)
    assert stored["valid"] is True
    assert stored["speed_mps"] == pytest.approx(1.5, abs=0.01)


def test_unknown_sentinels_become_unknown_not_errors(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """Traccar Client 10 on iOS: accuracy -1 (CoreLocation's "invalid"); trackers: batt=-1;
    Traccar Client 9.x: speed, heading and battery level -1."""
    key = enrol(client, staff["care_staff"], "watch-sentinel")["api_key"]
    lon, lat = district.home_lon, district.home_lat
    ios = clients.traccar10(
        client,
        key,
        "watch-sentinel",
        NOW - timedelta(minutes=3),
        lat=lat,
        lon=lon,
        accuracy=-1.0,
        battery=None,
    )
    assert ios.status_code == 200, ios.text
    tracker = client.get(
        "/ingest/osmand",
        params={
            "key": key,
            "id": "watch-sentinel",
            "lat": lat,
            "lon": lon,
            "timestamp": int((NOW - timedelta(minutes=2)).timestamp()),
            "batt": "-1",
        },
    )
    assert tracker.status_code == 200, tracker.text
    location = clients.traccar9_location(
        NOW - timedelta(minutes=1), lat, lon, speed_mps=-1, heading=-1, level=-1
    )
    nine = clients.traccar9(client, key, "watch-sentinel", location)
    assert nine.status_code == 200, nine.text
    stored = _positions(care, "watch-sentinel")
    assert len(stored) == 3
    assert [p["battery"] for p in stored] == [None, None, None]
    assert stored[0]["accuracy_m"] is None
    assert stored[2]["speed_mps"] is None


@pytest.mark.parametrize(
    ("charge", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("0", False), ("false", False)],
)
def test_charge_is_read_the_same_however_it_is_spelt(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
    charge: str,
    expected: bool,
) -> None:
    key = enrol(client, staff["care_staff"], "watch-charge")["api_key"]
    r = client.post(
        "/ingest/osmand",
        params={"key": key},
        data={
            "id": "watch-charge",
            "lat": str(district.home_lat),
            "lon": str(district.home_lon),
            "timestamp": str(int(NOW.timestamp())),
            "charge": charge,
        },
    )
    assert r.status_code == 200, r.text
    assert [p["charging"] for p in _positions(care, "watch-charge")] == [expected]


def test_traccar_client_9_json_single_and_synced_locations(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    key = enrol(client, staff["care_staff"], "watch-nine")["api_key"]
    lon, lat = district.home_lon, district.home_lat
    one = clients.traccar9_location(NOW - timedelta(minutes=5), lat, lon, device_id="watch-nine")
    r = clients.traccar9(client, key, "watch-nine", one)
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 1, "duplicates": 0}
    synced = [
        clients.traccar9_location(NOW - timedelta(minutes=4 - i), lat, lon + i * 1e-4)
        for i in range(3)
    ]
    r = clients.traccar9(client, key, "watch-nine", [*synced, one])
    assert r.json() == {"stored": 3, "duplicates": 1}
    stored = _positions(care, "watch-nine")
    assert len(stored) == 4
    assert stored[0]["battery"] == pytest.approx(79.0)  # level 0.79 is a fraction
    assert stored[0]["charging"] is False
    assert stored[0]["attributes"]["event"] == "motionchange"
    assert "_" not in stored[0]["attributes"]
    # The key in X-API-Key works as well as ?key=.
    header = client.post(
        "/ingest/osmand",
        json={"location": clients.traccar9_location(NOW, lat, lon), "device_id": "watch-nine"},
        headers={"X-API-Key": key},
    )
    assert header.json() == {"stored": 1, "duplicates": 0}
    # A body that is not JSON, or not a location, is a 422 naming the part.
    broken = client.post(
        "/ingest/osmand",
        params={"key": key},
        content=b'{"location": {"coords": ',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 422 and broken.json()["field"] == "body"
    wrong = clients.traccar9(client, key, "watch-nine", {"coords": "here"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "location.coords"
    assert len(_positions(care, "watch-nine")) == 5


def test_traccar_decoder_test_vectors_are_answered_as_traccar_answers_them(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    """The JSON bodies of Traccar's OsmAndProtocolDecoderTest, with the device id replaced:
    all dated 2021–2025, so older than the retention period: 200, nothing stored, why."""
    elder = enrol(client, staff["care_staff"], "watch-vectors")
    vectors: list[dict[str, Any]] = [
        {
            "timestamp": "2025-06-15T13:45:12.862Z",
            "coords": {
                "latitude": 37.4219983,
                "longitude": -122.084,
                "accuracy": 5,
                "speed": 0,
                "heading": -1,
                "altitude": 5,
            },
            "is_moving": False,
            "odometer": 0,
            "event": "motionchange",
            "battery": {"level": 1, "is_charging": False},
            "activity": {"type": "still"},
            "extras": {},
            "_": "&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&",
        },
        {
            "extras": {},
            "mock": True,
            "coords": {
                "speed_accuracy": -1,
                "speed": -1,
                "longitude": -122.406417,
                "ellipsoidal_altitude": 0,
                "floor": None,
                "heading_accuracy": -1,
                "latitude": 37.785834000000001,
                "accuracy": 5,
                "altitude_accuracy": -1,
                "altitude": 0,
                "heading": -1,
            },
            "is_moving": False,
            "age": 188,
            "odometer": 0,
            "uuid": "2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8",
            "event": "motionchange",
            "battery": {"level": -1, "is_charging": False},
            "activity": {"type": "unknown", "confidence": 100},
            "timestamp": "2025-05-09T04:11:30.579Z",
        },
        {
            "event": "motionchange",
            "is_moving": False,
            "uuid": "0e9a2473-a9a7-4c00-997b-fb97d2154e75",
            "timestamp": "2021-07-21T08:06:34.444Z",
            "odometer": 0,
            "coords": {
                "latitude": -6.1148096,
                "longitude": 106.6837015,
                "accuracy": 3.8,
                "speed": 18.67,
                "speed_accuracy": 0.26,
                "heading": 63,
                "heading_accuracy": 0.28,
                "altitude": 35.7,
                "altitude_accuracy": 3.8,
            },
            "activity": {"type": "still", "confidence": 100},
            "battery": {"is_charging": False, "level": 0.79},
            "extras": {},
        },
    ]
    for vector in vectors:
        r = clients.traccar9(client, elder["api_key"], "watch-vectors", vector)
        assert r.status_code == 200, r.text
        assert r.json()["stored"] == 0 and _codes(r.json()) == ["too_old"]
    assert _positions(care, "watch-vectors") == []
    reports = _record(client, staff, elder["id"])["reports"]
    assert reports["not_stored"] == 3
    assert reports["last_refused"]["reason"].startswith("too_old: 2021-07-21T08:06:34.444")


def test_the_legacy_ios_client_loses_the_key_in_its_url(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """It replaces the configured URL's query with its own, so ``?key=`` never arrives: 401,
    nothing stored (the README sends iOS users to Traccar Client 10)."""
    key = enrol(client, staff["care_staff"], "watch-oldios")["api_key"]
    url = f"/ingest/osmand?key={key}"
    r = clients.legacy_ios(client, url, "watch-oldios", NOW, district.home_lat, district.home_lon)
    assert r.status_code == 401
    assert _positions(care, "watch-oldios") == []


# --------------------------------------------------------------------------- alerts


def test_sos_from_each_client_raises_an_alert(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    lon, lat = district.home_lon, district.home_lat
    ten = enrol(client, staff["care_staff"], "watch-sos10")
    r = clients.traccar10(client, ten["api_key"], "watch-sos10", NOW, lat=lat, lon=lon, alarm="sos")
    assert r.json() == {"stored": 1, "duplicates": 0}
    nine = enrol(client, staff["care_staff"], "watch-sos9")
    location = clients.traccar9_location(NOW, lat, lon, extras={"alarm": "sos"})
    assert clients.traccar9(client, nine["api_key"], "watch-sos9", location).status_code == 200
    android = enrol(client, staff["care_staff"], "watch-sosA")
    r = clients.legacy_android(client, android["api_key"], "watch-sosA", NOW, lat, lon, alarm="sos")
    assert r.status_code == 200
    for elder in (ten, nine, android):
        assert _alerts(care, elder["id"]) == [("sos", "sos")]
    assert _positions(care, "watch-sos9")[0]["alarm"] == "sos"


def test_low_battery_from_a_fix_and_from_a_keep_alive(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    lon, lat = district.home_lon, district.home_lat
    phone = enrol(client, staff["care_staff"], "watch-low9")
    location = clients.traccar9_location(NOW, lat, lon, level=0.15)
    assert clients.traccar9(client, phone["api_key"], "watch-low9", location).status_code == 200
    assert _alerts(care, phone["id"]) == [("low_battery", "15%")]
    indoors = enrol(client, staff["care_staff"], "watch-low10")
    key = indoors["api_key"]
    fix = clients.traccar10(
        client, key, "watch-low10", NOW - timedelta(minutes=20), lat=lat, lon=lon
    )
    assert fix.json()["stored"] == 1
    beat = clients.traccar10(client, key, "watch-low10", NOW, battery=12, charging=False)
    assert beat.status_code == 200
    assert _alerts(care, indoors["id"]) == [("low_battery", "12%")]
    again = clients.traccar10(client, key, "watch-low10", NOW + timedelta(seconds=30), battery=11)
    assert again.status_code == 200
    assert len(_alerts(care, indoors["id"])) == 1  # once per episode
    # Charged, but within the hysteresis: still low. Past it: the alert closes by itself.
    for n, level in enumerate((22, 40), start=1):
        at = NOW + timedelta(seconds=30 + 60 * n)
        r = clients.traccar10(client, key, "watch-low10", at, battery=level, charging=True)
        assert r.status_code == 200
        with care.connect() as conn:
            status, by = conn.execute(
                text("SELECT status::text, closed_by FROM alert WHERE elder_id = :e"),
                {"e": indoors["id"]},
            ).one()
        assert (status, by) == (("open", None) if level == 22 else ("closed", "gridwork"))


# --------------------------------------------------------------------------- kept alive


def test_a_heartbeat_without_a_fix_is_answered_and_kept_as_a_keep_alive(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """Traccar Client 10's heartbeat when it has no position: id, timestamp, battery."""
    elder = enrol(client, staff["care_staff"], "watch-beat")
    key = elder["api_key"]
    fix = clients.traccar10(
        client,
        key,
        "watch-beat",
        NOW - timedelta(minutes=40),
        lat=district.home_lat,
        lon=district.home_lon,
    )
    assert fix.json()["stored"] == 1
    assert _record(client, staff, elder["id"])["reports"]["battery"] == 80  # the fix's
    beat = clients.traccar10(client, key, "watch-beat", NOW, battery=57, charging=True)
    assert beat.status_code == 200, beat.text
    answer = beat.json()
    assert (answer["stored"], answer["not_stored"], _codes(answer)) == (0, 1, ["no_position"])
    assert len(_positions(care, "watch-beat")) == 1  # no position was made up
    # The 0,0 "no fix" marker of trackers is a keep-alive too.
    marker = clients.traccar10(
        client,
        key,
        "watch-beat",
        NOW + timedelta(seconds=1),
        lat=0.0,
        lon=0.0,
        battery=None,
        charging=None,
    )
    assert _codes(marker.json()) == ["no_position"]
    reports = _record(client, staff, elder["id"])["reports"]
    assert reports["keepalive_battery"] == 57 and reports["keepalive_charging"] is True
    # The keep-alive came after the fix: its battery is the one staff see, on the elder's
    # page and in the list, which agree.
    assert reports["battery"] == 57
    html_headers = staff["care_staff"] | {"Accept": "text/html", "Accept-Language": "en"}
    page = client.get(f"/app/elders/{elder['id']}", headers=html_headers).text
    assert re.search(r"<dt>Battery</dt><dd><span[^>]*>57 %</span></dd>", page), page
    listed = client.get("/app/elders?q=", headers=html_headers).text
    row = listed[listed.index(f'href="/app/elders/{elder["id"]}"') :]
    assert re.search(
        r'<td data-label="Battery">[^<]*<span[^>]*>57 %</span>', row[: row.index("</tr>")]
    )
    assert reports["not_stored"] == 2 and reports["last_refused"] is None
    heard = datetime.fromisoformat(reports["last_heard_at"])
    assert heard > NOW - timedelta(minutes=1)
    assert datetime.fromisoformat(reports["last_fix_received_at"]) < heard


def test_no_fix_tells_a_watch_alive_without_gps_from_a_silent_one(
    client: TestClient,
    care_app: FastAPI,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
) -> None:
    lon, lat = district.home_lon, district.home_lat
    indoors = enrol(client, staff["care_staff"], "watch-indoors")
    silent = enrol(client, staff["care_staff"], "watch-silent")
    late = enrol(client, staff["care_staff"], "watch-late")
    for elder in (indoors, silent, late):
        device = elder["device_id"]
        r = clients.traccar10(
            client, elder["api_key"], device, NOW - timedelta(minutes=50), lat=lat, lon=lon
        )
        assert r.json()["stored"] == 1
    # The silent and the indoor watch sent that fix when they took it, 50 minutes ago; the
    # late one kept it while out of reach and has just uploaded it.
    with care.begin() as conn:
        conn.execute(
            text("UPDATE zone_state SET last_received_at = :t WHERE elder_id = ANY(:e)"),
            {"t": NOW - timedelta(minutes=50), "e": [indoors["id"], silent["id"]]},
        )
    beat = clients.traccar10(client, indoors["api_key"], "watch-indoors", NOW, battery=64)
    assert beat.status_code == 200
    assert care_tasks.run_once(care_app, purge_now=False)["no_fix"] == 3
    [(kind, alive)] = _alerts(care, indoors["id"])
    assert kind == "no_fix" and alive is not None
    assert alive.startswith("watch alive, no GPS fix") and "battery 64%" in alive
    [(kind, quiet)] = _alerts(care, silent["id"])
    assert kind == "no_fix" and quiet is not None and quiet.startswith("watch silent")
    [(kind, uploaded)] = _alerts(care, late["id"])
    assert kind == "no_fix" and uploaded is not None
    assert uploaded.startswith("watch alive, no GPS fix") and "battery" not in uploaded


# --------------------------------------------------------------------------- time


def test_an_old_buffered_fix_is_answered_not_stored_and_counted(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """A phone offline for weeks: its oldest buffered fix is older than the retention."""
    elder = enrol(client, staff["care_staff"], "watch-old")
    old = clients.legacy_android(
        client,
        elder["api_key"],
        "watch-old",
        NOW - timedelta(days=40),
        district.home_lat,
        district.home_lon,
    )
    assert old.status_code == 200, old.text
    assert old.json()["stored"] == 0 and _codes(old.json()) == ["too_old"]
    assert _positions(care, "watch-old") == []
    refused = _record(client, staff, elder["id"])["reports"]["last_refused"]
    assert refused["reason"].startswith("too_old:") and "30 days" in refused["reason"]


def test_a_fix_from_before_consent_is_not_stored(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    today = date.today()
    body = {
        "display_name": "Elder of watch-early",
        "household_code": HOME_CODE,
        "device": {"device_id": "watch-early", "datum": "wgs84"},
        "consent": {**CONSENT, "given_on": str(today)},
    }
    enrolled = client.post("/elders", json=body, headers=staff["care_staff"])
    assert enrolled.status_code == 201, enrolled.text
    elder = enrolled.json()
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    start = datetime(today.year, today.month, today.day, tzinfo=UTC)
    before = clients.traccar10(
        client, key, "watch-early", start - timedelta(hours=3), lat=lat, lon=lon
    )
    assert before.status_code == 200
    assert before.json()["stored"] == 0 and _codes(before.json()) == ["before_consent"]
    after = clients.traccar10(client, key, "watch-early", NOW, lat=lat, lon=lon)
    assert after.json() == {"stored": 1, "duplicates": 0}
    assert [p["time"] for p in _positions(care, "watch-early")] == [NOW]


def test_a_fast_clock_is_stored_at_the_time_of_receipt_with_the_device_time_kept(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """A watch sending local time (UTC+8) as UTC is 8 hours ahead: its fix is kept, at the
    time it arrived, so it neither vanishes nor stays "the latest" for 8 hours."""
    elder = enrol(client, staff["care_staff"], "watch-fast")
    sent = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=8)  # NOW may be minutes old
    before = datetime.now(UTC)
    r = clients.traccar10(
        client, elder["api_key"], "watch-fast", sent, lat=district.home_lat, lon=district.home_lon
    )
    after = datetime.now(UTC)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1 and _codes(r.json()) == ["clock_ahead"]
    [stored] = _positions(care, "watch-fast")
    assert before - timedelta(seconds=1) <= stored["time"] <= after
    assert stored["attributes"]["device_time"] == sent.isoformat()
    reason = _record(client, staff, elder["id"])["reports"]["last_refused"]["reason"]
    assert reason.startswith("clock_ahead:") and "8.0 h" in reason


# --------------------------------------------------------------------------- refusals


def test_what_a_retry_cannot_cure_and_must_not_be_stored_is_still_refused(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    lon, lat = district.home_lon, district.home_lat
    mine = enrol(client, staff["care_staff"], "watch-known")
    unknown = clients.traccar10(client, mine["api_key"], "watch-stranger", NOW, lat=lat, lon=lon)
    assert unknown.status_code == 403 and unknown.json()["field"] == "id"
    wrong = clients.traccar10(client, "gw_not_a_key", "watch-known", NOW, lat=lat, lon=lon)
    assert wrong.status_code == 401
    no_key = client.post("/ingest/osmand", data={"id": "watch-known", "lat": lat, "lon": lon})
    assert no_key.status_code == 401
    refused = enrol(client, staff["care_staff"], "watch-noconsent", consent=False)
    for r in (
        clients.traccar10(client, refused["api_key"], "watch-noconsent", NOW, lat=lat, lon=lon),
        clients.traccar10(client, refused["api_key"], "watch-noconsent", NOW, battery=50),
        clients.traccar9(
            client,
            refused["api_key"],
            "watch-noconsent",
            clients.traccar9_location(NOW, lat, lon),
        ),
    ):
        assert r.status_code == 403 and "consent" in r.json()["detail"]
    garbled = clients.traccar10(client, mine["api_key"], "watch-known", NOW, lat=95.0, lon=lon)
    assert garbled.status_code == 422 and garbled.json()["field"] == "lat"
    assert count(care, "SELECT count(*) FROM position") == 0
    # Nothing about the refused device was kept either, not even a keep-alive.
    assert _record(client, staff, refused["id"])["reports"]["last_heard_at"] is None


# --------------------------------------------------------------------------- zones


def test_a_fix_the_device_marks_invalid_is_stored_but_moves_no_zone(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-valid")
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    home = clients.traccar10(
        client, key, "watch-valid", NOW - timedelta(minutes=5), lat=lat, lon=lon
    )
    assert home.json()["stored"] == 1
    r = client.get(
        "/ingest/osmand",
        params={
            "key": key,
            "id": "watch-valid",
            "lat": lat,
            "lon": lon + FAR_EAST,
            "timestamp": int(NOW.timestamp()),
            "valid": "false",
        },
    )
    assert r.json() == {"stored": 1, "duplicates": 0}
    assert [p["valid"] for p in _positions(care, "watch-valid")] == [True, False]
    assert _alerts(care, elder["id"]) == []  # no left_zone from a position it does not trust
    where = client.get(
        f"/elders/{elder['id']}/location", params={"reason": "test"}, headers=staff["care_staff"]
    ).json()
    assert where["valid"] is True and where["wgs84"]["lon"] == pytest.approx(lon)


# --------------------------------------------------------------------------- facilities


def test_facilities_are_listed_only_within_five_km(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-abroad")
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    path = f"/elders/{elder['id']}/location"
    clients.traccar10(client, key, "watch-abroad", NOW - timedelta(minutes=5), lat=lat, lon=lon)
    near = client.get(path, params={"reason": "test"}, headers=staff["care_staff"]).json()
    assert near["facilities"] and all(f["straight_line_m"] <= 5000 for f in near["facilities"])
    assert "facilities_note" not in near
    far = clients.traccar10(client, key, "watch-abroad", NOW, lat=lat + 1.0, lon=lon + 1.0)
    assert far.json()["stored"] == 1
    away = client.get(path, params={"reason": "test"}, headers=staff["care_staff"]).json()
    assert away["facilities"] == []
    assert away["facilities_note"] == "none within 5 km"


def test_after_a_withdrawal_and_a_new_consent_fixes_from_the_gap_are_not_stored(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """Consent given again covers what comes after it, not the time it was withdrawn: a
    watch that buffered fixes while consent was withdrawn must not deliver them later."""
    elder = enrol(client, staff["care_staff"], "watch-reconsent")
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    first = clients.traccar10(client, key, "watch-reconsent", NOW, lat=lat, lon=lon)
    assert first.json()["stored"] == 1
    gone = client.delete(f"/elders/{elder['id']}/consent", headers=staff["care_staff"])
    assert gone.status_code == 200, gone.text
    in_the_gap = datetime.now(UTC).replace(microsecond=0)
    refused = clients.traccar10(client, key, "watch-reconsent", in_the_gap, lat=lat, lon=lon)
    assert refused.status_code == 403  # no consent now: a retry cannot cure it
    again = client.post(
        f"/elders/{elder['id']}/consent",
        json={**CONSENT, "given_on": str(date.today())},
        headers=staff["care_staff"],
    )
    assert again.status_code == 201, again.text
    # The buffered fix from the gap arrives after the new consent: answered, not stored.
    late = clients.traccar10(client, key, "watch-reconsent", in_the_gap, lat=lat, lon=lon)
    assert late.status_code == 200
    assert late.json()["stored"] == 0 and _codes(late.json()) == ["before_consent"]
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    fresh = clients.traccar10(client, key, "watch-reconsent", now, lat=lat, lon=lon)
    assert fresh.json()["stored"] == 1
    assert [p["time"] for p in _positions(care, "watch-reconsent")] == [NOW, now]
