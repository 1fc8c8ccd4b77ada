"""Which routes read the hot standby (``GRIDWORK_READ_DATABASE_URL``), proved on a real one.

The list is derived from the app: a route reads the standby iff its session is
``ReadSessionDep`` (api/deps.py), and the routes that do are compared with the list below, so
that adding one is a decision someone writes down. None of them is personal or audited.

Then an app runs over a primary and its standby made by ``pg_basebackup`` (tests/standby.py).
The proof that a route read the standby is in what it answers: with the standby's replay
paused, a row just written on the primary is missing from a replica route's answer and
present in a personal route's; each replica route's statements run on the standby's engine.
The standby stopped, every route still answers (from the primary), and once it is back the
replica routes read it again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from api.app import create_app
from api.deps import get_read_session, get_session
from api.grid_index import current_grid_index
from api.state import app_state
from data.db import make_engine
from data.models import Role
from data.policy import Action
from data.replica import BEHIND_CHANGE, DOWN, LAGGING, ReadReplica
from tests.conftest import statements_on
from tests.factory import Account, add_accounts, app_settings, sign_in
from tests.policy.routes import action_of, walk
from tests.standby import Pair, primary_and_standby

# (method, path) of every route whose session is on the standby while it is usable.
REPLICA_ROUTES = {
    ("GET", "/streets"),
    ("GET", "/communities"),
    ("GET", "/grids"),
    ("GET", "/roads"),
    ("GET", "/facilities"),
    ("GET", "/facilities/{source_id}"),
    ("GET", "/basemap"),
    ("GET", "/grids/out-of-band"),
    ("GET", "/grids/{code}/summary"),
    ("GET", "/maps/grids"),
    ("GET", "/maps/workload"),
    ("GET", "/maps/incidents"),
    ("GET", "/maps/coverage"),
    ("GET", "/coverage"),
    ("GET", "/viewer"),
    ("GET", "/maps/hierarchy"),
}
# Each with a request that exercises it over the small district below.
CALLS = {
    "/streets": "/streets",
    "/communities": "/communities",
    "/grids": "/grids",
    "/roads": "/roads",
    "/facilities": "/facilities",
    "/facilities/{source_id}": "/facilities/F1",
    "/basemap": "/basemap?bbox=-8.63,41.13,-8.58,41.16&zoom=15",
    "/grids/out-of-band": "/grids/out-of-band",
    "/grids/{code}/summary": "/grids/C1-G1/summary",
    "/maps/grids": "/maps/grids",
    "/maps/workload": "/maps/workload",
    "/maps/incidents": "/maps/incidents",
    "/maps/coverage": "/maps/coverage?kind=clinic&minutes=5",
    "/coverage": "/coverage?kind=clinic&minutes=5",
    "/viewer": "/viewer",
    "/maps/hierarchy": "/maps/hierarchy",
}
# Actions whose data is personal: their routes read and write on the primary, always.
PERSONAL = {
    Action.read_households,
    Action.edit_households,
    Action.locate_elders,
    Action.enrol_elders,
    Action.handle_alerts,
    Action.report_positions,
    Action.read_audit,
    Action.manage_accounts,
    Action.view_cases,
    Action.handle_cases,
}
ADMIN = Account("r-admin", Role.admin)
_BOX = "POLYGON(({w} 41.14,{e} 41.14,{e} 41.15,{w} 41.15,{w} 41.14))"
DISTRICT = [
    "INSERT INTO district (code, name) VALUES ('D1', 'Old Town')",
    "INSERT INTO street (code, name, district_id, geom) SELECT 'S1', '东街', id, "
    f"ST_GeomFromText('{_BOX.format(w=-8.62, e=-8.59)}', 4326) FROM district",
    "INSERT INTO community (code, name, kind, street_id, geom) SELECT 'C1', '一社区', "
    f"'community', id, ST_GeomFromText('{_BOX.format(w=-8.62, e=-8.59)}', 4326) FROM street",
    "INSERT INTO worker (code, display_name, community_id) SELECT 'W1', '网格员 W1', id "
    "FROM community",
    "INSERT INTO grid (code, community_id, worker_id, geom) SELECT 'C1-G1', c.id, w.id, "
    f"ST_GeomFromText('{_BOX.format(w=-8.62, e=-8.61)}', 4326) FROM community c, worker w",
    "INSERT INTO grid (code, community_id, geom) SELECT 'C1-G2', id, "
    f"ST_GeomFromText('{_BOX.format(w=-8.61, e=-8.60)}', 4326) FROM community",
    "INSERT INTO road_segment (source_id, name, geom) VALUES ('R1', 'Rua', "
    "ST_GeomFromText('LINESTRING(-8.619 41.145,-8.601 41.145)', 4326))",
    "INSERT INTO deployment_setting (key, value) VALUES ('metric_epsg', '32629') "
    "ON CONFLICT (key) DO NOTHING",
]


def _facility(source_id: str) -> str:
    return (
        "INSERT INTO facility (source_id, kind, name, geom, grid_id) SELECT "
        f"'{source_id}', 'clinic', 'Clinic {source_id}', "
        "ST_SetSRID(ST_MakePoint(-8.615, 41.145), 4326), id FROM grid WHERE code = 'C1-G1'"
    )


def _household(code: str) -> str:
    return (
        "INSERT INTO household (code, size, lives_alone, estimated, geom, grid_id) SELECT "
        f"'{code}', 2, false, false, ST_SetSRID(ST_MakePoint(-8.614, 41.146), 4326), id "
        "FROM grid WHERE code = 'C1-G1'"
    )


def _depends_on(route: APIRoute, call: Any) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        d = stack.pop()
        if d.call is call:
            return True
        stack.extend(d.dependencies)
    return False


def test_the_replica_routes_are_the_non_personal_reads() -> None:
    app = create_app(app_settings("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    routes = list(walk(app.routes))
    on_standby = {
        (method, path)
        for path, route in routes
        if _depends_on(route, get_read_session)
        for method in route.methods or ()
    }
    assert on_standby == REPLICA_ROUTES
    for path, route in routes:
        if not _depends_on(route, get_read_session):
            continue
        assert route.methods == {"GET"}, f"{path} writes: it must stay on the primary"
        assert action_of(route) is Action.view_district, path
        assert not _depends_on(route, get_session), f"{path} also takes the primary's session"
        queries = {p.alias for p in route.dependant.query_params}
        assert "reason" not in queries, f"{path} is an audited read: it must stay on the primary"
    # ... and the other way round: no personal or audited route reads the standby.
    personal = [
        path
        for path, route in routes
        if action_of(route) in PERSONAL
        or "reason" in {p.alias for p in route.dependant.query_params}
    ]
    assert personal, "the personal routes were not found: the check above would be empty"
    assert not [p for p, r in routes if p in personal and _depends_on(r, get_read_session)]
    # /locate reads no session: its grid index is refilled where the change is replayed.
    locate = next(r for p, r in routes if p == "/locate")
    assert _depends_on(locate, current_grid_index)


# --- over a real standby --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with primary_and_standby(migrated=True) as made:
        yield made


@pytest.fixture(scope="module")
def owner(pair: Pair) -> Iterator[Engine]:
    """The primary as its owner: the test's own writes."""
    engine = make_engine(pair.primary.url())
    with engine.begin() as conn:
        for statement in [*DISTRICT, _facility("F1"), _household("H1")]:
            conn.execute(text(statement))
    add_accounts(engine, [ADMIN])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def app(pair: Pair, owner: Engine) -> Iterator[FastAPI]:
    """The app as deployed: its own role on the primary and on the standby."""
    engine = make_engine(pair.primary.app_url())
    url = engine.url.render_as_string(hide_password=False)
    settings = app_settings(url, read_database_url=pair.standby.app_url())
    yield create_app(settings, engine=engine)
    engine.dispose()


