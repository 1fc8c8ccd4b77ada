"""``gridwork user worker``: the command an administrator runs so that a grid worker's
account reads the households of their own grids, and of no other."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from api import cli
from api.security import hash_password
from data.access.queries import add_scope, create_user
from data.db import transaction
from data.models import Role, ScopeLevel
from tests.api.conftest import PASSWORD


def test_linking_a_worker_from_the_command_line_gives_them_their_grids_households(
    gridded_url: str, gridded_engine: Engine, gridded_app: FastAPI, anon: TestClient
) -> None:
    with transaction(gridded_engine) as session:
        create_user(session, "x-linked", hash_password(PASSWORD), Role.grid_worker)
        add_scope(session, "x-linked", ScopeLevel.community, "131208")
    token = anon.post("/token", data={"username": "x-linked", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    before = anon.get("/grids/131208-G02/households", headers=headers)
    assert before.status_code == 404  # a community scope alone gives no households

    runner = CliRunner(env={"DATABASE_URL": gridded_url})
    done = runner.invoke(cli.app, ["user", "worker", "x-linked", "W-131208-G02"])
    assert done.exit_code == 0, done.output
    after = anon.get("/grids/131208-G02/households", headers=headers)
    assert after.status_code == 200, after.text
    assert anon.get("/grids/131208-G01/households", headers=headers).status_code == 404

    unknown = runner.invoke(cli.app, ["user", "worker", "x-linked", "W-NOPE"])
    assert unknown.exit_code != 0
    assert "no worker with code" in str(unknown.exception)  # main() prints it as one line
