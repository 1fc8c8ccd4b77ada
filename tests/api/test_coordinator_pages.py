"""The coordinators' workspace in the frame: every map with navigation and a way back,
coverage controls on the page, workload classes tied to the band, each worker's grids, the
viewer's legend, and a scoped user's viewer."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from maps.grids import (
    LOAD_IN_BAND,
    LOAD_OVER,
    LOAD_OVER_2X,
    LOAD_OVER_20,
    LOAD_UNDER,
    load_class,
)
from tests.gridded import Gridded, login

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


@pytest.mark.parametrize(
    ("households", "colour"),
    [
        (149, LOAD_UNDER),
        (150, LOAD_IN_BAND),
        (180, LOAD_IN_BAND),
        (181, LOAD_OVER),
        (216, LOAD_OVER),
        (217, LOAD_OVER_20),
        (360, LOAD_OVER_20),
        (361, LOAD_OVER_2X),
        (567, LOAD_OVER_2X),
    ],
)
def test_workload_classes_are_tied_to_the_band(households: int, colour: str) -> None:
    assert load_class(households, low=150, high=180)[0] == colour


@pytest.mark.parametrize(
    "path",
    [
        "/maps/hierarchy",
        "/maps/grids",
        "/maps/workload",
        "/maps/incidents",
        "/maps/coverage",
        "/maps/coverage?kind=pharmacy&minutes=5",
        "/viewer",
    ],
)
def test_every_map_page_is_in_the_frame(strips_client: TestClient, path: str) -> None:
    r = strips_client.get(path, headers=EN)
    assert r.status_code == 200, r.text
    page = r.text
    assert '<nav class="main"' in page
    assert re.search(r"<h1>[^<]+</h1>", page)
    assert "<title>" in page and "· gridwork</title>" in page
    assert 'href="/"' in page  # a way back
    assert "user-scalable=no" not in page  # people may zoom


def test_workload_lists_each_workers_grids_and_separates_overload(
    strips_client: TestClient, strips: Gridded
) -> None:
    page = strips_client.get("/maps/workload", headers=EN).text
    cell = r'<td class="lead">([^<]+)</td><td class="n" data-label="Households">(\d+)</td>'
    rows = re.findall(rf"<tr>{cell}(.*?)</tr>", page, re.S)
    assert rows, page[-3000:]
    # the last column lists codes, so its heading is not the count 'Grids' (网格数) reads as
    zh = strips_client.get("/maps/workload", headers={**EN, "Accept-Language": "zh-CN"}).text
    assert "<th>负责的网格</th></tr></thead>" in zh
    by_name = {name: (int(h), rest) for name, h, rest in rows}
    # W001 answers for two grids of ~170 households: over by more than 20 %, and both
    # of their grids are listed; every other worker (one grid each) is in the band.
    households, rest = by_name["网格员 W001"]
    assert households > 216
    assert "Over by more than 20 %" in rest
    assert len(re.findall(r"1312\d\d-G\d\d", rest)) == 2
    names = {
        LOAD_UNDER: "Under the band",
        LOAD_IN_BAND: "In the band",
        LOAD_OVER: "Over by up to 20 %",
        LOAD_OVER_20: "Over by more than 20 %",
        LOAD_OVER_2X: "Over twice the band",
    }
    for h, r in by_name.values():
        assert names[load_class(h, low=150, high=180)[0]] in r
    assert any("In the band" in r for _, r in by_name.values())
    listed = set(re.findall(r"1312\d\d-G\d\d", "".join(r for _, _, r in rows)))
    assert listed == set(strips.grid_codes)
    # The map's own colours follow the same classes, not quantiles.
    assert LOAD_OVER_20 in page and LOAD_IN_BAND in page


def test_coverage_controls_on_the_page(strips_client: TestClient) -> None:
    page = strips_client.get(
        "/maps/coverage", params={"kind": "pharmacy", "minutes": 7}, headers=ZH
    ).text
    assert re.search(r'<option value="pharmacy" selected>药店 \(pharmacy\) · \d+</option>', page)
    assert 'name="minutes" min="1" max="120" step="1" value="7"' in page
    assert re.search(r'name="straight" value="true"\s*>', page)  # unchecked by default
    assert 'role="status"' in page  # the sign shown while the first walk is worked out
    straight = strips_client.get(
        "/maps/coverage",
        params={"kind": "pharmacy", "minutes": 7, "straight": "true"},
        headers=ZH,
    ).text
    assert re.search(r'name="straight" value="true" checked>', straight)
    # The straight-line layer is on the map from the start only when asked for.
    on = re.compile(r"geo_json_\w+\.addTo\(map_\w+\)")
    assert len(on.findall(straight)) == len(on.findall(page)) + 1


def test_bad_minutes_on_the_coverage_page_name_the_field(strips_client: TestClient) -> None:
    r = strips_client.get("/maps/coverage", params={"kind": "pharmacy", "minutes": 500})
    assert r.status_code == 422
    assert "minutes" in r.text


def test_viewer_legend_names_every_facility_kind(
    strips_client: TestClient, strips: Gridded
) -> None:
    page = strips_client.get("/viewer", headers=ZH).text
    with strips.engine.connect() as conn:
        kinds = conn.execute(text("SELECT DISTINCT kind FROM facility")).scalars().all()
    assert kinds
    key = page[page.index("const key = ") : page.index("const box")]
    for kind in kinds:
        assert kind in key
    assert "药店 (pharmacy)" in key
    assert '["道路", "#8c8c8c", "line"]' in key  # the roads, in the page's language
    english = strips_client.get("/viewer", headers={"Accept-Language": "en"}).text
    key = english[english.index("const key = ") : english.index("const box")]
    # A name that says its code already is not followed by it again.
    assert '"Pharmacy"' in key and "Pharmacy (pharmacy)" not in key
    assert "social_facility" in kinds and "Social care facility (social_facility)" in key


def test_a_scoped_coordinator_is_sent_to_their_area_not_refused(strips_app) -> None:
    with TestClient(strips_app) as client:
        headers = login(client, "g-coordinator")
        r = client.get("/viewer", headers=headers)  # follows the redirect
        assert r.status_code == 200
        assert str(r.url).endswith("/maps/grids")
        codes = set(re.findall(r'"code": "(1312\d\d-G\d\d)"', r.text))
        assert codes and all(c.startswith("131208-") for c in codes)


def test_coverage_tooltips_show_a_stored_local_name() -> None:
    import geopandas as gpd
    import shapely

    from maps.coverage import coverage_map

    cell = shapely.box(-8.62, 41.14, -8.61, 41.15)
    areas = gpd.GeoDataFrame(
        {
            "code": ["131208"],
            "name": ["Miragaia"],
            "name_local": ["米拉盖亚"],
            "households": [100],
            "covered_households": [40],
            "household_share": [0.4],
            "area_share": [0.3],
            "uncovered": [False],
        },
        geometry=[cell],
        crs=4326,
    )
    covered = gpd.GeoSeries([cell], crs=4326)
    facilities = gpd.GeoDataFrame(
        {"kind": ["clinic"], "name": ["C"]}, geometry=[cell.centroid], crs=4326
    )
    page = (
        coverage_map(
            areas, covered, cell, facilities, kind="clinic", minutes=5, speed_kmh=4.5,
            level="communities", asset_mode="url",
        )
        .get_root()
        .render()
    )  # fmt: skip
    assert '"name_local": "米拉盖亚"' in page
    assert "local name" in page  # the tooltip's label (English: no gettext given)


def test_workload_names_the_workers_of_the_area_without_a_grid(
    strips_client: TestClient, strips: Gridded
) -> None:
    """After a re-plan gave a worker's grids to others, no map showed them; the coordinator
    of their community is told who is free, and a coordinator elsewhere is not."""
    with strips.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO worker (code, display_name, community_id) SELECT 'W-IDLE', "
                "'空闲网格员', id FROM community WHERE code = '131208'"
            )
        )
    try:
        said = "Workers without a grid: 空闲网格员"
        assert said in strips_client.get("/maps/workload", headers=EN).text
        coordinator = login(strips_client, "g-coordinator")
        page = strips_client.get("/maps/workload", headers=ZH | coordinator).text
        assert "没有负责网格的网格员： 空闲网格员" in page
        with strips.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE worker SET community_id = (SELECT id FROM community "
                    "WHERE code <> '131208' ORDER BY code LIMIT 1) WHERE code = 'W-IDLE'"
                )
            )
        page = strips_client.get("/maps/workload", headers=ZH | coordinator).text
        assert "空闲网格员" not in page
    finally:
        with strips.engine.begin() as conn:
            conn.execute(text("DELETE FROM worker WHERE code = 'W-IDLE'"))


def _worker_of(strips: Gridded, grid: str) -> str:
    with strips.engine.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT w.code FROM grid g JOIN worker w ON w.id = g.worker_id "
                    "WHERE g.code = :g AND g.valid_to IS NULL"
                ),
                {"g": grid},
            ).scalar_one()
        )


def _give(client: TestClient, grid: str, worker: str, headers: dict[str, str]) -> Any:
    """The workload page's form sent: give ``grid`` to ``worker``."""
    return client.post(
        "/maps/workload/worker",
        data={"grid": grid, "worker": worker},
        headers=headers,
        follow_redirects=False,
    )