@pytest.fixture(scope="module")
def client(app: FastAPI, pair: Pair) -> Iterator[TestClient]:
    pair.wait_for_replay()
    with TestClient(app) as c:
        c.headers.update(sign_in(c, ADMIN.username))
        yield c


@pytest.fixture
def reads(app: FastAPI, client: TestClient, pair: Pair) -> Iterator[ReadReplica]:
    """The app's standby, caught up and in use; replay resumed whatever the test did."""
    replica = app_state(app).reads
    assert replica is not None
    pair.wait_for_replay()
    _until(lambda: replica.check().usable)
    yield replica
    pair.resume_replay()


def _until(ok: Any, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not ok():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _write(owner: Engine, *statements: str) -> None:
    with owner.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _audit_rows(owner: Engine) -> int:
    with owner.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())


def _layer_ids(client: TestClient, layer: str) -> set[str]:
    r = client.get(f"/{layer}")
    assert r.status_code == 200, r.text
    return {f["properties"]["source_id"] for f in r.json()["features"]}


def _ogc_facilities(client: TestClient) -> set[str]:
    r = client.get("/ogc/collections/ogc.facilities/items")
    assert r.status_code == 200, r.text
    return {f["properties"]["source_id"] for f in r.json()["features"]}


def _metrics(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_every_replica_route_reads_the_standby_and_writes_nothing(
    client: TestClient, owner: Engine, reads: ReadReplica
) -> None:
    before = _audit_rows(owner)
    assert set(CALLS) == {path for _, path in REPLICA_ROUTES}
    for route, call in CALLS.items():
        with statements_on(reads.standby) as on_standby:
            r = client.get(call)
        assert r.status_code < 500, (call, r.status_code, r.text[:300])
        assert on_standby, f"{route} did not read the standby"
    assert _audit_rows(owner) == before


def test_a_paused_standby_shows_who_reads_it(
    client: TestClient, owner: Engine, pair: Pair, reads: ReadReplica
) -> None:
    """With replay paused, what is written on the primary is missing from the replica
    routes (layers, a facility, the OGC features) and present in the personal ones."""
    pair.pause_replay()
    _write(owner, _facility("F2"), _household("H2"))
    audits = _audit_rows(owner)
    assert "F1" in _layer_ids(client, "facilities")
    assert "F2" not in _layer_ids(client, "facilities")
    assert client.get("/facilities/F2").status_code == 404
    assert _ogc_facilities(client) == {"F1"}
    # The household is personal: read (and audited) on the primary, whatever the standby.
    r = client.get("/households/H2", params={"reason": "replica test"})
    assert r.status_code == 200, r.text
    assert _audit_rows(owner) == audits + 1

    pair.resume_replay()
    pair.wait_for_replay()
    assert "F2" in _layer_ids(client, "facilities")
    assert client.get("/facilities/F2").status_code == 200
    assert "F2" in _ogc_facilities(client)


def test_the_grid_index_is_never_refilled_from_a_standby_behind_the_change(
    app: FastAPI, client: TestClient, owner: Engine, pair: Pair, reads: ReadReplica
) -> None:
    """A hot standby delivers no NOTIFY: the feed listens on the primary, and the index it
    empties is refilled from the standby only once it has the change, else from the
    primary; refilled from a paused standby, /locate would miss the new grid until the
    next change."""
    here = {"lon": -8.595, "lat": 41.145}  # in no grid yet: the east strip of C1
    assert client.get("/locate", params=here).status_code == 404
    feed = app_state(app).changes
    assert feed is not None and feed.live
    generation = feed.generation
    behind = reads.fallbacks[BEHIND_CHANGE]
    pair.pause_replay()
    _write(
        owner,
        "INSERT INTO grid (code, community_id, geom) SELECT 'C1-G3', id, "
        f"ST_GeomFromText('{_BOX.format(w=-8.60, e=-8.59)}', 4326) FROM community",
    )
    _until(lambda: feed.generation != generation)  # NOTIFY heard from the primary
    r = client.get("/locate", params=here)
    assert r.status_code == 200, r.text
    assert r.json()["grid"] == "C1-G3"
    assert reads.fallbacks[BEHIND_CHANGE] == behind + 1
    samples = _metrics(client)
    reason = frozenset({("reason", BEHIND_CHANGE)})
    assert samples[("gridwork_replica_fallbacks_total", reason)] == behind + 1
    assert samples[("gridwork_replica_up", frozenset())] == 1.0
    assert 0.0 <= samples[("gridwork_replica_lag_seconds", frozenset())] < 30.0
    assert samples[("gridwork_replica_max_lag_seconds", frozenset())] == 30.0


def test_the_change_feed_listens_on_the_primary(pair: Pair, client: TestClient) -> None:
    def listening(cluster: Any) -> int:
        with pair.superuser(cluster) as conn:
            found = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %%'"
            ).fetchone()
        return int(found[0]) if found else 0

    assert listening(pair.primary) >= 1
    assert listening(pair.standby) == 0


