"""Porto cut into grids, with workers and incidents: the state the planner will leave behind.

The Porto demo has no grids yet. These fixtures load it into a scratch database and cut each
community into vertical strips holding equal numbers of households (about 170 each, inside
the 150–180 band), one worker per grid except one who holds two, households assigned by
ST_Covers, and a handful of incidents of known age and status. Import them into a test
module with ``from tests.gridded import *``-style explicit names.
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
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.security import hash_password
from data.access.queries import add_scope, create_api_key, create_user
from data.db import make_engine, transaction
from data.importing.loading import load_porto
from data.models import Role, ScopeLevel
from data.settings import Settings
from tests.conftest import own_database

PASSWORD = "correct horse battery staple"
STRIPS = 5


@dataclass(frozen=True)
class Gridded:
    url: str
    engine: Engine
    grids: int
    grid_codes: tuple[str, ...]
    coordinator_grids: int  # grids of community 131208
    integration_key: str  # an admin-role API key, as an integration would hold


def _cut_into_grids(engine: Engine) -> None:
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


@pytest.fixture(scope="session")
def gridded(server_url: str) -> Iterator[Gridded]:
    """A database of this test session's own (runs in parallel do not collide), dropped after."""
    url = own_database(server_url, "gridwork_test_gridded")
    engine = make_engine(url)
    list(load_porto(engine, settings=Settings(database_url=url)))
    _cut_into_grids(engine)
    with transaction(engine) as session:
        create_user(session, "g-admin", hash_password(PASSWORD), Role.admin)
        create_user(session, "g-coordinator", hash_password(PASSWORD), Role.coordinator)
        add_scope(session, "g-coordinator", ScopeLevel.community, "131208")
        create_user(session, "g-device-owner", hash_password(PASSWORD), Role.planner)
        key = create_api_key(session, "g-qgis", Role.admin)
        codes = tuple(session.execute(text("SELECT code FROM grid ORDER BY code")).scalars())
    coordinator = sum(1 for c in codes if c.startswith("131208-"))
    yield Gridded(url, engine, len(codes), codes, coordinator, key)
    engine.dispose()


def gridded_settings(url: str) -> Settings:
    return Settings(database_url=url, secret_key=secrets.token_urlsafe(48), login_per_minute=10_000)


@pytest.fixture(scope="session")
def gridded_app(gridded: Gridded) -> FastAPI:
    return create_app(gridded_settings(gridded.url), engine=gridded.engine)


def login(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="session")
def gridded_client(gridded_app: FastAPI) -> Iterator[TestClient]:
    """An admin's client over the gridded Porto."""
    with TestClient(gridded_app) as client:
        client.headers.update(login(client, "g-admin"))
        yield client


@dataclass(frozen=True)
class Live:
    url: str
    secret: str


@pytest.fixture(scope="session")
def live(gridded: Gridded) -> Iterator[Live]:
    """The app on uvicorn at 127.0.0.1:<free port>, in its own process, for the session."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    secret = secrets.token_urlsafe(48)
    env = {**os.environ, "GRIDWORK_LIVE_DATABASE_URL": gridded.url, "GRIDWORK_LIVE_SECRET": secret}
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.live_server:app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=root, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "the live server exited"
            assert time.monotonic() < deadline, "the live server did not start in 60 s"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield Live(url, secret)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
