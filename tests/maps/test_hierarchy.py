"""The hierarchy map on real Porto data, checked by rendering the HTML and reading it.

What matters is that the page works on an intranet: nothing it loads may come from outside
gridwork. So each test renders the full page and runs `external_urls` over it, and the checker
itself is shown to fail on the CDN tags folium emits by default.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import pytest

from maps.base import (
    LEAFLET_DIR,
    LEAFLET_VERSION,
    OSM_ATTRIBUTION_TEXT,
    STATIC_DIR,
    AssetMode,
    NotOfflineError,
    assert_offline,
    external_urls,
    leaflet_inline_js,
    offline_map,
)
from maps.hierarchy import hierarchy_map

PORTO = Path(__file__).resolve().parents[2] / "data" / "samples" / "porto" / "porto.gpkg"
PORTO_PARISHES = {"Miragaia", "São Nicolau", "Sé", "Vitória"}
HOUSEHOLD_SIZE = 2.3  # fake households from the 2011 census population, for the test only


@pytest.fixture(scope="module")
def porto() -> dict[str, gpd.GeoDataFrame]:
    """Porto's four parishes as communities under one street (their union), plus roads and
    facilities renamed to gridwork's columns (OSM `highway` -> road_class, `amenity` -> kind)."""
    communities = gpd.read_file(PORTO, layer="communities")
    communities["households"] = (communities["population"] / HOUSEHOLD_SIZE).round().astype(int)
    communities["code"] = communities["ref_code"]
    streets = gpd.GeoDataFrame(
        {"code": ["PT-CH"], "name": ["Centro Histórico"]},
        geometry=[communities.union_all()],
        crs=communities.crs,
    )
    roads = gpd.read_file(PORTO, layer="streets").rename(columns={"highway": "road_class"})
    facilities = gpd.read_file(PORTO, layer="facilities").rename(columns={"amenity": "kind"})
    return {
        "streets": streets,
        "communities": communities,
        "grids": communities.iloc[0:0],
        "roads": roads,
        "facilities": facilities,
    }


def render(porto: dict[str, gpd.GeoDataFrame], mode: AssetMode, **overrides: Any) -> str:
    layers = {**porto, **overrides}
    m = hierarchy_map(
        layers["streets"],
        layers["communities"],
        layers["grids"],
        asset_mode=mode,
        roads=layers["roads"],
        facilities=layers["facilities"],
    )
    return str(m.get_root().render())


@pytest.fixture(scope="module")
def url_page(porto: dict[str, gpd.GeoDataFrame]) -> str:
    return render(porto, "url")


@pytest.fixture(scope="module")
def inline_page(porto: dict[str, gpd.GeoDataFrame]) -> str:
    return render(porto, "inline")


_LAYER = re.compile(
    r"var rows = (?P<rows>\[.*?\]);.*?(?P<var>geo_json_[0-9a-f]+)_add\((?P<data>\{.*?\})\);\n",
    re.DOTALL,
)


def geojson_layers(page: str) -> list[tuple[list[str], dict[str, Any]]]:
    """(tooltip fields, embedded GeoJSON) for each GeoJson layer, in drawing order."""
    return [
        ([field for field, _label in json.loads(m["rows"])], json.loads(m["data"]))
        for m in _LAYER.finditer(page)
    ]


def community_layer(page: str) -> tuple[list[str], dict[str, Any]]:
    (layer,) = [
        (fields, data)
        for fields, data in geojson_layers(page)
        if data["features"] and "households" in data["features"][0]["properties"]
    ]
    return layer


# --------------------------------------------------------------------------- offline


@pytest.mark.parametrize("mode", ["url", "inline"])
def test_page_fetches_nothing_from_outside(mode: str, url_page: str, inline_page: str) -> None:
    page = url_page if mode == "url" else inline_page
    assert external_urls(page) == []
    assert_offline(page)
    for dropped in ("jquery", "bootstrap", "fontawesome", "awesome-markers", "cdn."):
        assert dropped not in page.replace(leaflet_inline_js(), "").lower()


