"""An elder's home grid follows their household (migration 0036): when a planner's new grids
or a move put the household in another grid, alerts name and reach that grid's worker, and
the old grid's worker no longer holds the elder. It used to stay the grid of enrolment. A
zone drawn around the old home is not moved with it: the elder's page says the home lies
outside it."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.care.conftest import HOME_CODE, HOME_GRID, District, enrol, osmand


def _home_grid(care: Engine, elder_id: int) -> str:
    with care.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT g.code FROM elder e JOIN grid g ON g.id = e.home_grid_id "
                    "WHERE e.id = :e"
                ),
                {"e": elder_id},
            ).scalar_one()
        )


def test_an_elder_is_homed_in_the_grid_their_household_is_reassigned_to(
    client: TestClient, staff: dict[str, dict[str, str]], care: Engine, district: District
) -> None:
    elder = enrol(client, staff["care_staff"], "watch-moved")
    assert _home_grid(care, elder["id"]) == HOME_GRID
    street = district.grids[district.grids["code"].str.startswith("S01-")]
    other = street[street["code"] != HOME_GRID].iloc[0]
    spot = other.geometry.representative_point()
    moved = client.patch(
        f"/households/{HOME_CODE}", json={"lon": spot.x, "lat": spot.y}, headers=staff["admin"]
    )
    assert moved.status_code == 200, moved.text
    try:
        assert _home_grid(care, elder["id"]) == other["code"]
        # The watch's SOS at the new home: the alert's home grid is the new one, its worker
        # is called; the old grid's worker no longer has the elder in their list.
        r = osmand(
            client, elder["api_key"], "watch-moved", spot.x, spot.y, datetime.now(UTC),
            alarm="sos",
        )  # fmt: skip
        assert r.status_code == 200, r.text
        alerts = client.get("/alerts", headers=staff["admin"]).json()["alerts"]
        sos = next(a for a in alerts if a["elder_id"] == elder["id"] and a["kind"] == "sos")
        assert sos["home_grid_code"] == other["code"]
        called = {r["worker_code"] for r in sos["recipients"]}
        assert district.worker_of(other["code"]) in called
        assert district.worker_of(HOME_GRID) not in called
        mine = client.get("/elders", headers=staff["home_worker"]).json()["elders"]
        assert elder["id"] not in {e["id"] for e in mine}
        # The zone was drawn around the old home: the elder's page says so, and where to
        # draw it again (every fix at the new home counts as leaving it).
        assert WARNING in _elder_page(client, staff["admin"], elder["id"])
    finally:
        back = client.patch(
            f"/households/{HOME_CODE}",
            json={"lon": district.home_lon, "lat": district.home_lat},
            headers=staff["admin"],
        )
        assert back.status_code == 200, back.text
    assert _home_grid(care, elder["id"]) == HOME_GRID
    assert WARNING not in _elder_page(client, staff["admin"], elder["id"])


WARNING = "The home is outside this safe zone"


def _elder_page(client: TestClient, headers: dict[str, str], elder_id: int) -> str:
    page = client.get(
        f"/app/elders/{elder_id}",
        headers={**headers, "Accept": "text/html", "Accept-Language": "en"},
    )
    assert page.status_code == 200, page.text[:300]
    return page.text
