"""Hostile input answers a clear 4xx, never a 5xx: strict bodies, deep JSON, huge polygons,
unicode and NUL in codes, and the ingest rate limit.

The routes taking a body, a code and an ingest call live only in this test's own app (the
real app's middleware, error table and database), so the defences are tested before the
routes that will need them exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

import pytest
from fastapi import Depends, FastAPI, File, Form, UploadFile
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.deps import SessionDep
from api.hardening import MAX_JSON_DEPTH, ingest_limit
from api.schemas import GeoJSONGeometry, StrictModel
from api.security import CurrentPrincipal, authenticated
from geo.errors import NotFound
from tests.api.conftest import bearer, make_settings


class GridIn(StrictModel):
    code: str
    households: int
    geometry: GeoJSONGeometry


@pytest.fixture(scope="module")
def app(porto_engine: Engine, porto_url: str, porto_staff: dict[str, str]) -> FastAPI:
    app = create_app(make_settings(porto_url, ingest_per_minute=3), engine=porto_engine)

    @app.post("/test/grids")
    def create_grid(grid: GridIn) -> dict[str, Any]:
        return {"code": grid.code, "households": grid.households}

    @app.get("/test/communities/{code}")
    def community(code: str, session: SessionDep) -> dict[str, str]:
        name = session.execute(
            text("SELECT name FROM community WHERE code = :code"), {"code": code}
        ).scalar_one_or_none()
        if name is None:
            raise NotFound(f"no community '{code}' in your area", field="code")
        return {"code": code, "name": name}

    @app.post("/test/upload")
    async def upload(
        note: Annotated[str, Form()], photo: Annotated[UploadFile, File()]
    ) -> dict[str, Any]:
        return {"note": note, "bytes": len(await photo.read())}

    @app.post("/test/ingest", dependencies=[Depends(authenticated), Depends(ingest_limit)])
    def ingest(principal: CurrentPrincipal) -> dict[str, str]:
        return {"accepted": principal.name}

    return app


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def admin(client: TestClient) -> dict[str, str]:
    """A token signed by this app's key (every test app has its own)."""
    return bearer(client, "admin")


SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


def test_a_strict_body_is_accepted_and_stripped(client: TestClient) -> None:
    r = client.post("/test/grids", json={"code": "  G-01 ", "households": 160, "geometry": SQUARE})
    assert r.status_code == 200, r.text
    assert r.json() == {"code": "G-01", "households": 160}


