"""The coordinators' maps and the coverage numbers, over Porto with and without grids."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.state import app_state
from maps.base import assert_offline
from tests.factory import make_app
from tests.gridded import Gridded, login

MAPS = ["/maps/grids", "/maps/workload", "/maps/incidents", "/maps/coverage?kind=pharmacy"]


def _codes_in(page: str, prefix: str = "1312") -> set[str]:
    return set(re.findall(rf'"code": "({prefix}\d\d-G\d\d)"', page))


@pytest.mark.parametrize("path", MAPS)
def test_each_map_draws_every_grid_offline(
    strips_client: TestClient, strips: Gridded, path: str
) -> None:
    r = strips_client.get(path)
    assert r.status_code == 200, r.text
    page = r.text
    assert_offline(page)
    assert "/static/leaflet/leaflet.js" in page
    assert _codes_in(page) == set(strips.grid_codes)
    assert "OpenStreetMap" in page
    assert "L.control.layers" in page
    assert "fitBounds" in page


def test_grid_map_names_workers_and_the_band(strips_client: TestClient) -> None:
    page = strips_client.get("/maps/grids").text
    assert re.search(r"\"worker_name\": \"[^\"]*W003\"", page)
    assert "150–180" in page


def test_workload_adds_up_a_workers_grids(strips_client: TestClient) -> None:
    page = strips_client.get("/maps/workload", headers={"Accept-Language": "en"}).text
    assert re.search(r"网格员 W001: 2 grids, \d+ households", page)


def test_incidents_count_the_last_n_days_open_and_closed(strips_client: TestClient) -> None:
    en = {"Accept-Language": "en"}
    page = strips_client.get("/maps/incidents", params={"days": 30}, headers=en).text
    assert "open: 4, closed: 2" in page
    page = strips_client.get("/maps/incidents", params={"days": 365}, headers=en).text
    assert "open: 5, closed: 3" in page


def test_coverage_numbers_per_grid(strips_client: TestClient, strips: Gridded) -> None:
    body = strips_client.get("/coverage", params={"kind": "pharmacy", "minutes": 5}).json()
    assert body["level"] == "grids"
    assert {a["code"] for a in body["areas"]} == set(strips.grid_codes)
    assert 0 < body["covered_households"] < body["households"]
    for area in body["areas"]:
        assert 0 <= area["covered_households"] <= area["households"]
    longer = strips_client.get("/coverage", params={"kind": "pharmacy", "minutes": 15}).json()
    assert longer["covered_households"] >= body["covered_households"]


def test_the_road_graph_is_cached_until_roads_change(
    strips_client: TestClient, strips_app, strips: Gridded
) -> None:
    strips_client.get("/coverage", params={"kind": "school", "minutes": 5})
    cache = app_state(strips_app).network_cache
    builds = cache.builds
    strips_client.get("/coverage", params={"kind": "school", "minutes": 7})
    assert cache.builds == builds
    with strips.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO road_segment (source_id, name, geom) VALUES ('t-new', 'new', "
                "ST_GeomFromText('LINESTRING(-8.61 41.14, -8.6101 41.1401)', 4326))"
            )
        )
    try:
        strips_client.get("/coverage", params={"kind": "school", "minutes": 5})
        assert cache.builds == builds + 1
    finally:
        with strips.engine.begin() as conn:
            conn.execute(text("DELETE FROM road_segment WHERE source_id = 't-new'"))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "spaceport", "minutes": 10}, "kind"),
        ({"kind": "pharmacy", "minutes": 0}, "minutes"),
        ({"kind": "pharmacy", "minutes": -3}, "minutes"),
        ({"kind": "pharmacy", "minutes": 100000}, "minutes"),
        ({"kind": "pharmacy", "minutes": "nan"}, "minutes"),
        ({"minutes": 10}, "kind"),
    ],
)
def test_bad_coverage_input_names_the_parameter(
    strips_client: TestClient, params: dict[str, Any], field: str
) -> None:
    for path in ("/coverage", "/maps/coverage"):
        if path == "/maps/coverage" and "kind" not in params:
            continue  # the map page offers a choice of kinds instead
        r = strips_client.get(path, params=params)
        assert r.status_code == 422, (path, r.text)
        assert field in r.json()["detail"]


def test_bad_days_names_the_parameter(strips_client: TestClient) -> None:
    for days in (0, -1, 100000, "x"):
        r = strips_client.get("/maps/incidents", params={"days": days})
        assert r.status_code == 422
        assert "days" in r.json()["detail"]


def test_coverage_page_without_a_kind_lists_the_kinds(strips_client: TestClient) -> None:
    page = strips_client.get("/maps/coverage").text
    assert '<option value="pharmacy"' in page  # a form to choose from, not links


def test_a_coordinator_sees_only_their_grids(strips_app, strips: Gridded) -> None:
    with TestClient(strips_app) as client:
        headers = login(client, "g-coordinator")
        page = client.get("/maps/grids", headers=headers).text
        assert _codes_in(page) == {c for c in strips.grid_codes if c.startswith("131208-")}
        body = client.get("/coverage", params={"kind": "school"}, headers=headers).json()
        assert {a["code"][:6] for a in body["areas"]} == {"131208"}
        # The tiles are district-wide: an area's staff get the grids map of their area.
        r = client.get("/viewer", headers=headers, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/maps/grids")


@pytest.mark.parametrize("path", ["/maps/grids", "/maps/workload"])
def test_an_area_with_more_grids_than_a_page_draws_is_sent_to_the_viewer(
    strips: Gridded, path: str
) -> None:
    """Over grid_page_max_grids the page draws nothing and says why, in the reader's
    language, with the count; a coordinator of one community (fewer grids) still gets it."""
    most = min(len(strips.grid_codes) - 1, 10)
    app = make_app(strips.engine, grid_page_max_grids=most)
    with TestClient(app) as client:
        headers = login(client, "g-admin")
        page = client.get(path, headers={**headers, "Accept-Language": "en"}).text
        assert f"This area has {len(strips.grid_codes)} grids" in page
        assert f"({most})" in page and "vector-tile viewer" in page
        assert not _codes_in(page)
        zh = client.get(path, headers={**headers, "Accept-Language": "zh-CN"}).text
        assert "超过一页能绘制的数量" in zh and f"{len(strips.grid_codes)} 个网格" in zh
        headers = login(client, "g-coordinator")
        mine = {c for c in strips.grid_codes if c.startswith("131208-")}
        assert len(mine) <= most
        assert _codes_in(client.get(path, headers=headers).text) == mine


# --------------------------------------------------------------------------- Porto, no grids


def test_without_grids_coverage_and_incidents_work_per_community(
    porto_client: TestClient,
) -> None:
    body = porto_client.get("/coverage", params={"kind": "pharmacy", "minutes": 5}).json()
    assert body["level"] == "communities"
    assert {a["code"] for a in body["areas"]} == {"131208", "131213", "131214", "131215"}
    page = porto_client.get("/maps/coverage", params={"kind": "pharmacy"}).text
    assert_offline(page)
    assert "社区（尚无网格）" in page  # the map's words in the deployment's language
    page = porto_client.get("/maps/incidents", headers={"Accept-Language": "en"}).text
    assert_offline(page)
    assert "Communities (no grids yet): " in page


@pytest.mark.parametrize("path", ["/maps/grids", "/maps/workload"])
def test_without_grids_the_grid_maps_say_so(porto_client: TestClient, path: str) -> None:
    r = porto_client.get(path, headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert "no grids yet" in r.text


@pytest.mark.parametrize("path", [*MAPS, "/coverage?kind=pharmacy", "/viewer"])
def test_maps_need_a_human_signed_in(
    anonymous: TestClient, tokens: dict[str, dict[str, str]], path: str
) -> None:
    assert anonymous.get(path).status_code == 401
    assert anonymous.get(path, headers=tokens["device"]).status_code == 403


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("grids", []), ("coverage", ["--facility", "school", "--minutes", "8"])],
)
def test_cli_writes_a_standalone_map(
    strips: Gridded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, extra: list[str]
) -> None:
    from api.cli import app as cli

    monkeypatch.setenv("DATABASE_URL", strips.url)
    out = tmp_path / f"{kind}.html"
    result = CliRunner().invoke(cli, ["map", kind, "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert_offline(page)
    assert "/static/" not in page  # Leaflet is inlined: the file opens from disk
    assert _codes_in(page) == set(strips.grid_codes)


def test_home_page_links_every_map_and_the_viewer(porto_client: TestClient) -> None:
    page = porto_client.get("/").text
    for link in ("/maps/grids", "/maps/workload", "/maps/incidents", "/maps/coverage", "/viewer"):
        assert f'href="{link}' in page
