"""The coordinators' map builders on tiny hand-made frames: no database, no browser.

Two grids side by side, 100 m each, near Porto::

    +--------+--------+
    |  G1    |  G2    |   G1: 165 households (in the band), worker Ana, 2 open incidents
    |        |        |   G2: 200 households (above),      worker Ana, 1 closed
    +--------+--------+
"""

from __future__ import annotations

import json
import re

import folium
import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box

from api.pages.i18n import translations
from data.district.maps import worker_load
from maps.base import DEFAULT_BACKGROUND, Legend, assert_offline
from maps.coverage import UNCOVERED, coverage_map, share_colour
from maps.grids import ABOVE, BELOW, WITHIN, band_colour, grid_band_map, workload_map
from maps.incidents import incident_map
from maps.viewer import TILE_FEATURES, feature_minzoom, viewer_page, viewer_style
from maps.words import english

LON, LAT, STEP = -8.61, 41.145, 0.0012


def _grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "id": [1, 2],
            "code": ["G1", "G2"],
            "community_code": ["C1", "C1"],
            "worker_code": ["W1", "W1"],
            "worker_name": ["Ana <b>", "Ana <b>"],
            "households": [165, 200],
            "open": [2, 0],
            "closed": [0, 1],
            "total": [2, 1],
        },
        geometry=[
            box(LON, LAT, LON + STEP, LAT + STEP),
            box(LON + STEP, LAT, LON + 2 * STEP, LAT + STEP),
        ],
        crs=4326,
    )


def test_band_colours() -> None:
    assert band_colour(120, low=150, high=180) == BELOW
    assert band_colour(150, low=150, high=180) == WITHIN
    assert band_colour(180, low=150, high=180) == WITHIN
    assert band_colour(181, low=150, high=180) == ABOVE
    assert band_colour(0, low=150, high=180) not in (BELOW, WITHIN, ABOVE)


def test_worker_load_adds_up_grids_and_households() -> None:
    load = worker_load(_grids())
    assert load.to_dict("records") == [
        {"worker_code": "W1", "worker_name": "Ana <b>", "grids": 2, "households": 365}
    ]


def test_grid_and_workload_maps_are_offline_and_escape_names() -> None:
    grids = _grids()
    for m in (
        grid_band_map(grids, household_min=150, household_max=180, asset_mode="inline"),
        workload_map(grids, worker_load(grids), asset_mode="inline"),
    ):
        page = m.get_root().render()
        assert_offline(page)
        assert "<b>" not in page.split("<body>")[1].split("<script>")[0]
        assert '"G1"' in page and '"G2"' in page