def test_url_mode_links_leaflet_from_gridwork(url_page: str) -> None:
    assert '<script src="/static/leaflet/leaflet.js"></script>' in url_page
    assert '<link rel="stylesheet" href="/static/leaflet/leaflet.css"/>' in url_page
    assert "Vladimir Agafonkin" not in url_page  # the source is linked, not copied in


def test_inline_mode_carries_leaflet_and_no_static_reference(inline_page: str) -> None:
    assert leaflet_inline_js() in inline_page
    assert f'version="{LEAFLET_VERSION}"' in inline_page
    assert ".leaflet-container" in inline_page  # the stylesheet too
    assert "url(images/" not in inline_page  # its images became data: URIs
    assert "data:image/png;base64," in inline_page
    assert "/static/" not in inline_page
    assert "<script src=" not in inline_page
    assert 'rel="stylesheet"' not in inline_page


def test_osm_attribution_is_on_the_map(url_page: str) -> None:
    assert OSM_ATTRIBUTION_TEXT in url_page
    assert "attributionControl.addAttribution(" in url_page


def test_static_url_is_configurable(porto: dict[str, gpd.GeoDataFrame]) -> None:
    m = offline_map(porto["communities"], asset_mode="url", static_url="/gridwork/static/")
    page = m.get_root().render()
    assert 'src="/gridwork/static/leaflet/leaflet.js"' in page
    assert external_urls(page) == []


def test_an_intranet_tile_server_is_reported_unless_allowed(
    porto: dict[str, gpd.GeoDataFrame],
) -> None:
    tiles = "https://tiles.intranet.example/{z}/{x}/{y}.png"
    m = offline_map(
        porto["communities"], asset_mode="url", tiles_url=tiles, tiles_attribution="市测绘院"
    )
    page = m.get_root().render()
    assert external_urls(page) == [tiles]
    assert external_urls(page, allow=["https://tiles.intranet.example/"]) == []


# --------------------------------------------------------------------------- the checker


def test_checker_finds_a_cdn_script_and_a_css_url() -> None:
    page = """<html><head>
    <script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"></script>
    <style>.icon { background: url(//fonts.example.com/icon.png) no-repeat; }</style>
    <style>@import "https://fonts.googleapis.com/css?family=Roboto";</style>
    </head><body><img src='http://example.org/logo.png'>
    <script>L.tileLayer("https:\\/\\/{s}.tile.openstreetmap.org/{z}/{x}/{y}.png").addTo(m);</script>
    </body></html>"""
    assert external_urls(page) == [
        "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js",
        "//fonts.example.com/icon.png",
        "https://fonts.googleapis.com/css?family=Roboto",
        "http://example.org/logo.png",
        "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png",
    ]
    with pytest.raises(NotOfflineError, match="5 external URL"):
        assert_offline(page)


def test_checker_fails_folium_defaults() -> None:
    page = folium.Map().get_root().render()
    urls = external_urls(page)
    assert "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js" in urls
    assert "https://code.jquery.com/jquery-3.7.1.min.js" in urls
    assert any("tile.openstreetmap.org" in url for url in urls)


def test_only_the_osm_copyright_link_is_allowed() -> None:
    link = '<a href="https://www.openstreetmap.org/copyright">© OpenStreetMap</a>'
    escaped = 'addAttribution("\\u003ca href=\\"https://www.openstreetmap.org/copyright\\"\\u003e")'
    assert external_urls(link) == []
    assert external_urls(f"<script>{escaped}</script>") == []
    fetched = '<img src="https://www.openstreetmap.org/copyright">'
    assert external_urls(fetched) == ["https://www.openstreetmap.org/copyright"]
    other = '<a href="https://example.com/">x</a>'
    assert external_urls(other) == ["https://example.com/"]


def test_a_comment_is_not_a_protocol_relative_url() -> None:
    assert external_urls("<script>var a = 1; // see notes\n</script>") == []
    assert external_urls('<script>load("//cdn.example.com/x.js")</script>') == [
        "//cdn.example.com/x.js"
    ]


# --------------------------------------------------------------------------- content


