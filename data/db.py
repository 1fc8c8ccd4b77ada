"""Connections: which database gridwork talks to, and its schema kept current by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine
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


def make_engine(url: str) -> Engine:
    # pool_pre_ping lets the API survive a PostGIS restart without manual action.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


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


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed whole on success, rolled back whole on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
