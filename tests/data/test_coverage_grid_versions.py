"""After a household edit, the whole city's coverage re-reads only the grids edited.

Every grid has a token of its households (``grid_household_version``, migration 0025) that
any statement writing one of them makes anew; the coverage cache
(:class:`data.coverage.service.NetworkCache`) files each grid's households under it, so the
district-wide coverage map a coordinator opens after an edit re-reads one grid, not every
household of the city. The tests run on Porto cut into 20 strips (tests/gridded.py, real
PostGIS); each compares the answer with a fresh cache's, which reads everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import ProgrammingError

from data.access.queries import AreaScope
from data.coverage.service import NetworkCache, coverage
from data.db import alembic_config, make_engine
from tests.data.test_coverage_streets import household_reads
from tests.factory import Factory
from tests.gridded import Gridded

pytestmark = pytest.mark.db

#: The first household of grid ``:g``, and a write of it that changes nothing but the row.
FIRST = "(SELECT min(id) FROM household WHERE grid_id = :g)"
TOUCHED = f"UPDATE household SET size = size WHERE id = {FIRST}"


def _city(conn: Connection, cache: NetworkCache) -> dict[str, Any]:
    """The district-wide coverage a coordinator opens: every grid of the store."""
    return coverage(
        conn, cache, kind="pharmacy", minutes=10, scope=AreaScope.everywhere(), drawing=False
    ).as_json()


def _tokens(conn: Connection) -> dict[int, str]:
    return dict(
        conn.execute(text("SELECT grid_id, version::text FROM grid_household_version"))
        .tuples()
        .all()
    )


def _households_in(conn: Connection, grids: list[int]) -> int:
    return int(
        conn.execute(
            text("SELECT count(*) FROM household WHERE grid_id = ANY(:g)"), {"g": grids}
        ).scalar_one()
    )


def _two_grids(conn: Connection) -> tuple[int, int]:
    first, second = conn.execute(
        text(
            "SELECT id FROM grid g WHERE EXISTS (SELECT FROM household h WHERE h.grid_id = g.id) "
            "ORDER BY code LIMIT 2"
        )
    ).scalars()
    return int(first), int(second)


@pytest.fixture(scope="module")
def warm(strips: Gridded) -> NetworkCache:
    """A cache that has served the whole city once (what the start-up build leaves)."""
    cache = NetworkCache()
    with strips.engine.connect() as conn:
        _city(conn, cache)
    return cache


def _after(engine: Engine, cache: NetworkCache, write: Callable[[Connection], object]) -> list[int]:
    """Commit ``write``, then ask for the whole city: the grids read again (one statement at
    most), after checking that the households read are theirs and the answer is a fresh
    cache's."""
    with engine.begin() as conn:
        write(conn)
    with engine.connect() as conn:
        read = cache.households_read
        with household_reads(engine) as reads:
            answer = _city(conn, cache)
        assert len(reads) <= 1
        grids = sorted(reads[0]["ids"]) if reads else []
        assert cache.households_read - read == _households_in(conn, grids)
        assert answer == _city(conn, NetworkCache())
    return grids


def test_one_household_edited_rereads_its_grid_only(strips: Gridded, warm: NetworkCache) -> None:
    with strips.engine.connect() as conn:
        grid, _ = _two_grids(conn)
    walked = f"UPDATE household SET geom = ST_Translate(geom, 0.0002, 0) WHERE id = {FIRST}"
    snapped = warm.households_snapped
    assert _after(strips.engine, warm, lambda c: c.execute(text(walked), {"g": grid})) == [grid]
    assert warm.households_snapped - snapped == 1  # the others of the grid keep their snap
    resized = f"UPDATE household SET size = size + 1 WHERE id = {FIRST}"
    assert _after(strips.engine, warm, lambda c: c.execute(text(resized), {"g": grid})) == [grid]
    assert _after(strips.engine, warm, lambda c: None) == []  # read once under its new token


