"""What the households import's assignment hook costs when the table already holds others.

``python -m bench.import_assign`` (issue 19) drops and recreates ``gridwork_bench_import``,
imports the synthetic district's layers up to its buildings with
:func:`data.importing.loading.load_sample`, then imports its 146,112 households the way a
city arrives district by district: the first half of the file, the second half (the table
already holds the first), and the whole file again unchanged. Each import is timed whole and
in the product's own steps (:class:`bench.megacity_store.Steps`), with the rows each import
inserted or updated (``n_tup_ins + n_tup_upd`` of ``household``); then a tenth as many new
households into the full table. Twice each way, alternating: the hook as it was (the whole
table reassigned after every import) and as it is (only the rows the import wrote).
"""

from __future__ import annotations

import tempfile
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

DATABASE = "gridwork_bench_import"


def _rows_written(engine: Engine) -> int:
    """Rows inserted plus rows updated in ``household`` so far (this database's statistics)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
        return int(
            conn.execute(
                text(
                    "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables "
                    "WHERE relname = 'household'"
                )
            ).scalar_one()
        )


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


def _run(
    engine: Engine, settings: Settings, households: gpd.GeoDataFrame, *, whole: bool, table: Table
) -> None:
    """The imports into an emptied household table; ``whole``: the hook as it was before
    issue 19's change, reassigning the whole table (no keys)."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE household CASCADE"))
    meter = Meter(engine)
    steps = Steps(meter, loading, IMPORT_STEPS)
    written_keys = loading._written_keys
    if whole:
        loading._written_keys = lambda *_: None
    try:
        with tempfile.TemporaryDirectory() as folder:
            for name, frame in _parts(households).items():
                path = Path(folder) / "households.gpkg"
                frame.to_file(path, layer="households")
                load = load_average().split()[0]
                before = _rows_written(engine)
                with measured(meter, Spent()) as total, steps.timing() as spent:
                    report = import_file(
                        engine, "households", path, layer="households", settings=settings
                    )
                assign = spent["assign"]
                table.add_row(
                    "whole table" if whole else "rows written",
                    name,
                    f"{report.inserted + report.updated:,}",
                    f"{_rows_written(engine) - before:,}",
                    f"{total.wall:.2f}",
                    f"{assign.wall:.2f}",
                    f"{assign.cpu:.2f}",
                    load,
                )
    finally:
        loading._written_keys = written_keys


def main() -> None:
    url = fresh_database(DATABASE)
    engine = make_engine(url)
    settings = Settings(database_url=url)
    console = Console(width=150)
    layers = tuple(k for k in loading.SAMPLE_LAYERS if k != "households")
    for line in load_sample(engine, settings=settings, layers=layers):
        console.print(line)
    households = pyogrio.read_dataframe(SYNTHETIC_DISTRICT, layer="households")
    table = Table(title="households import: the hook over the whole table vs the rows written")
    for column in ("hook", "import", "rows", "written", "wall s", "assign wall", "cpu", "load"):
        table.add_column(column)
    for whole in (True, False, True, False):
        _run(engine, settings, households, whole=whole, table=table)
    console.print(table)
    console.print(f"load average at the end: {load_average()}")
    engine.dispose()


if __name__ == "__main__":
    main()