def _luminance(hex_colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_each_grid_is_edged_so_that_two_alike_are_two() -> None:
    """The grid and workload maps edged their grids in white 1 px over the light ground: a
    community of five grids in the band read as one green area. Every grid style's edge now
    stands 3:1 against the ground (WCAG's contrast for the parts of a graphic)."""
    grids = _grids()
    for m in (
        grid_band_map(grids, household_min=150, household_max=180, asset_mode="inline"),
        workload_map(grids, worker_load(grids), asset_mode="inline"),
    ):
        page = m.get_root().render()
        edges = set(re.findall(r'"fillOpacity":\s?0\.5,\s?"color":\s?"(#[0-9a-f]{6})"', page))
        assert edges, "no grid style found"
        ground = _luminance(DEFAULT_BACKGROUND)
        for edge in edges:
            assert (ground + 0.05) / (_luminance(edge) + 0.05) >= 3, edge


def test_grid_data_cannot_end_the_script_and_keeps_its_names() -> None:
    """The grids go into the page as plain text after the layer's script; a name that would
    close the element stays inside the data, whole, and each class has one style."""
    grids = _grids().assign(worker_name=["</script><script>alert(1)</script>", "王 & <!--"])
    page = (
        grid_band_map(grids, household_min=150, household_max=180, asset_mode="url")
        .get_root()
        .render()
    )
    assert "</script><script>alert" not in page and "<!--" not in page
    (data,) = re.findall(r"\.addData\((\{.*\})\);", page)
    names = [f["properties"]["worker_name"] for f in json.loads(data)["features"]]
    assert names == ["</script><script>alert(1)</script>", "王 & <!--"]
    (styles,) = re.findall(r"_styles = (\{.*\});", page)
    assert {k: v["fillColor"] for k, v in json.loads(styles).items()} == {
        WITHIN: WITHIN,
        ABOVE: ABOVE,
    }


def test_incident_map_has_an_open_and_a_closed_layer() -> None:
    page = incident_map(_grids(), days=30, asset_mode="inline").get_root().render()
    assert_offline(page)
    assert "Grids: 2 · open: 2, closed: 1" in page
    assert "gw-grid-closed" in page
    # each legend reads from none up ("2, 3, 0" put the empty grids' colour last)
    for title in ("open (30 days)", "closed (30 days)"):
        legend = page[page.index(title) :].split("<\\/details>")[0]
        counts = re.findall(r"<span>([^<]+)<", legend)
        assert counts[0] == "0" and "0" not in counts[1:], (title, counts)


def test_coverage_map_layers() -> None:
    grids = _grids().assign(
        covered_households=[100, 0],
        household_share=[100 / 165, 0.0],
        area_share=[0.5, 0.0],
        uncovered=[False, True],
    )
    covered = gpd.GeoSeries(
        [box(LON, LAT, LON + STEP / 2, LAT + STEP), shapely.Polygon()], crs=4326
    )
    door = Point(LON + STEP / 4, LAT + STEP / 2)
    facilities = gpd.GeoDataFrame({"kind": ["clinic"], "name": ["C"]}, geometry=[door], crs=4326)
    crow = door.buffer(STEP)
    m = coverage_map(
        grids, covered, crow, facilities, kind="clinic", minutes=5, speed_kmh=4.5,
        asset_mode="inline",
    )  # fmt: skip
    page = m.get_root().render()
    assert_offline(page)
    assert UNCOVERED in page
    assert "100 of 365 households can walk there (27 %)" in page
    assert "1 of 2 grids uncovered" in page
    assert '"fill": true' in page  # facilities are filled circles


def test_share_colour_puts_uncovered_first() -> None:
    assert share_colour(0.9, True) == UNCOVERED
    assert share_colour(None, False) != UNCOVERED


def test_empty_inputs_are_refused() -> None:
    empty = _grids().iloc[:0]
    with pytest.raises(ValueError, match="at least one"):
        grid_band_map(empty, household_min=150, household_max=180, asset_mode="url")
    with pytest.raises(ValueError, match="at least one"):
        incident_map(empty, days=7, asset_mode="url")
    with pytest.raises(ValueError, match="at least one"):
        workload_map(empty, pd.DataFrame(columns=["worker_code"]), asset_mode="url")


def test_viewer_asks_for_grids_and_roads_only_where_a_tile_holds_them_all() -> None:
    """tipg cuts a tile off at TILE_FEATURES: the viewer asks for a layer's tiles only from
    the zoom where a tile holds at most half that, by the layer's density over the area. A
    district's 783 grids fit at every zoom; the megacity's 60,000 grids over ~112 km from
    z10, its 179,132 roads from z11. The streets' outlines are drawn at every zoom."""
    district = (84.7795, 45.5261, 84.9589, 45.6350)  # the synthetic district, 14 × 12 km
    city = (86.3, 43.3, 87.7, 44.3)  # ~112 km × 111 km around the megacity's centre
    assert TILE_FEATURES == 10_000
    assert feature_minzoom(783, district) == 0
    assert feature_minzoom(60_000, city) == 10
    assert feature_minzoom(179_132, city) == 11
    assert feature_minzoom(4_000, city) == 0  # half a tile's worth: any tile holds them all
    style = viewer_style(
        kinds=["clinic"], household_min=150, household_max=180, grid_minzoom=10, road_minzoom=11
    )
    zooms = {name: source["minzoom"] for name, source in style["sources"].items()}
    assert zooms == {"streets": 0, "grids": 10, "buildings": 0, "roads": 11, "facilities": 0}
    assert "streets-line" in [layer["id"] for layer in style["layers"]]


def test_viewer_style_has_only_our_sources_and_no_glyphs() -> None:
    page = viewer_page(
        (LON, LAT, LON + 0.01, LAT + 0.01),
        kinds=["clinic", "</script><script>alert(1)</script>"],
        household_min=150,
        household_max=180,
    )
    assert_offline(page)
    assert '"glyphs"' not in page and '"sprite"' not in page
    assert "</script><script>alert" not in page
    assert 'from "/static/maplibre/maplibre-gl.mjs"' in page


def test_the_workload_box_counts_one_grid_as_one() -> None:
    """English says "1 grid" and "2 grids"; Chinese says 个 either way, with its own
    punctuation (：，（）)."""
    grids = _grids().assign(worker_code=["W1", "W2"], worker_name=["Ana", "Rui"])
    zh = translations("zh_CN").gettext
    for gettext, one in (
        (english, "Ana: 1 grid, 165 households"),
        (zh, "Ana：1 个网格，165 户（G1）"),
    ):
        text = _title_box(workload_map(grids, worker_load(grids), asset_mode="url",
                                       gettext=gettext))  # fmt: skip
        assert one in text and "1 grids" not in text
    both = _title_box(workload_map(_grids(), worker_load(_grids()), asset_mode="url"))
    assert "Ana &lt;b&gt;: 2 grids, 365 households" in both


def _title_box(m: folium.Map) -> str:
    """The HTML of the map's title box (the legend control at the top left)."""
    (box,) = [c for c in m._children.values() if isinstance(c, Legend) and
              c.position == "topleft"]  # fmt: skip
    return str(json.loads(box.html_js.replace("<\\/", "</")))