def test_a_household_moved_between_two_grids_rereads_both(
    strips: Gridded, warm: NetworkCache
) -> None:
    with strips.engine.connect() as conn:
        a, b = _two_grids(conn)
        before = {g: _households_in(conn, [g]) for g in (a, b)}
    moved = f"UPDATE household SET grid_id = :b WHERE id = {FIRST}"
    reread = _after(strips.engine, warm, lambda c: c.execute(text(moved), {"g": a, "b": b}))
    assert reread == sorted([a, b])
    with strips.engine.connect() as conn:
        assert {g: _households_in(conn, [g]) for g in (a, b)} == {
            a: before[a] - 1,
            b: before[b] + 1,
        }


def test_a_delete_and_an_insert_reread_their_grids(strips: Gridded, warm: NetworkCache) -> None:
    with strips.engine.connect() as conn:
        a, b = _two_grids(conn)
    deleted = "DELETE FROM household WHERE id = (SELECT max(id) FROM household WHERE grid_id = :a)"
    assert _after(strips.engine, warm, lambda c: c.execute(text(deleted), {"a": a})) == [a]
    inserted = (
        "INSERT INTO household (code, size, lives_alone, building_id, estimated, grid_id, geom) "
        "SELECT code || '-added', size, lives_alone, building_id, estimated, grid_id, geom "
        "FROM household WHERE grid_id = :b ORDER BY id LIMIT 1"
    )
    assert _after(strips.engine, warm, lambda c: c.execute(text(inserted), {"b": b})) == [b]


@pytest.mark.parametrize(
    "write",
    [
        "UPDATE household SET size = size WHERE false",
        "DELETE FROM household WHERE id < 0",
        # A household in no grid: rows of the table written, none of a grid's.
        "INSERT INTO household (code, size, lives_alone, building_id, estimated, geom) "
        "SELECT code || '-gridless', size, lives_alone, building_id, estimated, geom "
        "FROM household ORDER BY id LIMIT 1",
        "UPDATE building SET levels = 3 WHERE id = (SELECT min(id) FROM building)",
    ],
    ids=["no row updated", "no row deleted", "a household in no grid", "a building"],
)
def test_a_write_of_no_grids_households_rereads_nothing(
    strips: Gridded, warm: NetworkCache, write: str
) -> None:
    """No grid's token moves, so the whole city's request reads no household again. While
    the cache filed grids under the whole table's version, a household in no grid made it
    read every household of the city (and so did the first two, before 0026)."""
    with strips.engine.connect() as conn:
        tokens = _tokens(conn)
    assert _after(strips.engine, warm, lambda c: c.execute(text(write))) == []
    with strips.engine.connect() as conn:
        assert _tokens(conn) == tokens


def test_a_grid_without_a_token_is_read_every_time_never_kept_stale(
    strips: Gridded, warm: NetworkCache
) -> None:
    """A token row deleted by hand: the grid is read on every request (slow, never stale)
    until its next household write puts the row back."""
    with strips.engine.connect() as conn:
        grid, _ = _two_grids(conn)
    forget = "DELETE FROM grid_household_version WHERE grid_id = :g"
    assert _after(strips.engine, warm, lambda c: c.execute(text(forget), {"g": grid})) == [grid]
    assert _after(strips.engine, warm, lambda c: None) == [grid]
    assert _after(strips.engine, warm, lambda c: c.execute(text(TOUCHED), {"g": grid})) == [grid]
    with strips.engine.connect() as conn:
        assert grid in _tokens(conn)
    assert _after(strips.engine, warm, lambda c: None) == []


