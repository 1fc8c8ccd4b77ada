"""After a household edit, a street's coverage re-reads only the grids edited, not the city's.

The coverage cache (:class:`data.coverage.service.NetworkCache`) keeps the households per area
under the version each was read under, a grid's under its own token (migration 0025): a
request re-reads, in one statement, only those of its grids whose households were written
since, and snaps only the households that are new or moved. The whole-city side of it, and
the tokens themselves, are in tests/data/test_coverage_grid_versions.py.

Porto cut into strips (tests/gridded.py, real PostGIS) has one street; this module's copy
moves two of its four communities to a second street, so that street A can be edited while
street B is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, text

from data.access.queries import AreaScope
from data.coverage.service import NetworkCache, coverage
from data.db import make_engine
from tests.factory import Factory
from tests.gridded import Gridded

pytestmark = pytest.mark.db


@dataclass(frozen=True)
class Street:
    scope: AreaScope
    grid_ids: list[int]

    def households(self, conn: Connection) -> int:
        return int(
            conn.execute(
                text("SELECT count(*) FROM household WHERE grid_id = ANY(:g)"),
                {"g": self.grid_ids},
            ).scalar_one()
        )


def _street(conn: Connection, code: str) -> Street:
    """A street coordinator's scope, as :func:`data.access.queries.resolve_scope` makes it."""
    street = int(conn.execute(text("SELECT id FROM street WHERE code = :c"), {"c": code}).one()[0])
    communities = frozenset(
        conn.execute(text("SELECT id FROM community WHERE street_id = :s"), {"s": street}).scalars()
    )
    grids = sorted(
        conn.execute(
            text("SELECT id FROM grid WHERE community_id = ANY(:c) AND valid_to IS NULL"),
            {"c": sorted(communities)},
        ).scalars()
    )
    scope = AreaScope(frozenset({street}), communities, frozenset(grids), communities)
    return Street(scope, grids)


@pytest.fixture(scope="module")
def streets(strips: Gridded) -> tuple[Street, Street]:
    """Streets A (PORTO-CH, its first two communities) and B (the other two)."""
    with strips.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO street (code, name, district_id, geom) "
                "SELECT 'PORTO-B', 'B', district_id, geom FROM street WHERE code = 'PORTO-CH'"
            )
        )
        conn.execute(
            text(
                "UPDATE community SET street_id = (SELECT id FROM street WHERE code = 'PORTO-B') "
                "WHERE code IN (SELECT code FROM community ORDER BY code OFFSET 2)"
            )
        )
    with strips.engine.connect() as conn:
        return _street(conn, "PORTO-CH"), _street(conn, "PORTO-B")


