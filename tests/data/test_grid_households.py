"""The households of each grid, kept by the store (migration 0022), stay right however
households and grids change (issue 19).

The grid layers (vector tiles, the grid and workload maps, ``GET /grids``) read the count from
``grid_households`` instead of counting every grid's households per request. Each test
changes households or grids the way gridwork does — an import, a reassignment, edits over
HTTP, a plan's publish, the migration itself — and compares the kept counts with a count of
the households table, and what ``GET /grids`` shows with it. Each test has its own copy of
Porto with test grids (tests/data/porto_grids.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.assignment.service import reassign
from data.db import alembic_config, transaction
from data.importing.loading import import_file
from data.models import Role
from data.planning.service import draft_plan, publish
from data.settings import Settings
from tests.factory import Account, fresh_store, make_app, signed_in

ADMIN = Account("t-counts-admin", Role.admin)
COMMUNITY = "131208"  # Miragaia: five test grids, ~900 estimated households


@pytest.fixture
def store(server_url: str) -> Iterator[Engine]:
    """A fresh copy of Porto with test grids: every test writes households or grids."""
    yield from fresh_store(server_url, "gridwork_test_grid_households", "porto_grids", [ADMIN])


def kept_counts(engine: Engine) -> dict[str, int]:
    """Households per current grid code as ``grid_households`` has them, after checking that
    every grid's kept count (old versions' included) is the count of the households table."""
    with engine.connect() as conn:
        kept: dict[int, int] = dict(
            conn.execute(
                text("SELECT grid_id, households FROM grid_households WHERE households <> 0")
            ).all()
        )
        counted: dict[int, int] = dict(
            conn.execute(
                text(
                    "SELECT grid_id, count(*) FROM household WHERE grid_id IS NOT NULL "
                    "GROUP BY grid_id"
                )
            ).all()
        )
        current: dict[int, str] = dict(
            conn.execute(text("SELECT id, code FROM grid WHERE valid_to IS NULL")).all()
        )
    assert kept == counted
    return {code: kept.get(grid_id, 0) for grid_id, code in current.items()}


def grids_page(client: TestClient) -> dict[str, int]:
    """Households per grid as ``GET /grids`` shows them."""
    r = client.get("/grids", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return {f["properties"]["code"]: f["properties"]["households"] for f in r.json()["features"]}


def _inside(engine: Engine, grid: str) -> tuple[float, float]:
    with engine.connect() as conn:
        x, y = conn.execute(
            text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                 "WHERE code = :g AND valid_to IS NULL) s"),
            {"g": grid},
        ).one()  # fmt: skip
    return float(x), float(y)


def test_the_migration_counts_what_is_stored(store: Engine) -> None:
    """Households written while the triggers did not exist are counted when 0022 runs."""
    url = store.url.render_as_string(hide_password=False)
    before = kept_counts(store)
    assert sum(before.values()) > 0
    command.downgrade(alembic_config(url), "0021")
    with store.begin() as conn:
        conn.execute(text("DELETE FROM household WHERE id % 3 = 0"))
        conn.execute(
            text("UPDATE household SET grid_id = (SELECT min(id) FROM grid) WHERE id % 3 = 1")
        )
    command.upgrade(alembic_config(url), "heads")
    after = kept_counts(store)
    assert after != before and sum(after.values()) < sum(before.values())


def test_household_edits_over_http(store: Engine) -> None:
    """Add a household, move it to another grid, change its size, delete it: the grid layer
    follows each step."""
    a, b = f"{COMMUNITY}-G01", "131215-G03"
    with signed_in(make_app(store), ADMIN.username) as client:
        start = grids_page(client)
        assert start == kept_counts(store) and start[a] > 0

        lon, lat = _inside(store, a)
        body = {"code": "T-COUNT-1", "size": 2, "lon": lon, "lat": lat}
        assert client.post("/households", json=body).status_code == 201
        assert grids_page(client) == kept_counts(store) == {**start, a: start[a] + 1}

        lon, lat = _inside(store, b)
        r = client.patch("/households/T-COUNT-1", json={"lon": lon, "lat": lat})
        assert r.status_code == 200, r.text
        moved = {**start, b: start[b] + 1}
        assert grids_page(client) == kept_counts(store) == moved

        assert client.patch("/households/T-COUNT-1", json={"size": 5}).status_code == 200
        assert grids_page(client) == kept_counts(store) == moved

        assert client.delete("/households/T-COUNT-1").status_code in (200, 204)
        assert grids_page(client) == kept_counts(store) == start


def test_import_reimport_and_reassignment(store: Engine, tmp_path: Path) -> None:
    """A households import adds its rows to their grids; importing the file again with the
    points moved takes them from one grid to the other; a reassignment of every household
    after the stored grids were lost gives every count back."""
    url = store.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url)
    a, b = f"{COMMUNITY}-G02", "131213-G01"
    start = kept_counts(store)
    points = [shapely.Point(_inside(store, a))] * 7
    frame = gpd.GeoDataFrame(
        {"household_code": [f"T-IMP-{i}" for i in range(7)], "size": [2] * 7},
        geometry=points,
        crs=4326,
    )
    frame.to_file(tmp_path / "first.gpkg", layer="households")
    import_file(store, "households", tmp_path / "first.gpkg", settings=settings)
    imported = {**start, a: start[a] + 7}
    assert kept_counts(store) == imported

    moved = frame.iloc[:3].copy()
    moved["geometry"] = [shapely.Point(_inside(store, b))] * 3
    moved.to_file(tmp_path / "moved.gpkg", layer="households")
    import_file(store, "households", tmp_path / "moved.gpkg", settings=settings)
    assert kept_counts(store) == {**imported, a: imported[a] - 3, b: imported[b] + 3}
    counts = kept_counts(store)

    with store.begin() as conn:
        conn.execute(text("UPDATE household SET grid_id = NULL"))
    assert set(kept_counts(store).values()) == {0}
    with transaction(store) as session:
        reassign(session, settings=settings, tables=["household"])
    assert kept_counts(store) == counts


def test_a_published_plan_moves_the_counts_to_its_grids(store: Engine) -> None:
    """Publishing closes the community's grids (valid_to) and reassigns their households to
    the new ones: the old versions keep no households, the new ones count theirs."""
    url = store.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, snap_tolerance_m=0.0)
    before = kept_counts(store)
    with transaction(store) as session:
        plan = draft_plan(session, COMMUNITY, min_households=150, max_households=180, seed=3,
                          author="t", settings=settings)  # fmt: skip
    with transaction(store) as session:
        publish(session, plan, effective=date.today(), settings=settings, author="t")
    after = kept_counts(store)
    old = {code for code in before if code.startswith(f"{COMMUNITY}-")}
    new = {code for code in after if code.startswith(f"{COMMUNITY}-")}
    assert new and new != old
    assert {c: n for c, n in after.items() if c not in new} == {
        c: n for c, n in before.items() if c not in old
    }
    assert all(after[c] > 0 for c in new)
    with store.connect() as conn:
        closed = conn.execute(
            text(
                "SELECT coalesce(sum(n.households), 0) FROM grid g JOIN grid_households n "
                "ON n.grid_id = g.id WHERE g.valid_to IS NOT NULL"
            )
        ).scalar_one()
    assert closed == 0


def test_a_deleted_grid_and_an_emptied_table(store: Engine) -> None:
    """A grid's count goes with the grid (its households lose their grid); emptying the
    households empties the counts."""
    before = kept_counts(store)
    gone = f"{COMMUNITY}-G03"
    assert before[gone] > 0
    with store.begin() as conn:
        conn.execute(text("DELETE FROM grid WHERE code = :g"), {"g": gone})
        assert conn.execute(
            text("SELECT count(*) FROM grid_households n LEFT JOIN grid g ON g.id = n.grid_id "
                 "WHERE g.id IS NULL")
        ).scalar_one() == 0  # fmt: skip
    after = kept_counts(store)
    assert after == {c: n for c, n in before.items() if c != gone}
    with store.begin() as conn:
        conn.execute(text("TRUNCATE household CASCADE"))
    assert set(kept_counts(store).values()) == {0}


def test_the_app_role_reads_the_counts_but_cannot_set_them(store: Engine) -> None:
    with store.connect() as conn:
        role = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'gridwork_app'")).first()
        if role is None:
            pytest.fail("the app role gridwork_app is missing: migration 0009 makes it")
        rights = conn.execute(
            text(
                "SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE']) p "
                "WHERE has_table_privilege('gridwork_app', 'grid_households', p)"
            )
        ).scalars()
        assert list(rights) == ["SELECT"]
