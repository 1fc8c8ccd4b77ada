"""The grid outlines kept in Web Mercator for the vector tiles (migration 0024) follow the
grids however they change (issue 19).

``grid_tile_shape`` holds one row per current grid: its outline projected (``exact``) and
simplified per zoom band. Each test changes grids the way gridwork does — a plan's publish,
a grid redrawn, a worker assigned, a grid deleted, the migration itself — and compares the
kept rows with the grids they stand for. Each test has its own copy of Porto with test grids.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from alembic import command
from sqlalchemy import Engine, text

from data.db import alembic_config, transaction
from data.planning.service import draft_plan, publish
from data.settings import Settings
from tests.factory import fresh_store

COMMUNITY = "131208"  # Miragaia: five test grids
TOLERANCE_M = {"z8": 19.109, "z10": 4.778, "z12": 1.195}
"""Half a tile unit at z8, z10 and z12, in Web Mercator metres."""


@pytest.fixture
def store(server_url: str) -> Iterator[Engine]:
    """A fresh copy of Porto with test grids: every test writes grids."""
    yield from fresh_store(server_url, "gridwork_test_grid_tile_shapes", "porto_grids")


def kept_shapes(engine: Engine) -> dict[str, str]:
    """Current grid code → its kept exact outline (EWKT), after checking that exactly the
    current grids have a row, that ``exact`` is the grid projected and that each simplified
    outline is within its tolerance of it."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT g.code, g.valid_to IS NULL, s.grid_id IS NOT NULL, "
                "coalesce(ST_Equals(s.exact, ST_Transform(g.geom, 3857)), false), "
                "ST_HausdorffDistance(s.z8, s.exact), ST_HausdorffDistance(s.z10, s.exact), "
                "ST_HausdorffDistance(s.z12, s.exact), ST_AsEWKT(s.exact) "
                "FROM grid g LEFT JOIN grid_tile_shape s ON s.grid_id = g.id"
            )
        ).all()
        orphans = conn.execute(
            text("SELECT count(*) FROM grid_tile_shape s LEFT JOIN grid g ON g.id = s.grid_id "
                 "WHERE g.id IS NULL")
        ).scalar_one()  # fmt: skip
    assert orphans == 0
    out = {}
    for code, current, kept, projected, d8, d10, d12, ewkt in rows:
        assert kept == current, code
        if current:
            assert projected, code
            assert d8 <= TOLERANCE_M["z8"] and d10 <= TOLERANCE_M["z10"], code
            assert d12 <= TOLERANCE_M["z12"], code
            out[code] = ewkt
    return out


def test_the_migration_keeps_every_current_grid(store: Engine) -> None:
    """Grids written while the triggers did not exist get their shapes when 0024 runs."""
    url = store.url.render_as_string(hide_password=False)
    before = kept_shapes(store)
    assert before
    command.downgrade(alembic_config(url), "0023")
    with store.begin() as conn:
        conn.execute(
            text("UPDATE grid SET geom = ST_Buffer(ST_PointOnSurface(geom), 0.0003, 2) "
                 "WHERE code = :g"),
            {"g": f"{COMMUNITY}-G02"},
        )  # fmt: skip
    command.upgrade(alembic_config(url), "heads")
    after = kept_shapes(store)
    assert after.keys() == before.keys()
    assert {c for c in after if after[c] != before[c]} == {f"{COMMUNITY}-G02"}


def test_a_published_plan_replaces_its_communitys_shapes(store: Engine) -> None:
    url = store.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, snap_tolerance_m=0.0)
    before = kept_shapes(store)
    with transaction(store) as session:
        plan = draft_plan(session, COMMUNITY, min_households=150, max_households=180, seed=3,
                          author="t", settings=settings)  # fmt: skip
    with transaction(store) as session:
        publish(session, plan, effective=date.today(), settings=settings, author="t")
    after = kept_shapes(store)
    ours = f"{COMMUNITY}-"
    assert {c: s for c, s in after.items() if not c.startswith(ours)} == {
        c: s for c, s in before.items() if not c.startswith(ours)
    }
    new = {c for c in after if c.startswith(ours)}
    assert new and {c: after[c] for c in new} != {
        c: s for c, s in before.items() if c.startswith(ours)
    }


def stamps(store: Engine) -> dict[str, int]:
    """Grid code → the stamp of its tile shapes (migration 0029)."""
    with store.connect() as conn:
        rows = conn.execute(
            text("SELECT g.code, s.stamp FROM grid_tile_shape s JOIN grid g ON g.id = s.grid_id")
        ).all()
    return {str(code): int(stamp) for code, stamp in rows}


def test_redrawn_reinstated_deleted_and_untouched_grids(store: Engine) -> None:
    """A redraw re-projects the grid; a worker assigned leaves its shapes as they were and
    renews its stamp (0029: the tiles show the worker), as a redraw does; an untouched grid
    keeps its stamp; a grid made current again gets its row back; a deleted grid takes its
    row with it."""
    g1, g2, g3, g4 = (f"{COMMUNITY}-G0{i}" for i in (1, 2, 3, 4))
    before = kept_shapes(store)
    stamped = stamps(store)
    with store.begin() as conn:
        conn.execute(
            text("UPDATE grid SET geom = ST_Buffer(ST_PointOnSurface(geom), 0.0003, 2) "
                 "WHERE code = :g"), {"g": g1},
        )  # fmt: skip
        conn.execute(
            text("UPDATE grid SET worker_id = NULL, valid_to = CASE WHEN code = :g3 "
                 "THEN valid_from END WHERE code IN (:g2, :g3)"), {"g2": g2, "g3": g3},
        )  # fmt: skip
    middle = kept_shapes(store)
    assert middle[g1] != before[g1] and g3 not in middle
    assert middle == {c: s for c, s in before.items() if c not in (g1, g3)} | {g1: middle[g1]}
    now = stamps(store)
    assert now[g1] > stamped[g1] and now[g2] > stamped[g2] and now[g4] == stamped[g4]
    with store.begin() as conn:
        conn.execute(text("UPDATE grid SET valid_to = NULL WHERE code = :g"), {"g": g3})
    assert kept_shapes(store)[g3] == before[g3]
    with store.begin() as conn:
        conn.execute(text("DELETE FROM grid WHERE code = :g"), {"g": g3})
    assert g3 not in kept_shapes(store)


def test_the_app_role_reads_the_shapes_but_cannot_write_them(store: Engine) -> None:
    with store.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'gridwork_app'")).first():
            rights = conn.execute(
                text(
                    "SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE'])"
                    " p WHERE has_table_privilege('gridwork_app', 'grid_tile_shape', p)"
                )
            ).scalars()
            assert list(rights) == ["SELECT"]
        else:
            pytest.fail("the app role gridwork_app is missing: migration 0009 makes it")
