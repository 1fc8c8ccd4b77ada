"""The coverage cache notices every committed write of what it holds, and only those.

The cache (:class:`data.coverage.service.NetworkCache`) keeps the road graph and the
households snapped onto it, keyed by the versions the store keeps per table (migration 0021,
:mod:`data.table_versions`), instead of scanning the tables on every request. The tests run
on copies of the Porto sample (real PostGIS): communities, roads, buildings, the households
estimated from them, and facilities. A copy takes seconds on a busy machine, so each watched
table gets one and goes through every kind of write in turn.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import ProgrammingError

from data.access.queries import AreaScope
from data.coverage.service import NetworkCache, coverage, coverage_areas
from data.crs import metric_epsg
from data.db import alembic_config, make_engine
from data.table_versions import table_versions
from geo.errors import Conflict
from tests.conftest import statements_on
from tests.factory import Factory

pytestmark = pytest.mark.db

WATCHED = ("road_segment", "household", "building", "facility")
#: What the cache builds anew after a write of each (the households are snapped onto the
#: graph, so a new graph means new households); facilities are read on every request.
REBUILT: dict[str, set[str]] = {
    "road_segment": {"graph", "households"},
    "household": {"households"},
    "building": {"households"},  # a household's community is its building's
    "facility": set(),
}

# One statement of each kind per watched table, each valid on the Porto sample; {n} makes
# the copied row's unique key.
_COPY = {
    "road_segment": "INSERT INTO road_segment (source_id, name, road_class, oneway, geom) "
    "SELECT source_id || '-{n}', name, road_class, oneway, ST_Translate(geom, 0.0001, 0) "
    "FROM road_segment ORDER BY id LIMIT 1",
    "household": "INSERT INTO household (code, size, lives_alone, building_id, estimated, geom) "
    "SELECT code || '-{n}', size, lives_alone, building_id, estimated, geom FROM household "
    "ORDER BY id LIMIT 1",
    "building": "INSERT INTO building "
    "(source_id, building_type, households_estimated, community_id, geom) "
    "SELECT source_id || '-{n}', building_type, households_estimated, community_id, geom "
    "FROM building ORDER BY id LIMIT 1",
    "facility": "INSERT INTO facility (source_id, kind, name, geom) "
    "SELECT source_id || '-{n}', kind, name, geom FROM facility ORDER BY id LIMIT 1",
}
_UPDATE = {
    "road_segment": "UPDATE road_segment SET geom = ST_Translate(geom, 0.0001, 0) "
    "WHERE id = (SELECT min(id) FROM road_segment)",
    "household": "UPDATE household SET building_id = NULL "
    "WHERE id = (SELECT min(id) FROM household WHERE building_id IS NOT NULL)",
    "building": "UPDATE building SET community_id = NULL "
    "WHERE id = (SELECT min(building_id) FROM household)",
    "facility": "UPDATE facility SET name = 'renamed' WHERE id = (SELECT min(id) FROM facility)",
}
OPS = ("insert", "update", "delete", "truncate")  # truncate last: it empties the table


def _statement(table: str, op: str, n: str = "copy") -> str:
    if op == "insert":
        return _COPY[table].format(n=n)
    if op == "update":
        return _UPDATE[table]
    if op == "delete":
        return f"DELETE FROM {table} WHERE id = (SELECT max(id) FROM {table})"
    return f"TRUNCATE {table} CASCADE"


@pytest.fixture
def porto(factory: Factory) -> Iterator[Engine]:
    """A fresh copy of the Porto sample: the test empties tables."""
    engine = make_engine(factory.database("gridwork_test_versions", "porto"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def shared(factory: Factory) -> Iterator[Engine]:
    """A copy for the tests that only add rows and move a building: each reads its figures
    before and after its own write."""
    engine = make_engine(factory.database("gridwork_test_versions_shared", "porto"))
    yield engine
    engine.dispose()


def _held(conn: Connection, cache: NetworkCache) -> dict[str, object]:
    """What the cache hands out now: the graph and the households (built if it must)."""
    epsg = metric_epsg(conn)
    assert epsg is not None
    graph = cache.graph(conn, epsg)
    return {"graph": graph, "households": cache.households(conn, graph, epsg)}


def _versions(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(zip(WATCHED, table_versions(conn, *WATCHED), strict=True))


@pytest.mark.parametrize("table", WATCHED)
def test_every_committed_write_is_noticed_and_a_rolled_back_one_is_not(
    porto: Engine, table: str
) -> None:
    """For each kind of write of ``table``: rolled back, the versions and the cache stay;
    committed, the table (and only it) has a new version and what the cache holds from it
    is built anew, and nothing else is."""
    cache = NetworkCache()
    with porto.connect() as conn:
        held = _held(conn, cache)
        assert _held(conn, cache) == held  # held while nothing changes
    for op in OPS:
        before = _versions(porto)
        with porto.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() > 0
            conn.execute(text(_statement(table, op)))
            conn.rollback()
        assert _versions(porto) == before, op
        with porto.connect() as conn:
            assert _held(conn, cache) == held, op

        with porto.begin() as conn:
            conn.execute(text(_statement(table, op)))
        after = _versions(porto)
        assert after[table] != before[table], op
        # TRUNCATE … CASCADE empties the households, a write of them noticed too. The building
        # deleted has no household to empty (ON DELETE SET NULL writes no row): no new
        # household version, since a statement that writes no row keeps it (0026).
        cascaded = {"household"} if table == "building" and op == "truncate" else set()
        assert {t for t in WATCHED if after[t] != before[t]} == {table} | cascaded, op

        with porto.connect() as conn:
            if (table, op) == ("road_segment", "truncate"):
                with pytest.raises(Conflict, match="no roads"):
                    _held(conn, cache)  # not the graph of the roads that are gone
                continue
            now = _held(conn, cache)
        rebuilt = {what for what in now if now[what] is not held[what]}
        assert rebuilt == REBUILT[table], op  # not kept stale, and not rebuilt for nothing
        held = now


def test_a_write_is_seen_by_others_only_once_committed(shared: Engine) -> None:
    """Another connection (a request) keeps the old version while the write is open, so it
    can never file the old rows under the new version; it sees the new one with the rows."""
    cache = NetworkCache()
    with shared.connect() as reader, shared.connect() as writer:
        homes = _held(reader, cache)["households"]
        before = table_versions(reader, "household")
        reader.commit()
        writer.execute(text(_statement("household", "insert", n="open")))
        assert table_versions(writer, "household") != before  # the writer's own view
        assert table_versions(reader, "household") == before
        assert _held(reader, cache)["households"] is homes
        reader.commit()
        writer.commit()
        assert table_versions(reader, "household") != before
        assert _held(reader, cache)["households"] is not homes


def _everywhere(conn: Connection, cache: NetworkCache) -> dict[str, int]:
    """Households counted per community by the pharmacies' coverage: what a user sees."""
    report = coverage(
        conn, cache, kind="pharmacy", minutes=10, scope=AreaScope.everywhere(), drawing=False
    ).as_json()
    return {a["code"]: a["households"] for a in report["areas"]}


