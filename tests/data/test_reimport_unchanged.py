"""Re-importing an unchanged file changes nothing: no row rewritten, no version renewed.

Street offices re-import the civil-affairs household list every month, mostly unchanged. A
row equal to the stored one is not written (its ``xmin``, the transaction that last wrote
it, stays), so the table's version (migration 0026 on 0021) stays and no cache keyed on it
is emptied; a row that differs in one value, or whose point moved by the least a double can
move, is written, and reassigned. On the synthetic district's grids (real PostGIS), in a
database of this module's own; each test starts from one import of a community's
households.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from data.cluster import drop_database, ensure_database
from data.db import alembic_config, make_engine, migrate, transaction
from data.importing.importer import ImportReport
from data.table_versions import table_versions
from geo.errors import ImportRejected
from tests import factory
from tests.data.test_import_assign import Imports, _households, district_levels

pytestmark = pytest.mark.db

#: The tables migration 0021 versions (0026 keeps their versions on statements that wrote
#: no row), and the per-grid count's version, renewed only when a count moves (0022).
WATCHED = ("road_segment", "household", "building", "facility")
VERSIONS = (*WATCHED, "grid_households")


@pytest.fixture(scope="module")
def district(server_url: str, synthetic_district_path: Path) -> Iterator[Imports]:
    """The synthetic district's streets, communities, workers and grids; no buildings."""
    yield from district_levels(server_url, synthetic_district_path, "gridwork_test_reimport")


@pytest.fixture
def imported(district: Imports, tmp_path: Path) -> gpd.GeoDataFrame:
    """One community's households imported once into an emptied table (one without an age
    band, so that NULL meets NULL on the next import); the frame that was imported."""
    with transaction(district.engine) as session:
        session.execute(text("TRUNCATE household CASCADE"))
    frame = _households(district.sample, "S01-C01")
    frame.loc[0, "age_band"] = None
    report = _import(district, frame, tmp_path / "first.gpkg")
    assert (report.inserted, report.updated, report.unchanged) == (len(frame), 0, 0)
    return frame


def _import(district: Imports, frame: gpd.GeoDataFrame, path: Path) -> ImportReport:
    frame.to_file(path, layer="households")
    return district.run("households", path)


