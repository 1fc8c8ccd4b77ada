"""An app over Porto with test grids (each parish cut in five), and staff of every role.

Its own database: the shared Porto database stays grid-free for the other tests. Areas:
the planner has the whole street, the coordinator parish 131208 (Miragaia), the grid worker
grid 131208-G01, care staff parish 131213 (São Nicolau); "nobody" is a coordinator without
an area; the device is an API key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from data.db import make_engine
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, add_key, database, make_app, sign_in

STAFF: dict[str, Account] = {
    "admin": Account("g-admin", Role.admin),
    "planner": Account("g-planner", Role.planner, ((ScopeLevel.street, "PORTO-CH"),)),
    "coordinator": Account("g-coordinator", Role.coordinator, ((ScopeLevel.community, "131208"),)),
    "grid_worker": Account("g-worker", Role.grid_worker, ((ScopeLevel.grid, "131208-G01"),)),
    "care_staff": Account("g-care", Role.care_staff, ((ScopeLevel.community, "131213"),)),
    "nobody": Account("g-nobody", Role.coordinator),
}


@pytest.fixture(scope="session")
def gridded_url(server_url: str) -> str:
    """A copy of the ``porto_grids`` template (tests/factory.py) with the staff above."""
    url = database(server_url, "gridwork_test_assign_api", "porto_grids")
    engine = make_engine(url)
    try:
        add_accounts(engine, STAFF.values())
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def gridded_engine(gridded_url: str) -> Iterator[Engine]:
    engine = make_engine(gridded_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def device_key(gridded_engine: Engine) -> str:
    return add_key(gridded_engine, "g-watch", Role.device)


@pytest.fixture(scope="session")
def gridded_app(gridded_engine: Engine) -> FastAPI:
    return make_app(gridded_engine)


@pytest.fixture(scope="session")
def anon(gridded_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(gridded_app) as client:
        yield client


@pytest.fixture(scope="session")
def auth(anon: TestClient, device_key: str) -> dict[str, dict[str, str]]:
    """Request headers per role name."""
    headers = {who: sign_in(anon, account.username) for who, account in STAFF.items()}
    headers["device"] = {"X-API-Key": device_key}
    return headers


@pytest.fixture(scope="session")
def admin(gridded_app: FastAPI, auth: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    with TestClient(gridded_app, headers=auth["admin"]) as client:
        yield client
