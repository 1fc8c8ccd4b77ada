"""Benchmark: an elder's newest fix on ``position`` partitioned by day, bounded or not.

Run ``python -m bench.newest_fix`` (``--rows`` smaller for a quick try).

A private database ``gridwork_bench_newest`` in gridwork's own PostGIS: the synthetic
district, ``--devices`` elders enrolled with consent, a day partition for each of ``--days``
days (and the week ahead) and ``--rows`` fixes spread evenly over them (as in
``bench.positions``); then one round of fixes through ``data.care.service.ingest_many``, so
``zone_state.last_fix_time`` is what ingest keeps, and, as real watches do, a late fix (a day
old) from every third device and an invalid fix, the newest of all, from every fifth.

The four reads of an elder's newest fix (``data.care.queries``) are timed, elder by elder in
turns, in their current form and in the form of revision ``--before`` (loaded from git: the
reads without a time bound), and must give the same answers. For each, the plans of the
current form's statements (``EXPLAIN (ANALYZE)``) for one elder are summed up: how many day
partitions they read (neither pruned nor "never executed"); ``--plans`` prints them whole.
The empty days ahead (``PARTITIONS_AHEAD``) are read too: no bound from above is known.

PostgreSQL, the benchmark and whatever else runs on the machine share its cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, event, text

from bench.bench_db import fresh_database
from bench.ingest import Device, prepare
from bench.positions import _fill
from data.access.queries import AreaScope
from data.care import queries as q
from data.care import service as care
from data.db import make_engine, transaction
from data.policy import Action
from geo.care.datum import from_wgs84
from geo.care.osmand import Fix

NAME = "gridwork_bench_newest"
EPSG = 32645
BEFORE = "da6a007"  # the last revision whose newest-fix reads had no time bound
ROOT = Path(__file__).resolve().parent.parent
console = Console(width=None if sys.stdout.isatty() else 160)

Read = Callable[[ModuleType, Connection, int], Any]
READS: dict[str, Read] = {
    "elder_record (last fix received)": lambda m, c, e: m.elder_record(
        c, e, AreaScope.everywhere(), to=Action.locate_elders
    )["reports"],
    "last_position_ref": lambda m, c, e: _fields(m.last_position_ref(c, e)),
    "last_fix": lambda m, c, e: {k: v for k, v in (m.last_fix(c, e) or {}).items() if k != "age_s"},
    "elders_at_a_glance (50 elders)": lambda m, c, e: m.elders_at_a_glance(
        c, AreaScope.everywhere(), search=None, limit=50, offset=e % 4 * 50
    ),
}


def _fields(ref: Any) -> tuple[Any, ...] | None:
    """A ``PositionRef`` as plain values: each revision of the module has its own class."""
    return None if ref is None else dataclasses.astuple(ref)


def _before(revision: str) -> ModuleType:
    """``data.care.queries`` as it was at ``revision``."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:data/care/queries.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "queries_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("queries_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reports(engine: Engine, devices: list[Device], at: datetime) -> None:
    """One fix from every device at ``at`` through ingest; a late one (a day old) from every
    third device and an invalid one, newer than all, from every fifth."""
    requests = []
    for i, device in enumerate(devices):
        x, y = from_wgs84(device.lon, device.lat, device.datum.value)
        fixes = [Fix(device.code, x, y, at, accuracy_m=10.0, battery=80.0)]
        if i % 3 == 0:
            fixes.append(Fix(device.code, x, y, at - timedelta(days=1, seconds=7)))
        if i % 5 == 0:
            fixes.append(Fix(device.code, x, y, at + timedelta(seconds=30), valid=False))
        requests.append(care.IngestRequest(f"device:{device.code}", fixes))
    with transaction(engine) as session:
        care.ingest_many(session, requests, epsg=EPSG, now=at, retention=timedelta(days=60))


def _plans(conn: Connection, read: Read, elder: int) -> list[str]:
    """The plans (``EXPLAIN (ANALYZE)``, one line a string) of the statements ``read`` runs
    for ``elder``, run again."""
    seen: list[tuple[str, Any]] = []

    def keep(*args: Any) -> None:  # connection, cursor, statement, parameters, …
        seen.append((args[2], args[3]))

    event.listen(conn, "before_cursor_execute", keep)
    read(q, conn, elder)
    event.remove(conn, "before_cursor_execute", keep)
    explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
    return [
        line
        for statement, parameters in seen
        for line in conn.exec_driver_sql(explain + statement, parameters).scalars()
    ]


def _partitions(plan: list[str], days: int) -> str:
    """How many of the ``days`` day partitions the plan read (not pruned, and executed)."""
    read = {
        m.group(1)
        for line in plan
        if "never executed" not in line and (m := re.search(r" on (position_\d{8})", line))
    }
    return f"{len(read)} of {days}"


def _time(conn: Connection, before: ModuleType, read: Read, elders: list[int]) -> list[float]:
    """Median ms before and now, the two forms taking turns elder by elder (which goes first
    alternating, so neither always finds the other's pages cached); same answers."""
    spent: dict[str, list[float]] = {"before": [], "now": []}
    forms = [("before", before), ("now", q)]
    for elder in elders:
        answers = {}
        for label, module in forms:
            t0 = time.perf_counter()
            answers[label] = read(module, conn, elder)
            spent[label].append(time.perf_counter() - t0)
        assert answers["before"] == answers["now"], (elder, answers)
        forms.reverse()
    return [statistics.median(spent[k]) * 1000 for k in ("before", "now")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=2_000_000, help="stored fixes")
    parser.add_argument("--days", type=int, default=35, help="days of fixes, a partition each")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=100, help="elders timed, each read")
    parser.add_argument("--before", default=BEFORE, help="git revision to compare with")
    parser.add_argument("--plans", action="store_true", help="print the plans in full")
    args = parser.parse_args(argv)

    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    start = datetime.combine(today - timedelta(days=args.days), datetime.min.time(), UTC)
    url = fresh_database(NAME)
    devices = prepare(url, args.devices)
    engine = make_engine(url)
    with transaction(engine) as session:
        q.make_position_partitions(session, first_day=start.date(), last_day=today)
        # consented since the first day, so that ingest keeps the late fixes
        session.execute(text("UPDATE consent SET given_on = :d"), {"d": start.date()})
    seconds = _fill(engine, rows=args.rows, days=args.days, start=start)
    _reports(engine, devices, now - timedelta(minutes=1))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE position"))
        days = len(q.position_partitions(conn)) - 1
    console.print(f"{args.rows:,} fixes over {days} day partitions in {seconds:.0f} s")

    before = _before(args.before)
    table = Table(
        title=f"an elder's newest fix, {platform.node()} ({os.cpu_count()} CPUs), "
        f"{args.rows:,} fixes, {days} day partitions, {args.devices} elders; "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    for column in ("read", f"before ({args.before}), ms", "now, ms", "day partitions read now"):
        table.add_column(column, justify="left" if column == "read" else "right")
    with engine.connect() as conn:
        elders = list(conn.execute(text("SELECT id FROM elder ORDER BY id")).scalars())
        elders = elders[: args.repeat]
        for name, read in READS.items():
            old_ms, new_ms = _time(conn, before, read, elders)
            plan = _plans(conn, read, elders[0])
            table.add_row(name, f"{old_ms:.2f}", f"{new_ms:.2f}", _partitions(plan, days))
            if args.plans:
                console.print(f"[bold]{name}[/bold], elder {elders[0]}:", *plan, sep="\n")
    console.print(table)
    console.print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    engine.dispose()


if __name__ == "__main__":
    main()
