"""``/grids/on`` names a grid of the past to the planner who holds its community: after a
plan is published, yesterday's grid is no current grid of anyone's, yet it was a grid of the
community the planner holds (data.policy.sees_grid), so it is named; a worker scoped to one
of today's grids is not told about it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import make_engine
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app, signed_in

COMMUNITY = "131208"
PLANNER = Account("pg-planner", Role.planner, ((ScopeLevel.community, COMMUNITY),))


@pytest.fixture(scope="module")
def engine(server_url: str) -> Iterator[Engine]:
    url = database(server_url, "gridwork_test_past_grids", "porto_grids")
    eng = make_engine(url)
    add_accounts(eng, [PLANNER])
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def planner(engine: Engine) -> Iterator[TestClient]:
    with signed_in(make_app(engine), PLANNER.username) as client:
        yield client


def test_the_community_planner_is_told_yesterdays_grid(planner: TestClient, engine: Engine) -> None:
    with engine.connect() as conn:
        code, lon, lat = conn.execute(
            text(
                "SELECT g.code, ST_X(p), ST_Y(p) FROM (SELECT g.code, ST_PointOnSurface(g.geom) p "
                "FROM grid g JOIN community c ON c.id = g.community_id WHERE c.code = :c "
                "AND g.valid_to IS NULL ORDER BY g.code LIMIT 1) g"
            ),
            {"c": COMMUNITY},
        ).one()
    today = date.today()
    with engine.begin() as conn:  # the sample's grids were drawn a year ago
        conn.execute(text("UPDATE grid SET valid_from = valid_from - 365"))
    plan = planner.post("/plans", json={"community": COMMUNITY, "seed": 5})
    assert plan.status_code == 201, plan.text
    r = planner.post(f"/plans/{plan.json()['id']}/publish", json={"effective": str(today)})
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        retired = conn.execute(
            text("SELECT valid_to IS NOT NULL FROM grid WHERE code = :c ORDER BY id LIMIT 1"),
            {"c": code},
        ).scalar_one()
    assert retired  # yesterday's grid is a grid of the past now

    point = {"lon": lon, "lat": lat}
    yesterday = planner.get("/grids/on", params={**point, "date": str(today - timedelta(1))})
    assert yesterday.status_code == 200, yesterday.text
    assert yesterday.json()["grid"] == code
