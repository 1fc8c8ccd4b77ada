"""The demo world: fictional elders with consent, watches and zones, a dozen cases, and the
watches' walks replayed over HTTP until a wanderer's ``left_zone`` alert arrives.

Built on a copy of the gridded Porto (``strips``) as ``gridwork demo`` builds it: the demo
accounts first (their passwords from the mode-600 file), then the elders and cases through
the care and case services. The walks are checked pure on a lattice of roads (on the roads,
the same for a seed) and, replayed, in PostGIS (every stored position on a stored road).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.cli import _demo_accounts
from api.demo import Replay, Watch, prepare, read_keys, write_keys
from data.access.queries import find_api_keys
from data.db import transaction
from data.importing.loading import DEMO_CASES, enrol_demo_elders, report_demo_incidents
from geo.care.datum import to_wgs84
from geo.care.safezone import SafeZone
from geo.care.walks import excursion, on_road, stroll
from geo.coverage.road_graph import RoadGraph
from tests.factory import app_settings, make_app
from tests.gridded import Gridded


def _count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-state")


@pytest.fixture(scope="module")
def world(strips: Gridded, state: Path) -> Gridded:
    """The demo accounts on the gridded Porto (elders and cases are the tests' to add)."""
    _demo_accounts(strips.engine, app_settings(strips.url, state_dir=state))
    return strips


def _passwords(state: Path) -> dict[str, str]:
    lines = (state / "demo-accounts.txt").read_text().splitlines()
    return {u: rest.split()[0] for u, rest in (line.split(": ", 1) for line in lines)}


# --------------------------------------------------------------------------- elders and cases


def test_demo_elders_have_consent_keys_and_zones_and_a_second_run_reuses_them(
    world: Gridded, state: Path
) -> None:
    settings = app_settings(world.url, state_dir=state)
    keys_path = state / "demo-devices.txt"
    first = enrol_demo_elders(world.engine, settings=settings, keys=read_keys(keys_path))
    write_keys(keys_path, first)
    assert len(first) == 4
    assert oct(keys_path.stat().st_mode & 0o777) == "0o600"
    ids = [e.elder_id for e in first]
    with transaction(world.engine) as session:
        assert set(find_api_keys(session, [e.key for e in first])) == {e.key for e in first}
    # Each elder: an active consent marked as the demo's, one watch, one zone, an audit row.
    for elder_id in ids:
        consent = _count(
            world.engine,
            "SELECT count(*) FROM consent WHERE elder_id = :e AND withdrawn_at IS NULL "
            "AND given_by LIKE '演示：%DEMO: fictional%' AND scope LIKE '演示：%DEMO%'",
            e=elder_id,
        )
        assert consent == 1
        assert _count(
            world.engine, "SELECT count(*) FROM safe_zone WHERE elder_id = :e", e=elder_id
        )
    kinds = {
        r[0]: r[1]
        for r in world.engine.connect().execute(
            text("SELECT elder_id, kind::text FROM safe_zone WHERE elder_id = ANY(:ids)"),
            {"ids": ids},
        )
    }
    assert kinds[ids[0]] == "circle" and {kinds[i] for i in ids[1:]} == {"home_grid"}
    # The elders live in demo-care's area: demo-care lists them over HTTP.
    with TestClient(make_app(world.engine)) as client:
        r = client.post(
            "/token", data={"username": "demo-care", "password": _passwords(state)["demo-care"]}
        )
        assert r.status_code == 200, r.text
        listed = client.get(
            "/elders", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert listed.status_code == 200
        assert {e["id"] for e in listed.json()["elders"]} >= set(ids)
        assert all(e["consent"] for e in listed.json()["elders"] if e["id"] in ids)

    tables = "SELECT (SELECT count(*) FROM elder) + (SELECT count(*) FROM device) * 100 + "
    tables += "(SELECT count(*) FROM consent) * 10000 + (SELECT count(*) FROM api_key) * 1000000"
    before = _count(world.engine, tables)
    again = enrol_demo_elders(world.engine, settings=settings, keys=read_keys(keys_path))
    assert again == first  # same elders, same watches, same keys
    assert _count(world.engine, tables) == before

    # The keys file lost: the same watches get new keys, the old ones stop working.
    fresh = enrol_demo_elders(world.engine, settings=settings, keys={})
    assert [e.elder_id for e in fresh] == ids
    assert not {e.key for e in fresh} & {e.key for e in first}
    with transaction(world.engine) as session:
        assert find_api_keys(session, [e.key for e in first]) == {}
    write_keys(keys_path, fresh)


def test_demo_cases_span_categories_and_states_and_are_reported_once(world: Gridded) -> None:
    now = datetime.now(UTC)
    lines = list(report_demo_incidents(world.engine, now=now))
    assert lines[-1].startswith(f"incidents: {len(DEMO_CASES)} demo cases reported")
    assert list(report_demo_incidents(world.engine, now=now)) == [
        f"incidents: {len(DEMO_CASES)} demo cases kept"
    ]
    with world.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT k.code, c.status::text, c.due_at < :now AS late, c.department_id, "
                "c.escalations, ST_Covers(g.geom, i.geom) FROM incident_case c "
                "JOIN incident_category k ON k.id = c.category_id "
                "JOIN incident i ON i.id = c.id JOIN grid g ON g.id = i.grid_id "
                "WHERE c.client = 'gridwork demo'"
            ),
            {"now": now},
        ).all()
    assert len(rows) == len(DEMO_CASES)
    assert len({r[0] for r in rows}) >= 6
    statuses = [r[1] for r in rows]
    assert {"new", "accepted", "in_progress", "resolved", "closed"} <= set(statuses)
    assert statuses.count("resolved") == 1
    assert sum(1 for r in rows if r[2] and r[1] in ("new", "accepted", "in_progress")) == 1
    assert sum(1 for r in rows if r[3] is not None) == 1
    assert sum(1 for r in rows if r[4]) == 1
    assert all(r[5] for r in rows)  # every case at a real point inside its grid
    # the worker's grids got their share, routed to the demo worker
    assert _count(
        world.engine,
        "SELECT count(*) FROM incident_case c JOIN app_user u ON u.id = c.assignee_id "
        "WHERE c.client = 'gridwork demo' AND u.username = 'demo-worker'",
    )


