"""Schemathesis against our own OpenAPI: generated requests to every operation, no 5xx.

Runs as an admin (sees every row, passes every role check; device routes with a device key)
against the Porto sample, with few examples per operation and a per-example deadline. Its time
grows with the operations: 78–123 s on one worker for 121 of them on the 2-CPU development
VM (``pytest -n 2 --dist loadfile tests/api/test_schemathesis.py``).

The admin's generated requests really create, change and delete rows, so they go to a copy
of the Porto database of their own, not to the one the other API tests read.

The OGC API at /ogc (tipg, with its own OpenAPI document served at /ogc/api) gets the same
treatment: its document is fuzzed too, with the collection ids narrowed to the five layers so
that the generated requests reach the query parameters (filter, datetime, ids, offset, limit
…) rather than stopping at "no such collection".

The schema is read from an app built without a database (its OpenAPI does not need one).
``schemathesis.pytest.from_fixture`` would be the natural loader, but it sets a private pytest
attribute that pytest 9 no longer has.

The operations are parametrized with pytest's own ``parametrize``, each fuzzed by hypothesis
inside its test. ``schema.parametrize()`` made one item per operation only in a serial run: in
an xdist worker (``make test`` runs ``-n 2``) it collected a single item per test that fuzzed
``/health`` and ``/ogc/`` and nothing else, so CI checked two operations of 121.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
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


FUZZ = settings(
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
    derandomize=True,
)


def _operations(loaded: schemathesis.BaseSchema) -> list[Any]:
    """Every operation of ``loaded``, as pytest parameters named by method and path.

    An operation schemathesis cannot read stops the collection, rather than going unfuzzed.
    """
    params = []
    for result in loaded.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        params.append(pytest.param(result.ok(), id=result.ok().label))
    return params


def _fuzz(operation: Any, examples: int, call: Callable[[Any], None]) -> None:
    """Generate ``examples`` requests for ``operation`` and ``call`` each (hypothesis shrinks)."""

    @settings(FUZZ, max_examples=examples)
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        call(case)

    run()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("operation", _operations(schema))
def test_no_operation_answers_5xx(
    operation: Any, fuzz_app: tuple[FastAPI, dict[str, dict[str, str]]]
) -> None:
    app, headers = fuzz_app

    def call(case: Any) -> None:
        who = "device" if case.path.startswith("/ingest/") else "admin"
        case.call_and_validate(app=app, headers=headers[who], checks=[not_a_server_error])

    _fuzz(operation, 15, call)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("operation", _operations(ogc_schema))
def test_no_ogc_operation_answers_5xx(
    operation: Any, fuzz_app: tuple[FastAPI, dict[str, dict[str, str]]]
) -> None:
    app, headers = fuzz_app

    def call(case: Any) -> None:
        case.call_and_validate(app=app, headers=headers["admin"], checks=[not_a_server_error])

    _fuzz(operation, 25, call)


def test_every_operation_is_a_test_of_its_own(request: pytest.FixtureRequest) -> None:
    """Each fuzzing item is one operation, under xdist too (see the module's note): the old
    parametrization collected one item per test there, with no operation of its own. Read
    from what was collected, so ``-k`` choosing a few operations still passes."""
    fuzzing = (test_no_operation_answers_5xx.__name__, test_no_ogc_operation_answers_5xx.__name__)
    items = [item for item in request.session.items if getattr(item, "originalname", "") in fuzzing]
    if not items:
        pytest.skip("the fuzzing tests were not chosen")
    for item in items:
        assert "operation" in getattr(item, "callspec", SimpleNamespace(params={})).params, item
