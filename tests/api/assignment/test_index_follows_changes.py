"""The in-memory grid index answers without the database, and follows changes made elsewhere.

"Elsewhere" is a second engine: its writes reach the app only through PostgreSQL's NOTIFY,
exactly as an import from the command line or another API worker would.

The app is this module's own, not the session's ``gridded_app``: any module that opens and
closes another client over that one ends its change feed for every client still open (the
feed is the app's, and the lifespan that ends takes it along), after which nothing is cached.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.state import app_state
from data.db import make_engine
from tests.api.assignment.conftest import STAFF
from tests.conftest import statements_on
from tests.factory import make_app, signed_in

# The device keys every app on this engine preloads whenever its change feed (re)connects
# (api.security.preload_device_keys): not a read of the caller or of the grids.
DEVICE_KEY_PRELOAD = "WHERE role = 'device' AND revoked_at IS NULL"


@pytest.fixture(scope="module")
def own_app(gridded_engine: Engine) -> FastAPI:
    return make_app(gridded_engine)


@pytest.fixture(scope="module")
def admin(own_app: FastAPI) -> Iterator[TestClient]:
    with signed_in(own_app, STAFF["admin"].username) as client:
        yield client


@pytest.fixture
def elsewhere(gridded_url: str) -> Iterator[Engine]:
    engine = make_engine(gridded_url)
    yield engine
    engine.dispose()


def _listening(app: FastAPI, seconds: float = 30.0) -> bool:
    """Is the app's change feed live (waiting up to ``seconds``)? Until it is, nothing may be
    cached: on a loaded machine its first connection can take longer than the lifespan
    waits for it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        feed = app_state(app).changes
        if feed is not None and feed.live:
            return True
        time.sleep(0.02)
    return False


def test_locate_reads_nothing_until_a_grid_changes_elsewhere(
    own_app: FastAPI, admin: TestClient, gridded_engine: Engine, elsewhere: Engine
) -> None:
    assert _listening(own_app), "the change feed never connected"
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
    # Neither the caller nor the grids were read again (nor anything else but a feed's
    # preload, which may run meanwhile for any app on this engine).
    assert [s for s in statements if DEVICE_KEY_PRELOAD not in s] == []

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
