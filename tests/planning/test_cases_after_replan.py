"""An open case goes with its grid to the grid's new worker. A case is routed to the worker
of the grid it lies in; when a planner gives the grid another worker (the grid's own page, or
the worker step after a published plan), the case used to stay with the old worker, who no
longer had the grid and so could not even open it: the case sat with nobody who could act."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from data.db import make_engine, transaction
from data.district.workers import link_worker_account
from data.importing.loading import import_file
from data.models import Role, ScopeLevel
from tests.data.porto_grids import write_grid_files
from tests.factory import Account, add_accounts, database, make_app, sign_in
from tests.incidents.conftest import inside

COMMUNITY = "131208"
GRID = "131208-G02"
PLANNER = Account("h-planner", Role.planner, ((ScopeLevel.community, COMMUNITY),))
#: The two workers sign in with the areas of their worker records only (no grid scope rows),
#: as an account linked to a worker record does.
OLD = Account("h-old", Role.grid_worker)
NEW = Account("h-new", Role.grid_worker)


@pytest.fixture
def engine(server_url: str) -> Iterator[Engine]:
    eng = make_engine(database(server_url, "gridwork_test_cases_replan", "porto_grids"))
    add_accounts(eng, [PLANNER, OLD, NEW])
    with transaction(eng) as session:
        link_worker_account(session, "W-" + GRID, OLD.username)
        link_worker_account(session, "W-131208-G03", NEW.username)
    yield eng
    eng.dispose()


def _report_and_accept(client: TestClient, engine: Engine, who: dict[str, str]) -> int:
    lon, lat = inside(engine, GRID)
    body = {"category": "leaking_pipe", "lon": lon, "lat": lat, "description": "water on road"}
    r = client.post("/cases", json=body, headers=who)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["assignee"] == OLD.username
    r = client.post(f"/cases/{case['id']}/accept", headers=who)
    assert r.status_code == 200, r.text
    return int(case["id"])


def _mine(client: TestClient, who: dict[str, str]) -> set[int]:
    page = client.get("/cases", params={"mine": "true"}, headers=who)
    assert page.status_code == 200, page.text
    return {c["id"] for c in page.json()["cases"]}


def _handed_over(client: TestClient, who: dict[str, str], case_id: int) -> dict[str, Any]:
    r = client.get(f"/cases/{case_id}", headers=who)
    assert r.status_code == 200, r.text
    case = r.json()
    assert case["assignee"] == NEW.username
    assert case["status"] == "new"  # theirs to accept
    last = case["history"][-1]
    assert last["kind"] == "handed_over" and last["actor"] == PLANNER.username
    assert last["from_status"] == "accepted" and last["to_status"] == "new"
    notices = client.get("/cases/notices", headers=who).json()["notices"]
    assert case_id in {n["case_id"] for n in notices}
    return case


#: Nothing listens there: the test reads what was queued for it.
HOOK = "http://127.0.0.1:9/cases"


def test_a_case_follows_its_grid_to_the_worker_a_planner_names(engine: Engine) -> None:
    app = make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0, case_webhook_url=HOOK)
    with TestClient(app) as client:
        planner = sign_in(client, PLANNER.username)
        old, new = sign_in(client, OLD.username), sign_in(client, NEW.username)
        case_id = _report_and_accept(client, engine, old)
        r = client.patch(f"/grids/{GRID}", json={"worker_code": "W-131208-G03"}, headers=planner)
        assert r.status_code == 200, r.text
        case = _handed_over(client, new, case_id)
        assert case["history"][-1]["note"] == GRID
        assert case_id in _mine(client, new)
        # The case webhook hears of it, as of an escalation (a dispatcher's copy follows).
        with engine.connect() as conn:
            told = conn.execute(
                text(
                    "SELECT payload FROM webhook_outbox WHERE case_id = :c AND url = :u "
                    "ORDER BY id DESC LIMIT 1"
                ),
                {"c": case_id, "u": HOOK},
            ).scalar_one()
        assert (told["event"], told["reason"], told["grid"]) == ("handed_over", GRID, GRID)
        # The old worker no longer holds the grid: the case is not theirs to see any more.
        assert client.get(f"/cases/{case_id}", headers=old).status_code == 404


def test_a_case_follows_the_replan_to_the_worker_confirmed_on_its_new_grid(
    engine: Engine,
) -> None:
    app = make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0)
    with TestClient(app) as client:
        planner = sign_in(client, PLANNER.username)
        old, new = sign_in(client, OLD.username), sign_in(client, NEW.username)
        case_id = _report_and_accept(client, engine, old)
        kept = _report_and_accept(client, engine, old)
        r = client.post(f"/cases/{kept}/resolve", json={"note": "fixed"}, headers=old)
        assert r.status_code == 200, r.text
        plan = client.post("/plans", json={"community": COMMUNITY}, headers=planner).json()
        r = client.post(
            f"/plans/{plan['id']}/publish",
            json={"effective": date.today().isoformat()},
            headers=planner,
        )
        assert r.status_code == 200, r.text
        # The planner gives every new grid to the other worker.
        with engine.connect() as conn:
            theirs = conn.execute(text("SELECT id FROM worker WHERE code = 'W-131208-G03'"))
            new_worker = int(theirs.scalar_one())
        step = client.get(f"/plans/{plan['id']}/workers", headers=planner).json()["grids"]
        choice = {g["code"]: new_worker for g in step}
        r = client.post(f"/plans/{plan['id']}/workers", json={"workers": choice}, headers=planner)
        assert r.status_code == 200, r.text
        # The plan's map labels each grid with the code it has since the switch.
        grids = client.get(f"/plans/{plan['id']}/grids", headers=planner).json()["features"]
        assert {g["properties"]["published_code"] for g in grids} == set(choice)
        case = _handed_over(client, new, case_id)
        assert case["grid"] in choice and case["grid"] != GRID
        assert case["history"][-1]["note"] == case["grid"]
        old = sign_in(client, OLD.username)  # a new sign-in: nothing cached
        assert case_id not in _mine(client, old)
        # A resolved case stays as it was: nobody has anything left to do on it.
        with engine.connect() as conn:
            holder = conn.execute(
                text(
                    "SELECT u.username FROM incident_case c JOIN app_user u "
                    "ON u.id = c.assignee_id WHERE c.id = :id"
                ),
                {"id": kept},
            ).scalar_one()
        assert holder == OLD.username


def test_a_case_follows_its_grid_to_the_worker_a_grid_import_names(
    engine: Engine, tmp_path: Path
) -> None:
    """The street office's grid file, imported again with another worker for a grid: the
    grid's open cases go to that worker, as when a planner names one on a page."""
    app = make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0)
    with TestClient(app) as client:
        old, new = sign_in(client, OLD.username), sign_in(client, NEW.username)
        case_id = _report_and_accept(client, engine, old)
        with engine.connect() as conn:
            grids = gpd.read_postgis(
                text(
                    "SELECT g.code, c.code AS community_code, w.code AS worker_code, g.geom "
                    "FROM grid g JOIN community c ON c.id = g.community_id "
                    "JOIN worker w ON w.id = g.worker_id WHERE g.valid_to IS NULL ORDER BY g.code"
                ),
                conn,
                geom_col="geom",
                crs=4326,
            )
        grids.loc[grids["code"] == GRID, "worker_code"] = "W-131208-G03"
        _, path = write_grid_files(tmp_path, grids.rename_geometry("geometry"))
        import_file(engine, "grids", path, layer="grids", id_field="code")
        case = client.get(f"/cases/{case_id}", headers=new).json()
        assert case["assignee"] == NEW.username and case["status"] == "new"
        last = case["history"][-1]
        assert (last["kind"], last["actor"], last["note"]) == (
            "handed_over",
            "gridwork (grid import)",
            GRID,
        )


