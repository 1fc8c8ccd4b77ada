"""Test databases are copies of templates: whole, with their rights, and never left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from psycopg import sql

from tests.conftest import ORPHANS, _drop_orphans
from tests.factory import database, template

pytestmark = pytest.mark.db


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _admin(server_url: str) -> str:
    return _libpq(server_url).rsplit("/", 1)[0] + "/postgres"


def _databases(server_url: str, like: str) -> set[str]:
    with psycopg.connect(_admin(server_url)) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))
        return {r[0] for r in rows}


def _one(conn: psycopg.Connection, query: str, *params: object) -> tuple[object, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return tuple(row)


def _rights(server_url: str, name: str) -> set[str]:
    with psycopg.connect(_admin(server_url)) as conn:
        acl = _one(conn, "SELECT datacl FROM pg_database WHERE datname = %s", name)[0]
    return set(acl or ())  # type: ignore[call-overload]


def test_a_copy_of_the_porto_template_holds_what_loading_porto_gives(server_url: str) -> None:
    url = database(server_url, "gridwork_test_copy")
    porto = database(server_url, "gridwork_test_copy_porto", "porto")
    counts = "SELECT (SELECT count(*) FROM building), (SELECT count(*) FROM household), "
    counts += "(SELECT count(*) FROM road_segment), (SELECT count(*) FROM community)"
    with psycopg.connect(_libpq(url)) as empty, psycopg.connect(_libpq(porto)) as loaded:
        assert _one(empty, counts) == (0, 0, 0, 0)
        # The README's figures for the sample (3,505 buildings, 1,241 roads, 4 parishes).
        buildings, households, roads, communities = _one(loaded, counts)
        assert (buildings, roads, communities) == (3505, 1241, 4)
        assert int(households) > 3000  # type: ignore[call-overload]
    # Each copy has a grids-version token of its own, as a database loaded afresh has: the
    # in-process grid index is filed under it.
    token = "SELECT value FROM deployment_setting WHERE key = 'grids_version'"
    again = database(server_url, "gridwork_test_copy_porto_again", "porto")
    with psycopg.connect(_libpq(porto)) as loaded, psycopg.connect(_libpq(again)) as copy:
        assert _one(loaded, token) != _one(copy, token)


def test_a_copy_keeps_the_templates_rights_on_the_database(server_url: str) -> None:
    """``GRANT … ON DATABASE`` lives in the cluster's catalog, which a copy does not inherit."""
    name = template(server_url, "migrated")
    url = database(server_url, "gridwork_test_copy_rights")
    assert _rights(server_url, name), "migration 0009 grants the app's role CONNECT"
    assert _rights(server_url, url.rsplit("/", 1)[1]) == _rights(server_url, name)


def test_templates_and_copies_of_a_dead_session_are_dropped(server_url: str) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    pid = int(gone.stdout)
    names = [f"gridwork_tmpl_{pid}", f"gridwork_tmpl_porto_{pid}", f"gridwork_test_x_{pid}"]
    with psycopg.connect(_admin(server_url), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    mine = template(server_url, "migrated")  # this session's, alive
    # The suite's own pattern, narrowed to that pid and this session's: on a shared server
    # (DATABASE_URL) the pids of other machines' sessions mean nothing here.
    only = ORPHANS.replace("(_[0-9]+)?$", f"_({pid}|{os.getpid()})$")
    _drop_orphans(server_url, only)
    assert _databases(server_url, f"%\\_{pid}") == set()
    assert mine in _databases(server_url, "gridwork_tmpl%")
