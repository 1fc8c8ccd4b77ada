"""Issue 13, rows 3, 10 (care), 14 and 19, tried the way a hostile tester tried them: care
staff of another area with an alert open in their grid, zones drawn to switch alerts off, and
what a forgotten elder leaves behind. Scoped accounts, real HTTP, real PostGIS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import Engine, text

from geo.care.safezone import HomeCheck, SafeZone, check_zone_for_home
from geo.errors import InvalidGeometry, InvalidInput
from tests.care.conftest import (
    CONSENT,
    OTHER_STREET_COMMUNITY,
    District,
    count,
    enrol,
    osmand,
)

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now_at_each_test() -> None:
    """NOW is when each test starts, not when the module was imported: under pytest-xdist
    modules are imported as the run starts and a worker may reach their tests many minutes
    later, when a fix sent "3 minutes ago" would be older than that."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def _far_point(district: District) -> tuple[float, float, str]:
    """A point inside the first grid of far_care's community (another street)."""
    grids = district.grids[district.grids["community_code"] == OTHER_STREET_COMMUNITY]
    first = grids.sort_values("code").iloc[0]
    point = first.geometry.representative_point()
    return float(point.x), float(point.y), str(first["code"])


def _fix(client: TestClient, elder: dict[str, Any], lon: float, lat: float, ago_s: int) -> int:
    r = osmand(
        client, elder["api_key"], elder["device_id"], lon, lat, NOW - timedelta(seconds=ago_s)
    )
    return r.status_code


def _audit_since(
    client: TestClient, staff: dict[str, dict[str, str]], after: int
) -> list[dict[str, Any]]:
    """The audit log as an admin reads it over HTTP, rows after ``after``, oldest first."""
    r = client.get("/audit", params={"limit": 1000}, headers=staff["admin"])
    assert r.status_code == 200, r.text
    return sorted((e for e in r.json()["entries"] if e["id"] > after), key=lambda e: e["id"])


def _last_audit_id(care: Engine) -> int:
    return count(care, "SELECT coalesce(max(id), 0) FROM audit_log")


# --------------------------------------------------------------------------- row 3


def test_an_open_alert_lets_out_of_area_staff_locate_but_never_take_over_the_elder(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-taken")
    e = elder["id"]
    far = staff["far_care"]
    home_lon, home_lat = district.home_lon, district.home_lat
    far_lon, far_lat, far_grid = _far_point(district)
    assert _fix(client, elder, home_lon, home_lat, 600) == 200
    assert _fix(client, elder, far_lon, far_lat, 300) == 200  # lost, in far_care's area

    [alert] = client.get("/alerts", headers=far).json()["alerts"]
    assert (alert["kind"], alert["grid_code"]) == ("left_zone", far_grid)
    # Where the elder is now, far_care may find them: that is what the alert is for.
    reason = {"reason": "alert in my grid: looking for her"}
    found = client.get(f"/elders/{e}/location", params=reason, headers=far)
    assert found.status_code == 200, found.text
    assert found.json()["grid"] == {"code": far_grid}
    assert client.get(f"/elders/{e}/trail", params=reason, headers=far).status_code == 200

    # ... but nothing that changes the elder: each is refused, and says why.
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", f"/elders/{e}/device", {"json": {"device_id": "watch-taken", "datum": "wgs84"}}),
        ("PUT", f"/elders/{e}/device", {"json": {"device_id": "watch-mine", "datum": "wgs84"}}),
        ("DELETE", f"/elders/{e}/device", {}),
        (
            "PUT",
            f"/elders/{e}/zone",
            {"json": {"kind": "circle", "lon": home_lon, "lat": home_lat, "radius_m": 5000}},
        ),
        ("PUT", f"/elders/{e}/zone", {"json": {"kind": "home_grid", "buffer_m": 5000}}),
        ("DELETE", f"/elders/{e}/consent", {"params": {"delete_positions": "true"}}),
        ("POST", f"/elders/{e}/consent", {"json": CONSENT}),
        ("DELETE", f"/elders/{e}", {"params": {"reason": "not ours, remove"}}),
    ]
    for method, path, kwargs in attempts:
        r = client.request(method, path, headers=far, **kwargs)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert r.json()["field"] == "elder_id"
        assert "home area" in r.json()["detail"]
    # The real watch still reports, the zone and consent are as they were, nothing deleted.
    assert _fix(client, elder, far_lon + 1e-4, far_lat, 200) == 200
    record = client.get(f"/elders/{e}", headers=staff["care_staff"]).json()
    assert (record["device_id"], record["device_active"], record["consent"]) == (
        "watch-taken",
        True,
        True,
    )
    assert (
        count(
            care,
            "SELECT count(*) FROM safe_zone WHERE elder_id = :e AND kind = 'home_grid' "
            "AND buffer_m = 200",
            e=e,
        )
        == 1
    )
    assert count(care, "SELECT count(*) FROM position WHERE elder_id = :e", e=e) == 3

    # She walks home: the excursion is over, its alert closes by itself, and far_care's
    # view of her ends at once.
    assert _fix(client, elder, home_lon, home_lat, 100) == 200
    assert (
        count(
            care,
            "SELECT count(*) FROM alert WHERE id = :a AND status = 'closed' "
            "AND closed_by = 'gridwork'",
            a=alert["id"],
        )
        == 1
    )
    for path in (f"/elders/{e}/location", f"/elders/{e}/trail", f"/elders/{e}/trail/map"):
        r = client.get(path, params=reason, headers=far)
        assert r.status_code == 404, (path, r.text)
    assert client.get(f"/elders/{e}", headers=far).status_code == 404
    assert client.get("/elders", headers=far).json() == {"elders": []}
    # Her home area's staff still do all of it.
    r = client.put(
        f"/elders/{e}/device",
        json={"device_id": "watch-taken", "datum": "wgs84"},
        headers=staff["care_staff"],
    )
    assert r.status_code == 200, r.text


