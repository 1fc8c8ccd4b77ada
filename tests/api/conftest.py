"""Apps over the Porto database with a user of every role, built from explicit settings."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.security import hash_password
from data.access.queries import add_scope, create_api_key, create_user
from data.db import transaction
from data.models import Role, ScopeLevel
from data.settings import Settings

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Staff:
    username: str
    role: Role
    scopes: tuple[tuple[ScopeLevel, str], ...]


STAFF = {
    "admin": Staff("t-admin", Role.admin, ()),
    "planner": Staff("t-planner", Role.planner, ((ScopeLevel.street, "PORTO-CH"),)),
    "coordinator": Staff("t-coordinator", Role.coordinator, ((ScopeLevel.community, "131208"),)),
    "grid_worker": Staff("t-worker", Role.grid_worker, ()),
    "care_staff": Staff("t-care", Role.care_staff, ((ScopeLevel.community, "131213"),)),
    "nobody": Staff("t-nobody", Role.coordinator, ()),
}


def make_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "secret_key": secrets.token_urlsafe(48),
        "login_per_minute": 10_000,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def porto_staff(porto_engine: Engine) -> dict[str, str]:
    """Users of every role in the Porto database; returns the device's API key too."""
    with transaction(porto_engine) as session:
        for staff in STAFF.values():
            create_user(session, staff.username, hash_password(PASSWORD), staff.role)
            for level, code in staff.scopes:
                add_scope(session, staff.username, level, code)
        key = create_api_key(session, "t-watch-1", Role.device)
    return {"device_key": key}


@pytest.fixture(scope="session")
def porto_app(porto_engine: Engine, porto_url: str, porto_staff: dict[str, str]) -> FastAPI:
    return create_app(make_settings(porto_url), engine=porto_engine)


@pytest.fixture(scope="session")
def anonymous(porto_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(porto_app) as client:
        yield client


def bearer(client: TestClient, who: str) -> dict[str, str]:
    r = client.post("/token", data={"username": STAFF[who].username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="session")
def tokens(anonymous: TestClient, porto_staff: dict[str, str]) -> dict[str, dict[str, str]]:
    headers = {who: bearer(anonymous, who) for who in STAFF}
    headers["device"] = {"X-API-Key": porto_staff["device_key"]}
    return headers


@pytest.fixture(scope="session")
def porto_client(porto_app: FastAPI, tokens: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    """An admin's client: sees everything."""
    with TestClient(porto_app, headers=tokens["admin"]) as client:
        yield client
