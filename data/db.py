"""Connections: which database gridwork talks to, and its schema kept current by Alembic."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from data.cluster import LocalCluster, drop_database, ensure_database
from data.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(settings: Settings, *, start: bool = True) -> str:
    """The external ``DATABASE_URL`` if set, else the private cluster (started on demand)."""
    if settings.database_url:
        if start:
            name = settings.database_url.rsplit("/", 1)[-1].split("?")[0]
            ensure_database(settings.database_url, name)
        return settings.database_url
    cluster = LocalCluster(settings.state_path, settings.database_name)
    return cluster.up() if start else cluster.url()


def app_database_url(settings: Settings, *, start: bool = True) -> str:
    """What the API server connects as: least privilege, never the migrations' owner.

    ``GRIDWORK_APP_DATABASE_URL`` if set; else, on the private cluster, its ``gridwork_app``
    role (made by :meth:`~data.cluster.LocalCluster.up`, rights granted by migration 0009);
    else ``DATABASE_URL`` itself, as before (the README says how to set up the app's role)."""
    if settings.app_database_url:
        return settings.app_database_url
    if settings.database_url:
        return settings.database_url
    cluster = LocalCluster(settings.state_path, settings.database_name)
    if start:
        cluster.up()
    return cluster.app_url()


_TOO_STRONG = text(
    "SELECT r.rolsuper, EXISTS (SELECT FROM pg_class c JOIN pg_namespace n "
    "ON n.oid = c.relnamespace WHERE c.relowner = r.oid AND n.nspname = 'public') "
    "FROM pg_roles r WHERE r.rolname = current_user"
)


def serving_role_problem(engine: Engine) -> str | None:
    """Why the role ``engine`` connects as is too strong to serve the API (a superuser, or
    the owner of gridwork's tables: it could erase the audit log), or None."""
    with engine.connect() as conn:
        superuser, owner = conn.execute(_TOO_STRONG).one()
        role = conn.execute(text("SELECT current_user")).scalar_one()
    if superuser:
        return f"the server connects as {role}, a superuser"
    if owner:
        return f"the server connects as {role}, the owner of gridwork's tables"
    return None


def make_engine(url: str, *, connect_args: Mapping[str, object] | None = None) -> Engine:
    """``connect_args`` go to libpq (a standby's connect timeout: :mod:`data.replica`)."""
    # pool_pre_ping lets the API survive a PostGIS restart without manual action.
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args=dict(connect_args or {}),
    )
    event.listen(engine, "connect", _session_settings)
    return engine


def _session_settings(dbapi_connection: Any, _record: Any) -> None:
    """No JIT: gridwork's statements are short, and a cost estimate inflated by stale
    statistics (a table just filled) made PostgreSQL JIT-compile a 62-row lookup on the
    ingest path, longer than the whole batch. PostGIS functions are not inlined anyway."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "heads") -> None:
    """Apply every migration; several heads (parallel branches) are all applied."""
    command.upgrade(alembic_config(url), revision)


def fresh_database(server_url: str, name: str) -> str:
    """Drop and recreate ``name`` next to ``server_url``'s database, migrated; its URL.

    For tests and benchmarks: every run starts from the migrations, not from leftovers."""
    drop_database(server_url, name)
    url = f"{server_url.rsplit('/', 1)[0]}/{name}"
    ensure_database(url, name)
    migrate(url)
    return url


def clone_database(server_url: str, template: str, name: str) -> str:
    """Drop ``name`` and recreate it as a copy of ``template`` next to ``server_url``'s
    database; its URL.

    For tests and benchmarks: ``CREATE DATABASE … TEMPLATE`` copies the template's files
    (about 0.1 s for the Porto sample), where migrating and loading again takes seconds.
    PostgreSQL refuses while anyone is connected to ``template``: dispose its engines first.
    The copy gets the template's grants on the database itself (``GRANT CONNECT ON DATABASE``,
    made by migration 0009), which PostgreSQL does not copy."""
    drop_database(server_url, name)
    libpq = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
        grants = conn.execute(
            "SELECT a.privilege_type, a.grantee = 0, r.rolname FROM pg_database d "
            "CROSS JOIN LATERAL aclexplode(d.datacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
            "WHERE d.datname = %s",
            (template,),
        ).fetchall()
        if grants:  # else the default rights, as the copy has
            database = sql.Identifier(name)
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
            for privilege, public, role in grants:
                conn.execute(
                    sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                        sql.SQL(privilege),  # CREATE, CONNECT or TEMPORARY, from the catalog
                        database,
                        sql.SQL("PUBLIC") if public else sql.Identifier(role),
                    )
                )
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed whole on success, rolled back whole on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