# --------------------------------------------------------------------------- walks (pure)


def _lattice(x0: float = 0.0, y0: float = 0.0, n: int = 12, spacing: float = 80.0) -> RoadGraph:
    lines = []
    for i in range(n):
        lines.append(
            shapely.LineString([(x0, y0 + i * spacing), (x0 + (n - 1) * spacing, y0 + i * spacing)])
        )
        lines.append(
            shapely.LineString([(x0 + i * spacing, y0), (x0 + i * spacing, y0 + (n - 1) * spacing)])
        )
    noded = shapely.get_parts(shapely.node(shapely.MultiLineString(lines)))
    return RoadGraph.from_segments(np.asarray(noded, dtype=object), crs="EPSG:32645")


def test_walks_stay_on_roads_are_seeded_and_the_excursion_leaves_and_returns() -> None:
    graph = _lattice()
    roads = shapely.union_all(graph.edge_geometry)
    home = (430.0, 455.0)  # between roads: a house
    t0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
    zone = SafeZone.circle(*home, 150.0)
    a = stroll(graph, home, seed=7, fixes=80, start_time=t0, within=zone)
    assert a == stroll(graph, home, seed=7, fixes=80, start_time=t0, within=zone)
    assert a != stroll(graph, home, seed=8, fixes=80, start_time=t0, within=zone)
    assert len(a) == 80 and a[1].time - a[0].time == timedelta(seconds=10)
    steps = np.hypot(np.diff([f.x for f in a]), np.diff([f.y for f in a]))
    assert steps.max() <= 11.0 + 1e-6
    walk = excursion(graph, home, zone, seed=3, start_time=t0)
    assert walk == excursion(graph, home, zone, seed=3, start_time=t0)
    for fixes in (a, walk):
        points = shapely.points([(f.x, f.y) for f in fixes])
        assert float(shapely.distance(points, roads).max()) < 1e-6  # on the roads
    # the stroll keeps to its zone; the excursion leaves by 40 m and ends where it began
    assert max(zone.signed_distance(f.x, f.y) for f in a) < 0
    # also in a zone that is not convex (a grid grown by a buffer): an L of roads 80 m apart
    ell = SafeZone(
        geometry=shapely.Polygon(
            [(150, 150), (650, 150), (650, 330), (330, 330), (330, 650), (150, 650)]
        )
    )
    for seed in range(5):
        b = stroll(graph, (250.0, 250.0), seed=seed, fixes=150, start_time=t0, within=ell)
        assert max(ell.signed_distance(f.x, f.y) for f in b) < 0, seed
    out = [zone.signed_distance(f.x, f.y) for f in walk]
    assert max(out) > 40
    assert (walk[0].x, walk[0].y) == (walk[-1].x, walk[-1].y) == on_road(graph, *home)
    assert [f.time for f in walk] == sorted(f.time for f in walk)