def test_which_writes_renew_which_grids_tokens(strips: Gridded) -> None:
    """Each write, rolled back after: the grids whose token it renewed."""
    engine = strips.engine

    def renewed(sql: str, **params: object) -> set[int]:
        with engine.connect() as conn:
            before = _tokens(conn)
            conn.execute(text(sql), params)
            after = _tokens(conn)
            conn.rollback()
        return {g for g in before.keys() | after.keys() if before.get(g) != after.get(g)}

    with engine.connect() as conn:
        a, b = _two_grids(conn)
        every = set(_tokens(conn))
        grids = set(conn.execute(text("SELECT id FROM grid")).scalars())
        lived_in = set(conn.execute(text("SELECT DISTINCT grid_id FROM household")).scalars())
    assert every == grids  # every grid has one, old versions' too
    some = "SELECT id FROM household WHERE grid_id = :g ORDER BY id LIMIT 3"
    assert renewed(f"UPDATE household SET size = size WHERE id IN ({some})", g=a) == {a}
    assert renewed(f"UPDATE household SET grid_id = :b WHERE id IN ({some})", g=a, b=b) == {a, b}
    assert renewed(f"UPDATE household SET grid_id = NULL WHERE id IN ({some})", g=a) == {a}
    assert renewed(f"DELETE FROM household WHERE id IN ({some})", g=b) == {b}
    assert renewed("UPDATE household SET size = size") == lived_in - {None} < every
    assert renewed("TRUNCATE household CASCADE") == every  # those with no household too
    # A new grid gets a token of its own; a grid deleted takes its token along, and the
    # households it held (their grid_id set to NULL) renew no other grid's.
    new = (
        "INSERT INTO grid (code, community_id, geom) "
        "SELECT code || '-new', community_id, geom FROM grid WHERE id = :a"
    )
    with engine.connect() as conn:
        conn.execute(text(new), {"a": a})
        made = conn.execute(text("SELECT max(id) FROM grid")).scalar_one()
        assert made in _tokens(conn) and made not in every
        conn.rollback()
    assert renewed("DELETE FROM grid WHERE id = :a", a=a) == {a}


def test_the_apps_role_renews_tokens_but_cannot_set_one(strips: Gridded) -> None:
    with strips.engine.connect() as conn:
        grid, _ = _two_grids(conn)
        before = _tokens(conn)[grid]
    with strips.engine.begin() as conn:
        conn.execute(text("SET LOCAL ROLE gridwork_app"))
        conn.execute(text(TOUCHED), {"g": grid})
    with strips.engine.connect() as conn:
        assert _tokens(conn)[grid] != before
        conn.execute(text("SET ROLE gridwork_app"))
        assert _tokens(conn)  # it may read them
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("UPDATE grid_household_version SET version = gen_random_uuid()"))


@pytest.fixture
def own(factory: Factory) -> Iterator[Engine]:
    """A copy of its own: the test takes the migration down and up."""
    engine = make_engine(factory.database("gridwork_test_grid_versions", "porto_strips"))
    yield engine
    engine.dispose()


def test_the_migration_goes_down_and_up_again(own: Engine) -> None:
    """0025 leaves nothing behind going down; coming back up it gives every grid a token,
    grids made meanwhile included, and renews them on writes again."""
    url = own.url.render_as_string(hide_password=False)
    objects = text(
        "SELECT to_regclass('grid_household_version') IS NOT NULL, "
        "to_regprocedure('renew_grid_household_version()') IS NOT NULL, "
        "to_regprocedure('add_grid_household_version()') IS NOT NULL, "
        "(SELECT count(*) FROM pg_trigger WHERE tgfoid IN ("
        "coalesce(to_regprocedure('renew_grid_household_version()'), 0), "
        "coalesce(to_regprocedure('add_grid_household_version()'), 0)))"
    )
    with own.connect() as conn:
        assert tuple(conn.execute(objects).one()) == (True, True, True, 5)
    command.downgrade(alembic_config(url), "0024")
    with own.connect() as conn:
        assert tuple(conn.execute(objects).one()) == (False, False, False, 0)
    with own.begin() as conn:  # no trigger calls a function that is gone
        conn.execute(text("UPDATE household SET size = size WHERE id % 5 = 0"))
        conn.execute(
            text(
                "INSERT INTO grid (code, community_id, geom) "
                "SELECT code || '-meanwhile', community_id, geom FROM grid ORDER BY id LIMIT 1"
            )
        )
    command.upgrade(alembic_config(url), "heads")
    with own.connect() as conn:
        tokens = _tokens(conn)
        assert set(tokens) == set(conn.execute(text("SELECT id FROM grid")).scalars())
        grid, _ = _two_grids(conn)
    cache = NetworkCache()
    with own.connect() as conn:
        _city(conn, cache)
    assert _after(own, cache, lambda c: c.execute(text(TOUCHED), {"g": grid})) == [grid]
