"""Households, facilities, incidents over HTTP: assignment in every answer, areas, audit,
bulk uploads that store all or nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.assignment.service import assignment_mismatches
from geo.assignment.keys import key_problem


def _grid_point(engine: Engine, grid: str) -> tuple[float, float]:
    """A point well inside a grid."""
    with engine.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                "WHERE code = :g) s"
            ),
            {"g": grid},
        ).one()
    return float(x), float(y)


def _audit_rows(engine: Engine, actor: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT route, subject_type, subject_ids, reason, method FROM audit_log "
                    "WHERE actor = :a ORDER BY id"
                ),
                {"a": actor},
            ).all()
        )


@pytest.fixture
def household(admin: TestClient, gridded_engine: Engine) -> Iterator[str]:
    """A household in grid 131208-G01, removed afterwards."""
    lon, lat = _grid_point(gridded_engine, "131208-G01")
    r = admin.post(
        "/households", json={"code": "T-H-1", "size": 3, "age_band": "80+", "lon": lon, "lat": lat}
    )
    assert r.status_code == 201, r.text
    yield "T-H-1"
    admin.delete("/households/T-H-1")


def test_created_household_carries_its_assignment(
    admin: TestClient, household: str, gridded_engine: Engine
) -> None:
    body = admin.get(f"/households/{household}").json()
    assert body["assignment"] == {
        "grid": "131208-G01",
        "community": "131208",
        "street": "PORTO-CH",
        "worker": "W-131208-G01",
        "snapped": False,
        "distance_m": 0.0,
    }
    assert (body["size"], body["age_band"], body["lives_alone"]) == (3, "80+", False)
    with gridded_engine.connect() as conn:
        assert assignment_mismatches(conn) == []


def test_moving_a_household_reassigns_it(
    admin: TestClient, household: str, gridded_engine: Engine
) -> None:
    lon, lat = _grid_point(gridded_engine, "131215-G03")
    r = admin.patch(f"/households/{household}", json={"lon": lon, "lat": lat, "size": 2})
    assert r.status_code == 200, r.text
    assert r.json()["assignment"]["grid"] == "131215-G03"
    assert r.json()["size"] == 2
    assert admin.patch(f"/households/{household}", json={"lon": lon}).status_code == 422


def test_every_household_read_is_audited_with_its_reason(
    anon: TestClient, auth: dict[str, dict[str, str]], household: str, gridded_engine: Engine
) -> None:
    worker = auth["grid_worker"]
    before = len(_audit_rows(gridded_engine, "g-worker"))
    one = anon.get(f"/households/{household}", params={"reason": "home visit"}, headers=worker)
    assert one.status_code == 200
    listed = anon.get("/grids/131208-G01/households", headers=worker)
    assert listed.status_code == 200
    codes = [h["code"] for h in listed.json()["households"]]
    assert household in codes and listed.json()["total"] == len(codes)
    rows = _audit_rows(gridded_engine, "g-worker")[before:]
    assert [(r.route, r.subject_type, r.reason, r.method) for r in rows] == [
        (f"/households/{household}", "household", "home visit", "GET"),
        ("/grids/131208-G01/households", "household", None, "GET"),
    ]
    assert rows[0].subject_ids == [household]
    assert sorted(rows[1].subject_ids) == sorted(codes)


def test_households_outside_the_callers_area_are_404(
    anon: TestClient, auth: dict[str, dict[str, str]], household: str
) -> None:
    care = auth["care_staff"]  # São Nicolau; the household is in Miragaia
    assert anon.get(f"/households/{household}", headers=care).status_code == 404
    assert anon.get("/households/no-such-code", headers=care).status_code == 404
    assert anon.get("/grids/131208-G01/households", headers=care).status_code == 404
    assert anon.get("/grids/131213-G01/households", headers=care).status_code == 200
    worker = auth["grid_worker"]  # 131208-G01 only
    assert anon.get("/grids/131208-G02/households", headers=worker).status_code == 404


def test_writing_outside_ones_area_is_refused(
    anon: TestClient, auth: dict[str, dict[str, str]], gridded_engine: Engine
) -> None:
    lon, lat = _grid_point(gridded_engine, "131208-G02")
    r = anon.post(
        "/households",
        json={"code": "T-H-out", "lon": lon, "lat": lat},
        headers=auth["grid_worker"],
    )
    assert r.status_code == 403 and "outside your area" in r.json()["detail"]


def test_facility_and_incident_crud(admin: TestClient, gridded_engine: Engine) -> None:
    lon, lat = _grid_point(gridded_engine, "131214-G02")
    r = admin.post(
        "/facilities",
        json={"source_id": "T-F-1", "kind": "clinic", "name": "Test", "lon": lon, "lat": lat},
    )
    assert r.status_code == 201, r.text
    assert r.json()["assignment"]["grid"] == "131214-G02"
    assert (
        admin.post(
            "/facilities",
            json={"source_id": "T-F-1", "kind": "clinic", "lon": lon, "lat": lat},
        ).status_code
        == 409
    )
    assert admin.patch("/facilities/T-F-1", json={"capacity": 40}).json()["capacity"] == 40
    r = admin.post("/incidents", json={"category": "noise", "lon": lon, "lat": lat})
    assert r.status_code == 201, r.text
    incident = r.json()["source_id"]
    assert r.json()["assignment"]["grid"] == "131214-G02" and r.json()["status"] == "open"
    closed = admin.patch(f"/incidents/{incident}", json={"status": "closed"}).json()
    assert closed["status"] == "closed" and closed["closed_at"]
    listed = admin.get("/incidents", params={"grid": "131214-G02", "status": "closed"}).json()
    assert incident in [i["source_id"] for i in listed["incidents"]]
    summary = admin.get("/grids/131214-G02/summary").json()
    assert summary["facilities"]["clinic"] >= 1 and summary["incidents"]["closed"] >= 1
    assert admin.delete(f"/incidents/{incident}").status_code == 204
    assert admin.delete("/facilities/T-F-1").status_code == 204
    assert admin.get("/facilities/T-F-1").status_code == 404


# The three kinds' routes are written once (``api.routers.points._register``); what the kinds
# differ in is pinned here: which acts leave an audit row, which reads take a ``reason``.

#: kind → (key field, its value, the body's own fields, a change, audit subject or None)
KINDS: dict[str, tuple[str, str, dict[str, Any], dict[str, Any], str | None]] = {
    "households": ("code", "T-R-H", {"size": 2}, {"size": 3}, "household"),
    "facilities": ("source_id", "T-R-F", {"kind": "clinic"}, {"capacity": 9}, None),
    "incidents": ("source_id", "T-R-I", {"category": "noise"}, {"status": "closed"}, "incident"),
}


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_audits_what_it_always_did(
    admin: TestClient, gridded_engine: Engine, name: str
) -> None:
    """Households and incidents are personal: their answers are audited (a read with its
    reason), and so are their removals; facilities never."""
    field, key, own, change, subject = KINDS[name]
    lon, lat = _grid_point(gridded_engine, "131214-G02")
    before = len(_audit_rows(gridded_engine, "g-admin"))
    created = admin.post(f"/{name}", json={field: key, **own, "lon": lon, "lat": lat})
    assert created.status_code == 201, created.text
    assert created.json()[field] == key and created.json()["assignment"]["grid"] == "131214-G02"
    read = admin.get(f"/{name}/{key}", params={"reason": "spot check"})
    assert read.status_code == 200 and read.json()[field] == key
    changed = admin.patch(f"/{name}/{key}", json=change)
    assert changed.status_code == 200, changed.text
    assert all(changed.json()[k] == v for k, v in change.items())
    assert admin.delete(f"/{name}/{key}").status_code == 204
    assert admin.get(f"/{name}/{key}").status_code == 404
    audited = [
        (r.method, r.route, r.reason)
        for r in _audit_rows(gridded_engine, "g-admin")[before:]
        if r.subject_type == subject and r.subject_ids == [key]
    ]
    expected = [
        ("POST", f"/{name}", None),
        ("GET", f"/{name}/{key}", "spot check"),
        ("PATCH", f"/{name}/{key}", None),
        ("DELETE", f"/{name}/{key}", None),
    ]
    assert audited == {"households": expected, "incidents": expected, "facilities": []}[name]


def test_only_personal_reads_take_a_reason(gridded_app: FastAPI) -> None:
    paths = gridded_app.openapi()["paths"]
    for path, key, reason in [
        ("/households/{code}", "code", True),
        ("/facilities/{source_id}", "source_id", False),
        ("/incidents/{source_id}", "source_id", True),
    ]:
        params = [(p["in"], p["name"]) for p in paths[path]["get"]["parameters"]]
        assert params == [("path", key)] + [("query", "reason")] * reason


def test_an_incident_needs_a_location(admin: TestClient) -> None:
    r = admin.post("/incidents", json={"category": "noise"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"lon", "lat"}
    r = admin.post("/incidents", json={"category": "noise", "lon": -8.61, "lat": 95})
    assert r.status_code == 422 and r.json()["field"] == "lon/lat"
    r = admin.post("/incidents", json={"category": "x", "lon": -8.6, "lat": 41.1, "who": "me"})
    assert r.status_code == 422 and "who" in r.json()["detail"]


# --- bulk upload ----------------------------------------------------------------------------


def _geojson(rows: list[tuple[str, float | None, float | None]]) -> bytes:
    features = [
        {
            "type": "Feature",
            "properties": {"id": sid, "category": "litter"},
            "geometry": None if lon is None else {"type": "Point", "coordinates": [lon, lat]},
        }
        for sid, lon, lat in rows
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_upload_with_a_bad_row_stores_nothing_and_names_the_row(
    admin: TestClient, gridded_engine: Engine
) -> None:
    lon, lat = _grid_point(gridded_engine, "131213-G02")
    content = _geojson([("U-1", lon, lat), ("U-2", None, None), ("U-3", lon, 95.0)])
    r = admin.post(
        "/incidents/upload", files={"file": ("incidents.geojson", content, "application/geo+json")}
    )
    assert r.status_code == 422, r.text
    assert [x["row"] for x in r.json()["rejects"]] == [2, 3]
    assert _count(gridded_engine, "SELECT count(*) FROM incident WHERE source_id LIKE 'U-%'") == 0


def test_upload_reports_every_row_with_its_grid(admin: TestClient, gridded_engine: Engine) -> None:
    a = _grid_point(gridded_engine, "131213-G02")
    b = _grid_point(gridded_engine, "131215-G01")
    csv = f"id,category,lon,lat\nV-1,litter,{a[0]},{a[1]}\nV-2,noise,{b[0]},{b[1]}\nV-3,x,,\n"
    files = {"file": ("incidents.csv", csv.encode(), "text/csv")}
    r = admin.post("/incidents/upload", files=files, params={"allow_rejects": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["inserted"], body["updated"], body["unchanged"], body["rejected"]) == (2, 0, 0, 1)
    assert [(x["source_id"], x["grid"], x["status"]) for x in body["rows"]] == [
        ("V-1", "131213-G02", "inserted"),
        ("V-2", "131215-G01", "inserted"),
    ]
    assert body["rejects"][0]["row"] == 4
    again = admin.post("/incidents/upload", files=files, params={"allow_rejects": True}).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert [x["status"] for x in again["rows"]] == ["unchanged", "unchanged"]
    recategorised = csv.replace("V-2,noise", "V-2,litter")
    files = {"file": ("incidents.csv", recategorised.encode(), "text/csv")}
    third = admin.post("/incidents/upload", files=files, params={"allow_rejects": True}).json()
    assert [x["status"] for x in third["rows"]] == ["unchanged", "updated"]
    assert (third["inserted"], third["updated"], third["unchanged"]) == (0, 1, 1)
    with gridded_engine.begin() as conn:
        assert assignment_mismatches(conn) == []
        conn.execute(text("DELETE FROM incident WHERE source_id LIKE 'V-%'"))


def test_an_incident_uploaded_again_without_its_report_time_keeps_the_first_one(
    admin: TestClient, gridded_engine: Engine
) -> None:
    """A row whose report time is empty is filed at the upload's time; the same list
    uploaded again (a monthly export with the column half filled) used to move that time to
    the second upload's and count the row as updated each time."""
    a = _grid_point(gridded_engine, "131213-G02")
    csv = (
        "id,category,lon,lat,reported_at\n"
        f"R-1,litter,{a[0]},{a[1]},\n"
        f"R-2,noise,{a[0]},{a[1]},2026-12-01T08:00:00+08:00\n"
    )
    files = {"file": ("incidents.csv", csv.encode(), "text/csv")}

    def stored() -> dict[str, Any]:
        with gridded_engine.connect() as conn:
            rows = conn.execute(
                text("SELECT source_id, reported_at FROM incident WHERE source_id LIKE 'R-%'")
            ).all()
        return dict(rows)

    first = admin.post("/incidents/upload", files=files).json()
    assert (first["inserted"], first["updated"]) == (2, 0), first
    filed = stored()
    again = admin.post("/incidents/upload", files=files).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 2), again
    assert stored() == filed
    assert filed["R-2"].isoformat() == "2026-12-01T00:00:00+00:00"
    with gridded_engine.begin() as conn:
        conn.execute(text("DELETE FROM incident WHERE source_id LIKE 'R-%'"))