def _rows(engine: Engine) -> dict[str, tuple[object, ...]]:
    """code → (xmin, size, age band, grid, snapped, distance, WKB, xmax): the row as stored,
    the transaction that last wrote it and the last that locked it (0 for none)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, xmin::text, size, age_band::text, grid_id, snapped, "
                "assign_distance_m, ST_AsBinary(geom), xmax::text FROM household"
            )
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def _versions(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(zip(VERSIONS, table_versions(conn, *VERSIONS), strict=True))


def _changed(before: Mapping[str, object], after: Mapping[str, object]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def test_the_same_file_again_writes_no_row_and_keeps_every_version(
    district: Imports, imported: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    rows, versions = _rows(district.engine), _versions(district.engine)
    report = _import(district, imported, tmp_path / "again.gpkg")
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, len(imported))
    assert report.rejects == []
    # xmin and xmax included: not one row rewritten, nor even locked
    assert _rows(district.engine) == rows
    assert {row[-1] for row in rows.values()} == {"0"}
    assert _versions(district.engine) == versions  # no cache emptied


def test_one_size_changed_writes_that_row_only(
    district: Imports, imported: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    rows, versions = _rows(district.engine), _versions(district.engine)
    edited = imported.copy()
    code = str(edited.loc[3, "household_code"])
    edited.loc[3, "size"] = int(edited.loc[3, "size"]) + 1
    report = _import(district, edited, tmp_path / "edited.gpkg")
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, len(imported) - 1)
    after = _rows(district.engine)
    assert _changed(rows, after) == {code}
    assert after[code][1] == rows[code][1] + 1  # type: ignore[operator]
    assert after[code][2:-1] == rows[code][2:-1]  # nothing else of it moved
    # The household's version is renewed; no grid's count moved, so the tiles' is not.
    assert _changed(versions, _versions(district.engine)) == {"household"}


def test_a_null_meets_a_null_and_a_value_is_a_change(
    district: Imports, imported: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    rows = _rows(district.engine)
    unbanded = str(imported.loc[0, "household_code"])
    banded = str(imported.loc[1, "household_code"])
    assert rows[unbanded][2] is None and rows[banded][2] is not None
    edited = imported.copy()
    edited.loc[0, "age_band"] = "80+"
    edited.loc[1, "age_band"] = None
    report = _import(district, edited, tmp_path / "bands.gpkg")
    assert (report.inserted, report.updated, report.unchanged) == (0, 2, len(imported) - 2)
    after = _rows(district.engine)
    assert _changed(rows, after) == {unbanded, banded}
    assert (after[unbanded][2], after[banded][2]) == ("80+", None)


def test_a_moved_point_is_written_and_reassigned(
    district: Imports, imported: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    """Geometry equality is exact: a point moved by one unit in the last place of its
    longitude is a change (it stays in its grid), and so is one moved into another grid,
    which gets that grid in the same write; the same points read again are not."""
    rows, versions = _rows(district.engine), _versions(district.engine)
    codes = list(imported["household_code"])
    grids = [rows[c][3] for c in codes]
    nudged = 2
    elsewhere = next(i for i, g in enumerate(grids) if g != grids[nudged] and g is not None)
    home = imported.geometry.iloc[nudged]
    moved = imported.copy()
    moved.loc[nudged, moved.geometry.name] = shapely.Point(np.nextafter(home.x, np.inf), home.y)
    moved.loc[elsewhere, moved.geometry.name] = home
    report = _import(district, moved, tmp_path / "moved.gpkg")
    assert (report.inserted, report.updated, report.unchanged) == (0, 2, len(imported) - 2)
    after = _rows(district.engine)
    assert _changed(rows, after) == {codes[nudged], codes[elsewhere]}
    assert after[codes[nudged]][6] != rows[codes[nudged]][6]
    assert after[codes[nudged]][3] == grids[nudged]
    assert after[codes[elsewhere]][3] == grids[nudged], "reassigned with the write"
    assert after[codes[elsewhere]][6] == rows[codes[nudged]][6]
    # One grid lost a household and another gained one: the tiles' version moves too.
    assert _changed(versions, _versions(district.engine)) == {"household", "grid_households"}


def test_a_rejected_file_leaves_everything_as_it_was(
    district: Imports, imported: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    rows, versions = _rows(district.engine), _versions(district.engine)
    bad = imported.copy()
    bad.loc[3, "size"] = int(bad.loc[3, "size"]) + 1  # a change, refused with the file
    bad["building_id"] = None
    bad.loc[5, "building_id"] = "no-such-building"
    bad.to_file(tmp_path / "bad.gpkg", layer="households")
    with pytest.raises(ImportRejected) as refused:
        district.run("households", tmp_path / "bad.gpkg")
    assert [r.source_id for r in refused.value.rejects] == [str(bad.loc[5, "household_code"])]
    assert _rows(district.engine) == rows
    assert _versions(district.engine) == versions


# --- migration 0026: a version moves only with a row -----------------------------------------

#: One statement per event that writes no row of the table, and one that writes one.
_NOTHING = (
    "UPDATE {t} SET id = id WHERE false",
    "DELETE FROM {t} WHERE false",
    "INSERT INTO {t} SELECT * FROM {t} WHERE false",
)
_ONE = (
    "UPDATE {t} SET id = id WHERE id = (SELECT min(id) FROM {t})",
    "DELETE FROM {t} WHERE id = (SELECT max(id) FROM {t})",
)


@pytest.fixture
def porto(server_url: str) -> Iterator[Engine]:
    """A copy of the Porto sample (every watched table has rows): the tests write to it."""
    yield from factory.fresh_store(server_url, "gridwork_test_reimport_versions", "porto")


def _all_versions(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(zip(WATCHED, table_versions(conn, *WATCHED), strict=True))


def test_a_statement_that_writes_no_row_keeps_the_version(porto: Engine) -> None:
    for table in WATCHED:
        for statement in _NOTHING:
            before = _all_versions(porto)
            with porto.begin() as conn:
                conn.execute(text(statement.format(t=table)))
            assert _all_versions(porto) == before, (table, statement)
        for statement in (*_ONE, f"TRUNCATE {table} CASCADE"):
            before = _all_versions(porto)
            with porto.begin() as conn:
                conn.execute(text(statement.format(t=table)))
            assert table in _changed(before, _all_versions(porto)), (table, statement)


_TRIGGERS = text(
    "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
    "WHERE tgfoid = 'bump_table_version()'::regprocedure ORDER BY 1, 2"
)
_FUNCTION = text(
    "SELECT pg_get_functiondef(oid), proowner, proacl::text FROM pg_proc "
    "WHERE oid = 'bump_table_version()'::regprocedure"
)


def _shape(url: str) -> tuple[object, ...]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(_TRIGGERS).all()), tuple(conn.execute(_FUNCTION).one())
    finally:
        engine.dispose()


def test_the_downgrade_restores_0021s_triggers_exactly(server_url: str) -> None:
    """A database migrated only up to 0026's parent, against one taken up through 0026 and
    back down: the same triggers, the same function, the same rights."""
    config = alembic_config(server_url)
    parent = ScriptDirectory.from_config(config).get_revision("0026").down_revision
    assert isinstance(parent, str)
    name = f"gridwork_test_reimport_0021_{os.getpid()}"
    factory.OWN[name] = server_url
    drop_database(server_url, name)
    url = f"{server_url.rsplit('/', 1)[0]}/{name}"
    ensure_database(url, name)
    migrate(url, parent)
    never = _shape(url)
    triggers = never[0]
    assert isinstance(triggers, tuple)
    assert {r[1] for r in triggers} == {
        f"{t}_version{s}" for t in WATCHED for s in ("", "_truncate")
    }
    migrate(url)
    upgraded = _shape(url)
    assert upgraded != never
    command.downgrade(alembic_config(url), parent)
    assert _shape(url) == never
    drop_database(server_url, name)


# --- migration 0028: the grids' version and the notice only with a row ------------------------


def _grids_version(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT value FROM deployment_setting WHERE key = 'grids_version'")
            ).scalar_one()
        )


@contextmanager
def _notices(engine: Engine) -> Iterator[psycopg.Connection]:
    """A connection listening on the change feed's channel, as every API process does."""
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN gridwork_change")
        yield listener


