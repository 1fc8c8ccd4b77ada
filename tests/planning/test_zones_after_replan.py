"""An elder's default safe zone, "home grid grown by 200 m", is the grid they live in after a
planner publishes new grids; it used to keep the shape of the closed grid, so the elder could
walk streets of their new grid and raise "left the zone", or leave it unnoticed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import make_engine
from data.models import Role, ScopeLevel
from tests.care.conftest import CONSENT
from tests.factory import Account, add_accounts, database, make_app, sign_in

COMMUNITY = "131208"
PLANNER = Account("z-planner", Role.planner, ((ScopeLevel.community, COMMUNITY),))
CARE = Account("z-care", Role.care_staff, ((ScopeLevel.community, COMMUNITY),))

#: How far the stored zone lies from the home grid grown by 200 m, in metres (the metric CRS
#: the deployment chose; a redraw is within rounding of it).
DRIFT_SQL = """
SELECT ST_HausdorffDistance(ST_Transform(z.geom, s.epsg),
                            ST_Buffer(ST_Transform(g.geom, s.epsg), 200, 16)),
       g.code, z.kind::text
FROM elder e JOIN safe_zone z ON z.elder_id = e.id JOIN grid g ON g.id = e.home_grid_id,
     (SELECT value::int AS epsg FROM deployment_setting WHERE key = 'metric_epsg') s
WHERE e.id = :e
"""


@pytest.fixture
def engine(server_url: str) -> Iterator[Engine]:
    eng = make_engine(database(server_url, "gridwork_test_zones_replan", "porto_grids"))
    add_accounts(eng, [PLANNER, CARE])
    yield eng
    eng.dispose()


def _drift(engine: Engine, elder_id: int) -> tuple[float, str, str]:
    with engine.connect() as conn:
        row = conn.execute(text(DRIFT_SQL), {"e": elder_id}).one()
    return float(row[0]), str(row[1]), str(row[2])


def test_the_home_grid_zone_is_the_new_home_grid_after_a_published_plan(engine: Engine) -> None:
    app = make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0)
    with TestClient(app) as client:
        planner, care = sign_in(client, PLANNER.username), sign_in(client, CARE.username)
        with engine.connect() as conn:
            # a household in the middle of the community: its grid changes shape in any plan
            household = conn.execute(
                text(
                    "SELECT h.code FROM household h JOIN grid g ON g.id = h.grid_id "
                    "WHERE g.code = :g ORDER BY h.code LIMIT 1"
                ),
                {"g": f"{COMMUNITY}-G03"},
            ).scalar_one()
        body = {
            "display_name": "Elder of watch-replan",
            "household_code": household,
            "device": {"device_id": "watch-replan", "datum": "wgs84"},
            "consent": CONSENT,
        }
        r = client.post("/elders", json=body, headers=care)
        assert r.status_code == 201, r.text
        elder = r.json()["id"]
        drift, before, kind = _drift(engine, elder)
        assert kind == "home_grid" and drift < 1.0  # drawn at enrolment

        plan = client.post("/plans", json={"community": COMMUNITY, "seed": 2}, headers=planner)
        assert plan.status_code == 201, plan.text
        r = client.post(
            f"/plans/{plan.json()['id']}/publish",
            json={"effective": date.today().isoformat()},
            headers=planner,
        )
        assert r.status_code == 200, r.text
        assert r.json()["zones_redrawn"] >= 1
        drift, after, kind = _drift(engine, elder)
        assert after != before  # a new grid (new code): the closed one is history
        assert kind == "home_grid" and drift < 1.0, (drift, after)
