"""What a households import costs, the grid written with each row or by a hook afterwards.

``python -m bench.import_assign`` (issue 19) drops and recreates ``gridwork_bench_import``,
imports the synthetic district's layers up to its buildings with
:func:`data.importing.loading.load_sample`, then imports its 146,112 households the way a
city arrives district by district: the first half of the file, the second half (the table
already holds the first), and the whole file again unchanged; then a tenth as many new
households into the full table. Each import is timed whole and in the product's own steps
(:class:`bench.megacity_store.Steps`; "assign" is the placement before the write, or the
hook after it), with what the import reported (new / updated / unchanged: a stored row
equal to the file's is not written), the rows it wrote (``n_tup_ins + n_tup_upd`` of
``household``) and whether it renewed the household table's version (0021, 0026), which
empties every cache keyed on it. Twice each way, alternating: the path before issue 19 (the
upsert writes the rows without a grid, then the hook updates the rows it wrote) and the path
as it is (the grid is decided first and written by the upsert itself), and the stored
assignments of the two compared row by row at the end of each round.

``--megacity`` does the same for the first import of the generated city's households (1 M
at scale 0.1) into ``gridwork_bench_import_megacity``, which holds its streets, communities,
grids and buildings (never the megacity benchmarks' own store), with the per-grid triggers on
households (0022's counts, 0025's versions) and, when the schema has them, with them disabled.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pyogrio
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from bench.bench_db import fresh_database
from bench.megacity_store import IMPORT_STEPS, Meter, Spent, Steps, load_average, measured
from data.db import make_engine
from data.importing import loading
from data.importing.loading import SYNTHETIC_DISTRICT, import_file, load_sample
from data.settings import Settings
from data.table_versions import table_versions

DATABASE = "gridwork_bench_import"
MEGACITY_DATABASE = "gridwork_bench_import_megacity"


def _rows_written(engine: Engine) -> int:
    """Rows inserted plus rows updated in ``household`` so far (this database's statistics).

    A backend reports its counts when idle a while and at the latest as it exits (before it
    leaves ``pg_stat_activity``), so the engine's connections are closed and waited for."""
    engine.dispose()
    with engine.connect() as conn:
        while conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        ).scalar_one():
            conn.commit()  # a new snapshot of pg_stat_activity
            time.sleep(0.05)
        conn.commit()
        return int(
            conn.execute(
                text(
                    "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables "
                    "WHERE relname = 'household'"
                )
            ).scalar_one()
        )


def _stored(engine: Engine) -> dict[str, tuple[object, ...]]:
    """code → (grid, snapped, distance) as stored."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT code, grid_id, snapped, assign_distance_m FROM household")
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def _parts(households: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """The imports, in order: two halves of the district, the whole file again, and a tenth
    as many new households (copies under new codes) into the full table."""
    half = len(households) // 2
    tenth = households.iloc[::10].copy()
    tenth["household_code"] = "N-" + tenth["household_code"]
    return {
        "first half (empty table)": households.iloc[:half],
        "second half (first half stored)": households.iloc[half:],
        "whole file again, unchanged": households,
        "a tenth more, new (all stored)": tenth,
    }


#: The ways compared: the path before this change, and the path as it is.
WAYS = ("hook after the write", "in the write")


@contextmanager
def _the_way(way: str) -> Iterator[None]:
    """Households placed before the write (as gridwork imports now), or, for "hook after the
    write", not: the after-write hook then assigns them, as before 0cc7d80."""
    placed_before_write = loading._placed_before_write
    if way == "hook after the write":
        loading._placed_before_write = lambda *_: None
    try:
        yield
    finally:
        loading._placed_before_write = placed_before_write


def _run(
    engine: Engine, settings: Settings, households: gpd.GeoDataFrame, *, way: str, table: Table
) -> dict[str, tuple[object, ...]]:
    """The imports into an emptied household table, one ``way``; returns what was stored."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE household CASCADE"))
    meter = Meter(engine)
    steps = Steps(meter, loading, IMPORT_STEPS)
    with _the_way(way), tempfile.TemporaryDirectory() as folder:
        for name, frame in _parts(households).items():
            path = Path(folder) / "households.gpkg"
            frame.to_file(path, layer="households")
            load = load_average().split()[0]
            before = _rows_written(engine)
            version = _household_version(engine)
            with measured(meter, Spent()) as total, steps.timing() as spent:
                report = import_file(
                    engine, "households", path, layer="households", settings=settings
                )
            assign = spent["assign"]
            table.add_row(
                way,
                name,
                f"{report.inserted:,} / {report.updated:,} / {report.unchanged:,}",
                f"{_rows_written(engine) - before:,}",
                "renewed" if _household_version(engine) != version else "kept",
                f"{total.wall:.2f}",
                f"{total.client:.2f} + {total.server:.2f}",
                f"{assign.wall:.2f}",
                load,
            )
    return _stored(engine)


def _household_version(engine: Engine) -> object:
    with engine.connect() as conn:
        return table_versions(conn, "household")[0]


def _per_grid_triggers(engine: Engine) -> list[str]:
    """The per-grid triggers on households, when the schema has them: 0022's counts and 0025's
    version tokens (both read the statement's transition tables)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'household'::regclass "
                    "AND (tgname LIKE 'household_grid_count_%' "
                    "OR tgname LIKE 'household_grid_version_%') ORDER BY tgname"
                )
            ).scalars()
        )


