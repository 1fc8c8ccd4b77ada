"""Porto with test grids (tests/factory.py ``porto_grids``) and the people of the case flow:
the worker of grid 131208-G01 (their account linked to the grid's worker record), the
community coordinator of 131208, the street coordinator of PORTO-CH, the water department's
account, a worker of another parish, care staff, and an admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import make_engine, transaction
from data.district.workers import link_worker_account
from data.incidents.queries import save_department
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app, sign_in

PEOPLE: dict[str, Account] = {
    "admin": Account("c-admin", Role.admin),
    "worker": Account("c-worker", Role.grid_worker, ((ScopeLevel.grid, "131208-G01"),)),
    "other_worker": Account("c-worker2", Role.grid_worker, ((ScopeLevel.grid, "131213-G01"),)),
    "community": Account("c-community", Role.coordinator, ((ScopeLevel.community, "131208"),)),
    "street": Account("c-street", Role.coordinator, ((ScopeLevel.street, "PORTO-CH"),)),
    "water": Account("c-water", Role.department, ((ScopeLevel.street, "PORTO-CH"),)),
    "care": Account("c-care", Role.care_staff, ((ScopeLevel.community, "131208"),)),
    "planner": Account("c-planner", Role.planner, ((ScopeLevel.street, "PORTO-CH"),)),
}


@pytest.fixture(scope="session")
def cases_engine(server_url: str) -> Iterator[Engine]:
    url = database(server_url, "gridwork_test_cases", "porto_grids")
    engine = make_engine(url)
    add_accounts(engine, PEOPLE.values())
    with transaction(engine) as session:
        link_worker_account(session, "W-131208-G01", "c-worker")
        link_worker_account(session, "W-131213-G01", "c-worker2")
        save_department(session, "WATER", "供水", "Water supply", "c-water")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def cases_app(cases_engine: Engine) -> FastAPI:
    return make_app(cases_engine, care_tick_seconds=0)


@pytest.fixture(scope="session")
def client(cases_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(cases_app) as c:
        yield c


@pytest.fixture(scope="session")
def auth(client: TestClient) -> dict[str, dict[str, str]]:
    return {who: sign_in(client, a.username) for who, a in PEOPLE.items()}


def inside(engine: Engine, grid_code: str) -> tuple[float, float]:
    """A point inside a current grid (lon, lat)."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid "
                "WHERE code = :c AND valid_to IS NULL) s"
            ),
            {"c": grid_code},
        ).one()
    return float(row[0]), float(row[1])
