"""Paths to the shared sample data, in one place so the repository can vendor it later."""

from __future__ import annotations

from pathlib import Path

import pytest

_SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        pytest.skip(f"{what} not found at {path}; the real-data tests need the shared sample data")
    return path


@pytest.fixture(scope="session")
def synthetic_district_path() -> Path:
    """The synthetic district GeoPackage (streets, communities, grids … in EPSG:4326)."""
    return _existing(
        _SHARED_DATA / "synthetic-district" / "synthetic-district.gpkg", "synthetic district"
    )


@pytest.fixture(scope="session")
def porto_gpkg_path() -> Path:
    """The Porto historic-centre OSM extract (4 parishes with 2011 census populations)."""
    return _existing(_SHARED_DATA / "porto" / "porto.gpkg", "Porto GeoPackage")
