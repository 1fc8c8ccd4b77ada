"""One factory for what storage and API tests stand on: databases, apps, accounts, clients.

**Databases are copies of templates.** Migrating takes about a second and loading the Porto
sample a second more; ``CREATE DATABASE … TEMPLATE`` copies a finished one in 0.1 s. So each
kind of starting state is built once per test session, into a template database named by the
session's pid, and every test database is a copy of one (:func:`database`):

- ``migrated``: the schema, empty (``gridwork_tmpl_<pid>``);
- ``porto``: the Porto sample as ``make demo`` loads it (``gridwork_tmpl_porto_<pid>``);
- ``porto_grids``: Porto with seeded Voronoi test grids and their workers, imported as a
  deployment would (tests/data/porto_grids.py);
- ``porto_strips``: Porto cut into vertical strips with incidents, staff and an integration's
  API key (tests/gridded.py).

Templates and copies are dropped when the session ends; those of a session that died are
dropped by the next one (tests/conftest.py). PostgreSQL copies only a template nobody is
connected to: a template's engine is disposed as soon as it is built, and no app ever runs
on one.

**Accounts, apps and clients.** :class:`Account` is a user with a role and scopes;
:func:`add_accounts` stores them (one password for all, hashed once per session);
:func:`make_app` builds the app over an engine from explicit settings; :func:`signed_in`
opens a ``TestClient`` carrying a user's bearer token, obtained through ``POST /token`` like
any client would; :func:`sign_in` gets those headers for an already open client.
"""

from __future__ import annotations

import functools
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.access.queries import add_scope, create_api_key, create_user
from data.db import clone_database, fresh_database, make_engine, transaction
from data.models import Role, ScopeLevel
from data.settings import Settings

PASSWORD = "correct horse battery staple"

# --- databases ------------------------------------------------------------------------------

OWN: dict[str, str] = {}
"""This session's databases (copies and templates) → their server; dropped when it ends."""

_BUILT: dict[tuple[str, str], str] = {}  # (server, kind) → template database name


def _load_porto(engine: Engine, url: str) -> None:
    from data.importing.loading import load_porto

    list(load_porto(engine, settings=Settings(database_url=url)))


def _add_porto_grids(engine: Engine, url: str) -> None:
    from tests.data.porto_grids import add_porto_grids

    with tempfile.TemporaryDirectory(prefix="gridwork-grids-") as folder:
        add_porto_grids(engine, url, Path(folder))


def _cut_porto_strips(engine: Engine, url: str) -> None:
    from tests.gridded import build_template

    build_template(engine, url)


TEMPLATES: dict[str, tuple[str | None, Callable[[Engine, str], None] | None]] = {
    # kind: (the template it starts from, what is loaded on top; None: migrate afresh)
    "migrated": (None, None),
    "porto": ("migrated", _load_porto),
    "porto_grids": ("porto", _add_porto_grids),
    "porto_strips": ("porto", _cut_porto_strips),
}


def template(server_url: str, kind: str = "migrated") -> str:
    """The name of this session's template database of ``kind``, built on first use."""
    if (server_url, kind) in _BUILT:
        return _BUILT[(server_url, kind)]
    parent, load = TEMPLATES[kind]
    suffix = "" if kind == "migrated" else f"_{kind}"
    name = f"gridwork_tmpl{suffix}_{os.getpid()}"
    OWN[name] = server_url
    if parent is None:
        fresh_database(server_url, name)
    else:
        url = clone_database(server_url, template(server_url, parent), name)
        engine = make_engine(url)
        try:
            assert load is not None
            load(engine, url)
        finally:
            engine.dispose()  # nobody may stay connected to a template
    _BUILT[(server_url, kind)] = name
    return name


def database(server_url: str, base: str, kind: str = "migrated") -> str:
    """A database for this test session only, ``<base>_<pid>``, a copy of the ``kind``
    template (see :data:`TEMPLATES`); its URL.

    Two suites on one machine (two checkouts, CI beside a developer) never drop each other's
    databases. The copy gets a grids-version token of its own, as a database loaded afresh
    would have (caches keyed by it must never take two databases for one)."""
    name = f"{base}_{os.getpid()}"
    OWN[name] = server_url
    url = clone_database(server_url, template(server_url, kind), name)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE deployment_setting SET value = gen_random_uuid()::text "
                    "WHERE key = 'grids_version'"
                )
            )
    finally:
        engine.dispose()
    return url