@contextmanager
def household_reads(engine: Engine) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every statement that reads household rows meanwhile (statements_on
    in tests/conftest.py records the text only; which areas were read is in the parameters)."""
    seen: list[dict[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, parameters: Any, *_a: object) -> None:
        if "FROM household h" in statement:
            seen.append(dict(parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _answer(conn: Connection, cache: NetworkCache, scope: AreaScope) -> dict[str, Any]:
    return coverage(conn, cache, kind="pharmacy", minutes=10, scope=scope, drawing=False).as_json()


def _per_grid(answer: dict[str, Any]) -> dict[str, int]:
    return {a["code"]: a["households"] for a in answer["areas"]}


def test_an_edit_in_street_a_is_reread_by_street_a_only(
    strips: Gridded, streets: tuple[Street, Street]
) -> None:
    a, b = streets
    engine = strips.engine
    cache = NetworkCache()
    with engine.connect() as conn:
        before_a = _answer(conn, cache, a.scope)
        _answer(conn, cache, b.scope)
        first, second = (
            conn.execute(
                text(
                    "SELECT id, code FROM grid WHERE id = ANY(:g) AND EXISTS "
                    "(SELECT FROM household h WHERE h.grid_id = grid.id) ORDER BY code LIMIT 2"
                ),
                {"g": a.grid_ids},
            )
            .tuples()
            .all()
        )
    # In street A: one household moves from its first grid to its second, one walks 30 m
    # along, and a new one is added to the second grid.
    with engine.begin() as conn:
        moved, walked = conn.execute(
            text("SELECT id FROM household WHERE grid_id = :g ORDER BY id LIMIT 2"),
            {"g": first[0]},
        ).scalars()
        conn.execute(
            text("UPDATE household SET grid_id = :g WHERE id = :h"), {"g": second[0], "h": moved}
        )
        conn.execute(
            text("UPDATE household SET geom = ST_Translate(geom, 0.0003, 0) WHERE id = :h"),
            {"h": walked},
        )
        conn.execute(
            text(
                "INSERT INTO household (code, size, lives_alone, building_id, estimated, "
                "grid_id, geom) SELECT code || '-new', size, lives_alone, building_id, "
                "estimated, grid_id, geom FROM household WHERE id = :h"
            ),
            {"h": moved},
        )

    edited = Street(a.scope, sorted([first[0], second[0]]))
    with engine.connect() as conn:
        read = cache.households_read
        with household_reads(engine) as reads:
            _answer(conn, cache, b.scope)
        assert reads == []  # no grid of B was written: nothing read again
        assert cache.households_read == read

        read, snapped = cache.households_read, cache.households_snapped
        with household_reads(engine) as reads:
            after_a = _answer(conn, cache, a.scope)
        assert [sorted(r["ids"]) for r in reads] == [edited.grid_ids]  # one statement
        assert cache.households_read - read == edited.households(conn) < a.households(conn)
        assert cache.households_snapped - snapped == 2  # the one that walked, the new one
        with household_reads(engine) as reads:
            _answer(conn, cache, a.scope)
        assert reads == []  # read once under the new tokens
        stored: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT g.code, count(h.id) FROM grid g LEFT JOIN household h "
                    "ON h.grid_id = g.id WHERE g.id = ANY(:g) GROUP BY g.code"
                ),
                {"g": a.grid_ids},
            )
            .tuples()
            .all()
        )
        assert _per_grid(after_a) == stored
        assert _per_grid(after_a)[first[1]] == _per_grid(before_a)[first[1]] - 1
        assert _per_grid(after_a)[second[1]] == _per_grid(before_a)[second[1]] + 2
        assert after_a == _answer(conn, NetworkCache(), a.scope)  # as a cache of its own says

        # Streets A and B are the whole city: its request reads nothing more.
        read = cache.households_read
        city = _answer(conn, cache, AreaScope.everywhere())
        assert cache.households_read == read
        assert city == _answer(conn, NetworkCache(), AreaScope.everywhere())


def test_a_buildings_write_leaves_the_grids_households_cached(
    strips: Gridded, streets: tuple[Street, Street]
) -> None:
    """At the grid level a household's building does not matter, so a write of the buildings
    (its own version) reads nothing again; a household's write reads its grid again."""
    _, b = streets
    cache = NetworkCache()
    with strips.engine.connect() as conn:
        _answer(conn, cache, b.scope)
    with strips.engine.begin() as conn:
        conn.execute(
            text("UPDATE building SET levels = 3 WHERE id = (SELECT min(id) FROM building)")
        )
    with strips.engine.connect() as conn, household_reads(strips.engine) as reads:
        _answer(conn, cache, b.scope)
    assert reads == []
    with strips.engine.begin() as conn:
        grid = conn.execute(
            text(
                "UPDATE household SET size = size WHERE id = (SELECT min(id) FROM household "
                "WHERE grid_id = ANY(:g)) RETURNING grid_id"
            ),
            {"g": b.grid_ids},
        ).scalar_one()
    with strips.engine.connect() as conn, household_reads(strips.engine) as reads:
        _answer(conn, cache, b.scope)
    assert [sorted(r["ids"]) for r in reads] == [[grid]]


@pytest.fixture
def porto(factory: Factory) -> Iterator[Engine]:
    """A fresh copy of the Porto sample (no grids: coverage is per community)."""
    engine = make_engine(factory.database("gridwork_test_coverage_streets", "porto"))
    yield engine
    engine.dispose()


def test_with_no_household_in_a_community_every_one_counts_where_it_stands(
    porto: Engine,
) -> None:
    """Before any building has a community, every household counts, in the community that
    covers it (lowest code on ties); once one has, only the stored communities count."""
    cache = NetworkCache()
    with porto.begin() as conn:
        conn.execute(text("UPDATE building SET community_id = NULL"))
    covering = text(
        "SELECT code, count(*) FROM (SELECT (SELECT min(c.code) FROM community c "
        "WHERE ST_Covers(c.geom, h.geom)) AS code FROM household h) t "
        "WHERE code IS NOT NULL GROUP BY code"
    )
    with porto.connect() as conn:
        unstored = _answer(conn, cache, AreaScope.everywhere())
        expected: dict[str, int] = dict(conn.execute(covering).tuples().all())
        everyone = conn.execute(text("SELECT count(*) FROM household")).scalar_one()
    assert unstored["level"] == "communities"
    assert {k: v for k, v in _per_grid(unstored).items() if v} == expected
    assert unstored["households"] == sum(expected.values()) <= everyone

    with porto.begin() as conn:
        conn.execute(
            text(
                "UPDATE building b SET community_id = (SELECT min(id) FROM community) "
                "WHERE b.id = (SELECT min(building_id) FROM household)"
            )
        )
        living = conn.execute(
            text("SELECT count(*) FROM household WHERE building_id = "
                 "(SELECT min(building_id) FROM household)")
        ).scalar_one()  # fmt: skip
    with porto.connect() as conn:
        stored = _answer(conn, cache, AreaScope.everywhere())
    assert stored["households"] == living > 0
