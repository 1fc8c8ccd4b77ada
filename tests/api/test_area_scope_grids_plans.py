"""Issue 13, rows 2, 4 and 8, tried the way the hostile tester did: scoped accounts, real HTTP
through the app, real PostGIS (a copy of Porto with its test grids, of this module's own).

- Row 2: ``PATCH /grids/{code}`` drew a spike from a grid into another community and pulled
  the household under it into the grid. A new shape must stay inside the grid's community
  and off every other grid (422 with the area and a point), and redrawing is planning:
  it needs the community held, not one grid of it.
- Row 4: authority over plans comes from communities held (street or community scope), not
  from the community around a scoped grid; lists and single rows answer by one rule.
- Row 8: ``GET /grids/on`` withholds grids outside the caller's area, like ``/locate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import shapely
import shapely.geometry
import shapely.ops
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Engine, text

from api.app import create_app
from api.security import hash_password
from data.access.queries import add_scope, create_user
from data.db import make_engine, transaction
from data.models import Role, ScopeLevel
from tests.api.conftest import PASSWORD, make_settings
from tests.conftest import own_database

COMMUNITY = "131208"  # Miragaia, cut into test grids 131208-G01…
GRID = "131208-G01"

USERS: dict[str, tuple[Role, tuple[tuple[ScopeLevel, str], ...]]] = {
    "s-admin": (Role.admin, ()),
    "s-planner-community": (Role.planner, ((ScopeLevel.community, COMMUNITY),)),
    "s-planner-grid": (Role.planner, ((ScopeLevel.grid, GRID),)),
    "s-worker-grid": (Role.grid_worker, ((ScopeLevel.grid, GRID),)),
    "s-care-grid": (Role.care_staff, ((ScopeLevel.grid, GRID),)),
    "s-nobody": (Role.coordinator, ()),
}

TO_M = Transformer.from_crs(4326, 32629, always_xy=True)  # Porto: UTM 29N
TO_LL = Transformer.from_crs(32629, 4326, always_xy=True)


@pytest.fixture(scope="module")
def engine(server_url: str) -> Iterator[Engine]:
    url = own_database(server_url, "gridwork_test_area_scope", "porto_grids")
    engine = make_engine(url)
    with transaction(engine) as session:
        for username, (role, scopes) in USERS.items():
            create_user(session, username, hash_password(PASSWORD), role)
            for level, code in scopes:
                add_scope(session, username, level, code)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    url = engine.url.render_as_string(hide_password=False)
    with TestClient(create_app(make_settings(url), engine=engine)) as client:
        yield client


@pytest.fixture(scope="module")
def as_(client: TestClient) -> dict[str, dict[str, str]]:
    """Request headers per user: each signs in at ``/token`` like any client."""
    headers = {}
    for username in USERS:
        r = client.post("/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers[username] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return headers


def _grid_shape(engine: Engine, code: str) -> shapely.Polygon:
    with engine.connect() as conn:
        wkb = conn.execute(
            text("SELECT ST_AsBinary(geom) FROM grid WHERE code = :c AND valid_to IS NULL"),
            {"c": code},
        ).scalar_one()
    geom = shapely.from_wkb(bytes(wkb))
    assert isinstance(geom, shapely.Polygon)
    return geom


def _where_households_are(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT h.code, g.code FROM household h LEFT JOIN grid g ON g.id = h.grid_id")
        ).all()
    return {r[0]: r[1] for r in rows}


def _household_next_door(engine: Engine) -> tuple[str, str, float, float]:
    """The household of another community nearest to GRID: its code, grid, lon, lat."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT h.code, hg.code, ST_X(h.geom), ST_Y(h.geom) FROM household h "
                "JOIN grid hg ON hg.id = h.grid_id JOIN community hc ON hc.id = hg.community_id "
                "JOIN grid g ON g.code = :g AND g.valid_to IS NULL "
                "WHERE hc.code <> :c ORDER BY g.geom <-> h.geom, h.code LIMIT 1"
            ),
            {"g": GRID, "c": COMMUNITY},
        ).one()
    return str(row[0]), str(row[1]), float(row[2]), float(row[3])


