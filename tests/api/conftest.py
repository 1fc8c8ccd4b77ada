"""Apps over the Porto database with a user of every role, built from explicit settings.

Built with the one factory (tests/factory.py); the names here are kept for the tests that use
them: ``STAFF``, ``PASSWORD``, ``make_settings``, ``bearer`` and the fixtures below.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from data.models import Role, ScopeLevel
from data.settings import Settings
from tests.factory import PASSWORD, Account, add_accounts, add_key, app_settings, make_app, sign_in

__all__ = ["PASSWORD", "STAFF", "Staff", "bearer", "make_settings"]

Staff = Account

STAFF = {
    "admin": Account("t-admin", Role.admin),
    "planner": Account("t-planner", Role.planner, ((ScopeLevel.street, "PORTO-CH"),)),
    "coordinator": Account("t-coordinator", Role.coordinator, ((ScopeLevel.community, "131208"),)),
    "grid_worker": Account("t-worker", Role.grid_worker),
    "care_staff": Account("t-care", Role.care_staff, ((ScopeLevel.community, "131213"),)),
    "nobody": Account("t-nobody", Role.coordinator),
}


def make_settings(url: str, **overrides: object) -> Settings:
    return app_settings(url, **overrides)


@pytest.fixture(scope="session")
def porto_staff(porto_engine: Engine) -> dict[str, str]:
    """Users of every role in the Porto database; returns the device's API key too."""
    add_accounts(porto_engine, STAFF.values())
    return {"device_key": add_key(porto_engine, "t-watch-1", Role.device)}


@pytest.fixture(scope="session")
def porto_app(porto_engine: Engine, porto_staff: dict[str, str]) -> FastAPI:
    return make_app(porto_engine)


@pytest.fixture(scope="session")
def anonymous(porto_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(porto_app) as client:
        yield client


def bearer(client: TestClient, who: str) -> dict[str, str]:
    return sign_in(client, STAFF[who].username)


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
