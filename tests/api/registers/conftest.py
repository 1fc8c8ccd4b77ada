"""An app over Porto with test grids, their households and worker records: a grid worker
linked to the worker of grid 131208-G02, care staff and a coordinator of parish 131208.
Its own database (the pages write households)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from data.db import make_engine, transaction
from data.district.workers import link_worker_account
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app

AREA = ((ScopeLevel.community, "131208"),)
WORKER = Account("h-worker", Role.grid_worker, AREA)
CARE = Account("h-care", Role.care_staff, AREA)
COORDINATOR = Account("h-coordinator", Role.coordinator, AREA)
WORKED_GRID = "131208-G02"


@pytest.fixture(scope="module")
def households_engine(server_url: str) -> Iterator[Engine]:
    engine = make_engine(database(server_url, "gridwork_test_household_pages", "porto_grids"))
    add_accounts(engine, [WORKER, CARE, COORDINATOR])
    with transaction(engine) as session:
        link_worker_account(session, "W-" + WORKED_GRID, WORKER.username)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def households_app(households_engine: Engine) -> FastAPI:
    return make_app(households_engine)