def test_a_planner_gives_a_grid_to_another_worker_from_the_workload_page(
    strips_client: TestClient, strips: Gridded
) -> None:
    """Worker turnover is daily work: a grid's worker used to change only through a published
    plan's worker step or PATCH /grids; the workload page, where the loads are seen, now does
    it for whoever may plan the community."""
    planner = {**login(strips_client, "g-planner"), **EN}
    page = strips_client.get("/maps/workload", headers=planner).text
    offered = re.search(r'<datalist id="give-grids">(.*?)</datalist>', page, re.S)
    assert offered, page[-2000:]
    codes = re.findall(r'value="([^"]+)"', offered.group(1))
    assert codes and all(c.startswith("131208-") for c in codes)  # their community only
    before, taker = _worker_of(strips, "131208-G01"), _worker_of(strips, "131208-G02")
    try:
        r = _give(strips_client, "131208-G01", taker, planner)
        assert r.status_code == 303, r.text
        assert _worker_of(strips, "131208-G01") == taker
        told = strips_client.get(r.headers["location"], headers=planner).text
        assert re.search(r"131208-G01 is now with [^;<]+; its open cases went to them\.", told)
        # Typed by name, as the suggestions show workers, it goes back.
        with strips.engine.connect() as conn:
            name = conn.execute(
                text("SELECT display_name FROM worker WHERE code = :w"), {"w": before}
            ).scalar_one()
        back = _give(strips_client, "131208-G01", name, planner)
        assert back.status_code == 303, back.text
        assert _worker_of(strips, "131208-G01") == before
        forged = strips_client.get("/maps/workload?given=131208-G01|Mallory", headers=planner)
        assert "is now with" not in forged.text
        # Refusals come back on the page, beside their field, with what was typed.
        elsewhere = _give(strips_client, "131213-G01", taker, planner)
        assert elsewhere.status_code == 422  # a typed code not in the area: the form is wrong
        assert re.search(r'id="grid-error" role="alert">[^<]*131213-G01', elsewhere.text)
        assert 'value="131213-G01"' in elsewhere.text
        nobody = _give(strips_client, "131208-G01", "W-NOBODY", planner)
        assert nobody.status_code == 422
        # still the workload page in the frame: Maps and Workload marked, the field focused
        assert 'href="/maps/hierarchy" aria-current="page">Maps' in nobody.text
        assert 'href="/maps/workload" aria-current="page">Workload' in nobody.text
        assert 'aria-describedby="worker-error" autofocus' in nobody.text
        said = html.unescape(nobody.text)
        assert 'id="worker-error" role="alert">no worker with code \'W-NOBODY\'' in said
        blank = _give(strips_client, "131208-G01", " ", {**planner, **ZH})
        assert blank.status_code == 422 and 'id="worker-error" role="alert">必填' in blank.text
        assert _worker_of(strips, "131208-G01") == before  # nothing was changed by them
    finally:
        with strips.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE grid SET worker_id = (SELECT id FROM worker WHERE code = :w) "
                    "WHERE code = '131208-G01' AND valid_to IS NULL"
                ),
                {"w": before},
            )
    # A coordinator sees the loads but gives no grid away.
    coordinator = {**login(strips_client, "g-coordinator"), **EN}
    assert 'id="give"' not in strips_client.get("/maps/workload", headers=coordinator).text
    refused = _give(strips_client, "131208-G01", taker, coordinator)
    assert refused.status_code == 403