def _spike(grid: shapely.Polygon, lon: float, lat: float, width_m: float) -> shapely.Polygon:
    """The grid plus a straight spike ``width_m`` wide from its edge to past (lon, lat)."""
    grid_m = shapely.ops.transform(TO_M.transform, grid)
    target = shapely.Point(TO_M.transform(lon, lat))
    start = shapely.ops.nearest_points(grid_m, target)[0]
    dx, dy = target.x - start.x, target.y - start.y
    norm = (dx**2 + dy**2) ** 0.5
    inside = shapely.Point(start.x - dx / norm * 5, start.y - dy / norm * 5)  # 5 m into the grid
    beyond = shapely.Point(target.x + dx / norm * 2, target.y + dy / norm * 2)
    needle = shapely.LineString([inside, beyond]).buffer(width_m / 2, cap_style="flat")
    shape = shapely.union(grid, shapely.ops.transform(TO_LL.transform, needle))
    assert isinstance(shape, shapely.Polygon) and shape.is_valid
    assert shape.covers(shapely.Point(lon, lat)), "the spike reaches the household"
    return shape


def _patch(client: TestClient, headers: dict[str, str], code: str, shape: Any) -> Any:
    return client.patch(
        f"/grids/{code}", json={"geometry": shapely.geometry.mapping(shape)}, headers=headers
    )


# --- row 2: a grid's new shape ----------------------------------------------------------------


def test_a_spike_into_another_community_is_refused_and_moves_nobody(
    client: TestClient, as_: dict[str, dict[str, str]], engine: Engine
) -> None:
    household, their_grid, lon, lat = _household_next_door(engine)
    before = _where_households_are(engine)
    old = _grid_shape(engine, GRID)
    r = _patch(client, as_["s-planner-community"], GRID, _spike(old, lon, lat, width_m=0.5))
    if r.status_code == 200:  # the hole is open: put the grid back for the other tests
        _patch(client, as_["s-admin"], GRID, old)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "geometry"
    assert "outside its community 131208" in body["detail"]
    assert their_grid in body["detail"], "names the grid it would overlap"
    assert "m²" in body["detail"] and "around (" in body["detail"], "says how much and where"
    assert _where_households_are(engine) == before
    assert before[household] == their_grid
    assert _grid_shape(engine, GRID).equals_exact(old, 0)


def test_a_district_sized_shape_is_refused_even_for_an_admin(
    client: TestClient, as_: dict[str, dict[str, str]], engine: Engine
) -> None:
    before = _where_households_are(engine)
    everything = shapely.box(-8.70, 41.10, -8.55, 41.20)
    old = _grid_shape(engine, GRID)
    r = _patch(client, as_["s-admin"], GRID, everything)
    if r.status_code == 200:  # the hole is open: put the grid back for the other tests
        _patch(client, as_["s-admin"], GRID, old)
    assert r.status_code == 422, r.text
    assert "outside its community" in r.json()["detail"]
    assert "overlaps grid 131208-G02" in r.json()["detail"]
    for elsewhere in (shapely.box(170, 60, 171, 61), shapely.box(-180, -89, 180, 89)):
        r = _patch(client, as_["s-admin"], GRID, elsewhere)
        if r.status_code == 200:
            _patch(client, as_["s-admin"], GRID, old)
        assert r.status_code == 422, r.text
        assert "outside its community" in r.json()["detail"]
    assert _where_households_are(engine) == before


def test_a_needle_thin_spike_is_trimmed_and_reaches_nobody(
    client: TestClient, as_: dict[str, dict[str, str]], engine: Engine
) -> None:
    """Under the tolerance a spike is not refused but cut off at the community's edge: a
    millimetre-wide needle to a household's exact point must still not take it."""
    household, their_grid, lon, lat = _household_next_door(engine)
    old = _grid_shape(engine, GRID)
    r = _patch(client, as_["s-planner-community"], GRID, _spike(old, lon, lat, width_m=0.001))
    try:
        assert r.status_code == 200, r.text
        assert _where_households_are(engine)[household] == their_grid
        stored = _grid_shape(engine, GRID)
        assert not stored.covers(shapely.Point(lon, lat))
    finally:
        assert _patch(client, as_["s-admin"], GRID, old).status_code == 200


