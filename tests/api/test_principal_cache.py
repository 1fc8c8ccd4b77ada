"""Credentials and the grid index are cached, and a change anywhere ends the cache in time.

"Another process" here is another engine in the test process: its writes reach the app only
through PostgreSQL's NOTIFY, exactly as the command line's or a second API worker's would.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.state import app_state
from data.access.queries import create_api_key, set_role
from data.db import make_engine, transaction
from data.models import Role
from tests.api.conftest import make_settings
from tests.conftest import statements_on
from tests.factory import Account, add_accounts, make_app, sign_in

Counter = Callable[[], int]
# Checks of presented keys, not the preload of device keys that other apps on this engine
# run whenever their change feed reconnects.
KEY_CHECKS = "FROM api_key WHERE digest"  # data.access.queries.find_api_keys


@pytest.fixture(scope="module")
def app(porto_engine: Engine) -> FastAPI:
    return make_app(porto_engine)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:  # the lifespan starts the change feed
        yield c


@pytest.fixture(scope="module")
def other_process(porto_url: str) -> Iterator[Engine]:
    engine = make_engine(porto_url)
    yield engine
    engine.dispose()


def new_admin(engine: Engine, client: TestClient) -> tuple[str, dict[str, str]]:
    name = f"t-cache-{secrets.token_hex(4)}"
    add_accounts(engine, [Account(name, Role.admin)])
    return name, sign_in(client, name)


def eventually(check: Callable[[], bool], seconds: float = 3.0) -> float:
    """Seconds until ``check()`` held; fails the test after ``seconds``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, "the change was not seen in time"
        time.sleep(0.005)
    return time.monotonic() - start


def test_a_credential_is_checked_once_then_remembered(
    client: TestClient, porto_engine: Engine
) -> None:
    _, headers = new_admin(porto_engine, client)
    with statements_on(porto_engine, "FROM app_user ") as reads:
        for _ in range(5):
            assert client.get("/me", headers=headers).status_code == 200
    assert len(reads) == 1


def test_a_demotion_from_another_process_ends_admin_rights_within_moments(
    client: TestClient, porto_engine: Engine, other_process: Engine
) -> None:
    name, headers = new_admin(porto_engine, client)
    assert client.get("/audit", headers=headers).status_code == 200
    with transaction(other_process) as session:
        set_role(session, name, Role.coordinator)
    waited = eventually(lambda: client.get("/audit", headers=headers).status_code == 403)
    assert waited < 1.0


def test_a_change_through_this_process_is_seen_by_the_very_next_request(
    client: TestClient, porto_engine: Engine
) -> None:
    name, headers = new_admin(porto_engine, client)
    assert client.get("/audit", headers=headers).status_code == 200
    with transaction(porto_engine) as session:  # the app's own engine: no wait for NOTIFY
        session.execute(text("UPDATE app_user SET active = false WHERE username = :u"), {"u": name})
    assert client.get("/audit", headers=headers).status_code == 401


def test_a_revoked_api_key_stops_working(
    client: TestClient, porto_engine: Engine, other_process: Engine
) -> None:
    key_name = f"t-cache-key-{secrets.token_hex(4)}"
    with transaction(porto_engine) as session:
        key = create_api_key(session, key_name, Role.admin)
    headers = {"X-API-Key": key}
    assert client.get("/me", headers=headers).status_code == 200
    with other_process.begin() as conn:
        conn.execute(text("UPDATE api_key SET revoked_at = now() WHERE name = :n"), {"n": key_name})
    eventually(lambda: client.get("/me", headers=headers).status_code == 401)


def test_a_change_made_while_the_feed_was_down_is_not_missed(
    app: FastAPI, client: TestClient, porto_engine: Engine, other_process: Engine
) -> None:
    """The listener's connection dies, so the demotion's NOTIFY reaches nobody: the cached
    admin must not survive it (no caching while down, and everything dropped on reconnect)."""
    name, headers = new_admin(porto_engine, client)
    assert client.get("/audit", headers=headers).status_code == 200
    feed = app_state(app).changes
    assert feed is not None
    with other_process.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN gridwork_%' AND datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    assert killed >= 1
    eventually(lambda: not feed.live)
    with transaction(other_process) as session:
        set_role(session, name, Role.coordinator)
    assert client.get("/audit", headers=headers).status_code == 403
    eventually(lambda: feed.live)  # it reconnects by itself, and caching resumes
    # Only this user's look-ups: the feed's reconnect also preloads device keys (a query that
    # joins app_user too), on this app and on the session's other apps whose feeds were cut.
    with statements_on(porto_engine, "FROM app_user WHERE username") as reads:
        for _ in range(3):
            assert client.get("/me", headers=headers).status_code == 200
    assert len(reads) <= 1


