"""The public layers as a GIS client sees them: RFC 7946 GeoJSON, bbox, paging, clear 4xx."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

PORTO_LON = (-8.63, -8.57)
PORTO_LAT = (41.13, 41.16)


def test_health_names_postgis(porto_client: TestClient) -> None:
    body = porto_client.get("/health").json()
    assert body["status"] == "ok" and body["postgis"].startswith("3.")


@pytest.mark.parametrize(
    ("layer", "count"), [("communities", 4), ("streets", 1), ("facilities", 72), ("roads", 1241)]
)
def test_layer_counts(porto_client: TestClient, layer: str, count: int) -> None:
    r = porto_client.get(f"/{layer}", params={"limit": 5000})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == count == len(body["features"])


def test_coordinates_are_lon_lat(porto_client: TestClient) -> None:
    for feature in porto_client.get("/facilities").json()["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        assert PORTO_LON[0] < lon < PORTO_LON[1] and PORTO_LAT[0] < lat < PORTO_LAT[1]


def test_communities_carry_households(porto_client: TestClient) -> None:
    props = {
        f["properties"]["name"]: f["properties"]
        for f in porto_client.get("/communities").json()["features"]
    }
    assert set(props) == {"Miragaia", "São Nicolau", "Sé", "Vitória"}
    assert props["Miragaia"]["households"] == round(2067 / 2.3)


def test_bbox_filters(porto_client: TestClient) -> None:
    everything = porto_client.get("/roads", params={"limit": 5000}).json()["numberMatched"]
    part = porto_client.get("/roads", params={"bbox": "-8.615,41.14,-8.61,41.145"}).json()
    assert 0 < part["numberMatched"] < everything
    for f in part["features"]:
        xs = [c[0] for c in f["geometry"]["coordinates"]]
        assert min(xs) <= -8.61 and max(xs) >= -8.615


def test_paging_follows_next_links(porto_client: TestClient) -> None:
    seen: list[str] = []
    url: str | None = "/facilities?limit=30"
    while url:
        body = porto_client.get(url).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 72


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("bbox=1,2,3", "bbox"),
        ("bbox=-8.6,41.2,-8.7,41.1", "bbox"),
        ("bbox=31.2,121.4,31.3,121.5", "bbox"),  # Shanghai with lat first: lat 121 is impossible
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=nan,1,2,3", "bbox"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("offset=-1", "offset"),
    ],
)
def test_bad_parameters_name_the_field(porto_client: TestClient, query: str, field: str) -> None:
    r = porto_client.get(f"/roads?{query}")
    assert r.status_code == 422
    body = r.json()
    assert field in body["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


def test_households_are_not_a_public_layer(porto_client: TestClient) -> None:
    assert porto_client.get("/households").status_code in (401, 403, 404, 405)
