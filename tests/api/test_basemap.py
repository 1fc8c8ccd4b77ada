"""The basemap under every map: the ground (roads with names, buildings, outlines) from
gridwork's own tables, for one viewport at a time, on the real Porto sample."""

from __future__ import annotations

from fastapi.testclient import TestClient

from maps.base import offline_map

# Porto's historic centre (Miragaia, São Nicolau, Sé, Vitória).
CENTRE = "-8.6195,41.1400,-8.6080,41.1455"


def _layers(client: TestClient, zoom: int, bbox: str = CENTRE) -> dict[str, list[dict]]:
    r = client.get("/basemap", params={"bbox": bbox, "zoom": zoom})
    assert r.status_code == 200, r.text
    return {k: v["features"] for k, v in r.json()["layers"].items()}


def test_a_close_view_shows_named_roads_buildings_and_the_parishes(
    porto_client: TestClient,
) -> None:
    near = _layers(porto_client, 17)
    names = {f["properties"].get("name") for f in near["roads"]}
    assert "Rua das Flores" in names  # a real street of the Sé parish
    assert len(near["buildings"]) > 100
    assert {f["properties"]["code"] for f in near["communities"]} >= {"131213"}


def test_a_far_view_leaves_out_what_cannot_be_read(porto_client: TestClient) -> None:
    far = _layers(porto_client, 12)
    assert far["buildings"] == []
    assert all(
        f["properties"].get("kind") in {"primary", "secondary", "tertiary", "trunk", "motorway"}
        for f in far["roads"]
    )
    near = _layers(porto_client, 17)
    assert len(near["roads"]) > len(far["roads"])


def test_the_basemap_is_for_signed_in_staff_and_checks_its_input(
    anonymous: TestClient, porto_client: TestClient
) -> None:
    assert anonymous.get("/basemap", params={"bbox": CENTRE, "zoom": 15}).status_code == 401
    wrong = porto_client.get("/basemap", params={"bbox": "-8.62,95,-8.60,96", "zoom": 15})
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "bbox" and "latitude" in wrong.json()["detail"]
    assert porto_client.get("/basemap", params={"bbox": CENTRE, "zoom": 40}).status_code == 422


def test_every_served_map_draws_the_basemap_and_a_standalone_file_does_not() -> None:
    area = (-8.62, 41.14, -8.60, 41.15)
    served = offline_map(area, asset_mode="url").get_root().render()
    assert "/static/frame/basemap.js" in served and "gridworkBasemap(" in served
    standalone = offline_map(area, asset_mode="inline").get_root().render()
    assert "gridworkBasemap(" not in standalone