def test_a_shape_along_the_community_boundary_is_accepted(
    client: TestClient, as_: dict[str, dict[str, str]], engine: Engine
) -> None:
    """The grid's own outline runs along the community's edge (cut from it, so within
    floating-point noise of it): sent back with one outer vertex nudged 2 mm outwards, it
    is accepted and nobody moves."""
    old = _grid_shape(engine, GRID)
    with engine.connect() as conn:
        community = shapely.from_wkb(
            bytes(
                conn.execute(
                    text("SELECT ST_AsBinary(geom) FROM community WHERE code = :c"),
                    {"c": COMMUNITY},
                ).scalar_one()
            )
        )
    coords = list(old.exterior.coords)
    on_edge = next(
        i
        for i, xy in enumerate(coords[:-1])
        if community.boundary.distance(shapely.Point(xy)) < 1e-9
    )
    centre = old.centroid
    x, y = coords[on_edge]
    xm, ym = TO_M.transform(x, y)
    cxm, cym = TO_M.transform(centre.x, centre.y)
    d = ((xm - cxm) ** 2 + (ym - cym) ** 2) ** 0.5
    nudged = TO_LL.transform(xm + (xm - cxm) / d * 0.002, ym + (ym - cym) / d * 0.002)
    coords[on_edge] = nudged
    if on_edge == 0:
        coords[-1] = nudged
    drawn = shapely.Polygon(coords)
    before = _where_households_are(engine)
    r = _patch(client, as_["s-planner-community"], GRID, drawn)
    try:
        assert r.status_code == 200, r.text
        assert _where_households_are(engine) == before
    finally:
        assert _patch(client, as_["s-admin"], GRID, old).status_code == 200


def test_a_grid_scope_cannot_redraw_its_grid(
    client: TestClient, as_: dict[str, dict[str, str]], engine: Engine
) -> None:
    """Redrawing is planning the community: one grid of it is not enough."""
    old = _grid_shape(engine, GRID)
    r = _patch(client, as_["s-planner-grid"], GRID, old)
    assert r.status_code == 403, r.text
    assert r.json()["field"] == "code"
    r = client.patch(
        f"/grids/{GRID}", json={"worker_code": "W-131208-G02"}, headers=as_["s-planner-grid"]
    )
    assert r.status_code == 403, r.text
    with engine.connect() as conn:
        worker = conn.execute(
            text(
                "SELECT w.code FROM grid g JOIN worker w ON w.id = g.worker_id "
                "WHERE g.code = :g AND g.valid_to IS NULL"
            ),
            {"g": GRID},
        ).scalar_one()
    assert worker == f"W-{GRID}"


# --- row 4: plans belong to communities held; lists and single rows agree --------------------


