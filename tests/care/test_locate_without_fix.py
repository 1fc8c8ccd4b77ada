"""The locate page before the watch's first fix: instead of no map at all, the map of the
elder's home and safe zone, with a word saying there is no position yet; once a fix is
stored, the page is the usual one (the fix, no such word)."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import Engine

from tests.care.conftest import District, enrol, osmand

NO_FIX = "The watch has not sent any position yet."
MAP_INSTEAD = "Until it does, the map shows the elder's home and safe zone."
DATA = re.compile(r'<script id="gw-data" type="application/json">(.*?)</script>', re.S)


def _locate(client: TestClient, headers: dict[str, str], elder_id: int) -> tuple[str, Any]:
    """The page (unescaped) and the data its map is drawn from."""
    r = client.get(
        f"/app/elders/{elder_id}/locate?why=welfare",
        headers={**headers, "Accept-Language": "en"},
    )
    assert r.status_code == 200, r.text
    found = DATA.search(r.text)
    assert found is not None, "the page starts no map"
    return html.unescape(r.text), json.loads(found.group(1))


def test_before_the_first_fix_the_map_shows_home_and_zone(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-nofix")
    page, data = _locate(client, staff["care_staff"], elder["id"])
    assert NO_FIX in page and MAP_INSTEAD in page and 'id="gw-map"' in page
    assert data["fix"] is None and data["trail"] == [] and data["facilities"] == []
    # The home is the household's point, inside the safe zone enrolment drew around it.
    assert data["home"] == pytest.approx([district.home_lon, district.home_lat], abs=1e-6)
    zone = shape(data["zone"])
    assert zone.area > 0 and zone.contains(shapely.Point(data["home"]))

    sent = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    lon, lat = data["home"]
    r = osmand(client, elder["api_key"], elder["device_id"], lon, lat, sent)
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    page, data = _locate(client, staff["care_staff"], elder["id"])
    assert NO_FIX not in page and MAP_INSTEAD not in page and "Last position" in page
    assert data["fix"] is not None and data["zone"] is not None
