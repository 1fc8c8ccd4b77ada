"""Every JSON route of the routers below documents what it answers, and every JSON body is
strict: the OpenAPI document is what a client generates its code from, so an answer shown as
a bare ``object`` or a body that silently drops a misspelt field is a defect.

Read from the app's own document (an app built without a database, as the schemathesis run
does), then tried over HTTP: a body with a field the route does not know is refused, naming it.
"""

from __future__ import annotations

import typing
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import create_engine

from api.app import create_app
from api.schemas import StrictModel
from tests.api.conftest import make_settings
from tests.policy.routes import walk

#: The routers whose answers and bodies are typed (api/schemas/…); others are on their way.
TYPED_ROUTERS = frozenset(
    f"api.routers.{name}"
    for name in [
        "assign",
        "auth",
        "checks",
        "grids",
        "layers",
        "points",
        "admin",
        "alerts",
        "basemap",
        "cases",
        "elders",
        "plans",
    ]
)

_UNUSED = "postgresql+psycopg://unused@127.0.0.1:1/unused"
_APP = create_app(make_settings(_UNUSED), engine=create_engine(_UNUSED))
DOCUMENT = _APP.openapi()


def _operations() -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every documented operation of the typed routers."""
    found: list[tuple[str, str, APIRoute]] = []
    for path, route in walk(_APP.routes):
        if route.endpoint.__module__ not in TYPED_ROUTERS or not route.include_in_schema:
            continue
        found.extend((method, path, route) for method in sorted(route.methods or ()))
    return found


OPERATIONS = _operations()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _shapeless(schema: dict[str, Any]) -> list[str]:
    """Why an answer's schema says nothing about its shape (empty: it says enough)."""
    schema = _resolve(schema)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return [why for alternative in alternatives for why in _shapeless(alternative)]
    if schema.get("type") == "array":
        return _shapeless(schema.get("items", {}))
    if not schema.get("properties"):
        return [f"a bare {schema.get('type', 'value')} ({schema.get('title', 'untitled')})"]
    return []


def _operation(method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][path][method.lower()]
    return operation


def test_the_typed_routers_are_all_found() -> None:
    """A typo in the list above, or a router walk that finds nothing, would make the tests
    below pass on nothing."""
    modules = {route.endpoint.__module__ for _, _, route in OPERATIONS}
    assert modules == TYPED_ROUTERS
    assert len(OPERATIONS) >= 40
    assert len(ANSWERING) == len(OPERATIONS) - 3  # the three DELETEs answer 204


def _successes(method: str, path: str) -> dict[str, Any]:
    responses: dict[str, Any] = _operation(method, path)["responses"]
    return {code: response for code, response in responses.items() if code.startswith("2")}


#: Operations that answer with a body: all but those documented as "204 No Content" only.
ANSWERING = [(m, p) for m, p, _ in OPERATIONS if set(_successes(m, p)) != {"204"}]


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in OPERATIONS])
def test_every_operation_documents_its_success(method: str, path: str) -> None:
    assert _successes(method, path), f"{method} {path} documents no successful answer"


def _pages_only(method: str, path: str) -> bool:
    """An operation answering an HTML page only (a map): no JSON to give a shape to."""
    types = {t for r in _successes(method, path).values() for t in r.get("content", {})}
    return types == {"text/html"}


@pytest.mark.parametrize(("method", "path"), [a for a in ANSWERING if not _pages_only(*a)])
def test_every_json_answer_has_a_shape(method: str, path: str) -> None:
    for code, response in _successes(method, path).items():
        json_types = {t: c for t, c in response.get("content", {}).items() if _is_json(t)}
        assert json_types, f"{method} {path} {code}: no JSON answer documented"
        for media_type, content in json_types.items():
            assert "schema" in content, f"{method} {path} {code} {media_type}: no schema"
            assert not _shapeless(content["schema"]), (
                f"{method} {path} {code} {media_type}: {_shapeless(content['schema'])}"
            )


def _json_bodies() -> list[tuple[str, str, APIRoute]]:
    return [
        (method, path, route)
        for method, path, route in OPERATIONS
        if any(
            _is_json(t) for t in _operation(method, path).get("requestBody", {}).get("content", {})
        )
    ]


JSON_BODIES = _json_bodies()


def test_there_are_json_bodies_to_check() -> None:
    assert {(m, p) for m, p, _ in JSON_BODIES} >= {
        ("POST", "/assign"),
        ("PATCH", "/grids/{code}"),
        ("POST", "/households"),
        ("PATCH", "/incidents/{source_id}"),
    }


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in JSON_BODIES])
def test_every_json_body_refuses_unknown_fields_in_the_document(method: str, path: str) -> None:
    content = _operation(method, path)["requestBody"]["content"]
    for media_type, body in content.items():
        if not _is_json(media_type):
            continue
        # An optional body, or one of several (a discriminated union): each one is strict.
        whole = _resolve(body["schema"])
        for alternative in whole.get("anyOf") or whole.get("oneOf") or [whole]:
            schema = _resolve(alternative)
            if schema.get("type") == "null":
                continue
            assert schema.get("additionalProperties") is False, (
                f"{method} {path}: body {schema.get('title')} allows fields it does not name"
            )


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in JSON_BODIES])
def test_every_json_body_model_is_a_strict_model(method: str, path: str) -> None:
    route = next(r for m, p, r in JSON_BODIES if (m, p) == (method, path))
    for param in route.dependant.body_params:
        # A body may be optional or one of several (``ZoneIn``): every one must be strict.
        for model in typing.get_args(param.field_info.annotation) or [param.field_info.annotation]:
            if model is type(None):
                continue
            assert isinstance(model, type) and issubclass(model, BaseModel), model
            assert issubclass(model, StrictModel), f"{method} {path}: {model.__name__} not strict"


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in JSON_BODIES])
def test_a_misspelt_field_is_refused_by_name(
    porto_client: TestClient, method: str, path: str
) -> None:
    """What a client sees: an admin (who passes every role check) sends a body with a field
    the route does not have; the answer is 422 naming that field, before anything is done."""
    url = path.replace("{code}", "NO-SUCH-GRID").replace("{source_id}", "no-such-row")
    # A body that is one of several is told apart by its tag first: name one.
    tagged = {"kind": "home_grid"} if path == "/elders/{elder_id}/zone" else {}
    r = porto_client.request(method, url, json={**tagged, "houshold_size": 3})
    assert r.status_code == 422, r.text
    problem = r.json()
    field = f"{tagged['kind']}.houshold_size" if tagged else "houshold_size"  # tag first
    assert {"field": field, "reason": "Extra inputs are not permitted"} in problem["errors"]