# --- accounts -------------------------------------------------------------------------------


class Account(NamedTuple):
    """A user: name, role and the areas of their scope (a tuple, so it also unpacks)."""

    username: str
    role: Role
    scopes: tuple[tuple[ScopeLevel, str], ...] = ()


@functools.cache
def _hashed(password: str) -> str:
    from api.security import hash_password  # (pure tests never import the app)

    return hash_password(password)  # argon2id: 0.1 s each, so once per session


def fresh_store(
    server_url: str, base: str, kind: str = "migrated", accounts: Iterable[Account] = ()
) -> Iterator[Engine]:
    """An engine on a new :func:`database` copy of ``kind`` with ``accounts`` in it, disposed
    afterwards: the body of a fixture for tests that write (``yield from fresh_store(…)``)."""
    engine = make_engine(database(server_url, base, kind))
    add_accounts(engine, accounts)
    yield engine
    engine.dispose()


def add_accounts(engine: Engine, accounts: Iterable[Account], password: str = PASSWORD) -> None:
    """Store the users with their scopes, all with ``password``."""
    with transaction(engine) as session:
        for account in accounts:
            create_user(session, account.username, _hashed(password), account.role)
            for level, code in account.scopes:
                add_scope(session, account.username, level, code)


@contextmanager
def stored_before_the_rule(engine: Engine, username: str) -> Iterator[None]:
    """An admin account ``username`` written straight to the table, as a database filled
    before the username rule (a name the rule now refuses) may hold it; removed after."""
    with transaction(engine) as session:
        session.execute(
            text("INSERT INTO app_user (username, password_hash, role) VALUES (:u, 'x', 'admin')"),
            {"u": username},
        )
    try:
        yield
    finally:
        with transaction(engine) as session:
            session.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": username})


def add_key(engine: Engine, name: str, role: Role = Role.device) -> str:
    """A new API key (printed once in real life); the key itself."""
    with transaction(engine) as session:
        return create_api_key(session, name, role)


# --- apps and clients -----------------------------------------------------------------------


def app_settings(url: str, **overrides: Any) -> Settings:
    """Settings for a test app: a random secret, sign-ins not rate-limited, and tokens that
    last a day: session-scoped sign-ins outlived the default 15 minutes on a slow CI run."""
    values: dict[str, Any] = {
        "database_url": url,
        "secret_key": secrets.token_urlsafe(48),
        "login_per_minute": 10_000,
        "token_minutes": 24 * 60,
        # No tiles drawn in the background behind a test's back (tests/api/test_tile_seeder
        # turns it on): the tile cache's tests count what requests drew.
        "tile_seed_zoom": -1,
    }
    values.update(overrides)
    return Settings(**values)


def make_app(engine: Engine, **overrides: Any) -> FastAPI:
    """The app over ``engine``'s database, from :func:`app_settings` with ``overrides``."""
    from api.app import create_app

    url = engine.url.render_as_string(hide_password=False)
    return create_app(app_settings(url, **overrides), engine=engine)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """The bearer header ``POST /token`` gives ``username`` (fails the test if refused)."""
    r = client.post("/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@contextmanager
def signed_in(app: FastAPI, username: str | None = None) -> Iterator[TestClient]:
    """A client of ``app`` (started: lifespan run), carrying ``username``'s token if given."""
    with TestClient(app) as client:
        if username is not None:
            client.headers.update(sign_in(client, username))
        yield client


class Factory:
    """The factory bound to one server, as the ``factory`` fixture hands it to tests."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url

    def database(self, base: str, kind: str = "migrated") -> str:
        return database(self.server_url, base, kind)

    add_accounts = staticmethod(add_accounts)
    add_key = staticmethod(add_key)
    make_app = staticmethod(make_app)
    sign_in = staticmethod(sign_in)
    signed_in = staticmethod(signed_in)


def count(engine: Engine, sql: str, **params: Any) -> int:
    """The one number ``sql`` selects (a ``count(*)``, mostly) from ``engine``'s database."""
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())
