"""The alerts inbox on a phone: the open alerts first, then only the last closed ones, folded
away. An elder who wanders out and back again and again closed alert after alert (each zone
alert closes the one before); twenty of them made the page 5,000 px long on a phone."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from api.routers.care_pages import CLOSED_SHOWN
from tests.care.conftest import District, enrol, osmand

NOW = datetime.now(UTC).replace(microsecond=0)
PAGE = {"Accept": "text/html", "Accept-Language": "en"}


def _data(client: TestClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    r = client.get("/app/alerts" + query, headers={**headers, **PAGE})
    assert r.status_code == 200, r.text
    found = re.search(r'<script id="gw-data" type="application/json">(.*?)</script>', r.text)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_the_inbox_keeps_the_last_closed_alerts_folded_below_the_open_ones(
    client: TestClient, staff: dict[str, dict[str, str]], district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-wanderer")
    zone = {"kind": "circle", "lon": district.home_lon, "lat": district.home_lat, "radius_m": 100}
    r = client.put(f"/elders/{elder['id']}/zone", json=zone, headers=staff["care_staff"])
    assert r.status_code == 200, r.text
    home = (district.home_lon, district.home_lat)
    out = (district.home_lon + 0.003, district.home_lat)
    walk = [home] + [out, home] * 7  # seven excursions: fourteen zone alerts
    for n, (lon, lat) in enumerate(walk):
        at = NOW - timedelta(minutes=30 - n)
        r = osmand(client, elder["api_key"], "watch-wanderer", lon, lat, at)
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text

    data = _data(client, staff["care_staff"])
    mine = [a for a in data["alerts"] if a["elder_id"] == elder["id"]]
    assert [(a["kind"], a["status"]) for a in mine] == [("returned", "open")]  # the one item
    # Back home, the current grid's worker is the home grid's: called once, not twice.
    assert [r["code"] for r in mine[0]["recipients"]] == [district.worker_of(mine[0]["grid_code"])]
    closed = data["closed"]
    assert len(closed) == CLOSED_SHOWN < 13  # thirteen were closed: the newest ten are shown
    assert all(a["status"] == "closed" for a in closed)
    assert [a["id"] for a in closed] == sorted((a["id"] for a in closed), reverse=True)
    # The fold's words; the script counts its cards (tests/browser/test_care_console.py).
    assert data["labels"]["closed_lately"] == "Closed lately: __N__"
    assert data["done"] is None

    # Closing one from the page comes back to the inbox naming it, to unfold and mark it.
    returned = mine[0]["id"]
    r = client.post(
        f"/app/alerts/{returned}/close",
        data={"note": "home, checked"},
        headers=staff["care_staff"],
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/app/alerts?done={returned}"
    data = _data(client, staff["care_staff"], f"?done={returned}")
    assert data["done"] == returned and data["closed"][0]["id"] == returned
    assert not [a for a in data["alerts"] if a["elder_id"] == elder["id"]]
