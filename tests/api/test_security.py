"""Deny by default, roles, areas, tokens, audit and hardening, as an attacker sees them."""

from __future__ import annotations

import re
import time

import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.security import PUBLIC_ROUTES, SELF_AUTHENTICATED_PREFIXES
from api.state import app_state
from tests.api.conftest import PASSWORD, STAFF, make_settings


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, included routers flattened."""
    found = []
    for context in iter_route_contexts(app.routes):
        path, methods = context.path, getattr(context, "methods", None)
        if path is None or not methods or path.startswith("/static"):
            continue
        path = re.sub(r"\{[^}]+\}", "1", path)
        found += [(method, path) for method in sorted(methods) if method != "HEAD"]
    return found


def test_every_route_refuses_anonymous_callers_except_the_allow_list(
    porto_app: FastAPI, anonymous: TestClient
) -> None:
    routes = _routes(porto_app)
    assert len(routes) > 10, "the inventory found too few routes to mean anything"
    leaks = []
    for method, path in routes:
        if path in PUBLIC_ROUTES or path.startswith(SELF_AUTHENTICATED_PREFIXES):
            continue  # (Open311: tests/incidents/test_open311.py)
        r = anonymous.request(method, path)
        if r.status_code != 401:
            leaks.append((method, path, r.status_code))
    assert leaks == []


def test_public_home_page_shows_no_data_to_anonymous_callers(anonymous: TestClient) -> None:
    page = anonymous.get("/", headers={"Accept-Language": "en"}).text
    assert "Sign in" in page
    assert "Miragaia" not in page


# role × route: who may call what (device is an API key, the others bearer tokens)
ROLE_ROUTE = [
    (
        "GET",
        "/communities",
        {
            "admin": 200,
            "planner": 200,
            "coordinator": 200,
            "grid_worker": 200,
            "care_staff": 200,
            "device": 403,
        },
    ),
    (
        "GET",
        "/maps/hierarchy",
        {"admin": 200, "planner": 200, "coordinator": 200, "care_staff": 200, "device": 403},
    ),
    (
        "GET",
        "/checks",
        {
            "admin": 200,
            "planner": 200,
            "coordinator": 403,
            "grid_worker": 403,
            "care_staff": 403,
            "device": 403,
        },
    ),
    (
        "GET",
        "/audit",
        {
            "admin": 200,
            "planner": 403,
            "coordinator": 403,
            "grid_worker": 403,
            "care_staff": 403,
            "device": 403,
        },
    ),
    ("GET", "/me", {"admin": 200, "planner": 200, "device": 200}),
]


@pytest.mark.parametrize(
    ("method", "path", "expected"), ROLE_ROUTE, ids=[f"{m} {p}" for m, p, _ in ROLE_ROUTE]
)
def test_role_by_route(
    anonymous: TestClient,
    tokens: dict[str, dict[str, str]],
    method: str,
    path: str,
    expected: dict[str, int],
) -> None:
    got = {
        who: anonymous.request(method, path, headers=tokens[who]).status_code for who in expected
    }
    assert got == expected


def _codes(client: TestClient, headers: dict[str, str], layer: str) -> set[str]:
    body = client.get(f"/{layer}", params={"limit": 5000}, headers=headers).json()
    return {f["id"] for f in body["features"]}


def test_area_scope_filters_rows_in_the_query(
    anonymous: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    assert _codes(anonymous, tokens["admin"], "communities") == {
        "131208",
        "131213",
        "131214",
        "131215",
    }
    assert _codes(anonymous, tokens["planner"], "communities") == {
        "131208",
        "131213",
        "131214",
        "131215",
    }  # scoped to the whole street
    assert _codes(anonymous, tokens["coordinator"], "communities") == {"131208"}
    assert _codes(anonymous, tokens["coordinator"], "streets") == {"PORTO-CH"}
    assert _codes(anonymous, tokens["nobody"], "communities") == set()
    roads_all = len(_codes(anonymous, tokens["admin"], "roads"))
    roads_one = len(_codes(anonymous, tokens["coordinator"], "roads"))
    assert 0 < roads_one < roads_all


def test_map_shows_only_the_callers_area(
    anonymous: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    page = anonymous.get("/maps/hierarchy", headers=tokens["coordinator"]).text
    assert "Miragaia" in page
    assert "Vitória" not in page


def test_home_page_lists_only_the_callers_communities(
    anonymous: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    page = anonymous.get("/", headers=tokens["care_staff"]).text
    assert "São Nicolau" in page
    assert "Miragaia" not in page


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-jwt",
        "Bearer "
        + jwt.encode(
            {"sub": "t-admin", "role": "admin", "exp": 9_999_999_999},
            "someone-elses-secret-key-of-enough-length",
            algorithm="HS256",
        ),
        "Bearer "
        + jwt.encode(
            {"sub": "t-admin", "role": "admin", "exp": 9_999_999_999}, None, algorithm="none"
        ),
        "Basic dC1hZG1pbjpwYXNzd29yZA==",
    ],
)
def test_forged_or_malformed_credentials_are_refused(anonymous: TestClient, header: str) -> None:
    r = anonymous.get("/communities", headers={"Authorization": header})
    assert r.status_code == 401


def test_expired_token_is_refused(porto_app: FastAPI, anonymous: TestClient) -> None:
    key = app_state(porto_app).settings.signing_key()
    old = jwt.encode(
        {"sub": "t-admin", "role": "admin", "exp": int(time.time()) - 5}, key, algorithm="HS256"
    )
    r = anonymous.get("/communities", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_token_claiming_a_higher_role_gets_the_stored_role(
    porto_app: FastAPI, anonymous: TestClient
) -> None:
    key = app_state(porto_app).settings.signing_key()
    claim = jwt.encode(
        {"sub": "t-care", "role": "admin", "exp": int(time.time()) + 60}, key, algorithm="HS256"
    )
    assert anonymous.get("/audit", headers={"Authorization": f"Bearer {claim}"}).status_code == 403


def test_wrong_password_and_unknown_user_look_the_same(anonymous: TestClient) -> None:
    a = anonymous.post("/token", data={"username": "t-admin", "password": "wrong password!"})
    b = anonymous.post("/token", data={"username": "no-such-user", "password": "whatever pw"})
    assert (a.status_code, b.status_code) == (401, 401)
    assert a.json()["detail"] == b.json()["detail"]


def test_revoked_or_unknown_api_key_is_refused(anonymous: TestClient) -> None:
    assert anonymous.get("/me", headers={"X-API-Key": "gw_made_up"}).status_code == 401


def test_browser_login_sets_a_strict_httponly_cookie(porto_app: FastAPI) -> None:
    with TestClient(porto_app) as browser:
        r = browser.post(
            "/login", data={"username": "t-planner", "password": PASSWORD}, follow_redirects=False
        )
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert browser.get("/maps/hierarchy").status_code == 200
        browser.post("/logout", follow_redirects=False)
        browser.cookies.clear()
        assert browser.get("/maps/hierarchy").status_code == 401


def test_audit_log_cannot_be_changed_or_deleted(porto_engine: Engine) -> None:
    with porto_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (actor, role, method, route, subject_type, "
                "subject_ids) VALUES ('t', 'admin', 'GET', '/x', 'household', '{1}')"
            )
        )
    for statement in (
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"), porto_engine.begin() as conn:
            conn.execute(text(statement))


def test_oversize_body_is_refused_before_it_is_read(anonymous: TestClient) -> None:
    r = anonymous.post(
        "/token",
        content=b"x" * (11 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert "body" in r.json()["detail"]


def test_login_is_rate_limited(
    porto_engine: Engine, porto_url: str, porto_staff: dict[str, str]
) -> None:
    app = create_app(make_settings(porto_url, login_per_minute=3), engine=porto_engine)
    with TestClient(app) as client:
        codes = [
            client.post("/token", data={"username": "t-admin", "password": "nope nope"}).status_code
            for _ in range(5)
        ]
    assert codes == [401, 401, 401, 429, 429]


def test_security_headers_and_closed_cors(anonymous: TestClient) -> None:
    r = anonymous.get("/", headers={"Origin": "https://evil.example"})
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "SAMEORIGIN"  # our own plan comparison frames only
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
    assert "access-control-allow-origin" not in r.headers
    pre = anonymous.options(
        "/communities",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in pre.headers


def test_sql_in_query_parameters_is_just_a_bad_value(porto_client: TestClient) -> None:
    r = porto_client.get("/roads", params={"bbox": "1,2,3,4); DROP TABLE road_segment; --"})
    assert r.status_code == 422
    assert porto_client.get("/roads", params={"limit": 1}).json()["numberMatched"] == 1241


def test_production_refuses_placeholder_secret() -> None:
    with pytest.raises(ValueError, match="GRIDWORK_SECRET_KEY"):
        make_settings("postgresql://x/y", environment="production", secret_key="changeme")


@pytest.mark.parametrize("who", sorted(STAFF))
def test_me_names_the_role(
    anonymous: TestClient, tokens: dict[str, dict[str, str]], who: str
) -> None:
    assert anonymous.get("/me", headers=tokens[who]).json()["role"] == STAFF[who].role.value


def test_the_api_docs_offer_both_ways_to_sign_in_on_private_routes_only(
    anonymous: TestClient,
) -> None:
    doc = anonymous.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/token"
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert {"OAuth2PasswordBearer": []} in doc["paths"]["/locate"]["get"]["security"]
    assert "security" not in doc["paths"]["/token"]["post"]
