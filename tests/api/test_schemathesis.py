"""Schemathesis against our own OpenAPI: generated requests to every operation, no 5xx.

Runs as an admin (sees every row, passes every role check; device routes with a device key)
against the Porto sample, with few examples per operation and a per-example deadline, so the
run stays within about a minute however many routes the app grows.

The admin's generated requests really create, change and delete rows, so they go to a copy
of the Porto database of their own, not to the one the other API tests read.

The schema is read from an app built without a database (its OpenAPI does not need one).
``schemathesis.pytest.from_fixture`` would be the natural loader, but it sets a private pytest
attribute that pytest 9 no longer has.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import create_engine

from api.app import create_app
from api.security import hash_password
from data.access.queries import create_api_key, create_user
from data.db import make_engine, transaction
from data.importing.loading import load_porto
from data.models import Role
from data.settings import Settings
from tests.api.conftest import PASSWORD, make_settings
from tests.conftest import own_database

_UNUSED = "postgresql+psycopg://unused@127.0.0.1:1/unused"
schema = schemathesis.openapi.from_dict(
    create_app(make_settings(_UNUSED), engine=create_engine(_UNUSED)).openapi()
)


@pytest.fixture(scope="module")
def fuzz_app(server_url: str) -> Iterator[tuple[FastAPI, dict[str, dict[str, str]]]]:
    """An app over a fresh copy of Porto, with an admin's token and a device's key."""
    url = own_database(server_url, "gridwork_test_fuzz")
    engine = make_engine(url)
    try:
        list(load_porto(engine, settings=Settings(database_url=url)))
        with transaction(engine) as session:
            create_user(session, "fuzz-admin", hash_password(PASSWORD), Role.admin)
            key = create_api_key(session, "fuzz-watch", Role.device)
        app = create_app(make_settings(url), engine=engine)
        with TestClient(app) as client:
            r = client.post("/token", data={"username": "fuzz-admin", "password": PASSWORD})
            token = r.json()["access_token"]
            yield app, {"admin": {"Authorization": f"Bearer {token}"}, "device": {"X-API-Key": key}}
    finally:
        engine.dispose()


@pytest.mark.timeout(60)
@schema.parametrize()
@settings(
    max_examples=15,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
    derandomize=True,
)
def test_no_operation_answers_5xx(
    case: Any, fuzz_app: tuple[FastAPI, dict[str, dict[str, str]]]
) -> None:
    app, headers = fuzz_app
    who = "device" if case.path.startswith("/ingest/") else "admin"
    case.call_and_validate(app=app, headers=headers[who], checks=[not_a_server_error])
