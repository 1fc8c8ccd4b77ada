"""The private cluster sized from the machine against initdb's defaults, on the same city.

    .venv/bin/python -m bench.cluster_settings              # a tenth of the megacity, ~10 min
    .venv/bin/python -m bench.cluster_settings --scale 0.2

Two throw-away private clusters under a temporary folder, one started with
``data.server_settings``'s sizing (what ``gridwork`` starts its own cluster with), one with
initdb's defaults (``shared_buffers`` 128 MB, ``max_wal_size`` 1 GB…), each loaded in turn
with the same generated megacity (``bench.megacity``; generated first if missing) through
gridwork's import path, then every household reassigned both ways (gridwork's reassignment and
the SQL ``UPDATE … grid_covering()``), the work whose cost at full size is index maintenance
and checkpoints (docs/scale.md). Prints each cluster's figures and the ratios. Only one cluster
runs at a time; the source files are read once before either is loaded, so neither finds
them colder in the page cache.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bench.megacity import OUT
from bench.megacity_store import (
    Assignment,
    LayerLoad,
    compare_assignment,
    generated,
    load_average,
    load_megacity,
)
from data.cluster import LocalCluster
from data.db import make_engine, migrate
from data.server_settings import machine_memory, sized
from data.settings import Settings

SHOWN = ("shared_buffers", "max_wal_size", "work_mem", "maintenance_work_mem")


def _run(
    root: Path, source: Path, *, is_sized: bool
) -> tuple[dict[str, str], list[LayerLoad], Assignment]:
    cluster = LocalCluster(root / ("sized" if is_sized else "defaults"), "gridwork", sized=is_sized)
    try:
        url = cluster.up()
        migrate(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            shown = {n: str(conn.execute(text(f"SHOW {n}")).scalar_one()) for n in SHOWN}
        settings = Settings(database_url=url)
        layers = load_megacity(engine, source, settings)
        assignment = compare_assignment(engine, settings, sql=True)
        engine.dispose()
        return shown, layers, assignment
    finally:
        cluster.remove()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="of the megacity")
    parser.add_argument("--out", type=Path, default=OUT, help="where the city is generated")
    args = parser.parse_args(argv)
    console = Console(width=150)
    manifest = generated(args.scale, args.out)
    for path in args.out.iterdir():  # into the page cache for both runs alike
        if path.is_file():
            path.read_bytes()
    memory = machine_memory()
    console.print(
        f"megacity at scale {args.scale:g}: {manifest['written']['households']:,} households, "
        f"{manifest['written']['grids']:,} grids; machine memory {memory / 2**30:.1f} GiB; "
        f"sizing: {sized(memory)}; load average {load_average()}"
    )
    runs = {}
    with tempfile.TemporaryDirectory(prefix="gridwork-bench-clusters-") as tmp:
        for is_sized in (False, True):
            runs[is_sized] = _run(Path(tmp), args.out, is_sized=is_sized)
            console.print(f"{'sized' if is_sized else 'defaults'} done, load {load_average()}")
    table = Table(title="the same city on initdb's defaults and on gridwork's sizing (wall s)")
    for col in ("", "initdb's defaults", "sized for this machine", "defaults ÷ sized"):
        table.add_column(col, justify="right")
    for name in SHOWN:
        table.add_row(name, runs[False][0][name], runs[True][0][name], "")
    rows: list[tuple[str, float, float]] = []
    for plain, ours in zip(runs[False][1], runs[True][1], strict=True):
        rows.append(
            (f"import {plain.kind} ({plain.rows:,} rows)", plain.total.wall, ours.total.wall)
        )
    a, b = runs[False][2], runs[True][2]
    rows.append(("reassign every household, gridwork", a.gridwork.wall, b.gridwork.wall))
    rows.append(
        ("  of it the write (COPY in + UPDATE)", a.steps["write"].wall, b.steps["write"].wall)
    )
    if a.sql is not None and b.sql is not None:
        rows.append(
            ("reassign every household, SQL grid_covering() UPDATE", a.sql.wall, b.sql.wall)
        )
    for label, plain_s, sized_s in rows:
        table.add_row(label, f"{plain_s:.1f}", f"{sized_s:.1f}", f"{plain_s / sized_s:.2f}×")
    console.print(table)
    console.print(
        f"answers equal: sjoin differs {a.sjoin_differ} | {b.sjoin_differ}, SQL differs "
        f"{a.sql_differ} | {b.sql_differ}; load average at the end {load_average()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
