"""Benchmark: the three batch jobs serially and on a dask LocalCluster, same run, same data.

Run ``python -m bench.batch`` (``--workers 2``, ``--jobs plan coverage assign``, ``--keep``
to reuse the loaded database). A fresh database ``gridwork_bench_batch`` gets the synthetic
district imported as ``gridwork demo --sample synthetic-district`` does (783 grids, 146,112
households, 178 facilities of five kinds, 11,970 road segments); ``--keep`` skips that when
it is already there.

Each job runs first on :class:`data.batch.runner.SerialRunner` (every task here, in order),
then on a ``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)`` started
beforehand (its start-up is printed, not timed). Rows: wall time of each, the ratio, the
share of the serial time spent reading and writing the store (which stays in the driver on
either runner), and whether the answers are identical (plans: unit → grid of every
community; coverage: every number of every area and kind; assignment: grid, snap and
distance of every household).

* **plan**: a draft for every community the oversize report lists (150-180), seed 1, the
  planner's budget; both runs keep their drafts.
* **coverage**: every facility kind, 15 minutes' walk, over every grid.
* **assign**: every household's ``grid_id`` cleared, then reassigned in chunks of 20,000
  (the same writes in both runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy.exc
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from bench.bench_db import fresh_database
from data.batch.assign import AssignBatch, assign_everything
from data.batch.coverage import CoverageBatch, cover_every_kind
from data.batch.plan import PlanBatch, plan_oversized
from data.batch.runner import Runner, SerialRunner, dask_runner
from data.db import database_url, make_engine, transaction
from data.importing.loading import load_sample
from data.settings import Settings

DATABASE = "gridwork_bench_batch"
JOBS = ("plan", "coverage", "assign")

console = Console(width=None if sys.stdout.isatty() else 200)


def database(keep: bool) -> tuple[Engine, Settings]:
    """The bench database with the synthetic district, imported unless ``keep`` finds it."""
    settings = Settings()
    if keep:
        url = database_url(settings).rsplit("/", 1)[0] + f"/{DATABASE}"
        try:
            engine = make_engine(url)
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM household")).scalar():
                    return engine, Settings(database_url=url)
        except sqlalchemy.exc.SQLAlchemyError:  # not there yet: built below
            pass
    url = fresh_database(DATABASE)
    engine = make_engine(url)
    started = time.perf_counter()
    for line in load_sample(engine, settings=Settings(database_url=url)):
        console.print(f"  {line}")
    console.print(f"synthetic district imported in {time.perf_counter() - started:.0f} s")
    return engine, Settings(database_url=url)


def run_plan(engine: Engine, runner: Runner, settings: Settings) -> PlanBatch:
    return plan_oversized(engine, runner, settings=settings, seed=1)


def run_coverage(engine: Engine, runner: Runner, settings: Settings) -> CoverageBatch:
    return cover_every_kind(engine, runner, minutes=15)


def run_assign(engine: Engine, runner: Runner, settings: Settings) -> AssignBatch:
    with transaction(engine) as db:
        db.execute(text("UPDATE household SET grid_id = NULL, snapped = false"))
    return assign_everything(engine, runner, settings=settings, tables=["household"])


def same_plans(a: PlanBatch, b: PlanBatch) -> bool:
    if [c.community for c in a.communities] != [c.community for c in b.communities]:
        return False
    for x, y in zip(a.communities, b.communities, strict=True):
        if (x.assignment is None) != (y.assignment is None) or x.error != y.error:
            return False
        if (
            x.assignment is not None
            and y.assignment is not None
            and not x.assignment.equals(y.assignment)
        ):
            return False
    return True


def same_coverage(a: CoverageBatch, b: CoverageBatch) -> bool:
    if [k.kind for k in a.kinds] != [k.kind for k in b.kinds]:
        return False
    try:
        for x, y in zip(a.kinds, b.kinds, strict=True):
            pd.testing.assert_frame_equal(x.areas, y.areas)
    except AssertionError:
        return False
    return True


def same_assignment(a: AssignBatch, b: AssignBatch) -> bool:
    x, y = a.tables[0], b.tables[0]
    return bool(
        np.array_equal(x.ids, y.ids)
        and np.array_equal(x.grid, y.grid)
        and np.array_equal(x.snapped, y.snapped)
        and np.array_equal(x.distance_m, y.distance_m, equal_nan=True)
    )


def store_s(batch: Any) -> float:
    """Seconds spent in the store (reading and writing), which no worker can take over."""
    if isinstance(batch, PlanBatch):
        return batch.read_s + batch.write_s
    if isinstance(batch, CoverageBatch):
        return batch.read_s
    assert isinstance(batch, AssignBatch)
    return batch.read_s + batch.write_s


def size(batch: Any) -> str:
    if isinstance(batch, PlanBatch):
        grids = sum(c.grids for c in batch.communities)
        return f"{len(batch.communities)} communities, {grids} grids"
    if isinstance(batch, CoverageBatch):
        return f"{len(batch.kinds)} kinds x {len(batch.kinds[0].areas)} {batch.level}"
    assert isinstance(batch, AssignBatch)
    return f"{batch.tables[0].result.rows:,} households"


RUNS: dict[str, Callable[[Engine, Runner, Settings], Any]] = {
    "plan": run_plan,
    "coverage": run_coverage,
    "assign": run_assign,
}
SAME: dict[str, Callable[[Any, Any], bool]] = {
    "plan": same_plans,
    "coverage": same_coverage,
    "assign": same_assignment,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", nargs="+", choices=JOBS, default=list(JOBS))
    parser.add_argument("--keep", action="store_true", help="reuse the loaded database")
    args = parser.parse_args(argv)

    engine, settings = database(args.keep)
    started = time.perf_counter()
    with dask_runner(workers=args.workers, threads_per_worker=1, processes=True) as dask:
        console.print(
            f"LocalCluster({args.workers} workers, 1 thread each, processes) started in "
            f"{time.perf_counter() - started:.1f} s (not timed below)"
        )
        table = Table(
            "job", "size", "serial s", f"dask({args.workers}) s", "speed-up",
            "store share (serial)", "identical",
            title=f"batch jobs, serial vs LocalCluster({args.workers}), same run",
        )  # fmt: skip
        for job in args.jobs:
            serial = RUNS[job](engine, SerialRunner(), settings)
            spread = RUNS[job](engine, dask, settings)
            table.add_row(
                job,
                size(serial),
                f"{serial.total_s:.1f}",
                f"{spread.total_s:.1f}",
                f"{serial.total_s / spread.total_s:.2f}x",
                f"{store_s(serial) / serial.total_s:.0%}",
                "yes" if SAME[job](serial, spread) else "NO",
            )
            console.print(
                f"{job}: serial {serial.total_s:.1f} s, dask {spread.total_s:.1f} s "
                f"(load average {os.getloadavg()[0]:.2f})"
            )
    console.print(table)
    load1, load5, load15 = os.getloadavg()
    console.print(
        f"{platform.node()} ({os.cpu_count()} CPUs), Python {platform.python_version()}, "
        f"load average {load1:.2f} {load5:.2f} {load15:.2f} at the end"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