def test_a_gcj02_watch_sends_gcj02_that_maps_back_onto_the_road() -> None:
    # a lattice in UTM 45N at Karamay (in China, where GCJ-02 applies)
    graph = _lattice(x0=567_000.0, y0=5_045_000.0)
    home = on_road(graph, 567_430.0, 5_045_455.0)
    zone = SafeZone.circle(*home, 150.0)
    watch = Watch("W-GCJ", "k", "gcj02", False, home, zone, seed=1)
    replay = Replay(graph, [watch], epsg=32645)
    sent = replay.report(watch, datetime(2026, 3, 1, tzinfo=UTC))
    lon, lat = float(sent["lon"]), float(sent["lat"])
    wlon, wlat = to_wgs84(lon, lat, "gcj02")
    x, y = pyproj.Transformer.from_crs(4326, 32645, always_xy=True).transform(wlon, wlat)
    roads = shapely.union_all(graph.edge_geometry)
    assert shapely.distance(shapely.Point(x, y), roads) < 1.0  # back on the road
    gx, gy = pyproj.Transformer.from_crs(4326, 32645, always_xy=True).transform(lon, lat)
    assert np.hypot(gx - x, gy - y) > 50  # what was sent is GCJ-02: shifted off the walk


# --------------------------------------------------------------------------- the replay, live


def test_replayed_watches_store_positions_on_roads_and_the_wanderer_raises_left_zone(
    world: Gridded, state: Path
) -> None:
    settings = app_settings(world.url, state_dir=state)
    elders = enrol_demo_elders(
        world.engine, settings=settings, keys=read_keys(state / "demo-devices.txt")
    )
    replay = prepare(world.engine, settings, elders)
    assert replay is not None and len(replay.watches) == 4
    app = make_app(world.engine, ingest_per_minute=100_000, care_tick_seconds=0)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with TestClient(app) as client:

        def send(params: Mapping[str, str], key: str) -> int:  # what http_sender does, in-process
            return client.post(
                "/ingest/osmand", data=params, headers={"X-API-Key": key}
            ).status_code

        token = client.post(
            "/token", data={"username": "demo-care", "password": _passwords(state)["demo-care"]}
        ).json()["access_token"]
        care = {"Authorization": f"Bearer {token}"}
        steps = 0
        kinds: list[str] = []
        while "returned" not in kinds and steps < 200:
            assert replay.step(send, start + timedelta(seconds=10 * steps)) == [200] * 4
            steps += 1
            if steps % 10 == 0:
                kinds = []
                for status in ("open", "closed"):  # a return closes the exit alert
                    r = client.get("/alerts", headers=care, params={"status": status})
                    assert r.status_code == 200, r.text
                    kinds += [a["kind"] for a in r.json()["alerts"]]
        assert "left_zone" in kinds and "returned" in kinds, (steps, kinds)
        alerts = [
            a
            for status in ("open", "closed")
            for a in client.get("/alerts", headers=care, params={"status": status}).json()["alerts"]
        ]
    wanderer = elders[0]
    assert {a["elder_id"] for a in alerts if a["kind"] == "left_zone"} == {wanderer.elder_id}
    stored = _count(
        world.engine,
        "SELECT count(*) FROM position p JOIN device d ON d.id = p.device_id "
        "WHERE d.device_code LIKE 'DEMO-WATCH-%' AND p.time >= :t",
        t=start,
    )
    assert stored == 4 * steps
    off_road = _count(
        world.engine,
        "SELECT count(*) FROM position p WHERE p.time >= :t AND NOT EXISTS (SELECT 1 FROM "
        "road_segment r WHERE ST_DWithin(r.geom::geography, p.geom::geography, 1.0))",
        t=start,
    )
    assert off_road == 0
