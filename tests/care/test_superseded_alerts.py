"""Zone alerts supersede each other: an elder who goes out and comes back twice leaves one
open item for staff (the last return), not four; the others are closed by gridwork, and an
alert of another kind (an SOS) is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.care.conftest import District, enrol, osmand

NOW = datetime.now(UTC).replace(microsecond=0)


def test_two_excursions_leave_the_last_return_open(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-twice")
    zone = {"kind": "circle", "lon": district.home_lon, "lat": district.home_lat, "radius_m": 100}
    r = client.put(f"/elders/{elder['id']}/zone", json=zone, headers=staff["care_staff"])
    assert r.status_code == 200, r.text
    home, out = (
        (district.home_lon, district.home_lat),
        (district.home_lon + 0.003, district.home_lat),
    )
    walk = [home, out, home, out, home]
    for n, (lon, lat) in enumerate(walk):
        extra = {"alarm": "sos"} if n == 1 else {}
        at = NOW - timedelta(minutes=10 - n)
        r = osmand(client, elder["api_key"], "watch-twice", lon, lat, at, **extra)
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text

    def listed(status: str) -> list[tuple[str, str | None]]:
        r = client.get("/alerts", params={"status": status}, headers=staff["care_staff"])
        alerts = [a for a in r.json()["alerts"] if a["elder_id"] == elder["id"]]
        return sorted((a["kind"], a["closed_by"]) for a in alerts)

    assert listed("open") == [("returned", None), ("sos", None)]
    assert listed("closed") == [
        ("left_zone", "gridwork"),
        ("left_zone", "gridwork"),
        ("returned", "gridwork"),
    ]
    # The elder's page says who closed them in words: 'by itself', not the account 'gridwork'.
    for lang, word in (("en", "by itself"), ("zh-CN", "自动")):
        headers = staff["care_staff"] | {"Accept": "text/html", "Accept-Language": lang}
        page = client.get(f"/app/elders/{elder['id']}", headers=headers).text
        assert page.count(f"({word})") == 3 and "(gridwork)" not in page, lang