def test_unknown_field_is_refused_by_name(client: TestClient) -> None:
    body = {"code": "G-01", "households": 160, "geometry": SQUARE, "housholds": 170}
    r = client.post("/test/grids", json=body)
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"] == [{"field": "housholds", "reason": "Extra inputs are not permitted"}]
    assert "housholds" in problem["detail"]


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("path", ["/test/grids", "/token"])
def test_deeply_nested_json_is_a_clear_422(client: TestClient, path: str) -> None:
    r = client.post(path, content=_nested(100_000), headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"] == f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels"


def test_nesting_inside_a_field_is_caught_too(client: TestClient) -> None:
    deep = b'{"code": "G", "households": 1, "geometry": ' + _nested(5000) + b"}"
    r = client.post("/test/grids", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "nested deeper" in r.json()["detail"]


def test_brackets_inside_strings_do_not_count(client: TestClient) -> None:
    body = {"code": "[" * 500 + '\\"{', "households": 1, "geometry": SQUARE}
    r = client.post("/test/grids", json=body)
    assert r.status_code == 200, r.text


def test_a_polygon_with_a_million_vertices_is_refused(client: TestClient) -> None:
    ring = b"[" + b"[8,41]," * 999_999 + b"[8,41]]"
    payload = b'{"code":"G","households":1,"geometry":{"type":"Polygon","coordinates":[%s]}}'
    payload %= ring
    assert len(payload) < 10 * 1024 * 1024  # under the body limit: the vertex guard answers
    json_type = {"Content-Type": "application/json"}
    r = client.post("/test/grids", content=payload, headers=json_type)
    assert r.status_code == 413
    assert r.json()["field"] == "geometry"
    assert "vertices" in r.json()["detail"]
    spaced = payload.replace(b",", b",   ")  # the same polygon, over the body limit
    assert client.post("/test/grids", content=spaced, headers=json_type).status_code == 413


def test_nul_in_a_json_string_is_refused(client: TestClient) -> None:
    r = client.post("/test/grids", json={"code": "G\x00", "households": 1, "geometry": SQUARE})
    assert r.status_code == 422
    assert "NUL" in r.json()["detail"]
    literal = {"code": "G\\u0000", "households": 1, "geometry": SQUARE}  # backslash, then text
    assert client.post("/test/grids", json=literal).status_code == 200


CODES = [
    "😀",
    "\u202e802131",  # right-to-left override, then a real code
    "١٣١٢٠٨",  # Arabic-Indic digits
    "社区-01",
    "131208\x00",
    "\x00",
    "%ED%A0%80",  # an encoded lone surrogate: not UTF-8
    "' OR '1'='1",
    "a" * 5000,
]


@pytest.mark.parametrize("code", CODES)
def test_unicode_in_codes_is_a_clean_404_or_422(
    client: TestClient, admin: dict[str, str], code: str
) -> None:
    path = code if code.startswith("%") else quote(code, safe="")
    r = client.get(f"/test/communities/{path}")
    assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"] == "application/problem+json"
    r = client.get("/audit", params={"actor": code}, headers=admin)
    assert r.status_code in (200, 422), r.text
    r = client.get("/communities", params={"bbox": code}, headers=admin)
    assert r.status_code == 422


def test_a_real_code_is_found(client: TestClient) -> None:
    assert client.get("/test/communities/131208").json()["name"] == "Miragaia"


def test_nul_in_a_query_parameter_names_the_parameter(
    client: TestClient, admin: dict[str, str]
) -> None:
    r = client.get("/audit", params={"actor": "t-admin\x00"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["field"] == "actor"


@pytest.mark.parametrize("path", ["/token", "/login"])
def test_nul_in_a_form_field_names_the_field(client: TestClient, path: str) -> None:
    """The sign-in (API and page) reads a URL-encoded form; a NUL there once reached the
    database and answered 500 (schemathesis found it on POST /token)."""
    r = client.post(path, data={"username": "t-admin\x00", "password": "x"})
    assert r.status_code == 422
    assert r.json()["field"] == "username"
    assert "NUL" in r.json()["detail"]


def test_nul_in_a_multipart_text_field_names_the_field(client: TestClient) -> None:
    """The pages' forms that may carry a file are multipart: a NUL in the elder's name reached
    the database and answered 500. A file may hold any byte, and is passed on whole."""
    photo = bytes(range(256)) * 4  # zero bytes and all: a JPEG holds many
    r = client.post("/test/upload", data={"note": "a\x00b"}, files={"photo": ("p.jpg", photo)})
    assert r.status_code == 422
    assert r.json()["field"] == "note"
    assert "NUL" in r.json()["detail"]
    note = {"note": "网格员已出发"}
    r = client.post("/test/upload", data=note, files={"photo": ("p.jpg", photo)})
    assert r.status_code == 200
    assert r.json() == {"note": "网格员已出发", "bytes": len(photo)}


def test_a_form_with_another_control_character_reaches_the_sign_in(client: TestClient) -> None:
    r = client.post("/token", data={"username": "t-admin\x01", "password": "x"})
    assert r.status_code == 401


def test_ingest_is_rate_limited_per_caller(
    client: TestClient, tokens: dict[str, dict[str, str]], admin: dict[str, str]
) -> None:
    codes = [client.post("/test/ingest", headers=tokens["device"]).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = client.post("/test/ingest", headers=tokens["device"]).json()
    assert limited["field"] == "ingest"
    # Another caller from the same address still gets through: the limit is per caller.
    assert client.post("/test/ingest", headers=admin).status_code == 200


def test_ingest_refuses_anonymous_callers_before_counting(client: TestClient) -> None:
    assert client.post("/test/ingest").status_code == 401
