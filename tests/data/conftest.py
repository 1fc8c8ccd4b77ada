"""Paths to the shared Porto sample: real OSM data the readers must take without a reject."""

from __future__ import annotations

from pathlib import Path

import pytest

_PORTO = Path(__file__).resolve().parents[3] / "shared" / "data" / "porto"


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        pytest.skip(f"{what} not found at {path}; the real-data tests need the shared sample data")
    return path


@pytest.fixture(scope="session")
def porto_gpkg() -> Path:
    """GeoPackage with layers communities, streets (road lines), buildings, facilities."""
    return _existing(_PORTO / "porto.gpkg", "Porto GeoPackage")


@pytest.fixture(scope="session")
def porto_pbf() -> Path:
    """The OSM extract the GeoPackage was cut from (it covers more than the four parishes)."""
    return _existing(_PORTO / "source_porto_2020-07.osm.pbf", "Porto OSM PBF")
