"""A households import assigns the rows it wrote, and only those (issue 19).

A city arrives district by district: the second district's import must not read or rewrite
the first one's households, yet every row it wrote (a row re-imported unchanged included)
must get exactly what a whole-table reassign gives it. The households carry their grid into
the upsert, so a first import writes each row once, and stores what the after-write hook
stored before (grid, snap, distance; the same rejects). Facility and incident imports keep
their whole-table pass. On the synthetic district's grids, in a database of this module's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from data.assignment.service import ROW_KEY, TableResult, assignment_mismatches, reassign
from data.db import make_engine, transaction
from data.importing import loading
from data.importing.importer import ImportReport
from data.importing.loading import import_file
from data.importing.readers import Kind
from data.settings import Settings
from geo.errors import ImportRejected
from tests.conftest import own_database


@dataclass
class Imports:
    """The district's store, and what the import's assignment hook did at each import."""

    engine: Engine
    settings: Settings
    sample: Path
    hook: list[list[TableResult]] = field(default_factory=list)

    def run(self, kind: Kind, path: Path, **options: Any) -> ImportReport:
        return import_file(self.engine, kind, path, settings=self.settings, **options)


@pytest.fixture(scope="module")
def district(server_url: str, synthetic_district_path: Path) -> Iterator[Imports]:
    """The synthetic district's streets, communities, workers and grids; no buildings, so a
    household naming a building is refused."""
    yield from district_levels(server_url, synthetic_district_path, "gridwork_test_import_assign")


def district_levels(server_url: str, path: Path, database: str) -> Iterator[Imports]:
    """A new store of the synthetic district's levels (streets to grids) imported from
    ``path``: the body of a module fixture; disposed afterwards."""
    url = own_database(server_url, database)
    store = Imports(make_engine(url), Settings(database_url=url), path)
    for kind in ("streets", "communities", "workers", "grids"):
        store.run(kind, path, layer=kind)
    yield store
    store.engine.dispose()


@pytest.fixture
def imports(district: Imports, monkeypatch: pytest.MonkeyPatch) -> Imports:
    """The district, with the hook's results (rows read, changed) recorded per import."""
    store = replace(district, hook=[])
    real = loading.assign_after_import

    def spy(*args: Any, **kwargs: Any) -> list[TableResult]:
        store.hook.append(real(*args, **kwargs))
        return store.hook[-1]

    monkeypatch.setattr(loading, "assign_after_import", spy)
    return store


def _households(path: Path, grid_prefix: str) -> gpd.GeoDataFrame:
    """The households of the grids whose code starts with ``grid_prefix``, without their
    building (buildings are not imported here)."""
    return pyogrio.read_dataframe(
        path,
        sql="SELECT h.household_code, h.size, h.lives_alone, h.age_band, h.geom "
        "FROM households h JOIN buildings b ON b.building_id = h.building_id "
        f"WHERE b.grid_code LIKE '{grid_prefix}%' ORDER BY h.household_code",
        sql_dialect="SQLITE",
    )


def _stored(engine: Engine, codes: list[str]) -> dict[str, tuple[str, int | None, int | None]]:
    """code → (xmin: the transaction that last wrote the row, stored grid, PostGIS's grid)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, xmin::text, grid_id, grid_covering(geom) FROM household "
                "WHERE code = ANY(:codes)"
            ),
            {"codes": codes},
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _misassigned(engine: Engine, table: str) -> set[str]:
    """Keys of the rows whose stored grid is not PostGIS's ``grid_covering()``."""
    key = ROW_KEY[table]
    with engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    f"SELECT {key} FROM {table} WHERE grid_id IS DISTINCT FROM grid_covering(geom)"
                )
            ).scalars()
        )


def _unassign(engine: Engine, codes: list[str]) -> None:
    """Store a wrong (empty) assignment, as grids changed behind the rows' backs would."""
    with transaction(engine) as session:
        session.execute(
            text(
                "UPDATE household SET grid_id = NULL, snapped = false, assign_distance_m = NULL "
                "WHERE code = ANY(:codes)"
            ),
            {"codes": codes},
        )