def test_upload_refuses_other_formats(admin: TestClient) -> None:
    r = admin.post("/incidents/upload", files={"file": ("x.xlsx", b"PK..", "application/zip")})
    assert r.status_code == 422 and r.json()["field"] == "file"
    r = admin.post("/incidents/upload", files={"file": ("x.geojson", b"{not json", "text/plain")})
    assert r.status_code == 422


def test_household_upload_outside_the_workers_grid_is_refused(
    anon: TestClient, auth: dict[str, dict[str, str]], gridded_engine: Engine
) -> None:
    inside = _grid_point(gridded_engine, "131208-G01")
    outside = _grid_point(gridded_engine, "131208-G03")
    csv = f"code,size,lon,lat\nW-1,2,{inside[0]},{inside[1]}\nW-2,1,{outside[0]},{outside[1]}\n"
    r = anon.post(
        "/households/upload",
        files={"file": ("households.csv", csv.encode(), "text/csv")},
        headers=auth["grid_worker"],
    )
    assert r.status_code == 422
    assert [(x["row"], x["reason"]) for x in r.json()["rejects"]] == [
        (3, "the point lies outside your area")
    ]
    assert _count(gridded_engine, "SELECT count(*) FROM household WHERE code LIKE 'W-%'") == 0


# --- role × route ----------------------------------------------------------------------------