def test_many_new_api_keys_at_once_are_checked_together(
    client: TestClient, porto_engine: Engine
) -> None:
    """A thousand wearables reporting after a restart: keys never seen by this process are
    read in shared queries, and each caller still gets its own answer."""
    prefix = f"t-burst-{secrets.token_hex(3)}"
    with transaction(porto_engine) as session:
        keys = [create_api_key(session, f"{prefix}-{i}", Role.admin) for i in range(120)]
    wrong = [f"gw_not-a-key-{i}" for i in range(20)]

    def me(key: str) -> int:
        return client.get("/me", headers={"X-API-Key": key}).status_code

    with (
        statements_on(porto_engine, KEY_CHECKS) as reads,
        ThreadPoolExecutor(max_workers=40) as pool,
    ):
        statuses = list(pool.map(me, keys + wrong))
    assert statuses == [200] * len(keys) + [401] * len(wrong)
    assert len(reads) < len(keys) // 2, f"{len(reads)} reads for {len(keys) + len(wrong)} new keys"


def test_device_keys_are_known_from_the_start_and_a_revoked_one_is_not(
    porto_engine: Engine, porto_url: str
) -> None:
    """After a restart or a deploy the wearables' first reports need no key check; a key
    revoked before the restart, or after it, is refused."""
    prefix = f"t-warm-{secrets.token_hex(3)}"
    with transaction(porto_engine) as session:
        live = create_api_key(session, f"{prefix}-live", Role.device)
        revoked = create_api_key(session, f"{prefix}-revoked", Role.device)
        later = create_api_key(session, f"{prefix}-later", Role.device)
        session.execute(
            text("UPDATE api_key SET revoked_at = now() WHERE name = :n"),
            {"n": f"{prefix}-revoked"},
        )
    restarted = create_app(make_settings(porto_url), engine=porto_engine)
    with TestClient(restarted) as client:
        with statements_on(porto_engine, KEY_CHECKS) as reads:
            assert client.get("/me", headers={"X-API-Key": live}).json()["role"] == "device"
            assert client.get("/me", headers={"X-API-Key": later}).status_code == 200
        assert len(reads) == 0
        assert client.get("/me", headers={"X-API-Key": revoked}).status_code == 401
        with transaction(porto_engine) as session:
            session.execute(
                text("UPDATE api_key SET revoked_at = now() WHERE name = :n"),
                {"n": f"{prefix}-later"},
            )
        assert client.get("/me", headers={"X-API-Key": later}).status_code == 401


def test_device_keys_are_known_again_once_the_feed_reconnects(
    app: FastAPI, client: TestClient, porto_engine: Engine, other_process: Engine
) -> None:
    """PostGIS restarted: the reconnecting feed drops every cached principal, then
    remembers the device keys again before the wearables' next reports."""
    with transaction(porto_engine) as session:
        key = create_api_key(session, f"t-rewarm-{secrets.token_hex(3)}", Role.device)
    feed = app_state(app).changes
    assert feed is not None
    generation = feed.generation
    with other_process.begin() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN gridwork_%' AND datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        )
    eventually(lambda: feed.live and feed.generation > generation + 1)
    # Nobody has sent this key since it was made: only the preload that follows the
    # reconnect can put it in the cache (watched there, not through a request whose timing
    # against a further reconnect of a busy CI machine would decide the outcome).
    eventually(lambda: app_state(app).principals.get("api_key", key) is not None)
    remembered = app_state(app).principals.get("api_key", key)
    assert remembered is not None and remembered.role == Role.device
    assert client.get("/me", headers={"X-API-Key": key}).json()["role"] == "device"
