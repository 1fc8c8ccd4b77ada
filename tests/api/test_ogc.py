"""OGC API – Features and vector tiles at /ogc, read by real clients over real HTTP.

OWSLib and GDAL's OAPIF driver (through pyogrio) are what QGIS-class tools use; they run
against uvicorn on a free 127.0.0.1 port inside the test, with the key in a header.
"""

from __future__ import annotations

from pathlib import Path

import mapbox_vector_tile
import morecantile
import pyogrio
import pytest
from fastapi.testclient import TestClient
from owslib.ogcapi.features import Features
from sqlalchemy import text

from maps.base import assert_offline
from tests.gridded import Gridded, Live, login

GRIDS = "/ogc/collections/ogc.grids"
LAYERS = {
    "ogc.streets",
    "ogc.communities",
    "ogc.grids",
    "ogc.buildings",
    "ogc.roads",
    "ogc.facilities",
}


def test_ogc_refuses_anyone_not_district_wide(strips_app, strips: Gridded) -> None:
    paths = ["/ogc/", "/ogc/api", "/ogc/api.html", "/ogc/conformance", "/ogc/collections",
             f"{GRIDS}/items", f"{GRIDS}/items/1", f"{GRIDS}/tiles/WebMercatorQuad/14/7800/6134",
             "/ogc/static-docs/swagger-ui.css", "/ogc/no/such/path"]  # fmt: skip
    with TestClient(strips_app) as client:
        coordinator = login(client, "g-coordinator")
        for path in paths:
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"X-API-Key": "gw_forged"}).status_code == 401
            assert client.get(path, headers=coordinator).status_code == 403, path
        key = {"X-API-Key": strips.integration_key}
        assert client.get("/ogc/collections", headers=key).status_code == 200


def test_landing_conformance_and_collections(strips_client: TestClient) -> None:
    landing = strips_client.get("/ogc/").json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert rels["service-desc"].endswith("/ogc/api")
    assert rels["conformance"].endswith("/ogc/conformance")
    api = strips_client.get("/ogc/api").json()
    assert api["openapi"].startswith("3.")
    conformance = strips_client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conformance
    ids = {c["id"] for c in strips_client.get("/ogc/collections").json()["collections"]}
    assert ids == LAYERS  # never households, elders, positions or incidents


def test_items_page_with_limit_and_filter_with_bbox(
    strips_client: TestClient, strips: Gridded
) -> None:
    first = strips_client.get(f"{GRIDS}/items", params={"limit": 4}).json()
    assert first["numberMatched"] == strips.grids
    assert len(first["features"]) == 4
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert "/ogc/" in nxt
    second = strips_client.get(nxt.replace("http://testserver", "")).json()
    seen = {f["properties"]["code"] for f in first["features"] + second["features"]}
    assert len(seen) == 8
    with strips.engine.connect() as conn:
        inside = conn.execute(
            text(
                "SELECT count(*) FROM grid WHERE valid_to IS NULL AND geom && "
                "ST_MakeEnvelope(-8.62, 41.14, -8.61, 41.15, 4326)"
            )
        ).scalar_one()
    boxed = strips_client.get(
        f"{GRIDS}/items", params={"bbox": "-8.62,41.14,-8.61,41.15", "limit": 1000}
    ).json()
    assert boxed["numberMatched"] == inside < strips.grids


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"{GRIDS}/items?bbox=-8.61,41.15,-8.62,41.14", "bbox"),
        (f"{GRIDS}/items?bbox=west,41.15,-8.62,41.14", "bbox"),
        (f"{GRIDS}/items?bbox=-8.61,95,-8.62,41.14", "bbox"),
        (f"{GRIDS}/tiles/WebMercatorQuad/14/16384/6134", "x"),
        (f"{GRIDS}/tiles/WebMercatorQuad/14/7800/-1", "y"),
        (f"{GRIDS}/tiles/WebMercatorQuad/31/0/0", "z"),
    ],
)
def test_bad_input_names_the_parameter(strips_client: TestClient, path: str, field: str) -> None:
    r = strips_client.get(path)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}:")


def test_a_tile_decodes_and_holds_the_grids_it_covers(
    strips_client: TestClient, strips: Gridded
) -> None:
    with strips.engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) c FROM grid) g"
            )
        ).one()
    z = 15
    x, y = (lambda t: (t.x, t.y))(morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z))
    r = strips_client.get(f"{GRIDS}/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    tile = mapbox_vector_tile.decode(r.content)
    codes = {f["properties"]["code"] for f in tile["default"]["features"]}
    with strips.engine.connect() as conn:
        expected = set(
            conn.execute(
                text(
                    "SELECT code FROM grid WHERE valid_to IS NULL AND ST_Intersects("
                    "ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y))"
                ),
                {"z": z, "x": x, "y": y},
            ).scalars()
        )
    assert codes == expected and codes
    households = {f["properties"]["households"] for f in tile["default"]["features"]}
    assert all(h > 0 for h in households)


def test_html_pages_are_offline(strips_client: TestClient) -> None:
    for path in ("/ogc/", "/ogc/collections", f"{GRIDS}/items?limit=2", "/ogc/api.html"):
        page = strips_client.get(path, headers={"Accept": "text/html"}).text
        assert_offline(page, allow=["http://testserver/", "http://www.opengis.net/"])


# --------------------------------------------------------------------------- real clients


@pytest.fixture(scope="module")
def live_url(live: Live) -> str:
    return live.url


def test_owslib_reads_the_grids(live_url: str, strips: Gridded) -> None:
    api = Features(f"{live_url}/ogc/", headers={"X-API-Key": strips.integration_key})
    assert "ogc.grids" in {c["id"] for c in api.collections()["collections"]}
    items = api.collection_items("ogc.grids", limit=1000)
    assert len(items["features"]) == items["numberMatched"] == strips.grids
    assert {f["properties"]["code"] for f in items["features"]} == set(strips.grid_codes)


def test_gdal_oapif_reads_the_grids(live_url: str, strips: Gridded, tmp_path: Path) -> None:
    # GDAL 3.12's OAPIF driver sends its own Accept header and then ignores
    # GDAL_HTTP_HEADERS; a header file (or GDAL_HTTP_AUTH=BEARER) is what reaches us:
    # `GDAL_HTTP_HEADER_FILE=key.txt ogrinfo OAPIF:http://host/ogc/`, set in-process here.
    header_file = tmp_path / "gridwork-key.txt"
    header_file.write_text(f"X-API-Key: {strips.integration_key}\n")
    pyogrio.set_gdal_config_options(
        {"GDAL_HTTP_HEADER_FILE": str(header_file), "OAPIF_PAGE_SIZE": "7"}
    )  # 7 a page: GDAL has to follow 'next' links
    try:
        layers = {name for name, _ in pyogrio.list_layers(f"OAPIF:{live_url}/ogc/")}
        frame = pyogrio.read_dataframe(f"OAPIF:{live_url}/ogc/", layer="ogc.grids")
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": None, "OAPIF_PAGE_SIZE": None})
    assert layers == LAYERS
    assert len(frame) == strips.grids
    assert set(frame["code"]) == set(strips.grid_codes)
    assert frame.crs.to_epsg() == 4326


def test_gdal_without_the_key_is_refused(live_url: str) -> None:
    with pytest.raises(pyogrio.errors.DataSourceError):
        pyogrio.list_layers(f"OAPIF:{live_url}/ogc/")
