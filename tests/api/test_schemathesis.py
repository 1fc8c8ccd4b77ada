"""Schemathesis against our own OpenAPI: generated requests to every operation, no 5xx.

Runs as an admin (sees every row, passes every role check; device routes with a device key)
against the Porto sample, with few examples per operation and a per-example deadline, so the
run stays within about a minute however many routes the app grows.

The admin's generated requests really create, change and delete rows, so they go to a copy
of the Porto database of their own, not to the one the other API tests read.

The OGC API at /ogc (tipg, with its own OpenAPI document served at /ogc/api) gets the same
treatment: its document is fuzzed too, with the collection ids narrowed to the five layers so
that the generated requests reach the query parameters (filter, datetime, ids, offset, limit
…) rather than stopping at "no such collection".

The schema is read from an app built without a database (its OpenAPI does not need one).
``schemathesis.pytest.from_fixture`` would be the natural loader, but it sets a private pytest
attribute that pytest 9 no longer has.
"""

from __future__ import annotations

import copy
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
from api.state import app_state
from data.db import make_engine
from data.models import Role
from tests.api.conftest import make_settings
from tests.api.test_ogc import LAYERS
from tests.factory import Account, add_accounts, add_key, database, make_app, sign_in

_UNUSED = "postgresql+psycopg://unused@127.0.0.1:1/unused"
_OFFLINE_APP = create_app(make_settings(_UNUSED), engine=create_engine(_UNUSED))
schema = schemathesis.openapi.from_dict(_OFFLINE_APP.openapi())
OGC_LAYERS = sorted(LAYERS)  # what /ogc serves (tests/api/test_ogc.py checks the set)


def _ogc_document() -> dict[str, Any]:
    """What /ogc/api serves, mounted at /ogc, with ``collectionId`` one of the layers."""
    document = copy.deepcopy(app_state(_OFFLINE_APP).ogc.openapi())
    document["servers"] = [{"url": "/ogc"}]
    for operation in (op for path in document["paths"].values() for op in path.values()):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "collectionId" and parameter["in"] == "path":
                parameter["schema"] = {"type": "string", "enum": OGC_LAYERS}
    return document


ogc_schema = schemathesis.openapi.from_dict(_ogc_document())


@pytest.fixture(scope="module")
def fuzz_app(server_url: str) -> Iterator[tuple[FastAPI, dict[str, dict[str, str]]]]:
    """An app over a fresh copy of Porto, with an admin's token and a device's key."""
    engine = make_engine(database(server_url, "gridwork_test_fuzz", "porto"))
    try:
        add_accounts(engine, [Account("fuzz-admin", Role.admin)])
        key = add_key(engine, "fuzz-watch", Role.device)
        app = make_app(engine)
        with TestClient(app) as client:
            yield app, {"admin": sign_in(client, "fuzz-admin"), "device": {"X-API-Key": key}}
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


@pytest.mark.timeout(60)
@ogc_schema.parametrize()
@settings(
    max_examples=25,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
    derandomize=True,
)
def test_no_ogc_operation_answers_5xx(
    case: Any, fuzz_app: tuple[FastAPI, dict[str, dict[str, str]]]
) -> None:
    app, headers = fuzz_app
    case.call_and_validate(app=app, headers=headers["admin"], checks=[not_a_server_error])