def test_a_standby_too_far_behind_is_not_read(
    client: TestClient,
    owner: Engine,
    pair: Pair,
    reads: ReadReplica,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reads, "max_lag_s", 1.0)  # GRIDWORK_READ_MAX_LAG_S=1
    pair.pause_replay()
    _write(owner, _facility("F4"))
    _until(lambda: reads.health.reason == LAGGING)  # the app's sampler, on its own
    assert "F4" in _layer_ids(client, "facilities")  # so the primary answered
    samples = _metrics(client)
    assert samples[("gridwork_replica_up", frozenset())] == 0.0
    assert samples[("gridwork_replica_lag_seconds", frozenset())] > 1.0
    assert samples[("gridwork_replica_fallbacks_total", frozenset({("reason", LAGGING)}))] >= 1


def test_reads_survive_the_standby_going_away_and_come_back_to_it(
    client: TestClient, owner: Engine, pair: Pair, reads: ReadReplica
) -> None:
    down = reads.fallbacks[DOWN]
    pair.standby.stop()
    try:
        for route, call in CALLS.items():
            r = client.get(call)
            assert r.status_code < 500, (route, r.status_code, r.text[:300])
        assert client.get("/locate", params={"lon": -8.615, "lat": 41.145}).status_code == 200
        assert "F1" in _ogc_facilities(client)
        assert reads.health.reason == DOWN
        samples = _metrics(client)
        assert samples[("gridwork_replica_up", frozenset())] == 0.0
        assert samples[("gridwork_replica_fallbacks_total", frozenset({("reason", DOWN)}))] > down
    finally:
        pair.standby.start()
    _until(lambda: reads.health.usable)  # the sampler finds it again on its own
    pair.pause_replay()
    _write(owner, _facility("F3"))
    assert "F3" not in _layer_ids(client, "facilities")  # read on the standby again
    assert "F3" not in _ogc_facilities(client)