def test_four_communities_with_names_in_tooltips(url_page: str) -> None:
    fields, data = community_layer(url_page)
    assert {"name", "households"} <= set(fields)
    geometry_types = {f["geometry"]["type"] for f in data["features"]}
    assert len(data["features"]) == 4
    assert geometry_types <= {"Polygon", "MultiPolygon"}
    assert {f["properties"]["name"] for f in data["features"]} == PORTO_PARISHES
    assert {f["properties"]["households"] for f in data["features"]} == {899, 829, 827}


def test_layers_legend_and_facilities(url_page: str) -> None:
    for name in ("communities", "streets", "roads", "facilities"):
        assert json.dumps(name) in url_page  # LayerControl entries
    assert json.dumps("grids") not in url_page  # empty grids draw no layer
    assert "L.control.layers(" in url_page
    assert url_page.count('"gridwork-legend"') == 3  # households, line layers, facilities
    # Every legend's title is capitalised as a heading (the facilities' read "facilities").
    titles = re.findall(r"<h4>(.*?)<\\/h4>", url_page)
    assert "Facilities" in titles and all(t[:1].isupper() for t in titles), titles
    assert "new L.CircleMarker(latlng, opts)" in url_page
    points = [
        data
        for _fields, data in geojson_layers(url_page)
        if data["features"] and data["features"][0]["geometry"]["type"] == "Point"
    ]
    assert len(points) == 1
    assert len(points[0]["features"]) == 72
    assert {"name", "kind"} == set(points[0]["features"][0]["properties"])


def test_grids_are_drawn_when_given(porto: dict[str, gpd.GeoDataFrame]) -> None:
    grids = porto["communities"][["geometry"]].assign(code=["G1", "G2", "G3", "G4"])
    page = render(porto, "url", grids=grids, roads=None, facilities=None)
    assert json.dumps("grids") in page  # the layer, in English without a gettext
    codes = {
        f["properties"].get("code")
        for _fields, data in geojson_layers(page)
        for f in data["features"]
    }
    assert {"G1", "G2", "G3", "G4"} <= codes
    assert external_urls(page) == []


def test_names_cannot_inject_markup(porto: dict[str, gpd.GeoDataFrame]) -> None:
    """Tooltips use textContent, so a hostile name stays text and the page keeps no <img>."""
    communities = porto["communities"].copy()
    communities.loc[0, "name"] = '<img src=x onerror="alert(1)">'
    page = render(porto, "url", communities=communities, roads=None, facilities=None)
    assert "textContent" in page
    assert page.count("innerHTML") == page.count('"gridwork-legend"')  # legends are pre-escaped


def test_other_crs_is_reprojected_and_simplified(porto: dict[str, gpd.GeoDataFrame]) -> None:
    projected = porto["communities"].to_crs("EPSG:3763")  # Portugal TM06, metres
    page = render(porto, "url", communities=projected, roads=None, facilities=None)
    _fields, data = community_layer(page)
    ring = data["features"][0]["geometry"]["coordinates"][0]
    lon, lat = ring[0]
    assert -8.63 < lon < -8.57
    assert 41.13 < lat < 41.16
    original = porto["communities"].geometry.iloc[0]
    assert len(ring) < len(original.exterior.coords)
    assert all(len(str(v).split(".")[1]) <= 6 for v in (lon, lat))


def test_porto_pages_stay_small(url_page: str, inline_page: str) -> None:
    assert len(url_page.encode()) < 400_000
    assert len(inline_page.encode()) - len(url_page.encode()) < 200_000


# --------------------------------------------------------------------------- vendoring


def test_vendored_leaflet_is_the_one_folium_expects() -> None:
    folium_leaflet = dict(folium.Map.default_js)["leaflet"]
    assert f"leaflet@{LEAFLET_VERSION}/" in folium_leaflet
    assert f'version="{LEAFLET_VERSION}"' in (LEAFLET_DIR / "leaflet.js").read_text()


def test_every_vendored_file_is_documented() -> None:
    readme = (STATIC_DIR / "README.md").read_text()
    for path in LEAFLET_DIR.rglob("*"):
        if path.is_file():
            assert path.name in readme, path
