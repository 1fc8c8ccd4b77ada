"""Pages a newcomer opens: home, the hierarchy map and the API docs, all working offline."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from maps.base import external_urls


def test_home_lists_the_communities_and_links_the_map(porto_client: TestClient) -> None:
    page = porto_client.get("/", headers={"Accept-Language": "en"}).text
    for name in ("Miragaia", "São Nicolau", "Sé", "Vitória"):
        assert name in page
    assert 'href="/maps/hierarchy"' in page
    assert "OpenStreetMap contributors" in page


def test_hierarchy_map_is_offline_and_shows_the_parishes(porto_client: TestClient) -> None:
    r = porto_client.get("/maps/hierarchy")
    assert r.status_code == 200
    assert external_urls(r.text) == []
    assert "Miragaia" in r.text and "© OpenStreetMap contributors" in r.text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
        assert porto_client.get(asset).status_code == 200, asset


def test_docs_are_served_without_a_cdn(porto_client: TestClient) -> None:
    page = porto_client.get("/docs").text
    assert external_urls(page) == []
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert porto_client.get(asset).status_code == 200, asset


def test_checks_report_no_issue_and_the_ungridded_parishes(porto_client: TestClient) -> None:
    body = porto_client.get("/checks").json()
    assert body["count"] == 0
    assert len(body["ungridded"]) == 4
    assert porto_client.get("/checks?format=geojson").json()["type"] == "FeatureCollection"