def _heard(listener: psycopg.Connection) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0.3)]


def test_the_same_levels_again_keep_the_grids_version_and_wake_no_process(
    district: Imports, tmp_path: Path
) -> None:
    """A street office re-imports its unchanged grids and workers: no row written, so the
    grid index and the tiles of every API process stay (0028); one grid changed is heard."""
    before = _grids_version(district.engine)
    with _notices(district.engine) as listener:
        for kind in ("streets", "communities", "workers", "grids"):
            report = district.run(kind, district.sample, layer=kind)
            assert (report.inserted, report.updated) == (0, 0), kind
        assert _grids_version(district.engine) == before
        assert _heard(listener) == []

        with district.engine.begin() as conn:
            conn.execute(
                text("UPDATE grid SET worker_id = worker_id WHERE id = (SELECT min(id) FROM grid)")
            )
        assert _grids_version(district.engine) != before
        assert _heard(listener) == ["grid"]


@pytest.fixture
def porto_grids(server_url: str) -> Iterator[Engine]:
    """A copy of the Porto sample with grids (every level has rows): the tests write to it."""
    yield from factory.fresh_store(server_url, "gridwork_test_reimport_levels", "porto_grids")


def test_a_statement_on_the_levels_that_writes_no_row_keeps_the_grids_version(
    porto_grids: Engine,
) -> None:
    porto = porto_grids
    for table in ("grid", "worker", "community", "street"):
        for statement in _NOTHING:
            before = _grids_version(porto)
            with porto.begin() as conn:
                conn.execute(text(statement.format(t=table)))
            assert _grids_version(porto) == before, (table, statement)
        before = _grids_version(porto)
        with porto.begin() as conn:
            conn.execute(text(_ONE[0].format(t=table)))
        assert _grids_version(porto) != before, table
