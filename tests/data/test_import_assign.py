"""A households import assigns the rows it wrote, and only those (issue 19).

A city arrives district by district: the second district's import must not read or rewrite
the first one's households, yet every row it wrote (a row re-imported unchanged included)
must get exactly what a whole-table reassign gives it. Facility and incident imports keep
their whole-table pass. On the synthetic district's grids, in a database of this module's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from sqlalchemy import Engine, text

from data.assignment.service import ROW_KEY, TableResult, assignment_mismatches, reassign
from data.db import make_engine, transaction
from data.importing import loading
from data.importing.importer import ImportReport
from data.importing.loading import import_file
from data.importing.readers import Kind
from data.settings import Settings
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
    url = own_database(server_url, "gridwork_test_import_assign")
    store = Imports(make_engine(url), Settings(database_url=url), synthetic_district_path)
    for kind in ("streets", "communities", "workers", "grids"):
        store.run(kind, synthetic_district_path, layer=kind)
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
    assert [(r.table, r.rows) for r in imports.hook[-1]] == [("household", len(first))]
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

    # (a) the hook read only the rows this import wrote; no other row was written at all
    assert [(r.table, r.rows) for r in imports.hook[-1]] == [("household", len(second) + 2)]
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
