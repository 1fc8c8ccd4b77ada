"""Locating an elder, alerts and their routing, areas, audit, retention and webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api import care_tasks
from api.app import create_app
from api.cli import app as cli
from api.security import hash_password
from data.access.queries import add_scope, create_user
from data.care import service as care_use
from data.db import transaction
from data.models import Role, ScopeLevel
from geo.care.osmand import parse_osmand
from tests.care.conftest import (
    CONSENT,
    EPSG,
    HOME_CODE,
    HOME_GRID,
    PASSWORD,
    STAFF,
    District,
    care_settings,
    count,
    enrol,
    osmand,
)
from tests.factory import sign_in

NOW = datetime.now(UTC).replace(microsecond=0)
FAR_EAST = 0.03  # degrees east of home: ~2.3 km, well outside home grid + 200 m


@pytest.fixture(autouse=True)
def _now_at_each_test() -> None:
    """NOW is when each test starts, not when the module was imported: under pytest-xdist
    modules are imported as the run starts and a worker may reach their tests many minutes
    later, when a fix sent "3 minutes ago" would be older than that."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def _alerts(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/alerts", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["alerts"])


def _audit(engine: Engine, route: str, after: int) -> list[tuple[str, str, list[str], str | None]]:
    """Audit rows of one route written after row ``after`` (the log cannot be emptied)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor, subject_type, subject_ids, reason FROM audit_log "
                "WHERE route = :r AND id > :after ORDER BY id"
            ),
            {"r": route, "after": after},
        ).all()
    return [(r[0], r[1], list(r[2]), r[3]) for r in rows]


def test_location_names_grid_community_street_worker_and_nearest_facilities(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    start = count(care, "SELECT coalesce(max(id), 0) FROM audit_log")
    elder = enrol(client, staff["care_staff"], "watch-loc")
    path = f"/elders/{elder['id']}/location"
    assert (
        osmand(
            client,
            elder["api_key"],
            "watch-loc",
            district.home_lon,
            district.home_lat,
            NOW - timedelta(minutes=3),
            accuracy=12.5,
            batt=64,
        ).status_code
        == 200
    )

    missing = client.get(path, headers=staff["care_staff"])
    assert missing.status_code == 422
    assert "reason" in missing.json()["detail"]
    assert _audit(care, path, start) == []

    r = client.get(
        path, params={"reason": "daughter called: not home"}, headers=staff["care_staff"]
    )
    assert r.status_code == 200, r.text
    where = r.json()
    assert where["grid"] == {"code": HOME_GRID}
    assert where["community"]["code"] == "S01-C01"
    assert where["street"]["code"] == "S01"
    assert where["worker"]["code"] == district.worker_of(HOME_GRID)
    assert where["worker"]["phone"].startswith("+86 990")
    assert where["accuracy_m"] == 12.5 and where["battery"] == 64
    assert 170 <= where["age_s"] < 600
    assert where["wgs84"] == {"lon": district.home_lon, "lat": district.home_lat}
    # Ranked by walking along the district's roads, never shorter than the straight line.
    assert where["facility_distance"] == "walking"
    walks = [f["walking_m"] for f in where["facilities"]]
    assert len(walks) == 5 and None not in walks and walks == sorted(walks)
    assert all(f["walking_m"] >= f["straight_line_m"] - 0.1 for f in where["facilities"])
    # Without a road network only the straight line is known, and says so.
    with care.connect() as conn, Session(bind=conn) as session:
        plain, ranked = care_use.nearest_facilities(
            session, lon=district.home_lon, lat=district.home_lat, epsg=EPSG, count=5, network=None
        )
    assert ranked == "straight_line"
    lines = [f["straight_line_m"] for f in plain]
    assert lines == sorted(lines) and "walking_m" not in plain[0]
    assert _audit(care, path, start) == [
        ("c-care", "position", [str(elder["id"])], "daughter called: not home")
    ]

    trail = client.get(
        f"/elders/{elder['id']}/trail",
        params={"hours": 1, "reason": "drill"},
        headers=staff["home_worker"],
    )
    assert trail.status_code == 200
    assert trail.headers["content-type"].startswith("application/geo+json")
    assert [f["properties"]["kind"] for f in trail.json()["features"]] == ["fix"]
    assert _audit(care, f"/elders/{elder['id']}/trail", start)[0][0] == "c-home-worker"
    assert (
        client.get(
            f"/elders/{elder['id']}/trail",
            params={"reason": "drill", "hours": 0},
            headers=staff["admin"],
        ).status_code
        == 422
    )


def test_areas_decide_who_sees_an_elder_and_others_get_404(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-area")
    e = elder["id"]
    assert (
        osmand(
            client, elder["api_key"], "watch-area", district.home_lon, district.home_lat, NOW
        ).status_code
        == 200
    )
    reason = {"reason": "area test"}
    far = staff["far_care"]
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/elders/{e}", {}),
        ("GET", f"/elders/{e}/location", {"params": reason}),
        ("GET", f"/elders/{e}/trail", {"params": reason}),
        ("GET", f"/elders/{e}/trail/map", {"params": reason}),
        ("POST", f"/elders/{e}/consent", {"json": CONSENT}),
        ("DELETE", f"/elders/{e}/consent", {}),
        ("PUT", f"/elders/{e}/zone", {"json": {"kind": "home_grid", "buffer_m": 50}}),
        ("GET", "/elders/999999", {}),
    ]
    for method, path, kwargs in calls:
        r = client.request(method, path, headers=far, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
    assert client.get("/elders", headers=far).json() == {"elders": []}
    assert [
        x["id"] for x in client.get("/elders", headers=staff["home_worker"]).json()["elders"]
    ] == [e]
    # Enrolling into a household outside one's area looks like a missing household.
    r = client.post(
        "/elders",
        json={
            "display_name": "x",
            "household_code": HOME_CODE,
            "device": {"device_id": "watch-far", "datum": "wgs84"},
        },
        headers=far,
    )
    assert r.status_code == 404
    for who in ("planner",):
        assert client.get("/elders", headers=staff[who]).status_code == 403
        assert client.get("/alerts", headers=staff[who]).status_code == 403
    assert client.post("/elders", json={}, headers=staff["home_worker"]).status_code == 403


def test_enrollment_is_strict(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine
) -> None:
    enrol(client, staff["care_staff"], "watch-once")
    body: dict[str, Any] = {
        "display_name": "again",
        "household_code": HOME_CODE,
        "device": {"device_id": "watch-once", "datum": "wgs84"},
    }
    assert client.post("/elders", json=body, headers=staff["care_staff"]).status_code == 409
    assert count(care, "SELECT count(*) FROM elder") == 1  # the refused one left nothing
    for change in (
        {"device": {"device_id": "watch-2", "datum": "etrs89"}},
        {"device": {"device_id": "watch 2", "datum": "wgs84"}},
        {"household_code": "H-NOWHERE", "device": {"device_id": "watch-2", "datum": "wgs84"}},
        {"id_number": "110101...", "device": {"device_id": "watch-2", "datum": "wgs84"}},
        {
            "consent": {**CONSENT, "given_on": "2999-01-01"},
            "device": {"device_id": "watch-2", "datum": "wgs84"},
        },
    ):
        r = client.post("/elders", json={**body, **change}, headers=staff["care_staff"])
        assert r.status_code in (404, 422), (change, r.text)
    assert count(care, "SELECT count(*) FROM elder") == 1


def test_an_exit_alert_is_routed_acknowledged_and_closed_and_seen_where_the_elder_is(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-alert")
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    osmand(client, key, "watch-alert", lon, lat, NOW - timedelta(minutes=10))
    away_lon = lon + FAR_EAST
    assert (
        osmand(client, key, "watch-alert", away_lon, lat, NOW - timedelta(minutes=2)).json()[
            "stored"
        ]
        == 1
    )
    osmand(client, key, "watch-alert", away_lon + 1e-4, lat, NOW - timedelta(minutes=1))
    [alert] = _alerts(client, staff["care_staff"])
    away_grid = district.grid_codes([away_lon], [lat])[0]
    assert alert["kind"] == "left_zone" and alert["grid_code"] == away_grid
    assert "lon" not in alert  # coordinates only with a reason
    assert {r["reason"] for r in alert["recipients"]} == {"current_grid", "home_grid"}

    # The worker of the grid the elder is in now sees the alert and may locate the elder.
    with transaction(care) as session:
        create_user(session, "c-away-worker", hash_password(PASSWORD), Role.grid_worker)
        assert away_grid is not None
        add_scope(session, "c-away-worker", ScopeLevel.grid, away_grid)
    token = client.post("/token", data={"username": "c-away-worker", "password": PASSWORD})
    away = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert [a["id"] for a in _alerts(client, away)] == [alert["id"]]
    loc = client.get(f"/elders/{elder['id']}/location", params={"reason": "alert"}, headers=away)
    assert loc.status_code == 200 and loc.json()["grid"]["code"] == away_grid

    far = staff["far_care"]
    assert _alerts(client, far) == []
    assert client.post(f"/alerts/{alert['id']}/ack", headers=far).status_code == 404
    ack = client.post(f"/alerts/{alert['id']}/ack", headers=away)
    assert ack.status_code == 200
    assert ack.json()["status"] == "acknowledged"
    assert ack.json()["acknowledged_by"] == "c-away-worker"
    assert client.post(f"/alerts/{alert['id']}/ack", headers=away).status_code == 409
    assert _alerts(client, staff["care_staff"]) == []
    closed = client.post(f"/alerts/{alert['id']}/close", headers=staff["home_worker"])
    assert closed.json()["status"] == "closed"
    assert client.post(f"/alerts/{alert['id']}/close", headers=away).status_code == 409
    assert [a["id"] for a in _alerts(client, staff["admin"], status="closed")] == [alert["id"]]
    assert client.get(f"/elders/{elder['id']}", headers=away).status_code == 404


def test_low_battery_and_sos_are_raised_once_per_episode(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-sos")
    key, lon, lat = elder["api_key"], district.home_lon, district.home_lat
    extras: list[dict[str, Any]] = [
        {"batt": 50},
        {"batt": 15},
        {"batt": 14, "alarm": "sos"},
        {"batt": 13, "alarm": "sos"},
        {"batt": 12},
    ]
    for i, extra in enumerate(extras):
        r = osmand(client, key, "watch-sos", lon, lat, NOW - timedelta(minutes=10 - i), **extra)
        assert r.status_code == 200
    kinds = sorted(a["kind"] for a in _alerts(client, staff["home_worker"]))
    assert kinds == ["low_battery", "sos"]


def test_the_periodic_task_raises_no_fix_once_and_purges_old_positions(
    client: TestClient,
    care_app: Any,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
    monkeypatch: pytest.MonkeyPatch,
    care_url: str,
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-quiet")
    osmand(
        client,
        elder["api_key"],
        "watch-quiet",
        district.home_lon,
        district.home_lat,
        NOW - timedelta(minutes=45),
    )
    with care.begin() as conn:  # a fix from before the retention period (ingest refuses one)
        conn.execute(
            text(
                "INSERT INTO position (device_id, elder_id, time, geom, raw_lon, raw_lat) "
                "SELECT device_id, elder_id, time - interval '40 days', geom, raw_lon, raw_lat "
                "FROM position"
            )
        )
    # The same tick escalates overdue cases and switches due plans: none here.
    quiet = {"cases_escalated": 0, "plans_switched": 0}
    assert care_tasks.run_once(care_app, purge_now=True) == {
        "no_fix": 1,
        "purged": 1,
        "delivered": 0,
        **quiet,
    }
    assert care_tasks.run_once(care_app, purge_now=True) == {
        "no_fix": 0,
        "purged": 0,
        "delivered": 0,
        **quiet,
    }
    [alert] = _alerts(client, staff["care_staff"], reason="silent watch")
    assert alert["kind"] == "no_fix" and alert["grid_code"] == HOME_GRID
    assert alert["lon"] == district.home_lon

    # A fresh fix ends the silence, and its alert closes by itself; `gridwork purge`
    # deletes by the same rule.
    osmand(client, elder["api_key"], "watch-quiet", district.home_lon, district.home_lat, NOW)
    assert count(care, "SELECT count(*) FROM zone_state WHERE no_fix") == 0
    assert _alerts(client, staff["care_staff"]) == []
    [closed] = _alerts(client, staff["care_staff"], status="closed")
    assert (closed["id"], closed["closed_by"]) == (alert["id"], "gridwork")
    monkeypatch.setenv("DATABASE_URL", care_url)
    result = CliRunner().invoke(cli, ["purge", "--days", "1"])
    assert result.exit_code == 0, result.output
    assert "deleted 0 position(s) older than 1 days" in result.output
    with care.begin() as conn:
        conn.execute(text("UPDATE position SET time = time - interval '2 days'"))
    result = CliRunner().invoke(cli, ["purge", "--days", "1"])
    assert "deleted 2 position(s)" in result.output
    assert count(care, "SELECT count(*) FROM position") == 0


def test_the_lifespan_task_runs_by_itself(
    care_engine: Engine,
    care_url: str,
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-tick")
    osmand(
        client,
        elder["api_key"],
        "watch-tick",
        district.home_lon,
        district.home_lat,
        NOW - timedelta(minutes=31),
    )
    app = create_app(care_settings(care_url, care_tick_seconds=0.1), engine=care_engine)
    with TestClient(app):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not count(care, "SELECT count(*) FROM alert"):
            time.sleep(0.05)
    assert count(care, "SELECT count(*) FROM alert WHERE kind = 'no_fix'") == 1


def test_zones_can_be_circles_or_polygons_and_bad_ones_are_refused(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-zone")
    zone = f"/elders/{elder['id']}/zone"
    lon, lat = district.home_lon, district.home_lat
    circle = {"kind": "circle", "lon": lon, "lat": lat, "radius_m": 100}
    r = client.put(zone, json=circle, headers=staff["care_staff"])
    assert r.status_code == 200 and r.json()["kind"] == "circle"
    # ~160 m east: inside the home grid + 200 m, but outside the 100 m circle.
    osmand(client, elder["api_key"], "watch-zone", lon + 0.002, lat, NOW - timedelta(minutes=1))
    assert [a["kind"] for a in _alerts(client, staff["care_staff"])] == ["left_zone"]

    square = [
        [lon - 0.01, lat - 0.01],
        [lon + 0.01, lat - 0.01],
        [lon + 0.01, lat + 0.01],
        [lon - 0.01, lat + 0.01],
        [lon - 0.01, lat - 0.01],
    ]
    ok = client.put(
        zone,
        json={"kind": "polygon", "geometry": {"type": "Polygon", "coordinates": [square]}},
        headers=staff["care_staff"],
    )
    assert ok.status_code == 200 and ok.json()["zone"]["type"] == "Polygon"
    osmand(client, elder["api_key"], "watch-zone", lon + 0.002, lat, NOW)
    # Back inside: the exit alert closed by itself, the return is open.
    assert [a["kind"] for a in _alerts(client, staff["care_staff"])] == ["returned"]
    closed = _alerts(client, staff["care_staff"], status="closed")
    assert [(a["kind"], a["closed_by"]) for a in closed] == [("left_zone", "gridwork")]
    bowtie = [
        [lon, lat],
        [lon + 0.01, lat + 0.01],
        [lon + 0.01, lat],
        [lon, lat + 0.01],
        [lon, lat],
    ]
    for bad in (
        {"kind": "polygon", "geometry": {"type": "Polygon", "coordinates": [bowtie]}},
        {"kind": "polygon", "geometry": {"type": "Point", "coordinates": [lon, lat]}},
        {"kind": "circle", "lon": lon, "lat": 95, "radius_m": 100},
        {"kind": "circle", "lon": lon, "lat": lat, "radius_m": 5},
        {"kind": "home_grid", "buffer_m": 200, "colour": "red"},
        {"kind": "moat"},
    ):
        r = client.put(zone, json=bad, headers=staff["care_staff"])
        assert r.status_code == 422, (bad, r.text)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
        else:
            _Hook.received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def hook_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    _Hook.fail_first = 1
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()
    server.server_close()


def test_webhooks_are_delivered_with_retries(
    care_engine: Engine,
    care_url: str,
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
    hook_url: str,
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-hook")
    app = create_app(care_settings(care_url, alert_webhook_url=hook_url), engine=care_engine)
    with TestClient(app) as hooked:
        r = osmand(
            hooked,
            elder["api_key"],
            "watch-hook",
            district.home_lon,
            district.home_lat,
            NOW,
            alarm="sos",
        )
        assert r.status_code == 200
    assert care_use.deliver_webhooks(care) == (0, 1)
    assert care_use.deliver_webhooks(care) == (0, 0)  # not due yet: back-off
    with care.begin() as conn:
        conn.execute(text("UPDATE webhook_outbox SET next_attempt_at = now()"))
    assert care_use.deliver_webhooks(care) == (1, 0)
    [message] = _Hook.received
    assert message["type"] == "gridwork.alert"
    assert message["alert"]["kind"] == "sos" and message["alert"]["detail"] == "sos"
    assert message["alert"]["home_grid_code"] == HOME_GRID
    assert elder["api_key"] not in json.dumps(message)
    assert count(care, "SELECT attempts FROM webhook_outbox") == 2


def test_the_webhook_hears_when_an_alert_is_taken_closed_or_closes_by_itself(
    care_engine: Engine,
    care_url: str,
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    district: District,
) -> None:
    """A dispatcher's copy of an alert must not stay open after gridwork closed it: the exit
    closed by the return, and the return taken and closed by staff, each reach the outbox as
    its own event, in the transaction of the change."""
    elder = enrol(client, staff["care_staff"], "watch-hook-events")
    url = "http://127.0.0.1:9/hook"
    app = create_app(care_settings(care_url, alert_webhook_url=url), engine=care_engine)
    start = count(care, "SELECT coalesce(max(id), 0) FROM webhook_outbox")
    with TestClient(app) as hooked:
        for dlon, seconds in ((FAR_EAST, 120), (0.0, 60)):  # out, then home again
            r = osmand(
                hooked,
                elder["api_key"],
                "watch-hook-events",
                district.home_lon + dlon,
                district.home_lat,
                NOW - timedelta(seconds=seconds),
            )
            assert r.status_code == 200, r.text
        back = count(care, f"SELECT max(id) FROM alert WHERE elder_id = {elder['id']}")
        headers = sign_in(hooked, STAFF["care_staff"].username)
        for action in ("ack", "close"):
            r = hooked.post(f"/alerts/{back}/{action}", headers=headers)
            assert r.status_code == 200, r.text
    with care.connect() as conn:
        events = conn.execute(
            text(
                "SELECT payload->>'kind', payload->>'event', payload->>'status', "
                "(payload->>'by_itself')::boolean FROM webhook_outbox WHERE id > :s ORDER BY id"
            ),
            {"s": start},
        ).all()
    assert [tuple(e) for e in events] == [
        ("left_zone", "raised", "open", False),
        ("returned", "raised", "open", False),
        ("left_zone", "closed", "closed", True),
        ("returned", "acknowledged", "acknowledged", False),
        ("returned", "closed", "closed", False),
    ]


def test_exits_committed_in_one_batch_each_raise_their_own_routed_alert(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """Group commit: several elders stepping out in one transaction get one alert each,
    pointing at their own fix, routed to their own grids, queued for the webhook."""
    elders = [enrol(client, staff["care_staff"], f"watch-batch-{i}") for i in range(4)]
    # Each elder steps out to a different grid (east, north-east, ...), one stays home.
    shifts = [(FAR_EAST, 0.0), (FAR_EAST, 0.01), (0.0, -0.02), (0.0, 0.0)]
    requests = []
    for i, (elder, (dlon, dlat)) in enumerate(zip(elders, shifts, strict=True)):
        fix = parse_osmand(
            {
                "id": elder["device_id"],
                "lat": repr(district.home_lat + dlat),
                "lon": repr(district.home_lon + dlon),
                "timestamp": str(int((NOW - timedelta(seconds=i)).timestamp())),
            },
            now=NOW,
        )
        requests.append(care_use.IngestRequest(f"device:{elder['device_id']}", [fix]))
    with Session(care) as session, session.begin():
        results = care_use.ingest_many(
            session,
            requests,
            epsg=EPSG,
            now=NOW,
            retention=timedelta(days=30),
            webhook_url="http://127.0.0.1:9/hook",
        )
    stored = [(r.stored, r.alerts) for r in results if isinstance(r, care_use.IngestResult)]
    assert stored == [(1, 1), (1, 1), (1, 1), (1, 0)]
    alerts = {a["elder_id"]: a for a in _alerts(client, staff["admin"])}
    assert set(alerts) == {e["id"] for e in elders[:3]}
    for elder, (dlon, dlat) in zip(elders[:3], shifts[:3], strict=True):
        alert = alerts[elder["id"]]
        where = district.grid_codes([district.home_lon + dlon], [district.home_lat + dlat])[0]
        assert (alert["kind"], alert["grid_code"], alert["home_grid_code"]) == (
            "left_zone",
            where,
            HOME_GRID,
        )
        with care.connect() as conn:
            position_elder, payload = conn.execute(
                text(
                    "SELECT p.elder_id, o.payload FROM alert a JOIN position p "
                    "ON p.id = a.position_id JOIN webhook_outbox o ON o.alert_id = a.id "
                    "WHERE a.id = :a"
                ),
                {"a": alert["id"]},
            ).one()
        assert position_elder == elder["id"]
        assert (payload["id"], payload["elder_id"], payload["grid_code"]) == (
            alert["id"],
            elder["id"],
            where,
        )
        workers = {r["reason"]: r["worker_code"] for r in alert["recipients"]}
        assert set(workers) == {"current_grid", "home_grid"}
