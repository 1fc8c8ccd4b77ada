"""The API's own database role cannot erase the audit log, however it tries (issue 13, row 15).

The API server connects as ``gridwork_app``: no superuser, owns nothing, INSERT and SELECT
only on ``audit_log``. These tests connect exactly as the server does and try what an
attacker with the server's credentials would: disable the append-only trigger, delete,
update, truncate, drop, take ownership, switch triggers off for the session, grant itself
more. Every attempt fails and the audit rows stay. Then the whole app runs as that role.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.security import hash_password
from api.state import app_state
from data.access.queries import create_user
from data.cluster import APP_ROLE, LocalCluster
from data.db import make_engine, serving_role_problem, transaction
from data.models import Role
from data.settings import Settings
from tests.api.conftest import PASSWORD, make_settings
from tests.conftest import own_database


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def as_app(settings: Settings, owner_url: str) -> str:
    """The URL of ``owner_url``'s database as the API server would connect to it."""
    database = owner_url.rsplit("/", 1)[1]
    if settings.database_url:
        assert settings.app_database_url, (
            "with DATABASE_URL set, set GRIDWORK_APP_DATABASE_URL too (README: the app's role)"
        )
        return settings.app_database_url.rsplit("/", 1)[0] + "/" + database
    cluster = LocalCluster(settings.state_path, settings.database_name)
    cluster.ensure_app_role()
    return cluster.app_url(database)


@pytest.fixture(scope="module")
def owner_url(server_url: str) -> str:
    return own_database(server_url, "gridwork_test_privilege")


@pytest.fixture(scope="module")
def app_url(settings: Settings, owner_url: str) -> str:
    return as_app(settings, owner_url)


def _audit_rows(owner_url: str) -> int:
    with psycopg.connect(_libpq(owner_url)) as conn:
        return conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]  # type: ignore[index]


# PostgreSQL answers a grant by a role without the grant option with a warning, not an error:
# nothing is granted, which the DELETE after it shows.
GRANT_TO_ITSELF = f"GRANT DELETE, TRUNCATE ON audit_log TO {APP_ROLE}"
ERASURES = [
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "DELETE FROM audit_log",
    "UPDATE audit_log SET actor = 'nobody'",
    "TRUNCATE audit_log",
    "DROP TABLE audit_log",
    "DROP TRIGGER audit_log_no_update_delete ON audit_log",
    "ALTER TABLE audit_log RENAME TO audit_log_old",
    f"ALTER TABLE audit_log OWNER TO {APP_ROLE}",
    "SET session_replication_role = replica",  # would silence every trigger of the session
    GRANT_TO_ITSELF,
    f"ALTER ROLE {APP_ROLE} SUPERUSER",
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
    "ALTER TABLE app_user DISABLE TRIGGER ALL",  # the change feed's triggers, likewise
]


@pytest.mark.parametrize("attempt", ERASURES)
def test_the_app_role_cannot_erase_or_unprotect_the_audit_log(
    owner_url: str, app_url: str, attempt: str
) -> None:
    with psycopg.connect(_libpq(owner_url)) as conn:
        conn.execute(
            "INSERT INTO audit_log (actor, role, method, route, subject_type, subject_ids) "
            "VALUES ('t-admin', 'admin', 'GET', '/households/H1', 'household', '{H1}')"
        )
    before = _audit_rows(owner_url)
    with psycopg.connect(_libpq(app_url)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (APP_ROLE,)
        if attempt == GRANT_TO_ITSELF:
            conn.execute(attempt)
        else:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attempt)
            conn.rollback()
        # And then, as if the attempt had worked, the erasure itself:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("DELETE FROM audit_log")
    assert _audit_rows(owner_url) == before
    with psycopg.connect(_libpq(owner_url)) as conn:
        enabled = conn.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_log_no_update_delete'"
        ).fetchone()
    assert enabled == ("O",)  # still on


def test_the_app_role_is_no_superuser_and_owns_nothing(app_url: str) -> None:
    with psycopg.connect(_libpq(app_url)) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, False)
        owned = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE pg_get_userbyid(c.relowner) = current_user AND n.nspname NOT LIKE 'pg_%'"
        ).fetchall()
        assert owned == []
        # What it does need: add to the log and read it.
        conn.execute(
            "INSERT INTO audit_log (actor, role, method, route, subject_type, subject_ids) "
            "VALUES ('t-app', 'admin', 'GET', '/audit', 'audit', '{}')"
        )
        assert conn.execute("SELECT count(*) FROM audit_log WHERE actor = 't-app'").fetchone()
        privileges = conn.execute(
            "SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE',"
            "'REFERENCES','TRIGGER']) p WHERE has_table_privilege('audit_log', p)"
        ).fetchall()
        assert sorted(p for (p,) in privileges) == ["INSERT", "SELECT"]