def _first_import(
    engine: Engine,
    settings: Settings,
    source: Path,
    *,
    way: str,
    table: Table,
    counted: bool = True,
) -> dict[str, tuple[object, ...]]:
    """Every household of ``source`` into an emptied table, one ``way``; ``counted``: with
    the per-grid triggers, else with them disabled for this import."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE household CASCADE"))
    triggers = [] if counted else _per_grid_triggers(engine)
    with engine.begin() as conn:
        for name in triggers:
            conn.execute(text(f"ALTER TABLE household DISABLE TRIGGER {name}"))
    meter = Meter(engine)
    steps = Steps(meter, loading, IMPORT_STEPS)
    try:
        load = load_average().split()[0]
        before = _rows_written(engine)
        with _the_way(way), measured(meter, Spent()) as total, steps.timing() as spent:
            report = import_file(engine, "households", source, settings=settings)
        table.add_row(
            way + ("" if counted else ", no per-grid triggers"),
            f"{report.inserted + report.updated:,}",
            f"{_rows_written(engine) - before:,}",
            f"{total.wall:.2f}",
            f"{total.client:.2f} + {total.server:.2f}",
            f"{spent['upsert'].wall:.2f}",
            f"{spent['assign'].wall:.2f}",
            load,
        )
    finally:
        with engine.begin() as conn:
            for name in triggers:
                conn.execute(text(f"ALTER TABLE household ENABLE TRIGGER {name}"))
    return _stored(engine)


def megacity(rounds: int) -> None:
    """``--megacity``: the first import of the generated city's households (1 M at scale
    0.1, ``python -m bench.megacity generate --scale 0.1``) into a store of this bench's own
    holding its streets, communities, grids and buildings, each way, alternating."""
    from bench.megacity import OUT
    from bench.megacity_store import LAYERS, _districts_and_streets

    manifest = json.loads((OUT / "manifest.json").read_text())
    url = fresh_database(MEGACITY_DATABASE)
    engine = make_engine(url)
    settings = Settings(database_url=url)
    console = Console(width=150)
    meter = Meter(engine)
    _districts_and_streets(engine, OUT, meter)
    for kind, id_field in LAYERS:
        if kind in ("communities", "grids", "buildings"):
            report = import_file(
                engine, kind, OUT / f"{kind}.fgb", id_field=id_field, settings=settings
            )
            console.print(f"{kind}: {report.inserted:,} new")
    table = Table(
        title=f"first import of {manifest['written']['households']:,} households "
        f"(megacity, scale {manifest['scale']:g}): a hook afterwards vs in the write"
    )
    for column in ("way", "rows", "written", "wall s", "CPU s (client + db)", "upsert wall",
                   "assign wall", "load"):  # fmt: skip
        table.add_column(column)
    # With the per-grid triggers (0022, 0025) and, when the schema has them, without.
    counted = (True, False) if _per_grid_triggers(engine) else (True,)
    for _ in range(rounds):
        for with_counts in counted:
            stored = [
                _first_import(
                    engine,
                    settings,
                    OUT / "households.fgb",
                    way=way,
                    table=table,
                    counted=with_counts,
                )
                for way in WAYS
            ]
            differ = sum(1 for code, row in stored[1].items() if stored[0].get(code) != row)
            console.print(f"stored assignments: {differ:,} of {len(stored[1]):,} differ")
    console.print(table)
    console.print(f"load average at the end: {load_average()}")
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.import_assign", description=__doc__)
    parser.add_argument("--megacity", action="store_true", help="the generated city's households")
    parser.add_argument("--rounds", type=int, default=1, help="with --megacity: rounds")
    args = parser.parse_args(argv)
    if args.megacity:
        megacity(args.rounds)
        return
    url = fresh_database(DATABASE)
    engine = make_engine(url)
    settings = Settings(database_url=url)
    console = Console(width=150)
    layers = tuple(k for k in loading.SAMPLE_LAYERS if k != "households")
    for line in load_sample(engine, settings=settings, layers=layers):
        console.print(line)
    households = pyogrio.read_dataframe(SYNTHETIC_DISTRICT, layer="households")
    table = Table(title="households import: the grid written by a hook afterwards vs in the write")
    for column in ("way", "import", "new / updated / unchanged", "written", "version",
                   "wall s", "CPU s (client + db)", "assign wall", "load"):  # fmt: skip
        table.add_column(column)
    for _ in range(2):
        stored = [_run(engine, settings, households, way=way, table=table) for way in WAYS]
        differ = sum(1 for code, row in stored[1].items() if stored[0].get(code) != row)
        console.print(
            f"stored assignments, {len(stored[1]):,} households: {differ:,} differ between "
            f"the ways ({len(stored[0]):,} stored the old way)"
        )
    console.print(table)
    console.print(f"load average at the end: {load_average()}")
    engine.dispose()


if __name__ == "__main__":
    main()
