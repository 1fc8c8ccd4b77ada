"""Shared fixtures: a real PostGIS for storage and API tests, never a mock.

The database comes from ``DATABASE_URL`` when set, else from gridwork's own private cluster
(the same one ``make demo`` uses), in separate ``*_test`` databases. These fixtures never
skip: a missing PostGIS is an error, so CI cannot pass by skipping storage tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from data.cluster import LocalCluster
from data.db import fresh_database, make_engine
from data.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def _server_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    cluster = LocalCluster(settings.state_path, settings.database_name)
    cluster.init()
    cluster.start()
    return cluster.url()


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


@pytest.fixture(scope="session")
def db_url(server_url: str) -> str:
    """A scratch database, migrated; tests that write use ``clean_engine``."""
    return fresh_database(server_url, "gridwork_test")


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
    from data.loading import load_porto

    url = fresh_database(server_url, "gridwork_test_porto")
    eng = make_engine(url)
    try:
        list(load_porto(eng, settings=Settings(database_url=url)))
    finally:
        eng.dispose()
    return url


@pytest.fixture(scope="session")
def porto_engine(porto_url: str) -> Iterator[Engine]:
    eng = make_engine(porto_url)
    yield eng
    eng.dispose()
