"""Shared fixtures: a real PostGIS for storage and API tests, never a mock.

The database comes from ``DATABASE_URL`` when set, else from gridwork's own private cluster
(the same one ``make demo`` uses), in separate ``gridwork_test_*`` databases, each a copy of
a template built once per session (``gridwork_tmpl_*``: migrated, Porto loaded …). These
fixtures never skip: a missing PostGIS is an error, so CI cannot pass by skipping storage
tests.

Databases, accounts, apps and signed-in clients all come from one factory, tests/factory.py
(also as the ``factory`` fixture). The Porto fixtures (``porto_url``, ``porto_engine``) are
here, the apps over Porto in tests/api/conftest.py, over Porto with Voronoi grids in
tests/api/assignment/conftest.py, over Porto cut in strips (``strips`` …, ``live``) in
tests/gridded.py, and over the synthetic district in tests/care/conftest.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, event, text

from data.cluster import LocalCluster, drop_database
from data.db import make_engine
from data.settings import Settings
from tests import factory
from tests.factory import Factory
from tests.gridded import live, strips, strips_app, strips_client  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def _server_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    cluster = LocalCluster(settings.state_path, settings.database_name)
    # pytest-xdist's workers (and suites of other checkouts sharing the state folder) start
    # together: one at a time makes the cluster, starts it and sweeps the dead sessions'
    # databases, so that none runs initdb or pg_ctl start over another's.
    settings.state_path.mkdir(parents=True, exist_ok=True)
    with open(settings.state_path / "tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cluster.init()
        cluster.start()
        _drop_orphans(cluster.url())
    return cluster.url()


def own_database(server_url: str, base: str, kind: str = "migrated") -> str:
    """A migrated database for this test session only (``base`` + the pid), a copy of the
    session's template of ``kind`` (tests/factory.py): ``migrated`` (empty), ``porto``,
    ``porto_grids`` or ``porto_strips``.

    Two suites on one machine (two checkouts, CI beside a developer) never drop each
    other's databases; this session's are dropped when it ends, and those of a session
    that died are dropped by the next one on the private cluster."""
    return factory.database(server_url, base, kind)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for name, url in factory.OWN.items():
        with contextlib.suppress(psycopg.Error):
            drop_database(url, name)


ORPHANS = "^gridwork_(test|tmpl)[a-z_]*(_[0-9]+)?$"  # test databases and their templates


def _drop_orphans(server_url: str, pattern: str = ORPHANS) -> None:
    """Drop test databases and templates of sessions no longer running, and those of the
    names used before they carried a pid (private cluster only: on a shared server another
    machine's pid means nothing here)."""
    # The maintenance database: on a cluster just made, gridwork's own does not exist yet.
    admin = server_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT datname FROM pg_database WHERE datname ~ %s", (pattern,))
        ]
    for name in names:
        pid = name.rsplit("_", 1)[1]
        try:
            if pid.isdigit():
                os.kill(int(pid), 0)
            else:
                drop_database(server_url, name)
        except ProcessLookupError:
            drop_database(server_url, name)
        except PermissionError:  # alive, another user's
            pass


def _sample(*parts: str) -> Path:
    path = SAMPLES.joinpath(*parts)
    assert path.is_file(), f"sample data missing from the repository: {path}"
    return path


@pytest.fixture(scope="session")
def porto_gpkg() -> Path:
    """Real OSM data: layers communities, streets (road lines!), buildings, facilities."""
    return _sample("porto", "porto.gpkg")


porto_gpkg_path = porto_gpkg


@pytest.fixture(scope="session")
def porto_pbf() -> Path:
    """The OSM extract porto.gpkg was cut from (it covers more than the four parishes)."""
    return _sample("porto", "source_porto_2020-07.osm.pbf")


@pytest.fixture(scope="session")
def synthetic_district_path() -> Path:
    """The generated district at Karamay (CC0): streets, communities, grids … in EPSG:4326."""
    return _sample("synthetic-district", "synthetic-district.gpkg")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(state_dir=Path(os.environ.get("GRIDWORK_STATE_DIR", ROOT / ".gridwork")))


@pytest.fixture(scope="session")
def server_url(settings: Settings) -> str:
    return _server_url(settings)


@pytest.fixture(scope="session", name="factory")
def factory_fixture(server_url: str) -> Factory:
    """Databases copied from templates, accounts, apps and signed-in clients (tests/factory.py)."""
    return Factory(server_url)


@pytest.fixture(scope="session")
def db_url(server_url: str) -> str:
    """A scratch database, migrated; tests that write use ``clean_engine``."""
    return own_database(server_url, "gridwork_test")


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


DATA_TABLES = (
    "household, incident, facility, building, road_segment, grid, worker, community, street, "
    "district, deployment_setting"
)


@pytest.fixture
def clean_engine(engine: Engine) -> Engine:
    """The scratch database emptied before the test, so each test sees only what it wrote."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {DATA_TABLES} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture(scope="session")
def porto_url(server_url: str) -> str:
    """A database holding the Porto sample as ``make demo`` loads it; tests only read it."""
    return own_database(server_url, "gridwork_test_porto", "porto")


@pytest.fixture(scope="session")
def porto_engine(porto_url: str) -> Iterator[Engine]:
    eng = make_engine(porto_url)
    yield eng
    eng.dispose()


@contextmanager
def statements_on(engine: Engine, containing: str = "") -> Iterator[list[str]]:
    """The statements run through ``engine`` meanwhile that contain ``containing``: what a
    cache is meant to spare the database. (The engine may be shared with other apps of the
    session: choose ``containing`` so that only the work under test matches.)"""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if containing in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
