"""A grid worker keeps their grid's households when a planner redraws the community: their
account named the old grid by its code, which a published plan closes (new grids get new
codes); the grids whose worker record is theirs are their area too, so once the planner
confirms them on a new grid (the worker step), that grid is theirs. It used to leave them
with nothing: an empty register, no map, no alerts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import make_engine, transaction
from data.district.workers import link_worker_account
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app, sign_in

COMMUNITY = "131208"
OLD_GRID = "131208-G02"
PLANNER = Account("r-planner", Role.planner, ((ScopeLevel.community, COMMUNITY),))
WORKER = Account("r-worker", Role.grid_worker, ((ScopeLevel.grid, OLD_GRID),))
ADMIN = Account("r-admin", Role.admin)


@pytest.fixture
def engine(server_url: str) -> Iterator[Engine]:
    eng = make_engine(database(server_url, "gridwork_test_worker_replan", "porto_grids"))
    add_accounts(eng, [PLANNER, WORKER, ADMIN])
    with transaction(eng) as session:
        link_worker_account(session, "W-" + OLD_GRID, WORKER.username)
    yield eng
    eng.dispose()


def _households_of(client: TestClient, headers: dict[str, str], grid: str) -> int:
    r = client.get(f"/grids/{grid}/households", headers=headers, params={"limit": 1000})
    assert r.status_code == 200, (grid, r.status_code, r.text[:300])
    return len(r.json()["households"])


def test_a_grid_worker_keeps_their_households_after_the_community_is_redrawn(
    engine: Engine,
) -> None:
    app = make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0)
    with TestClient(app) as client:
        planner = sign_in(client, PLANNER.username)
        worker = sign_in(client, WORKER.username)
        before = _households_of(client, worker, OLD_GRID)
        assert before > 0
        plan = client.post("/plans", json={"community": COMMUNITY}, headers=planner).json()
        r = client.post(
            f"/plans/{plan['id']}/publish",
            json={"effective": date.today().isoformat()},
            headers=planner,
        )
        assert r.status_code == 200, r.text
        # The planner confirms the suggested workers (the worker step after publishing).
        step = client.get(f"/plans/{plan['id']}/workers", headers=planner).json()["grids"]
        choice = {g["code"]: g["suggested_id"] for g in step}
        r = client.post(f"/plans/{plan['id']}/workers", json={"workers": choice}, headers=planner)
        assert r.status_code == 200, r.text
        with engine.connect() as conn:
            theirs = (
                conn.execute(
                    text(
                        "SELECT g.code FROM grid g JOIN worker w ON w.id = g.worker_id "
                        "WHERE w.code = :w AND g.valid_to IS NULL ORDER BY g.code"
                    ),
                    {"w": "W-" + OLD_GRID},
                )
                .scalars()
                .all()
            )
        assert theirs and OLD_GRID not in theirs  # new codes, and this worker has some
        worker = sign_in(client, WORKER.username)  # a new sign-in: nothing cached
        assert sum(_households_of(client, worker, g) for g in theirs) > 0
        # … and the register page opens on them.
        page = client.get("/app/households", headers={**worker, "Accept": "text/html"})
        assert page.status_code == 200 and theirs[0] in page.text
        # The administrator's page of the account says the grid it names is closed, and
        # which grids its worker record holds now.
        admin = {**sign_in(client, ADMIN.username), "Accept": "text/html", "Accept-Language": "en"}
        account = client.get(f"/app/accounts/{WORKER.username}", headers=admin).text
        assert "closed: a published plan replaced this grid" in account
        assert f"Grids of this worker record now: {', '.join(theirs)}." in account