def test_coverage_counts_what_was_written_since_the_last_request(shared: Engine) -> None:
    cache = NetworkCache()
    with shared.connect() as conn:
        first = _everywhere(conn, cache)
        community, building = conn.execute(
            text(
                "SELECT c.code, b.id FROM building b JOIN community c ON c.id = b.community_id "
                "WHERE EXISTS (SELECT FROM household h WHERE h.building_id = b.id) "
                "ORDER BY b.id LIMIT 1"
            )
        ).one()
        living = conn.execute(
            text("SELECT count(*) FROM household WHERE building_id = :b"), {"b": building}
        ).scalar_one()
    assert first[community] > 0
    with shared.begin() as conn:
        conn.execute(text(_statement("household", "insert", n="counted")))
        conn.execute(
            text("UPDATE household SET building_id = :b WHERE code LIKE '%-counted'"),
            {"b": building},
        )
    with shared.connect() as conn:
        second = _everywhere(conn, cache)
    assert second[community] == first[community] + 1
    # A household's community is its building's: moving the building moves them all.
    with shared.begin() as conn:
        conn.execute(text("UPDATE building SET community_id = NULL WHERE id = :b"), {"b": building})
    with shared.connect() as conn:
        third = _everywhere(conn, cache)
    assert third[community] == second[community] - living - 1
    assert cache.builds == 1  # the roads never changed: the graph was built once


def test_a_warm_request_reads_the_households_only_of_its_areas(shared: Engine) -> None:
    """The point of the versions: on a warm cache a request reads no road, and households
    only where the areas are read (their counts), no longer the whole table for a check."""
    cache = NetworkCache()
    with shared.connect() as conn:
        _everywhere(conn, cache)
        with statements_on(shared, "household") as by_areas:
            coverage_areas(conn, AreaScope.everywhere())
        with (
            statements_on(shared, "household") as households,
            statements_on(shared, "road_segment") as roads,
        ):
            _everywhere(conn, cache)
    assert households == by_areas
    assert roads == []


def test_the_apps_role_versions_its_writes_but_cannot_set_a_version(shared: Engine) -> None:
    before = _versions(shared)
    with shared.begin() as conn:
        conn.execute(text("SET LOCAL ROLE gridwork_app"))
        conn.execute(text(_UPDATE["facility"]))
    assert _versions(shared)["facility"] != before["facility"]
    with shared.connect() as conn:
        conn.execute(text("SET ROLE gridwork_app"))
        assert table_versions(conn, "facility")  # it may read them
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("UPDATE table_version SET version = gen_random_uuid()"))


def test_the_migration_goes_down_and_up_again(porto: Engine) -> None:
    """0021 leaves nothing behind going down, and versions writes again coming back up."""
    url = porto.url.render_as_string(hide_password=False)
    objects = text(
        "SELECT to_regclass('table_version') IS NOT NULL, "
        "to_regprocedure('bump_table_version()') IS NOT NULL, "
        "(SELECT count(*) FROM pg_trigger WHERE tgfoid = "
        "coalesce(to_regprocedure('bump_table_version()'), 0))"
    )
    with porto.connect() as conn:
        # one trigger per event (0026: INSERT, UPDATE, DELETE with their rows; TRUNCATE) on
        # each table, those of 0021 and worker and community (0029)
        tables = (*WATCHED, "worker", "community")
        assert tuple(conn.execute(objects).one()) == (True, True, 4 * len(tables))
    command.downgrade(alembic_config(url), "0020")
    with porto.connect() as conn:
        assert tuple(conn.execute(objects).one()) == (False, False, 0)
    with porto.begin() as conn:  # no trigger calls a function that is gone
        conn.execute(text(_UPDATE["facility"]))
    command.upgrade(alembic_config(url), "heads")
    before = _versions(porto)
    with porto.begin() as conn:
        conn.execute(text(_UPDATE["household"]))
    after = _versions(porto)
    assert {t for t in WATCHED if after[t] != before[t]} == {"household"}
