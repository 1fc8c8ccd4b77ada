"""`gridwork restore` under a running server (issue 13, row 18).

Before: the server kept its pooled connections (with statements prepared against the tables
the restore dropped) and its caches: ``/plans/{id}`` and ``/checks`` answered 500 until it was
restarted, and a key that the restored state no longer holds still worked while cached. An
older archive also silently replaced the audit log, dropping every row written since.

Now the restore says so on the change feed and writes its own audit entry naming the archive
and the period of audit rows it replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.security import hash_password
from api.state import app_state
from data.access.queries import create_api_key, create_user
from data.db import make_engine, transaction
from data.importing.loading import load_porto
from data.models import Role
from data.settings import Settings
from tests.api.conftest import PASSWORD, make_settings
from tests.conftest import own_database

ADMIN = "t-restore-admin"


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


#: Layers and a tile of the OGC app (tipg on its own asyncpg pool), asked before and after.
OGC = (
    "/ogc/collections/ogc.grids/items?limit=5",
    "/ogc/collections/ogc.communities/items?limit=5",
    "/ogc/collections/ogc.grids/tiles/WebMercatorQuad/14/7800/6133",
)


@dataclass
class Scenario:
    app: FastAPI
    client: TestClient
    admin: dict[str, str]
    plan_id: int
    archive: Path
    read_after_backup_at: str  # when the audit row the restore drops was written
    key_after_backup: str
    output: str


@pytest.fixture(scope="module")
def url(server_url: str) -> str:
    url = own_database(server_url, "gridwork_test_restore")
    engine = make_engine(url)
    try:
        list(load_porto(engine, settings=Settings(database_url=url)))
        with transaction(engine) as session:
            create_user(session, ADMIN, hash_password(PASSWORD), Role.admin)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="module")
def engine(url: str) -> Iterator[Engine]:
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def scenario(
    url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    app = create_app(make_settings(url), engine=engine)
    runner = CliRunner(env={"DATABASE_URL": url})
    archive = tmp_path_factory.mktemp("restore") / "state.dump"
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/token", data={"username": ADMIN, "password": PASSWORD})
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = client.post("/plans", json={"community": "131208"}, headers=admin)
        assert r.status_code == 201, r.text
        plan_id = r.json()["id"]
        for _ in range(6):  # a server in use: the same statements again and again
            assert client.get(f"/plans/{plan_id}", headers=admin).status_code == 200
            assert client.get("/checks", headers=admin).status_code == 200
            for path in OGC:
                assert client.get(path, headers=admin).status_code == 200, path

        result = runner.invoke(cli, ["backup", str(archive)])
        assert result.exit_code == 0, result.output

        # After the backup: an audited read, and a new key put to use (and so cached).
        with engine.connect() as conn:
            household = conn.execute(text("SELECT code FROM household LIMIT 1")).scalar_one()
        assert client.get(f"/households/{household}", headers=admin).status_code == 200
        entries = client.get("/audit", headers=admin, params={"actor": ADMIN}).json()["entries"]
        read_at = next(e["at"] for e in entries if e["route"] == f"/households/{household}")
        with transaction(engine) as session:
            key = create_api_key(session, "t-restore-integration", Role.admin, ADMIN)
        assert client.get("/me", headers={"X-API-Key": key}).status_code == 200

        result = runner.invoke(cli, ["restore", str(archive), "--yes"])
        assert result.exit_code == 0, result.output
        yield Scenario(app, client, admin, plan_id, archive, read_at, key, result.output)


def test_a_running_server_answers_after_a_restore_without_a_restart(scenario: Scenario) -> None:
    client, admin = scenario.client, scenario.admin
    assert eventually(
        lambda: client.get(f"/plans/{scenario.plan_id}", headers=admin).status_code == 200
    ), client.get(f"/plans/{scenario.plan_id}", headers=admin).text
    assert client.get("/checks", headers=admin).status_code == 200
    assert client.get("/plans", headers=admin).status_code == 200


def test_the_ogc_layers_and_tiles_answer_after_a_restore(scenario: Scenario) -> None:
    """tipg's own connections (asyncpg, statements prepared on tables the restore dropped)
    are made anew, as the app's are."""
    client, admin = scenario.client, scenario.admin
    for path in OGC:
        r = client.get(path, headers=admin)
        assert r.status_code == 200, (path, r.text)


def test_a_key_the_restored_state_does_not_hold_stops_working(scenario: Scenario) -> None:
    key = {"X-API-Key": scenario.key_after_backup}
    assert eventually(lambda: scenario.client.get("/me", headers=key).status_code == 401)


def test_a_restore_writes_what_it_replaced_into_the_audit_log(scenario: Scenario) -> None:
    client, admin = scenario.client, scenario.admin
    assert eventually(lambda: client.get("/audit", headers=admin).status_code == 200)
    entries = client.get("/audit", headers=admin, params={"limit": 5}).json()["entries"]
    restore = entries[0]  # the newest
    assert restore["method"] == "RESTORE"
    assert restore["subject_type"] == "backup"
    assert restore["subject_ids"] == [scenario.archive.name]
    reason = restore["reason"]
    assert str(scenario.archive) in reason
    # The period it replaced ends with the read written after the backup, which is gone...
    assert f"to {scenario.read_after_backup_at}" in reason
    assert f"up to {scenario.read_after_backup_at} are no longer in the log" in reason
    assert not any(e["at"] == scenario.read_after_backup_at for e in entries)
    # ... and the restored log is still append-only.
    url = app_state(scenario.app).settings.database_url
    assert url is not None
    owner = make_engine(url)
    try:
        with pytest.raises(Exception, match="append-only"), owner.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
    finally:
        owner.dispose()
