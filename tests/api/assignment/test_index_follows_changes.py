"""The in-memory grid index answers without the database, and follows changes made elsewhere.

"Elsewhere" is a second engine: its writes reach the app only through PostgreSQL's NOTIFY,
exactly as an import from the command line or another API worker would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import make_engine
from tests.conftest import statements_on


@pytest.fixture
def elsewhere(gridded_url: str) -> Iterator[Engine]:
    engine = make_engine(gridded_url)
    yield engine
    engine.dispose()


def test_locate_reads_nothing_until_a_grid_changes_elsewhere(
    admin: TestClient, gridded_engine: Engine, elsewhere: Engine
) -> None:
    with gridded_engine.connect() as conn:
        code, name, lon, lat = conn.execute(
            text(
                "SELECT c.code, c.name, ST_X(p), ST_Y(p) FROM grid g JOIN community c "
                "ON c.id = g.community_id, ST_PointOnSurface(g.geom) p "
                "WHERE g.valid_to IS NULL ORDER BY g.code LIMIT 1"
            )
        ).one()
    where = {"lon": lon, "lat": lat}

    def community_name() -> str:
        r = admin.get("/locate", params=where)
        assert r.status_code == 200, r.text
        return str(r.json()["community"]["name"])

    assert community_name() == name
    with statements_on(gridded_engine) as statements:
        for _ in range(3):
            community_name()
    assert statements == []  # neither the caller nor the grids were read again

    renamed = f"{name} (renamed)"
    try:
        with elsewhere.begin() as conn:
            conn.execute(
                text("UPDATE community SET name = :n WHERE code = :c"), {"n": renamed, "c": code}
            )
        start = time.monotonic()
        while community_name() != renamed:
            assert time.monotonic() - start < 3, "the index did not follow the rename"
            time.sleep(0.005)
    finally:
        with elsewhere.begin() as conn:
            conn.execute(
                text("UPDATE community SET name = :n WHERE code = :c"), {"n": name, "c": code}
            )