def _deadlines(conn: Connection, *case_ids: int) -> list[datetime]:
    """The cases' deadlines, in the order asked."""
    due: dict[int, datetime] = dict(
        conn.execute(
            text("SELECT id, due_at FROM incident_case WHERE id = ANY(:ids)"),
            {"ids": list(case_ids)},
        ).all()
    )
    return [due[c] for c in case_ids]


def test_a_handed_over_case_leaves_its_new_worker_at_least_the_grids_hours(
    engine: Engine,
) -> None:
    """A case an hour from its deadline, handed over, was sent up by the sweep an hour later,
    before its new worker could have seen it. It now has the grid level's hours again; a case
    with more time left keeps its deadline."""
    app = make_app(engine, snap_tolerance_m=0.0, care_tick_seconds=0)
    with TestClient(app) as client:
        planner = sign_in(client, PLANNER.username)
        old, new = sign_in(client, OLD.username), sign_in(client, NEW.username)
        tight, roomy = (_report_and_accept(client, engine, old) for _ in range(2))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE incident_case SET due_at = CASE id WHEN :t THEN now() + interval "
                    "'1 hour' ELSE now() + interval '30 days' END WHERE id IN (:t, :r)"
                ),
                {"t": tight, "r": roomy},
            )
            hours = conn.execute(
                text("SELECT hours_grid FROM incident_category WHERE code = 'leaking_pipe'")
            ).scalar_one()
            before = _deadlines(conn, tight, roomy)
        r = client.patch(f"/grids/{GRID}", json={"worker_code": "W-131208-G03"}, headers=planner)
        assert r.status_code == 200, r.text
        with engine.connect() as conn:
            now = conn.execute(text("SELECT now()")).scalar_one()
            due, kept = _deadlines(conn, tight, roomy)
        assert hours > 1
        assert abs((due - now).total_seconds() - hours * 3600) < 120, (due, now, hours)
        assert kept == before[1]
        for case_id in (tight, roomy):
            _handed_over(client, new, case_id)