@pytest.fixture(scope="module")
def app_engine(settings: Settings, porto_url: str) -> Iterator[Engine]:
    engine = make_engine(as_app(settings, porto_url))
    yield engine
    engine.dispose()


def test_the_whole_api_works_as_the_app_role(app_engine: Engine, porto_url: str) -> None:
    """Signing in, an audited read of households, a write, the audit log, an admin act,
    the change feed and the OGC views: all as ``gridwork_app``, none as the owner."""
    with app_engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == APP_ROLE
        household = conn.execute(text("SELECT code FROM household LIMIT 1")).scalar_one()
        admin_name = f"t-privilege-{os.getpid()}"
    with transaction(app_engine) as session:  # as the app role, like the first admin's sign-up
        create_user(session, admin_name, hash_password(PASSWORD), Role.admin)
    app = create_app(make_settings(porto_url), engine=app_engine)
    with TestClient(app) as client:
        feed = app_state(app).changes
        assert feed is not None and feed.live  # LISTEN works for the app role
        r = client.post("/token", data={"username": admin_name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = client.get(f"/households/{household}", headers=admin)
        assert r.status_code == 200, r.text
        r = client.get("/audit", headers=admin, params={"actor": admin_name})
        assert r.status_code == 200, r.text
        assert any(e["route"] == f"/households/{household}" for e in r.json()["entries"])
        r = client.get("/admin/keys", headers=admin)
        assert r.status_code == 200, r.text
        r = client.get("/ogc/collections", headers=admin)
        assert r.status_code == 200, r.text


PARTITION_FUNCTIONS = ("make_position_partitions", "drop_position_partitions")


def test_the_app_role_makes_and_drops_position_partitions_and_nothing_more(
    owner_url: str, app_url: str
) -> None:
    """Partitions of ``position`` are made and dropped through migration 0019's two
    functions (``SECURITY DEFINER``, owned by the owner, with a fixed ``search_path``): the
    app's role may call them, and still cannot make, detach, drop or empty a partition
    itself, nor owns what the functions made."""
    first = date(2001, 1, 1)  # far from any day another test stores fixes on
    names = ["position_20010101", "position_20010102"]
    with psycopg.connect(_libpq(app_url)) as conn:
        made = conn.execute(
            "SELECT make_position_partitions(%s, %s)", (first, first + timedelta(days=1))
        ).fetchone()
        assert made == (2,)
        conn.commit()
        for attempt in (
            f"DROP TABLE {names[0]}",
            f"ALTER TABLE position DETACH PARTITION {names[0]}",
            "DELETE FROM audit_log WHERE actor = 'nobody'",
            "TRUNCATE position",
            "DROP TABLE position_default",
            "CREATE TABLE position_20000101 PARTITION OF position "
            "FOR VALUES FROM ('2000-01-01') TO ('2000-01-02')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attempt)
            conn.rollback()
        owned = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE pg_get_userbyid(c.relowner) = current_user"
        ).fetchall()
        assert owned == []
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="days"):
            conn.execute(
                "SELECT make_position_partitions(%s, %s)", (first, first + timedelta(days=1000))
            )
        conn.rollback()
        gone = conn.execute(
            "SELECT drop_position_partitions(%s)", (datetime(2001, 1, 3, tzinfo=UTC),)
        ).fetchone()
        assert gone == (0,)  # fixes dropped: there were none
        conn.commit()
        left = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname = ANY(%s)", (names,)
        ).fetchone()
        assert left == (0,)
    with psycopg.connect(_libpq(owner_url)) as conn:
        rows = conn.execute(
            "SELECT proname, prosecdef, pg_get_userbyid(proowner), proconfig, "
            "has_function_privilege('public', oid, 'EXECUTE') FROM pg_proc "
            "WHERE proname = ANY(%s) ORDER BY proname",
            (list(PARTITION_FUNCTIONS),),
        ).fetchall()
    assert [r[0] for r in rows] == sorted(PARTITION_FUNCTIONS)
    for _name, definer, owner, config, public in rows:
        assert definer and owner != APP_ROLE and not public
        assert "search_path=pg_catalog, public, pg_temp" in config


def test_a_server_serving_as_the_owner_is_told_why_not(app_engine: Engine, porto_url: str) -> None:
    """The server warns at start when it connects as a superuser or the tables' owner (a
    DATABASE_URL without GRIDWORK_APP_DATABASE_URL); the app's own role passes."""
    assert serving_role_problem(app_engine) is None
    owner = make_engine(porto_url)
    try:
        problem = serving_role_problem(owner)
    finally:
        owner.dispose()
    assert problem is not None and problem.startswith("the server connects as ")
    assert "superuser" in problem or "owner of gridwork's tables" in problem
