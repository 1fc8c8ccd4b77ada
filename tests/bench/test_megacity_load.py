"""The megacity's load path at a tiny scale (issue 19), so that ``python -m bench.megacity
load`` cannot rot unseen: what the generator wrote is what the store holds, and every
household got the grid PostGIS gives it.

Scale 0.001 of the megacity: 1 district, 1 street, 4 communities, 60 grids, 149 road
segments, 1,500 buildings, 6 facilities and 10,000 households, imported through
``import_file`` as ``gridwork import`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bench.megacity import generate
from bench.megacity_store import LAYERS, TABLES, load_megacity, store_counts
from data.db import make_engine
from data.settings import Settings
from tests.conftest import own_database

pytestmark = pytest.mark.db


def test_a_tiny_megacity_is_stored_whole_and_every_household_has_its_grid(
    server_url: str, tmp_path: Path
) -> None:
    written = generate(0.001, tmp_path)["written"]
    assert isinstance(written, dict)
    url = own_database(server_url, "gridwork_test_megacity")
    engine = make_engine(url)
    try:
        layers = load_megacity(engine, tmp_path, Settings(database_url=url))
        counts = store_counts(engine)
        with engine.connect() as conn:
            not_covering, streets_without_district = conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM household "
                    "WHERE grid_id IS DISTINCT FROM grid_covering(geom)), "
                    "(SELECT count(*) FROM street WHERE district_id IS NULL)"
                )
            ).one()
    finally:
        engine.dispose()
    assert [layer.kind for layer in layers] == ["streets", *(kind for kind, _ in LAYERS)]
    assert {name: counts[name] for name in TABLES} == {name: written[name] for name in TABLES}
    assert written["households"] > 0
    assert counts["households without a grid"] == 0
    assert not_covering == 0
    assert streets_without_district == 0
