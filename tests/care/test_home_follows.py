"""An elder's home grid follows their household (migration 0036): when a planner's new grids
or a move put the household in another grid, alerts name and reach that grid's worker, and
the old grid's worker no longer holds the elder. It used to stay the grid of enrolment. The
default zone, "home grid grown by 200 m", is redrawn from the new home grid; a circle staff
drew around the old home stays as drawn, and the elder's page says the home lies outside it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
from alembic import command
from fastapi.testclient import TestClient
from shapely.geometry import Point
from sqlalchemy import Engine, text

from data.db import alembic_config
from data.importing.loading import import_file
from tests.care.conftest import HOME_CODE, HOME_GRID, District, care_settings, enrol, osmand


def _home_grid(care: Engine, elder_id: int) -> str:
    with care.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT g.code FROM elder e JOIN grid g ON g.id = e.home_grid_id "
                    "WHERE e.id = :e"
                ),
                {"e": elder_id},
            ).scalar_one()
        )


def _zone(care: Engine, elder_id: int) -> tuple[str, bool]:
    """The zone's kind and whether it holds the elder's home."""
    with care.connect() as conn:
        row = conn.execute(
            text(
                "SELECT z.kind::text, ST_Covers(z.geom, h.geom) FROM elder e "
                "JOIN safe_zone z ON z.elder_id = e.id JOIN household h ON h.id = e.household_id "
                "WHERE e.id = :e"
            ),
            {"e": elder_id},
        ).one()
    return str(row[0]), bool(row[1])


def _other_grid(district: District) -> tuple[str, float, float]:
    """Another grid of the home's street, and a point inside it."""
    street = district.grids[district.grids["code"].str.startswith("S01-")]
    other = street[street["code"] != HOME_GRID].iloc[0]
    spot = other.geometry.representative_point()
    return str(other["code"]), float(spot.x), float(spot.y)


def _move_home(client: TestClient, headers: dict[str, str], lon: float, lat: float) -> None:
    moved = client.patch(f"/households/{HOME_CODE}", json={"lon": lon, "lat": lat}, headers=headers)
    assert moved.status_code == 200, moved.text


