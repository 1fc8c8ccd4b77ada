"""Issue 13, as an attacker with a narrow account would try it: uploads that reach rows in
other areas (row 1), uploads with values too big (6), create as an oracle for codes elsewhere
(9), keys with '/' (13), NUL in a GeoJSON upload (16), a community-scoped grid worker reading
the whole community's households (17), unaudited reads of incident texts (10)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.security import hash_password
from data.access.queries import add_scope, create_user
from data.db import transaction
from data.district.workers import link_worker_account
from data.models import Role, ScopeLevel
from tests.api.conftest import PASSWORD


def _point(engine: Engine, grid: str) -> tuple[float, float]:
    with engine.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                "WHERE code = :g AND valid_to IS NULL) s"
            ),
            {"g": grid},
        ).one()
    return float(x), float(y)


def _row(engine: Engine, sql: str, **params: object) -> tuple[object, ...] | None:
    with engine.connect() as conn:
        row = conn.execute(text(sql), params).first()
    return None if row is None else tuple(row)


def _csv(header: str, *lines: str) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("rows.csv", "\n".join([header, *lines, ""]).encode(), "text/csv")}


@pytest.fixture(scope="module")
def far(admin: TestClient, gridded_engine: Engine) -> Iterator[dict[str, str]]:
    """A household, a facility and an incident in community 131213, outside 131208."""
    lon, lat = _point(gridded_engine, "131213-G01")
    assert (
        admin.post(
            "/households", json={"code": "X-FAR-H", "size": 4, "lon": lon, "lat": lat}
        ).status_code
        == 201
    )
    assert (
        admin.post(
            "/facilities",
            json={"source_id": "X-FAR-F", "kind": "clinic", "name": "far", "lon": lon, "lat": lat},
        ).status_code
        == 201
    )
    assert (
        admin.post(
            "/incidents",
            json={
                "source_id": "X-FAR-I",
                "category": "noise",
                "summary": "far",
                "lon": lon,
                "lat": lat,
            },
        ).status_code
        == 201
    )
    yield {"households": "X-FAR-H", "facilities": "X-FAR-F", "incidents": "X-FAR-I"}
    admin.delete("/households/X-FAR-H")
    admin.delete("/facilities/X-FAR-F")
    admin.delete("/incidents/X-FAR-I")


@pytest.fixture(scope="module")
def community_worker(
    gridded_app: FastAPI, gridded_engine: Engine, anon: TestClient
) -> Iterator[TestClient]:
    """A grid worker whose account has the whole community 131208 (for maps) and who is the
    worker of grid 131208-G02 only."""
    with transaction(gridded_engine) as session:
        create_user(session, "x-cworker", hash_password(PASSWORD), Role.grid_worker)
        add_scope(session, "x-cworker", ScopeLevel.community, "131208")
        link_worker_account(session, "W-131208-G02", "x-cworker")
    r = anon.post("/token", data={"username": "x-cworker", "password": PASSWORD})
    assert r.status_code == 200, r.text
    with TestClient(
        gridded_app, headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    ) as c:
        yield c


# --- row 1: an upload never updates a row outside the caller's area ---------------------------


@pytest.mark.parametrize(
    ("who", "kind", "header", "values"),
    [
        ("grid_worker", "households", "code,size,lon,lat", "1"),
        ("coordinator", "facilities", "source_id,kind,name,lon,lat", "clinic,taken"),
        ("coordinator", "incidents", "source_id,category,summary,lon,lat", "noise,taken"),
    ],
)
def test_upload_with_a_key_from_another_area_is_a_reject_not_an_update(
    anon: TestClient,
    auth: dict[str, dict[str, str]],
    gridded_engine: Engine,
    far: dict[str, str],
    who: str,
    kind: str,
    header: str,
    values: str,
) -> None:
    key = far[kind]
    table = {"households": "household", "facilities": "facility", "incidents": "incident"}[kind]
    column = "code" if kind == "households" else "source_id"
    sql = (
        f"SELECT g.code, t.geom::text FROM {table} t "
        f"JOIN grid g ON g.id = t.grid_id WHERE t.{column} = :k"
    )
    before = _row(gridded_engine, sql, k=key)
    lon, lat = _point(gridded_engine, "131208-G01")
    for allow in (False, True):
        r = anon.post(
            f"/{kind}/upload",
            files=_csv(header, f"{key},{values},{lon},{lat}"),
            params={"allow_rejects": allow},
            headers=auth[who],
        )
        assert r.status_code == (200 if allow else 422), r.text
        assert [(x["row"], x["reason"]) for x in r.json()["rejects"]] == [
            (2, f"no {table} '{key}' in your area")
        ]
        assert _row(gridded_engine, sql, k=key) == before  # still in 131213, unchanged


# --- row 9: creating with a code stored elsewhere answers like any out-of-area code -----------


def test_create_with_a_code_from_another_area_answers_like_reading_it(
    anon: TestClient, auth: dict[str, dict[str, str]], gridded_engine: Engine, far: dict[str, str]
) -> None:
    lon, lat = _point(gridded_engine, "131208-G01")
    headers = auth["grid_worker"]
    read = anon.get("/households/X-FAR-H", headers=headers)
    create = anon.post(
        "/households", json={"code": "X-FAR-H", "lon": lon, "lat": lat}, headers=headers
    )
    assert (
        (create.status_code, create.json()["detail"])
        == (read.status_code, read.json()["detail"])
        == (404, "code: no household 'X-FAR-H' in your area")
    )
    assert "exists" not in create.text
    fac = anon.post(
        "/facilities",
        json={"source_id": "X-FAR-F", "kind": "clinic", "lon": lon, "lat": lat},
        headers=auth["coordinator"],
    )
    assert fac.status_code == 404 and "exists" not in fac.text


# --- row 13: keys with '/' are refused by every route that takes a key ------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/households", {"code": "X/1", "size": 1}),
        ("/facilities", {"source_id": "X/1", "kind": "clinic"}),
        ("/incidents", {"source_id": "X/1", "category": "noise"}),
    ],
)
def test_a_key_with_a_slash_is_refused_on_create(
    admin: TestClient, gridded_engine: Engine, path: str, body: dict[str, object]
) -> None:
    lon, lat = _point(gridded_engine, "131208-G01")
    r = admin.post(path, json={**body, "lon": lon, "lat": lat})
    assert r.status_code == 422, r.text
    assert ("code" if path == "/households" else "source_id") in r.text


@pytest.mark.parametrize(
    ("kind", "header", "values"),
    [
        ("households", "code,size,lon,lat", "1"),
        ("facilities", "source_id,kind,lon,lat", "clinic"),
        ("incidents", "source_id,category,lon,lat", "noise"),
    ],
)
def test_a_key_with_a_slash_is_refused_on_upload(
    admin: TestClient, gridded_engine: Engine, kind: str, header: str, values: str
) -> None:
    lon, lat = _point(gridded_engine, "131208-G01")
    r = admin.post(f"/{kind}/upload", files=_csv(header, f"X/2,{values},{lon},{lat}"))
    assert r.status_code == 422, r.text
    [reject] = r.json()["rejects"]
    assert reject["row"] == 2 and "'/'" in reject["reason"]
    field = "code" if kind == "households" else "source_id"
    assert reject["reason"].startswith(f"{field}:")


# --- row 6: uploads are held to the JSON routes' limits, row by row ---------------------------


@pytest.mark.parametrize(
    ("kind", "header", "line", "field", "limit"),
    [
        ("households", "code,size,lon,lat", "{long},2", "code", "64"),
        ("households", "code,size,lon,lat", "X-BIG-1,31", "size", "30"),
        ("facilities", "source_id,kind,name,lon,lat", "X-BIG-2,clinic,{long}", "name", "200"),
        (
            "facilities",
            "source_id,kind,capacity,lon,lat",
            "X-BIG-3,clinic,99999999999",
            "capacity",
            "10000000",
        ),
        ("incidents", "source_id,category,lon,lat", "X-BIG-4,{long}", "category", "64"),
    ],
)
def test_upload_values_over_the_limits_are_named_rejects(
    admin: TestClient,
    gridded_engine: Engine,
    kind: str,
    header: str,
    line: str,
    field: str,
    limit: str,
) -> None:
    lon, lat = _point(gridded_engine, "131208-G01")
    r = admin.post(
        f"/{kind}/upload", files=_csv(header, line.format(long="y" * 300) + f",{lon},{lat}")
    )
    assert r.status_code == 422, r.text
    [reject] = r.json()["rejects"]
    assert (
        reject["row"] == 2
        and reject["reason"].startswith(f"{field}:")
        and limit in reject["reason"]
    )


def test_upload_with_a_nul_in_a_csv_is_a_named_reject(
    admin: TestClient, gridded_engine: Engine
) -> None:
    lon, lat = _point(gridded_engine, "131208-G01")
    content = f"source_id,kind,name,lon,lat\nX-NUL-1,clinic,a\x00b,{lon},{lat}\n".encode()
    r = admin.post("/facilities/upload", files={"file": ("f.csv", content, "text/csv")})
    assert r.status_code == 422, r.text
    [reject] = r.json()["rejects"]
    assert reject["row"] == 2 and reject["reason"].startswith("name:") and "NUL" in reject["reason"]


# --- row 16: a NUL in a GeoJSON upload is a reject, never a cut value -------------------------


def test_upload_with_a_nul_in_geojson_is_a_reject_not_a_cut_value(
    admin: TestClient, gridded_engine: Engine
) -> None:
    lon, lat = _point(gridded_engine, "131208-G01")
    content = (
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
        '{"source_id":"RC-N\\u0000J","kind":"clinic"},"geometry":{"type":"Point",'
        f'"coordinates":[{lon},{lat}]}}}}]}}'
    ).encode()
    for allow in (False, True):
        r = admin.post(
            "/facilities/upload",
            files={"file": ("f.geojson", content, "application/geo+json")},
            params={"allow_rejects": allow},
        )
        assert r.status_code == (200 if allow else 422), r.text
        [reject] = r.json()["rejects"]
        assert (
            reject["row"] == 1
            and reject["reason"].startswith("source_id:")
            and "NUL" in reject["reason"]
        )
    assert _row(gridded_engine, "SELECT 1 FROM facility WHERE source_id LIKE 'RC-N%'") is None


# --- row 17: grid workers read the households of the grids they work --------------------------


def test_a_community_scoped_grid_worker_reads_only_the_households_of_their_grid(
    admin: TestClient, community_worker: TestClient, gridded_engine: Engine
) -> None:
    for grid, code in (("131208-G02", "X-MINE"), ("131208-G03", "X-NEIGHBOUR")):
        lon, lat = _point(gridded_engine, grid)
        assert (
            admin.post("/households", json={"code": code, "lon": lon, "lat": lat}).status_code
            == 201
        )
    try:
        assert community_worker.get("/households/X-MINE").status_code == 200
        r = community_worker.get("/households/X-NEIGHBOUR")
        assert (r.status_code, r.json()["detail"]) == (
            404,
            "code: no household 'X-NEIGHBOUR' in your area",
        )
        assert community_worker.get("/grids/131208-G03/households").status_code == 404
        mine = community_worker.get("/grids/131208-G02/households").json()["households"]
        assert "X-MINE" in [h["code"] for h in mine]
        assert (
            community_worker.patch("/households/X-NEIGHBOUR", json={"size": 9}).status_code == 404
        )
        assert community_worker.delete("/households/X-NEIGHBOUR").status_code == 404
        # the community is still theirs for maps and counts
        assert community_worker.get("/grids/131208-G03/summary").status_code == 200
    finally:
        admin.delete("/households/X-MINE")
        admin.delete("/households/X-NEIGHBOUR")


# --- row 10: reads of incident texts are audited ----------------------------------------------


def test_incident_reads_are_audited_with_who_what_why(
    anon: TestClient, auth: dict[str, dict[str, str]], gridded_engine: Engine, admin: TestClient
) -> None:
    lon, lat = _point(gridded_engine, "131208-G01")
    r = admin.post(
        "/incidents",
        json={
            "source_id": "X-AUD-1",
            "category": "fall",
            "summary": "elder fell",
            "lon": lon,
            "lat": lat,
        },
    )
    assert r.status_code == 201
    try:
        headers = auth["coordinator"]
        assert (
            anon.get(
                "/incidents/X-AUD-1", params={"reason": "follow-up"}, headers=headers
            ).status_code
            == 200
        )
        listed = anon.get("/incidents", params={"reason": "weekly review"}, headers=headers).json()
        assert "X-AUD-1" in [i["source_id"] for i in listed["incidents"]]
        with gridded_engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT route, subject_type, subject_ids, reason FROM audit_log "
                    "WHERE actor = 'g-coordinator' AND subject_type = 'incident' ORDER BY id"
                )
            ).all()
        assert ("/incidents/X-AUD-1", "incident", ["X-AUD-1"], "follow-up") in [
            tuple(x) for x in rows
        ]
        assert any(
            x[0] == "/incidents" and "X-AUD-1" in x[2] and x[3] == "weekly review" for x in rows
        )
    finally:
        admin.delete("/incidents/X-AUD-1")
