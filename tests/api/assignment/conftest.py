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

from api.app import create_app
from api.security import hash_password
from data.access.queries import add_scope, create_api_key, create_user
from data.db import make_engine, transaction
from data.models import Role, ScopeLevel
from tests.api.conftest import PASSWORD, make_settings
from tests.conftest import own_database
from tests.data.porto_grids import load_gridded_porto

STAFF: dict[str, tuple[str, Role, tuple[tuple[ScopeLevel, str], ...]]] = {
    "admin": ("g-admin", Role.admin, ()),
    "planner": ("g-planner", Role.planner, ((ScopeLevel.street, "PORTO-CH"),)),
    "coordinator": ("g-coordinator", Role.coordinator, ((ScopeLevel.community, "131208"),)),
    "grid_worker": ("g-worker", Role.grid_worker, ((ScopeLevel.grid, "131208-G01"),)),
    "care_staff": ("g-care", Role.care_staff, ((ScopeLevel.community, "131213"),)),
    "nobody": ("g-nobody", Role.coordinator, ()),
}


@pytest.fixture(scope="session")
def gridded_url(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = own_database(server_url, "gridwork_test_assign_api")
    engine = make_engine(url)
    try:
        load_gridded_porto(engine, url, tmp_path_factory.mktemp("api-grids"))
        with transaction(engine) as session:
            for username, role, scopes in STAFF.values():
                create_user(session, username, hash_password(PASSWORD), role)
                for level, code in scopes:
                    add_scope(session, username, level, code)
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
    with transaction(gridded_engine) as session:
        return create_api_key(session, "g-watch", Role.device)


@pytest.fixture(scope="session")
def gridded_app(gridded_engine: Engine, gridded_url: str) -> FastAPI:
    return create_app(make_settings(gridded_url), engine=gridded_engine)


@pytest.fixture(scope="session")
def anon(gridded_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(gridded_app) as client:
        yield client


@pytest.fixture(scope="session")
def auth(anon: TestClient, device_key: str) -> dict[str, dict[str, str]]:
    """Request headers per role name."""
    headers = {}
    for who, (username, _, _) in STAFF.items():
        r = anon.post("/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers[who] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    headers["device"] = {"X-API-Key": device_key}
    return headers


@pytest.fixture(scope="session")
def admin(gridded_app: FastAPI, auth: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    with TestClient(gridded_app, headers=auth["admin"]) as client:
        yield client