ROLES = ("admin", "planner", "coordinator", "grid_worker", "care_staff", "device")
H, F, I = "households", "facilities", "incidents"  # noqa: E741

# (method, path, json body or None, expected status per role). Bodies that would write are
# aimed at points the role may not touch or are invalid on purpose, so nothing is stored.
ROLE_ROUTE: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/households/NOPE", None, {
        "admin": 404, "planner": 403, "coordinator": 403, "grid_worker": 404,
        "care_staff": 404, "device": 403}),
    ("GET", "/grids/131208-G01/households", None, {
        "admin": 200, "planner": 403, "coordinator": 403, "grid_worker": 200,
        "care_staff": 404, "device": 403}),
    ("POST", "/households", {"code": "x"}, {
        "admin": 422, "planner": 403, "coordinator": 403, "grid_worker": 422,
        "care_staff": 403, "device": 403}),
    ("PATCH", "/households/NOPE", {}, {
        "admin": 404, "planner": 403, "coordinator": 403, "grid_worker": 404,
        "care_staff": 403, "device": 403}),
    ("DELETE", "/households/NOPE", None, {
        "admin": 404, "planner": 403, "coordinator": 403, "grid_worker": 404,
        "care_staff": 403, "device": 403}),
    ("GET", "/facilities/NOPE", None, {
        "admin": 404, "planner": 404, "coordinator": 404, "grid_worker": 404,
        "care_staff": 404, "device": 403}),
    ("POST", "/facilities", {"source_id": "x"}, {
        "admin": 422, "planner": 422, "coordinator": 422, "grid_worker": 403,
        "care_staff": 403, "device": 403}),
    ("GET", "/incidents", None, {
        "admin": 200, "planner": 200, "coordinator": 200, "grid_worker": 200,
        "care_staff": 200, "device": 403}),
    ("POST", "/incidents", {"category": "x"}, {
        "admin": 422, "planner": 403, "coordinator": 422, "grid_worker": 422,
        "care_staff": 422, "device": 403}),
    ("PATCH", "/incidents/NOPE", {}, {
        "admin": 404, "planner": 403, "coordinator": 404, "grid_worker": 404,
        "care_staff": 403, "device": 403}),
    ("DELETE", "/incidents/NOPE", None, {
        "admin": 404, "planner": 403, "coordinator": 403, "grid_worker": 403,
        "care_staff": 403, "device": 403}),
    ("GET", "/grids/131208-G01/summary", None, {
        "admin": 200, "planner": 200, "coordinator": 200, "grid_worker": 200,
        "care_staff": 404, "device": 403}),
    ("GET", "/grids/out-of-band", None, {
        "admin": 200, "planner": 200, "coordinator": 200, "grid_worker": 200,
        "care_staff": 200, "device": 403}),
    ("PATCH", "/grids/131208-G01", {"worker_code": "NOPE"}, {
        "admin": 422, "planner": 422, "coordinator": 403, "grid_worker": 403,
        "care_staff": 403, "device": 403}),
    ("PATCH", "/grids/131213-G01", {"worker_code": "NOPE"}, {
        "admin": 422, "planner": 422, "coordinator": 403, "grid_worker": 403,
        "care_staff": 403, "device": 403}),
    ("GET", "/locate?lon={g02_lon}&lat={g02_lat}", None, {
        "admin": 200, "planner": 200, "coordinator": 200, "grid_worker": 404,
        "care_staff": 404, "device": 403}),
    ("POST", "/assign", {"points": [[-8.61, 41.14]]}, {
        "admin": 200, "planner": 200, "coordinator": 200, "grid_worker": 200,
        "care_staff": 200, "device": 403}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    ROLE_ROUTE,
    ids=[f"{m} {p}" for m, p, _, _ in ROLE_ROUTE],
)
def test_role_by_route(
    anon: TestClient,
    auth: dict[str, dict[str, str]],
    gridded_engine: Engine,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: dict[str, int],
) -> None:
    if "{g02_lon}" in path:  # a point of Miragaia outside the grid worker's grid
        lon, lat = _grid_point(gridded_engine, "131208-G02")
        path = path.format(g02_lon=lon, g02_lat=lat)
    got = {
        who: anon.request(method, path, json=body, headers=auth[who]).status_code
        for who in expected
    }
    assert got == expected


