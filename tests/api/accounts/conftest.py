"""An app over Porto with test grids and worker records, and exactly one administrator, so
that the pages' rule about the last administrator can be tried. Its own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from data.db import make_engine
from data.models import Role, ScopeLevel
from tests.factory import Account, add_accounts, database, make_app

ADMIN = Account("a-admin", Role.admin)
COORDINATOR = Account("a-coordinator", Role.coordinator, ((ScopeLevel.community, "131208"),))


@pytest.fixture(scope="module")
def accounts_engine(server_url: str) -> Iterator[Engine]:
    engine = make_engine(database(server_url, "gridwork_test_account_pages", "porto_grids"))
    add_accounts(engine, [ADMIN, COORDINATOR])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def accounts_app(accounts_engine: Engine) -> FastAPI:
    return make_app(accounts_engine)