@pytest.fixture(scope="module")
def plan(client: TestClient, as_: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A draft of COMMUNITY by the planner who holds it."""
    r = client.post("/plans", json={"community": COMMUNITY}, headers=as_["s-planner-community"])
    assert r.status_code == 201, r.text
    return r.json()


def test_a_grid_scoped_planner_cannot_draft_a_plan_of_the_community(
    client: TestClient, as_: dict[str, dict[str, str]]
) -> None:
    r = client.post("/plans", json={"community": COMMUNITY}, headers=as_["s-planner-grid"])
    assert r.status_code == 403, r.text
    assert r.json()["field"] == "community"


@pytest.mark.parametrize("who", ["s-planner-grid", "s-worker-grid", "s-care-grid", "s-nobody"])
def test_grid_scopes_neither_list_nor_read_the_communitys_plans(
    client: TestClient, as_: dict[str, dict[str, str]], plan: dict[str, Any], who: str
) -> None:
    plan_id = plan["id"]
    listed = client.get("/plans", headers=as_[who])
    assert listed.status_code == 200
    assert plan_id not in [p["id"] for p in listed.json()["plans"]]
    for path in (f"/plans/{plan_id}", f"/plans/{plan_id}/grids", f"/maps/plans/{plan_id}"):
        assert client.get(path, headers=as_[who]).status_code == 404, path
    r = client.get("/plans/compare", params={"a": plan_id, "b": plan_id}, headers=as_[who])
    assert r.status_code == 404


def test_a_grid_scoped_planner_cannot_change_or_publish_the_communitys_plan(
    client: TestClient, as_: dict[str, dict[str, str]], plan: dict[str, Any], engine: Engine
) -> None:
    headers = as_["s-planner-grid"]
    plan_id = plan["id"]
    code = plan["grids"][0]["code"]
    r = client.post(f"/plans/{plan_id}/locks", json={"grids": [code]}, headers=headers)
    assert r.status_code == 404
    r = client.post(
        f"/plans/{plan_id}/moves", json={"units": [0], "to_grid": code}, headers=headers
    )
    assert r.status_code == 404
    assert client.post(f"/plans/{plan_id}/publish", headers=headers).status_code == 404
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status::text FROM plan WHERE id = :p"), {"p": plan_id}
        ).scalar_one()
        locked = conn.execute(
            text("SELECT count(*) FROM plan_grid WHERE plan_id = :p AND locked"), {"p": plan_id}
        ).scalar_one()
    assert (status, locked) == ("draft", 0)


def test_the_planner_who_holds_the_community_reads_its_plan(
    client: TestClient, as_: dict[str, dict[str, str]], plan: dict[str, Any]
) -> None:
    headers = as_["s-planner-community"]
    assert plan["id"] in [p["id"] for p in client.get("/plans", headers=headers).json()["plans"]]
    assert client.get(f"/plans/{plan['id']}", headers=headers).status_code == 200


def test_grid_scopes_get_no_community_counts_from_the_oversize_report(
    client: TestClient, as_: dict[str, dict[str, str]]
) -> None:
    band = {"min": 1, "max": 2}  # every grid is over it
    held = client.get("/communities/oversize", params=band, headers=as_["s-planner-community"])
    assert [c["code"] for c in held.json()["communities"]] == [COMMUNITY]
    for who in ("s-worker-grid", "s-care-grid", "s-planner-grid"):
        r = client.get("/communities/oversize", params=band, headers=as_[who])
        assert r.status_code == 200
        assert r.json()["communities"] == [], who


def _listed(client: TestClient, headers: dict[str, str], layer: str) -> set[str]:
    r = client.get(f"/{layer}", params={"limit": 10000}, headers=headers)
    assert r.status_code == 200, r.text
    return {str(f["id"]) for f in r.json()["features"]}


@pytest.mark.parametrize("who", ["s-worker-grid", "s-care-grid", "s-planner-community"])
def test_the_facilities_layer_lists_exactly_the_facilities_one_may_read(
    client: TestClient, as_: dict[str, dict[str, str]], who: str
) -> None:
    everything = _listed(client, as_["s-admin"], "facilities")
    listed = _listed(client, as_[who], "facilities")
    assert listed <= everything
    readable = {
        f for f in everything if client.get(f"/facilities/{f}", headers=as_[who]).status_code == 200
    }
    assert readable, "the area holds facilities"
    assert listed == readable


def test_grid_scopes_get_the_roads_of_their_grid_not_the_community(
    client: TestClient, as_: dict[str, dict[str, str]], engine: Engine
) -> None:
    with engine.connect() as conn:
        near_grid = set(
            conn.execute(
                text(
                    "SELECT r.source_id FROM road_segment r JOIN grid g ON g.code = :g "
                    "AND g.valid_to IS NULL AND ST_Intersects(g.geom, r.geom)"
                ),
                {"g": GRID},
            ).scalars()
        )
        in_community = set(
            conn.execute(
                text(
                    "SELECT r.source_id FROM road_segment r JOIN community c ON c.code = :c "
                    "AND ST_Intersects(c.geom, r.geom)"
                ),
                {"c": COMMUNITY},
            ).scalars()
        )
    assert near_grid < in_community
    for who in ("s-worker-grid", "s-care-grid"):
        assert _listed(client, as_[who], "roads") == near_grid, who
    assert _listed(client, as_["s-planner-community"], "roads") == in_community


# --- row 8: /grids/on withholds grids outside the caller's area ------------------------------


def test_grids_on_answers_only_inside_the_callers_area(
    client: TestClient, as_: dict[str, dict[str, str]], engine: Engine
) -> None:
    mine = _grid_shape(engine, GRID).representative_point()
    other = _grid_shape(engine, "131213-G01").representative_point()
    today = {"date": "2100-01-01"}

    def on(who: str, p: shapely.Point) -> Any:
        return client.get("/grids/on", params={"lon": p.x, "lat": p.y, **today}, headers=as_[who])

    assert on("s-admin", other).json()["grid"] == "131213-G01"
    assert on("s-worker-grid", mine).json()["grid"] == GRID
    assert on("s-planner-community", mine).json()["grid"] == GRID
    for who, point in (
        ("s-nobody", mine),
        ("s-nobody", other),
        ("s-worker-grid", other),
        ("s-planner-community", other),
    ):
        r = on(who, point)
        assert r.status_code == 404, (who, r.text)
        assert r.json()["field"] == "lon/lat"
        assert "131213" not in r.text
