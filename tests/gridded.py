"""Porto cut into grids, with workers and incidents: the state the planner will leave behind.

The Porto demo has no grids yet. These fixtures load it into a scratch database and cut each
community into vertical strips holding equal numbers of households (about 170 each, inside
the 150–180 band), one worker per grid except one who holds two, households assigned by
ST_Covers, and a handful of incidents of known age and status.

The cut, the staff and an integration's key are made once per session into the
``porto_strips`` template (tests/factory.py); the fixtures ``strips`` (a :class:`Gridded` copy
of it per test module), ``strips_app``, ``strips_client`` (an admin's) and ``live`` (the app
on uvicorn, once per session, over a copy of its own) are offered to every test by
tests/conftest.py. The names ``gridded``, ``gridded_app`` and ``gridded_client`` that
modules used to import from here still work when imported, as aliases of those.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.db import make_engine, transaction
from data.models import Role, ScopeLevel
from data.settings import Settings
from tests.factory import (
    PASSWORD,
    Account,
    add_accounts,
    add_key,
    app_settings,
    database,
    make_app,
    template,
)
from tests.factory import sign_in as login

__all__ = ["PASSWORD", "Gridded", "Live", "login"]

STRIPS = 5
STAFF = (
    Account("g-admin", Role.admin),
    Account("g-coordinator", Role.coordinator, ((ScopeLevel.community, "131208"),)),
    Account("g-planner", Role.planner, ((ScopeLevel.community, "131208"),)),
    Account("g-device-owner", Role.planner),
)


@dataclass(frozen=True)
class Gridded:
    url: str
    engine: Engine
    grids: int
    grid_codes: tuple[str, ...]
    coordinator_grids: int  # grids of community 131208
    integration_key: str  # an admin-role API key, as an integration would hold


def cut_into_grids(engine: Engine) -> None:
    """Grids, workers, household assignment and incidents over the Porto sample."""
    with transaction(engine) as session:
        communities = session.execute(
            text("SELECT id, code, ST_AsBinary(geom) FROM community ORDER BY code")
        ).all()
        worker = 0
        for community_id, code, wkb in communities:
            polygon = shapely.from_wkb(bytes(wkb))
            xs = np.array(
                session.execute(
                    text(
                        "SELECT ST_X(h.geom) FROM household h JOIN building b "
                        "ON b.id = h.building_id WHERE b.community_id = :c ORDER BY 1"
                    ),
                    {"c": community_id},
                )
                .scalars()
                .all()
            )
            west, south, east, north = polygon.bounds
            cuts = [west - 1, *np.quantile(xs, np.linspace(0, 1, STRIPS + 1)[1:-1]), east + 1]
            n = 0
            for lo, hi in itertools.pairwise(cuts):
                piece = shapely.intersection(polygon, shapely.box(lo, south - 1, hi, north + 1))
                for part in shapely.get_parts(piece):
                    if not isinstance(part, shapely.Polygon) or part.area < 1e-9:
                        continue
                    n += 1
                    worker += 1
                    # One worker answers for two grids: the workload map must add them up.
                    worker_code = f"W{worker:03d}" if worker != 2 else "W001"
                    session.execute(
                        text(
                            "INSERT INTO worker (code, display_name, community_id) "
                            "VALUES (:w, :name, :c) ON CONFLICT (code) DO NOTHING"
                        ),
                        {"w": worker_code, "name": f"网格员 {worker_code}", "c": community_id},
                    )
                    session.execute(
                        text(
                            "INSERT INTO grid (code, community_id, worker_id, geom) VALUES "
                            "(:code, :c, (SELECT id FROM worker WHERE code = :w), "
                            "ST_GeomFromWKB(:g, 4326))"
                        ),
                        {"code": f"{code}-G{n:02d}", "c": community_id, "w": worker_code,
                         "g": part.wkb},
                    )  # fmt: skip
        session.execute(
            text(
                "UPDATE household h SET grid_id = (SELECT g.id FROM grid g WHERE "
                "ST_Covers(g.geom, h.geom) ORDER BY g.code LIMIT 1)"
            )
        )
        # Incidents: 3 open + 1 in progress + 2 closed in the last 30 days, 2 older ones.
        for i, (status, days_ago) in enumerate(
            [("open", 1), ("open", 3), ("open", 10), ("in_progress", 5), ("closed", 2),
             ("closed", 20), ("open", 60), ("closed", 90)]
        ):  # fmt: skip
            session.execute(
                text(
                    "INSERT INTO incident (source_id, category, status, reported_at, geom) "
                    "SELECT :sid, 'noise', CAST(:status AS incident_status), "
                    "now() - make_interval(days => :d), ST_PointOnSurface(g.geom) "
                    "FROM grid g ORDER BY g.code OFFSET :k LIMIT 1"
                ),
                {"sid": f"I{i}", "status": status, "d": days_ago, "k": i % 3},
            )


_cut_into_grids = cut_into_grids

_INTEGRATION_KEYS: dict[str, str] = {}  # template database → the key stored in it


def build_template(engine: Engine, url: str) -> None:
    """The ``porto_strips`` template (tests/factory.py), over a copy of Porto: the grids, the
    staff and an integration's admin-role API key, shared by every copy of it."""
    cut_into_grids(engine)
    add_accounts(engine, STAFF)
    _INTEGRATION_KEYS[url.rsplit("/", 1)[1]] = add_key(engine, "g-qgis", Role.admin)


