"""The issue's done-when: recorded walks replayed through the OsmAnd protocol, end to end.

A GPX walk leaves the home's safe zone and comes back: every fix lands in the grid
``geo.assignment.index`` gives it, exactly one exit alert goes to the worker of the grid the elder
left into and to the home grid's worker, and the trail map works offline. The same walk sent
in WGS-84, GCJ-02 and BD-09 lands in the same grids every time; GCJ-02 read as WGS-84 does not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyproj
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.state import app_state
from geo.care.datum import from_wgs84
from geo.care.safezone import DEFAULT_EXIT_MARGIN_M, SafeZone
from maps.base import external_urls
from tests.care.conftest import EPSG, HOME_GRID, District, enrol, osmand
from tests.gpx import parse_gpx, walk_gpx

GEOD = pyproj.Geod(ellps="WGS84")


def _walk(district: District, *, east_deg: float = 0.03, steps: int = 40) -> np.ndarray:
    """From home due east and back: (lon, lat) rows, about 58 m apart."""
    out = np.linspace(district.home_lon, district.home_lon + east_deg, steps + 1)
    lon = np.concatenate([out, out[-2::-1]])
    return np.column_stack([lon, np.full(len(lon), district.home_lat)])


def _stored(engine: Engine, device: str) -> list[tuple[float, float, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_X(p.geom), ST_Y(p.geom), g.code FROM position p "
                "JOIN device d ON d.id = p.device_id LEFT JOIN grid g ON g.id = p.grid_id "
                "WHERE d.device_code = :d ORDER BY p.time"
            ),
            {"d": device},
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def test_a_recorded_walk_leaving_the_zone_raises_one_exit_alert_to_the_right_workers(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-walk")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    track = parse_gpx(walk_gpx(_walk(district), start, 30.0, name="lost walk"))
    for lon, lat, when in track:
        r = osmand(client, elder["api_key"], "watch-walk", lon, lat, when, batt=80, accuracy=8)
        assert r.status_code == 200, r.text
        assert r.json() == {"stored": 1, "duplicates": 0}

    lons = np.array([p[0] for p in track])
    lats = np.array([p[1] for p in track])
    expected = district.grid_codes(lons, lats)
    stored = _stored(care, "watch-walk")
    assert [s[2] for s in stored] == expected
    assert len(set(expected)) >= 5, "the walk should cross several grids"

    # Where the zone logic must say "left": the first fix 10 m beyond home grid + 200 m.
    home = district.grids.set_index("code").to_crs(EPSG).loc[HOME_GRID, "geometry"]
    zone = SafeZone.around_grid(home, buffer_m=200)
    xy = pyproj.Transformer.from_crs(4326, EPSG, always_xy=True).transform(lons, lats)
    outside = [zone.signed_distance(x, y) > DEFAULT_EXIT_MARGIN_M for x, y in zip(*xy, strict=True)]
    first_out = outside.index(True)

    drill = {"reason": "lost elder drill"}
    alerts = client.get("/alerts", headers=staff["admin"], params=drill)
    assert alerts.status_code == 200
    # Back home, the exit alert closed by itself: the return is what is left open.
    assert [a["kind"] for a in alerts.json()["alerts"]] == ["returned"]
    closed = client.get("/alerts", headers=staff["admin"], params=drill | {"status": "closed"})
    [left] = [a for a in closed.json()["alerts"] if a["kind"] == "left_zone"]
    assert left["closed_by"] == "gridwork"
    assert left["grid_code"] == expected[first_out]
    assert left["home_grid_code"] == HOME_GRID
    assert left["event_time"] == track[first_out][2].isoformat()
    assert (left["lon"], left["lat"]) == (stored[first_out][0], stored[first_out][1])
    assert {(r["worker_code"], r["reason"]) for r in left["recipients"]} == {
        (district.worker_of(expected[first_out]), "current_grid"),
        (district.worker_of(HOME_GRID), "home_grid"),
    }
    assert district.worker_of(expected[first_out]) != district.worker_of(HOME_GRID)

    page = client.get(
        f"/elders/{elder['id']}/trail/map",
        params={"hours": 6, "reason": "lost elder drill"},
        headers=staff["care_staff"],
    )
    assert page.status_code == 200
    assert external_urls(page.text) == []
    # in the deployment's language (zh_CN) and local time, never UTC (issue 15)
    settings = app_state(client.app).settings  # type: ignore[arg-type]
    assert settings.locale == "zh_CN"
    assert "安全区" in page.text and "safe zone" not in page.text
    local = ZoneInfo(settings.timezone)
    first_time = track[0][2].astimezone(local).strftime("%Y-%m-%d %H:%M:%S")
    assert first_time in page.text
    assert track[0][2].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") not in page.text


def test_the_same_walk_in_wgs84_gcj02_and_bd09_lands_in_the_same_grids(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    walk = _walk(district)[:41]
    lon, lat = walk[:, 0], walk[:, 1]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    sent = {
        "wgs84": ("wgs84", (lon, lat)),
        "gcj02": ("gcj02", from_wgs84(lon, lat, "gcj02")),
        "bd09": ("bd09", from_wgs84(lon, lat, "bd09")),
        "naive": ("wgs84", from_wgs84(lon, lat, "gcj02")),  # GCJ-02 taken for WGS-84
    }
    for device, (datum, (x, y)) in sent.items():
        key = enrol(client, staff["care_staff"], f"watch-{device}", datum=datum)["api_key"]
        for i in range(len(x)):
            when = start + timedelta(seconds=30 * i)
            r = osmand(client, key, f"watch-{device}", float(x[i]), float(y[i]), when)
            assert r.status_code == 200, r.text

    truth = district.grid_codes(lon, lat)
    grids = {device: [s[2] for s in _stored(care, f"watch-{device}")] for device in sent}
    assert grids["wgs84"] == truth
    assert grids["gcj02"] == truth
    assert grids["bd09"] == truth
    wrong = sum(a != b for a, b in zip(grids["naive"], truth, strict=True))
    assert wrong >= len(truth) // 2, f"only {wrong} of {len(truth)} naive fixes moved grid"

    # The inverse is accurate to well under a metre, and far from the naive reading.
    for device in ("gcj02", "bd09", "naive"):
        stored = np.array([s[:2] for s in _stored(care, f"watch-{device}")])
        _, _, error = GEOD.inv(stored[:, 0], stored[:, 1], lon, lat)
        if device == "naive":
            assert float(np.min(error)) > 100
        else:
            assert float(np.max(error)) < 0.01

    loc = client.get(
        f"/elders/{_elder_of(care, 'watch-gcj02')}/location",
        params={"reason": "check the datum"},
        headers=staff["care_staff"],
    ).json()
    assert loc["device_datum"]["datum"] == "gcj02"
    gx, gy = sent["gcj02"][1]
    assert (
        shapely.Point(loc["device_datum"]["lon"], loc["device_datum"]["lat"]).distance(
            shapely.Point(gx[-1], gy[-1])
        )
        < 1e-7
    )
    assert loc["grid"]["code"] == truth[-1]


def _elder_of(engine: Engine, device: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT elder_id FROM device WHERE device_code = :d"), {"d": device}
            ).scalar_one()
        )
