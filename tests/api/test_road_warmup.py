"""The walking graph is built as the app starts, so the first coverage page does not wait,
and the coverage page shows its progress sign only while a graph is still to be built."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.state import app_state
from tests.factory import app_settings, sign_in
from tests.gridded import Gridded

BROWSER = {"Accept": "text/html", "Accept-Language": "en"}


def test_the_walking_graph_is_built_when_the_app_starts(strips: Gridded) -> None:
    app = create_app(app_settings(strips.url))  # its own engine, as `gridwork serve` runs
    with TestClient(app) as client:
        state = app_state(app)
        assert state.road_warmup.wait(120), "the start-up build did not finish"
        cache = state.network_cache
        assert cache.builds == 1  # before any request asked for it
        headers = {**sign_in(client, "g-coordinator"), **BROWSER}
        page = client.get("/maps/coverage", headers=headers)
        assert 'data-building="false"' in page.text  # no progress sign: nothing to wait for
        r = client.get("/coverage", params={"kind": "pharmacy", "minutes": 5}, headers=headers)
        assert r.status_code == 200, r.text
        assert cache.builds == 1  # the first coverage request found it built


def test_without_a_start_up_build_the_page_shows_progress_until_one_is_built(
    strips_app: FastAPI,
) -> None:
    with TestClient(strips_app) as client:  # handed an engine: builds on first use
        headers = {**sign_in(client, "g-coordinator"), **BROWSER}
        cache = app_state(strips_app).network_cache
        assert cache.builds == 0
        page = client.get("/maps/coverage", headers=headers).text
        assert 'data-building="true"' in page
        client.get("/coverage", params={"kind": "pharmacy", "minutes": 5}, headers=headers)
        assert cache.builds == 1
        page = client.get("/maps/coverage?kind=pharmacy&minutes=5", headers=headers).text
        assert 'data-building="false"' in page