def strips_database(server_url: str, base: str) -> tuple[str, str]:
    """A copy of the strips template: its URL and the integration's key."""
    url = database(server_url, base, "porto_strips")
    return url, _INTEGRATION_KEYS[template(server_url, "porto_strips")]


@pytest.fixture(scope="module")
def strips(server_url: str) -> Iterator[Gridded]:
    """A copy of the strips template for this module (its tests may write)."""
    url, key = strips_database(server_url, "gridwork_test_gridded")
    engine = make_engine(url)
    with transaction(engine) as session:
        codes = tuple(session.execute(text("SELECT code FROM grid ORDER BY code")).scalars())
    coordinator = sum(1 for c in codes if c.startswith("131208-"))
    yield Gridded(url, engine, len(codes), codes, coordinator, key)
    engine.dispose()


def gridded_settings(url: str) -> Settings:
    return app_settings(url)


@pytest.fixture(scope="module")
def strips_app(strips: Gridded) -> FastAPI:
    return make_app(strips.engine)


@pytest.fixture(scope="module")
def strips_client(strips_app: FastAPI) -> Iterator[TestClient]:
    """An admin's client over the gridded Porto."""
    with TestClient(strips_app) as client:
        client.headers.update(login(client, "g-admin"))
        yield client


@dataclass(frozen=True)
class Live:
    url: str
    secret: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(port: int, env: dict[str, str], extra_args: tuple[str, ...]) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.live_server:app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra_args],
        cwd=root, env=env,
    )  # fmt: skip


def _answers(server: subprocess.Popen[bytes], url: str) -> bool:
    """True once the server answers ``/health``; False if it exited first."""
    deadline = time.monotonic() + 60
    while server.poll() is None:
        assert time.monotonic() < deadline, "the live server did not start in 60 s"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.2)
    return False


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextmanager
def live_server(database_url: str, *extra_args: str) -> Iterator[Live]:
    """The app on uvicorn at 127.0.0.1:<free port> over ``database_url``, in its own
    process (GDAL's reader holds the GIL, so a thread could not answer it); stopped after.

    The port is free when chosen, but another process (a pytest-xdist worker starting its
    own server) may take it before uvicorn binds: a server that exits before it answered is
    started again on another port, twice at most."""
    secret = secrets.token_urlsafe(48)
    env = {
        **os.environ,
        "GRIDWORK_LIVE_DATABASE_URL": database_url,
        "GRIDWORK_LIVE_SECRET": secret,
    }
    for attempt in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = _serve(port, env, extra_args)
        try:
            if _answers(server, url):
                break
        except BaseException:
            _stop(server)
            raise
        assert attempt < 2, "the live server exited three times"
    try:
        yield Live(url, secret)
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def live(server_url: str) -> Iterator[Live]:
    """The app on uvicorn for the session (one start-up, not one per module), over a copy of
    the strips template of its own: the same grids, staff and integration key as every
    module's ``strips``, which only reads."""
    url, _ = strips_database(server_url, "gridwork_test_live")
    with live_server(url) as server:
        yield server


# The names modules imported before the fixtures above were offered everywhere; "gridded_app"
# there meant these strips, while tests/api/assignment's means the Voronoi grids.


@pytest.fixture(scope="module")
def gridded(strips: Gridded) -> Gridded:
    return strips


@pytest.fixture(scope="module")
def gridded_app(strips_app: FastAPI) -> FastAPI:
    return strips_app


@pytest.fixture(scope="module")
def gridded_client(strips_client: TestClient) -> TestClient:
    return strips_client