def test_an_elder_is_homed_in_the_grid_their_household_is_reassigned_to(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-moved")
    assert _home_grid(care, elder["id"]) == HOME_GRID
    other, lon, lat = _other_grid(district)
    _move_home(client, staff["admin"], lon, lat)
    try:
        assert _home_grid(care, elder["id"]) == other
        # The watch's SOS at the new home: the alert's home grid is the new one, its worker
        # is called; the old grid's worker no longer has the elder in their list.
        r = osmand(
            client, elder["api_key"], "watch-moved", lon, lat, datetime.now(UTC), alarm="sos"
        )
        assert r.status_code == 200, r.text
        alerts = client.get("/alerts", headers=staff["admin"]).json()["alerts"]
        mine = [a for a in alerts if a["elder_id"] == elder["id"]]
        sos = next(a for a in mine if a["kind"] == "sos")
        assert sos["home_grid_code"] == other
        called = {r["worker_code"] for r in sos["recipients"]}
        assert district.worker_of(other) in called
        assert district.worker_of(HOME_GRID) not in called
        held = client.get("/elders", headers=staff["home_worker"]).json()["elders"]
        assert elder["id"] not in {e["id"] for e in held}
        # The default zone is the home grid grown by 200 m: it was redrawn from the new home
        # grid, so the fix at the new home is inside it and nothing needs redrawing by hand.
        assert _zone(care, elder["id"]) == ("home_grid", True)
        assert "left_zone" not in {a["kind"] for a in mine}
        assert WARNING not in _elder_page(client, staff["admin"], elder["id"])
    finally:
        _move_home(client, staff["admin"], district.home_lon, district.home_lat)
    assert _home_grid(care, elder["id"]) == HOME_GRID
    assert _zone(care, elder["id"]) == ("home_grid", True)


def test_a_drawn_zone_stays_as_drawn_and_the_page_says_the_home_left_it(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-circle")
    zone = {"kind": "circle", "lon": district.home_lon, "lat": district.home_lat, "radius_m": 150}
    r = client.put(f"/elders/{elder['id']}/zone", json=zone, headers=staff["care_staff"])
    assert r.status_code == 200, r.text
    _, lon, lat = _other_grid(district)
    _move_home(client, staff["admin"], lon, lat)
    try:
        # Staff drew this circle where the elder walks: it is theirs to move, and the page
        # says where (every fix at the new home counts as leaving it).
        assert _zone(care, elder["id"]) == ("circle", False)
        assert WARNING in _elder_page(client, staff["admin"], elder["id"])
    finally:
        _move_home(client, staff["admin"], district.home_lon, district.home_lat)
    assert WARNING not in _elder_page(client, staff["admin"], elder["id"])


WARNING = "The home is outside this safe zone"


def _elder_page(client: TestClient, headers: dict[str, str], elder_id: int) -> str:
    page = client.get(
        f"/app/elders/{elder_id}",
        headers={**headers, "Accept": "text/html", "Accept-Language": "en"},
    )
    assert page.status_code == 200, page.text[:300]
    return page.text


def test_the_upgrade_redraws_home_grid_zones_left_behind(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    """Migration 0037: a "home grid" zone drawn before zones followed their grid (here made
    so by moving it 500 m off its grid) is redrawn from the home grid; a circle is not."""
    elder = enrol(client, staff["care_staff"], "watch-behind")
    drawn = enrol(client, staff["care_staff"], "watch-drawn-circle")
    zone = {"kind": "circle", "lon": district.home_lon, "lat": district.home_lat, "radius_m": 120}
    r = client.put(f"/elders/{drawn['id']}/zone", json=zone, headers=staff["care_staff"])
    assert r.status_code == 200, r.text
    with care.begin() as conn:
        conn.execute(
            text(
                "UPDATE safe_zone SET geom = ST_Translate(geom, 0.006, 0) WHERE elder_id = ANY(:e)"
            ),
            {"e": [elder["id"], drawn["id"]]},
        )
    assert _zone(care, elder["id"]) == ("home_grid", False)
    config = alembic_config(care.url.render_as_string(hide_password=False))
    command.downgrade(config, "0036")
    command.upgrade(config, "heads")
    assert _zone(care, elder["id"]) == ("home_grid", True)
    assert _zone(care, drawn["id"]) == ("circle", False)  # staff's drawing is theirs
    with care.connect() as conn:
        drift = conn.execute(
            text(
                "SELECT ST_HausdorffDistance(ST_Transform(z.geom, s.epsg), "
                "ST_Buffer(ST_Transform(g.geom, s.epsg), z.buffer_m, 16)) FROM safe_zone z "
                "JOIN elder e ON e.id = z.elder_id JOIN grid g ON g.id = e.home_grid_id, "
                "(SELECT value::int AS epsg FROM deployment_setting "
                "WHERE key = 'metric_epsg') s WHERE z.elder_id = :e"
            ),
            {"e": elder["id"]},
        ).scalar_one()
    assert drift < 1.0


def test_a_household_import_that_moves_the_home_redraws_the_zone(
    client: TestClient,
    staff: dict[str, dict[str, str]],
    care: Engine,
    care_url: str,
    district: District,
    tmp_path: Path,
) -> None:
    """The yearly household file moves a household to another grid: the elder's home grid
    follows (0036), and so does their "home grid" zone, as after an edit on the register."""
    elder = enrol(client, staff["care_staff"], "watch-imported")
    other, lon, lat = _other_grid(district)

    def imported(x: float, y: float) -> None:
        path = tmp_path / "households.geojson"
        row = {"code": HOME_CODE, "size": 1, "lives_alone": True, "age_band": "80+"}
        gpd.GeoDataFrame([row], geometry=[Point(x, y)], crs=4326).to_file(path, driver="GeoJSON")
        report = import_file(care, "households", path, settings=care_settings(care_url))
        assert report.updated == 1, report

    imported(lon, lat)
    try:
        assert _home_grid(care, elder["id"]) == other
        assert _zone(care, elder["id"]) == ("home_grid", True)
    finally:
        imported(district.home_lon, district.home_lat)
    assert _home_grid(care, elder["id"]) == HOME_GRID
    assert _zone(care, elder["id"]) == ("home_grid", True)