def test_second_district_import_assigns_only_its_own_rows(imports: Imports, tmp_path: Path) -> None:
    engine = imports.engine
    first = _households(imports.sample, "S03-C01")
    second = _households(imports.sample, "S02-C02")
    assert len(first) > 2000 and len(second) > 2000
    first.to_file(tmp_path / "first.gpkg", layer="households")
    imports.run("households", tmp_path / "first.gpkg")
    assert imports.hook == [], "households carry their grid into the upsert: no hook runs"
    codes = list(first["household_code"])
    assert all(
        grid == covering is not None for _, grid, covering in _stored(engine, codes).values()
    )

    # Four rows of the first district: one re-imported unchanged while its stored grid is
    # wrong, one moved into the second district, one left out of the second file, one in it
    # but refused (its building does not exist).
    same, moved, left, refused = codes[:4]
    _unassign(engine, [same, left, refused])
    before = _stored(engine, codes)
    extra = first[first["household_code"].isin([same, moved, refused])].copy()
    extra.loc[extra["household_code"] == moved, extra.geometry.name] = second.geometry.iloc[0]
    extra["building_id"] = [
        "no-such-building" if code == refused else None for code in extra["household_code"]
    ]
    batch = gpd.GeoDataFrame(
        pd.concat([second, extra], ignore_index=True), geometry=first.geometry.name, crs=first.crs
    )
    batch.to_file(tmp_path / "second.gpkg", layer="households")
    report = imports.run("households", tmp_path / "second.gpkg", allow_rejects=True)
    assert [r.source_id for r in report.rejects] == [refused]
    assert report.inserted + report.updated == len(second) + 2

    # (a) no hook read any row (the rows carried their grid); no other row was written at all
    assert imports.hook == []
    after = _stored(engine, codes)
    rewritten = {code for code in codes if after[code][0] != before[code][0]}
    assert rewritten == {same, moved}
    assert after[left][1] is None and after[refused][1] is None, "not written, not repaired"
    # (b) what it wrote is PostGIS's answer, the unchanged row's and the moved row's included
    assert after[same][1] == after[same][2] is not None
    neighbour = str(second["household_code"].iloc[0])  # the row the moved one now sits on
    assert after[moved][1] == after[moved][2] == _stored(engine, [neighbour])[neighbour][1]
    assert _misassigned(engine, "household") == {left, refused}

    # A whole-table reassign finds nothing else to change: the import's rows got its answer.
    with transaction(engine) as session:
        (result,) = reassign(session, settings=imports.settings, tables=["household"])
    assert (result.rows, result.changed) == (len(first) + len(second), 2)
    assert _misassigned(engine, "household") == set()
    with engine.connect() as conn:
        assert assignment_mismatches(conn, settings=imports.settings) == []


def test_facility_import_still_reassigns_the_whole_table(imports: Imports, tmp_path: Path) -> None:
    facilities = pyogrio.read_dataframe(imports.sample, layer="facilities")
    half = len(facilities) // 2
    facilities.iloc[:half].to_file(tmp_path / "a.gpkg", layer="facilities")
    facilities.iloc[half:].to_file(tmp_path / "b.gpkg", layer="facilities")
    imports.run("facilities", tmp_path / "a.gpkg", id_field="facility_id")
    with transaction(imports.engine) as session:
        session.execute(text("UPDATE facility SET grid_id = NULL"))
    imports.run("facilities", tmp_path / "b.gpkg", id_field="facility_id")
    assert [(r.table, r.rows, r.changed) for r in imports.hook[-1]] == [
        ("facility", len(facilities), len(facilities))
    ]
    assert _misassigned(engine=imports.engine, table="facility") == set()


# --- a first import writes each row once ------------------------------------------------------


def _tuples_written(engine: Engine) -> tuple[int, int]:
    """(rows inserted, rows updated) in ``household`` so far, by the server's statistics.

    A backend reports its counts when it has been idle a while, and at the latest as it
    exits, before it leaves ``pg_stat_activity``: so the engine's connections are closed and
    their backends waited for, and the figures hold everything written so far."""
    engine.dispose()
    reader = create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + 30
    try:
        with reader.connect() as conn:
            while conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
            ).scalar_one():
                assert time.monotonic() < deadline, "the engine's backends did not exit"
                time.sleep(0.05)
            ins, upd = conn.execute(
                text(
                    "SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables "
                    "WHERE relname = 'household'"
                )
            ).one()
    finally:
        reader.dispose()
    return int(ins), int(upd)