def test_uploads_by_role(anon: TestClient, auth: dict[str, dict[str, str]]) -> None:
    files = {"file": ("x.txt", b"", "text/plain")}  # refused as a format: 422 when allowed
    expected = {
        "/households/upload": {"admin": 422, "planner": 403, "grid_worker": 422, "device": 403},
        "/facilities/upload": {"admin": 422, "coordinator": 422, "care_staff": 403},
        "/incidents/upload": {"coordinator": 422, "grid_worker": 403, "device": 403},
    }
    got = {
        path: {who: anon.post(path, files=files, headers=auth[who]).status_code for who in roles}
        for path, roles in expected.items()
    }
    assert got == expected


def test_nobody_without_an_area_sees_nothing(
    anon: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    nobody = auth["nobody"]
    assert anon.get("/grids/131208-G01/summary", headers=nobody).status_code == 404
    assert anon.get("/incidents", headers=nobody).json()["total"] == 0
    assert anon.get("/grids/out-of-band", headers=nobody).json()["grids"] == []


@pytest.mark.parametrize(
    ("code", "why"), [("12/3", "cannot contain '/'"), ("new", "'new' is the register's page")]
)
def test_a_code_no_path_could_open_is_refused(
    admin: TestClient, gridded_engine: Engine, code: str, why: str
) -> None:
    """``/households/12/3`` reaches no route; ``/app/households/new`` is the form for a new
    one: a household stored with either code could never be read, moved or removed."""
    lon, lat = _grid_point(gridded_engine, "131208-G01")
    r = admin.post("/households", json={"code": code, "size": 2, "lon": lon, "lat": lat})
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "code", "reason": key_problem(code)}]
    assert why in r.json()["detail"]
    with gridded_engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM household WHERE code = :c"), {"c": code})
        assert kept.scalar_one() == 0
