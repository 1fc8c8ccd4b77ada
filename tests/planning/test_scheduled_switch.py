"""A plan published with a future effective date changes nothing until that date (issue 16):
/locate, the grid map, the oversize report, every household's grid and the workers stay as
they were; on the date the periodic task switches, in one transaction, audited; a server that
was down across the date switches when it starts again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import care_tasks
from api.state import app_state
from data.db import make_engine
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app, sign_in

COMMUNITY = "131208"
PLANNER = Account("t-cplanner", Role.planner, ((ScopeLevel.community, COMMUNITY),))
ADMIN = Account("t-sadmin", Role.admin)
TODAY = date(2026, 12, 6)
POINT = {"lon": -8.6205, "lat": 41.1465}


class Clock:
    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, 4, 0, tzinfo=UTC)


@pytest.fixture
def engine(server_url: str) -> Iterator[Engine]:
    url = database(server_url, "gridwork_test_plan_switch", "porto_grids")
    eng = make_engine(url)
    add_accounts(eng, [PLANNER, ADMIN])
    yield eng
    eng.dispose()


def _app(engine: Engine, clock: Clock) -> FastAPI:
    app = make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0)
    app_state(app).clock = clock
    return app


def _state(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "grids": conn.execute(
                text(
                    "SELECT g.id, g.code, g.worker_id FROM grid g JOIN community c ON "
                    "c.id = g.community_id WHERE c.code = :c AND g.valid_to IS NULL ORDER BY g.id"
                ),
                {"c": COMMUNITY},
            ).all(),
            "households": conn.execute(text("SELECT id, grid_id FROM household ORDER BY id")).all(),
        }


def _same_map(html: str) -> str:
    """The map page without folium's random element ids."""
    return re.sub(r"_[0-9a-f]{32}", "", html)


def _publish_ahead(client: TestClient, days: int) -> tuple[dict[str, Any], date]:
    r = client.post("/plans", json={"community": COMMUNITY})
    assert r.status_code == 201, r.text
    plan = r.json()
    effective = TODAY + timedelta(days=days)
    r = client.post(f"/plans/{plan['id']}/publish", json={"effective": effective.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["scheduled"] is True
    return plan, effective


def test_future_date_changes_nothing_until_the_periodic_task_reaches_it(engine: Engine) -> None:
    clock = Clock(TODAY)
    app = _app(engine, clock)
    before = _state(engine)
    old_codes = {code for _, code, _ in before["grids"]}
    with TestClient(app) as client:
        client.headers.update(sign_in(client, PLANNER.username))
        admin = sign_in(client, ADMIN.username)
        located = client.get("/locate", params=POINT, headers=admin).json()
        oversize = client.get("/communities/oversize").json()
        grid_map = client.get("/maps/grids", headers=admin)
        assert grid_map.status_code == 200
        plan, effective = _publish_ahead(client, 30)

        # Nothing changed: grids, workers, households, /locate, the report, the map.
        assert _state(engine) == before
        assert client.get("/locate", params=POINT, headers=admin).json() == located
        assert client.get("/communities/oversize").json() == oversize
        assert _same_map(client.get("/maps/grids", headers=admin).text) == _same_map(grid_map.text)
        eve = client.get("/grids/on", params={**POINT, "date": str(effective - timedelta(1))})
        assert eve.json()["grid"] == located["grid"]
        summary = client.get(f"/plans/{plan['id']}").json()
        assert summary["scheduled"] is True and summary["effective"] == effective.isoformat()
        # A second plan cannot be published over one that waits for its date.
        other = client.post("/plans", json={"community": COMMUNITY, "seed": 2}).json()
        r = client.post(f"/plans/{other['id']}/publish", json={"effective": "2027-02-01"})
        assert r.status_code == 409 and r.json()["field"] == "plan"

        # The day before: the tick leaves everything as it is.
        clock.day = effective - timedelta(days=1)
        assert care_tasks.run_once(app, purge_now=False)["plans_switched"] == 0
        assert _state(engine) == before

        # The day itself: the tick switches once.
        clock.day = effective
        assert care_tasks.run_once(app, purge_now=False)["plans_switched"] == 1
        assert care_tasks.run_once(app, purge_now=False)["plans_switched"] == 0
        after = _state(engine)
        new_codes = {code for _, code, _ in after["grids"]}
        assert len(after["grids"]) == len(plan["grids"])
        assert not new_codes & old_codes, "an old code was reused for a new shape"
        assert after["households"] != before["households"]
        moved = client.get("/locate", params=POINT, headers=admin).json()
        assert moved["grid"] in new_codes
        assert client.get("/communities/oversize").json() != oversize
        on = client.get("/grids/on", params={**POINT, "date": effective.isoformat()}).json()
        assert on["grid"] == moved["grid"]
        summary = client.get(f"/plans/{plan['id']}").json()
        assert summary["scheduled"] is False and summary["switched_at"]
        lineage = client.get(f"/plans/{plan['id']}/lineage").json()["lineage"]
        assert {row["old"] for row in lineage} == old_codes
        assert {row["new"] for row in lineage} == new_codes
    with engine.connect() as conn:
        audit = conn.execute(
            text(
                "SELECT actor, reason, role FROM audit_log WHERE method = 'SWITCH' "
                "AND :p = ANY(subject_ids)"
            ),
            {"p": str(plan["id"])},
        ).all()
    assert len(audit) == 1 and audit[0][0] == "gridwork (scheduled)"
    assert audit[0][2] == "system"


def test_a_restart_across_the_date_still_switches(engine: Engine) -> None:
    clock = Clock(TODAY)
    before = _state(engine)
    with TestClient(_app(engine, clock)) as client:
        client.headers.update(sign_in(client, PLANNER.username))
        plan, effective = _publish_ahead(client, 30)
    assert _state(engine) == before
    # The server is down on the date; a new process starts three days later.
    later = Clock(effective + timedelta(days=3))
    with TestClient(_app(engine, later)) as client:
        client.headers.update(sign_in(client, PLANNER.username))
        summary = client.get(f"/plans/{plan['id']}").json()
        assert summary["switched_at"] is not None
        on = client.get("/grids/on", params={**POINT, "date": effective.isoformat()}).json()
        assert on["valid_from"] == effective.isoformat()
    assert _state(engine)["grids"] != before["grids"]


def test_a_scheduled_plan_can_be_withdrawn(engine: Engine) -> None:
    clock = Clock(TODAY)
    app = _app(engine, clock)
    with TestClient(app) as client:
        client.headers.update(sign_in(client, PLANNER.username))
        plan, effective = _publish_ahead(client, 10)
        r = client.post(f"/plans/{plan['id']}/withdraw")
        assert r.status_code == 200 and r.json()["status"] == "draft"
        clock.day = effective
        assert care_tasks.run_once(app, purge_now=False)["plans_switched"] == 0