def _edge_cases(engine: Engine, template: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Three households where the rule has corners: on a vertex two grids share (the lowest
    code wins), 5 m west of the westmost grid vertex (snapped) and 2 km west of it (outside
    every grid, the distance kept)."""
    with engine.connect() as conn:
        west = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_DumpPoints(geom)).geom AS p FROM grid "
                "WHERE valid_to IS NULL) v ORDER BY ST_X(p), ST_Y(p) LIMIT 1"
            )
        ).one()
        shared = conn.execute(
            text(
                "SELECT ST_X(v.p), ST_Y(v.p) FROM (SELECT (ST_DumpPoints(geom)).geom AS p "
                "FROM grid WHERE valid_to IS NULL AND code = (SELECT max(code) FROM grid)) v "
                "WHERE (SELECT count(*) FROM grid g WHERE g.valid_to IS NULL "
                "AND ST_Covers(g.geom, v.p)) >= 2 ORDER BY 1, 2 LIMIT 1"
            )
        ).one()
    metre = 1.0 / (111_320.0 * float(np.cos(np.radians(west[1]))))
    rows = template.iloc[:3].copy()
    rows["household_code"] = ["T-SHARED-VERTEX", "T-SNAPPED", "T-OUTSIDE"]
    rows[rows.geometry.name] = shapely.points(
        [shared[0], west[0] - 5 * metre, west[0] - 2000 * metre],
        [shared[1], west[1], west[1]],
    )
    return rows


def _assignments(engine: Engine) -> dict[str, tuple[int | None, bool, float | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT code, grid_id, snapped, assign_distance_m FROM household")
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_first_import_writes_each_household_once_with_the_hooks_answer(
    imports: Imports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = imports.engine
    with transaction(engine) as session:
        session.execute(text("TRUNCATE household CASCADE"))
    households = _households(imports.sample, "S01-C01")
    households["building_id"] = None
    batch = gpd.GeoDataFrame(
        pd.concat([households, _edge_cases(engine, households)], ignore_index=True),
        geometry=households.geometry.name,
        crs=households.crs,
    )
    batch.loc[5, "building_id"] = "no-such-building"  # one row refused
    refused = str(batch.loc[5, "household_code"])
    path = tmp_path / "households.gpkg"
    batch.to_file(path, layer="households")
    rows = len(batch) - 1

    # All or nothing: refused without --allow-rejects, nothing is stored, nothing placed.
    with pytest.raises(ImportRejected) as rejected:
        imports.run("households", path)
    assert [r.source_id for r in rejected.value.rejects] == [refused]
    assert _assignments(engine) == {}

    def first_import() -> tuple[ImportReport, dict[str, Any], tuple[int, int]]:
        with transaction(engine) as session:
            session.execute(text("TRUNCATE household CASCADE"))
        ins, upd = _tuples_written(engine)
        report = imports.run("households", path, allow_rejects=True)
        ins_after, upd_after = _tuples_written(engine)
        return report, _assignments(engine), (ins_after - ins, upd_after - upd)

    report, stored, (inserted, updated) = first_import()
    assert (report.inserted, report.updated) == (rows, 0)
    assert (inserted, updated) == (rows, 0), "each household written once, never updated"
    assert imports.hook == []
    assert len(stored) == rows and refused not in stored
    assert stored["T-SNAPPED"][0] is not None and stored["T-SNAPPED"][1]
    assert 4.0 < stored["T-SNAPPED"][2] < 6.0
    assert stored["T-OUTSIDE"][0] is None and 1900.0 < stored["T-OUTSIDE"][2] < 2100.0
    assert sum(1 for grid, snapped, _ in stored.values() if grid and not snapped) == rows - 2
    with engine.connect() as conn:
        assert assignment_mismatches(conn, settings=imports.settings) == []

    # The path as it was: the upsert without a grid, then the hook updating what it wrote.
    monkeypatch.setattr(loading, "_placed_before_write", lambda *_args: None)
    old_report, old_stored, (old_inserted, old_updated) = first_import()
    assert (old_inserted, old_updated) == (rows, rows), "the old path wrote each row twice"
    assert [(r.table, r.rows, r.changed) for r in imports.hook[-1]] == [("household", rows, rows)]
    assert old_stored == stored
    assert (old_report.inserted, old_report.updated, old_report.rejects) == (
        report.inserted,
        report.updated,
        report.rejects,
    )


def test_reimport_writes_the_grid_with_the_row(imports: Imports, tmp_path: Path) -> None:
    """A file imported again over rows whose stored grid went wrong: the upsert that updates
    them puts the grid back, with no second statement; the rows whose grid was right are
    equal to the file's and not written."""
    engine = imports.engine
    with transaction(engine) as session:
        session.execute(text("TRUNCATE household CASCADE"))
    households = _households(imports.sample, "S01-C02")
    path = tmp_path / "households.gpkg"
    households.to_file(path, layer="households")
    imports.run("households", path)
    codes = list(households["household_code"])
    right = _assignments(engine)
    _unassign(engine, codes[:10])
    ins, upd = _tuples_written(engine)
    report = imports.run("households", path)
    assert (report.inserted, report.updated, report.unchanged) == (0, 10, len(codes) - 10)
    assert _tuples_written(engine) == (ins, upd + 10), "each wrong row updated once, no other"
    assert _assignments(engine) == right
    assert imports.hook == []