def test_an_alert_widens_nothing_for_staff_of_a_place_the_elder_has_left(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """The alert was raised in far_care's grid; the elder went on elsewhere: no reading."""
    elder = enrol(client, staff["care_staff"], "watch-wander")
    far_lon, far_lat, _ = _far_point(district)
    assert _fix(client, elder, far_lon, far_lat, 300) == 200
    reason = {"reason": "still looking"}
    path = f"/elders/{elder['id']}/location"
    assert client.get(path, params=reason, headers=staff["far_care"]).status_code == 200
    # Still lost (no return to the zone), now in a grid of her own street, not far_care's.
    assert _fix(client, elder, district.home_lon + 0.03, district.home_lat, 100) == 200
    assert count(care, "SELECT count(*) FROM alert WHERE status = 'open'") >= 1
    assert client.get(path, params=reason, headers=staff["far_care"]).status_code == 404


# --------------------------------------------------------------------------- row 10


def test_every_change_to_device_consent_and_zone_is_audited_with_who_what_why(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    before_enrol = _last_audit_id(care)
    elder = enrol(client, staff["care_staff"], "watch-audited")
    e = elder["id"]
    mine = staff["care_staff"]
    [enrolled] = _audit_since(client, staff, before_enrol)
    assert (enrolled["actor"], enrolled["method"], enrolled["route"]) == (
        "c-care",
        "POST",
        "/elders",
    )
    assert (enrolled["subject_type"], enrolled["subject_ids"]) == ("elder", [str(e)])
    assert "enrolled with a device" in enrolled["reason"]
    assert "consent recorded" in enrolled["reason"]
    start = _last_audit_id(care)
    changes: list[tuple[str, str, dict[str, Any], str, str]] = [
        (
            "PUT",
            f"/elders/{e}/device",
            {
                "json": {"device_id": "watch-audited", "datum": "gcj02"},
                "params": {"reason": "daughter reset the watch"},
            },
            "elder_device",
            "new key for the same device",
        ),
        (
            "PUT",
            f"/elders/{e}/device",
            {"json": {"device_id": "watch-audited-2", "datum": "wgs84"}},
            "elder_device",
            "device replaced",
        ),
        ("DELETE", f"/elders/{e}/device", {}, "elder_device", "1 device(s) deactivated"),
        (
            "DELETE",
            f"/elders/{e}/consent",
            {"params": {"delete_positions": "true", "reason": "she asked"}},
            "elder_consent",
            "consent withdrawn",
        ),
        ("POST", f"/elders/{e}/consent", {"json": CONSENT}, "elder_consent", "recorded"),
        (
            "PUT",
            f"/elders/{e}/zone",
            {
                "json": {
                    "kind": "circle",
                    "lon": district.home_lon,
                    "lat": district.home_lat,
                    "radius_m": 300,
                }
            },
            "elder_zone",
            "circle of 300 m, containing the home",
        ),
    ]
    for method, path, kwargs, _, _ in changes:
        r = client.request(method, path, headers=mine, **kwargs)
        assert r.status_code in (200, 201), (method, path, r.text)
    entries = _audit_since(client, staff, start)
    assert len(entries) == len(changes)
    for entry, (method, path, kwargs, subject_type, what) in zip(entries, changes, strict=True):
        assert (entry["actor"], entry["role"], entry["method"], entry["route"]) == (
            "c-care",
            "care_staff",
            method,
            path,
        )
        assert (entry["subject_type"], entry["subject_ids"]) == (subject_type, [str(e)])
        assert what in entry["reason"], entry
        why = kwargs.get("params", {}).get("reason")
        if why is not None:
            assert entry["reason"].endswith(f"why: {why}")
        # The log outlives the elder: it names no device, guardian or coordinates.
        for personal in ("watch-audited", CONSENT["given_by"], f"{district.home_lon}"[:6]):
            assert personal not in entry["reason"]


# --------------------------------------------------------------------------- row 14


def _zone_row(care: Engine, elder_id: int) -> tuple[Any, ...]:
    with care.connect() as conn:
        row = conn.execute(
            text("SELECT kind::text, radius_m, ST_AsText(geom) FROM safe_zone WHERE elder_id = :e"),
            {"e": elder_id},
        ).one()
    return tuple(row)


def test_a_zone_that_misses_the_home_is_refused_unless_forced_with_a_reason(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-zone-bad")
    path = f"/elders/{elder['id']}/zone"
    mine = staff["care_staff"]
    lon, lat = district.home_lon, district.home_lat
    before = _zone_row(care, elder["id"])
    square = [[lon - d, lat - d] for d in (0.005,)] + [
        [lon + 0.005, lat - 0.005],
        [lon + 0.005, lat + 0.005],
        [lon - 0.005, lat + 0.005],
        [lon - 0.005, lat - 0.005],
    ]
    swapped_square = [[y, x] for x, y in square]
    world = [[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]
    refused: list[tuple[dict[str, Any], str]] = [
        ({"kind": "circle", "lon": lat, "lat": lon, "radius_m": 500}, "lon/lat"),  # swapped
        ({"kind": "circle", "lon": lon + 0.03, "lat": lat, "radius_m": 500}, "lon/lat"),  # 2 km
        (
            {"kind": "polygon", "geometry": {"type": "Polygon", "coordinates": [swapped_square]}},
            "geometry",
        ),
        ({"kind": "polygon", "geometry": {"type": "Polygon", "coordinates": [world]}}, "geometry"),
    ]
    for body, field in refused:
        r = client.put(path, json=body, headers=mine)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field, r.text
    # The whole world contains the home, but is refused even when forced.
    r = client.put(
        path,
        params={"force": "true", "reason": "testing"},
        json={"kind": "polygon", "geometry": {"type": "Polygon", "coordinates": [world]}},
        headers=mine,
    )
    assert r.status_code == 422 and r.json()["field"] == "geometry", r.text
    assert _zone_row(care, elder["id"]) == before

    # Forcing needs a reason; with one, the day-care centre 2 km away is accepted and audited.
    day_care = {"kind": "circle", "lon": lon + 0.03, "lat": lat, "radius_m": 500}
    r = client.put(path, params={"force": "true"}, json=day_care, headers=mine)
    assert r.status_code == 422 and r.json()["field"] == "reason", r.text
    assert _zone_row(care, elder["id"]) == before
    start = _last_audit_id(care)
    why = "weekdays at the day-care centre"
    r = client.put(path, params={"force": "true", "reason": why}, json=day_care, headers=mine)
    assert r.status_code == 200, r.text
    assert _zone_row(care, elder["id"])[:2] == ("circle", 500)
    [entry] = _audit_since(client, staff, start)
    assert entry["subject_type"] == "elder_zone" and entry["actor"] == "c-care"
    assert "FORCED: the home lies" in entry["reason"] and entry["reason"].endswith(why)
    # A zone round the home needs no force.
    ok = {"kind": "polygon", "geometry": {"type": "Polygon", "coordinates": [square]}}
    assert client.put(path, json=ok, headers=mine).status_code == 200


def test_the_pure_zone_check_names_the_field_and_only_force_lifts_the_home_rule() -> None:
    home = (1000.0, 2000.0)
    around = SafeZone.circle(1000.0, 2000.0, 300)
    assert check_zone_for_home(around, home, field="lon/lat") == HomeCheck(True, None, False)
    away = SafeZone.circle(4000.0, 2000.0, 500)  # the home is 2,500 m outside its edge
    with pytest.raises(InvalidGeometry) as refused:
        check_zone_for_home(away, home, field="lon/lat")
    assert refused.value.field == "lon/lat" and "2,500 m outside" in refused.value.reason
    forced = check_zone_for_home(away, home, force=True, field="lon/lat")
    assert (forced.contains_home, forced.forced) == (False, True)
    assert forced.home_outside_m == pytest.approx(2500.0)
    huge = SafeZone(geometry=box(-1e6, -1e6, 1e6, 1e6))  # contains the home, 1,414 km across
    for force in (False, True):
        with pytest.raises(InvalidGeometry) as too_big:
            check_zone_for_home(huge, home, force=force, field="geometry")
        assert too_big.value.field == "geometry"
    unmeasurable = SafeZone(geometry=box(0, 0, float("inf"), 10))
    with pytest.raises(InvalidGeometry):
        check_zone_for_home(unmeasurable, home, force=True, field="geometry")
    with pytest.raises(InvalidInput) as no_home:
        check_zone_for_home(around, None, field="lon/lat")
    assert no_home.value.field == "force"
    assert check_zone_for_home(around, None, force=True, field="lon/lat").forced


# --------------------------------------------------------------------------- row 19


def test_forgetting_an_elder_leaves_no_row_naming_them_or_their_devices(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-forget-me")
    neighbour = enrol(client, staff["care_staff"], "watch-neighbour")
    e = elder["id"]
    mine = staff["care_staff"]
    assert _fix(client, elder, district.home_lon, district.home_lat, 300) == 200
    # Two reissues and a replacement: three keys that were revoked along the way.
    for code in ("watch-forget-me", "watch-forget-me", "watch-forget-me-too"):
        r = client.put(
            f"/elders/{e}/device", json={"device_id": code, "datum": "wgs84"}, headers=mine
        )
        assert r.status_code == 200, r.text
    last_key = r.json()["api_key"]
    assert (
        _fix(
            client,
            {**elder, "device_id": "watch-forget-me-too", "api_key": last_key},
            district.home_lon + 0.03,
            district.home_lat,
            100,
        )
        == 200
    )  # an alert too
    assert count(care, "SELECT count(*) FROM api_key WHERE name LIKE '%watch-forget-me%'") == 4

    r = client.delete(f"/elders/{e}", params={"reason": "asked to be forgotten"}, headers=mine)
    assert r.status_code == 200, r.text

    with care.connect() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' "
                    "AND table_name NOT IN ('audit_log', "
                    "'alembic_version', 'spatial_ref_sys') ORDER BY table_name"
                )
            )
            .scalars()
            .all()
        )
        with_elder_id = set(
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND column_name = 'elder_id'"
                )
            ).scalars()
        )
        left: dict[str, int] = {}
        for table in tables:
            named = conn.execute(
                text(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE :p'),
                {"p": "%watch-forget-me%"},
            ).scalar_one()
            if table in with_elder_id:
                named += conn.execute(
                    text(f'SELECT count(*) FROM "{table}" WHERE elder_id = :e'),
                    {"e": e},
                ).scalar_one()
            if table == "elder":
                named += conn.execute(
                    text("SELECT count(*) FROM elder WHERE id = :e"), {"e": e}
                ).scalar_one()
            if named:
                left[table] = named
    assert left == {}
    # The audit log keeps who forgot whom, when and why; the neighbour's watch still works.
    assert (
        count(
            care,
            "SELECT count(*) FROM audit_log WHERE method = 'DELETE' AND subject_type = 'elder' "
            "AND :e = ANY(subject_ids) AND reason = 'asked to be forgotten'",
            e=str(e),
        )
        == 1
    )
    assert _fix(client, neighbour, district.home_lon, district.home_lat, 50) == 200
