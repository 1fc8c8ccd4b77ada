"""Benchmark: positions at the scale of months, a plain table against one partitioned by day.

Run ``python -m bench.positions`` (``--rows`` smaller for a quick try).

Two private databases in gridwork's own PostGIS, in the same run: ``gridwork_bench_parted``
migrated to the newest release (``position`` partitioned by UTC day, migration 0019) and
``gridwork_bench_plain`` migrated and then taken back to 0018 (one plain table, as before).
Both get the synthetic district's grids, ``--devices`` elders enrolled with consent and the
same ``--rows`` stored fixes over ``--days`` days (``generate_series``, in SQL: each device
reports at even intervals), one alert per thousand fixes pointing at its fix. Then:

1. **group-commit ingest**: ``--rounds`` rounds in which every device sends one fix; the
   fixes go through ``data.care.service.ingest_many`` in batches of ``--batch`` requests,
   one transaction each, as the server's group commit does; the two databases take turns
   round by round, so that the machine's other work falls on both alike;
2. **a day's purge**: the oldest day goes at the moment it falls out of the ``--days``-day
   retention: on the plain table with the purge gridwork had before (one ``DELETE``; the
   ``VACUUM`` that must follow it to reuse the space is timed apart), on the partitioned
   one with ``data.care.service.purge`` (a partition dropped, its fixes counted for the
   answer, its alerts' references emptied; then the DELETE of what is left before the
   cut-off, nothing here);
3. **the newest fix of one elder**, unbounded, so it reads every partition's index: the cost
   of 30-odd partitions to a read that does not name a time, against the one index of a plain
   table. The product's own reads are bounded by time (``bench/newest_fix.py``) or read a
   column ingest keeps (``zone_state.last_received_at``, migration 0023).

PostgreSQL, the benchmark and whatever else runs on the machine share its cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from alembic import command
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, text

from bench.bench_db import fresh_database
from bench.ingest import Device, prepare
from data.care import queries as q
from data.care import service as care
from data.db import alembic_config, make_engine, transaction
from geo.care.datum import from_wgs84
from geo.care.osmand import Fix

PARTED, PLAIN = "gridwork_bench_parted", "gridwork_bench_plain"
PARTED_L, PLAIN_L = "partitioned by day", "plain table"
EPSG = 32645
console = Console(width=None if sys.stdout.isatty() else 160)


def _databases(devices: int) -> dict[str, tuple[Engine, list[Device]]]:
    out = {}
    for name, label in ((PARTED, PARTED_L), (PLAIN, PLAIN_L)):
        url = fresh_database(name)
        if name == PLAIN:
            command.downgrade(alembic_config(url), "0018")
        t0 = time.perf_counter()
        enrolled = prepare(url, devices)
        seconds = time.perf_counter() - t0
        console.print(f"{label}: {len(enrolled)} devices enrolled in {seconds:.0f} s")
        out[label] = (make_engine(url), enrolled)
    return out


def _fill(engine: Engine, *, rows: int, days: int, start: datetime) -> float:
    """``rows`` fixes over the ``days`` days from ``start``, evenly per device, one day per
    statement; foreign keys are not re-checked row by row (``session_replication_role``), as
    in a restore. Seconds taken."""
    per_day = rows // days
    t0 = time.perf_counter()
    with engine.begin() as conn:
        devices = conn.execute(text("SELECT count(*) FROM device")).scalar_one()
        per_device = max(1, -(-per_day // devices))  # rounded up: at least ``rows`` in all
        conn.execute(
            text(
                "CREATE TEMP TABLE d AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, "
                "elder_id FROM device"
            )
        )
    for day in range(days):
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                text(
                    """
                    INSERT INTO position (device_id, elder_id, time, geom, raw_lon, raw_lat,
                                          accuracy_m, battery)
                    SELECT d.id, d.elder_id,
                           :day0 + make_interval(secs => 86400.0 * (i / :devices) / :per_device),
                           ST_SetSRID(ST_MakePoint(84.87 + (i % 97) * 1e-5,
                                                   45.6 + (i % 89) * 1e-5), 4326),
                           84.87, 45.6, 10, 80
                    FROM generate_series(0, :per_day - 1) i
                    JOIN pg_temp.d ON d.n = i % :devices
                    """
                ),
                {
                    "day0": start + timedelta(days=day),
                    "devices": devices,
                    "per_device": per_device,
                    "per_day": per_device * devices,  # whole reports per device, in the day
                },
            )
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text(
                "INSERT INTO alert (elder_id, kind, status, event_time, position_id"
                + (", position_time" if _parted(conn) else "")
                + ") SELECT elder_id, 'left_zone', 'closed', time, id"
                + (", time" if _parted(conn) else "")
                + " FROM position WHERE id % 1000 = 0"
            )
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - t0


def _parted(conn: Connection) -> bool:
    return bool(
        conn.execute(
            text("SELECT relkind = 'p' FROM pg_class WHERE relname = 'position'")
        ).scalar_one()
    )


def _ingest_round(engine: Engine, devices: list[Device], at: datetime, batch: int) -> float:
    """Every device sends one fix at ``at``, in group commits of ``batch`` requests."""
    requests = []
    for i, device in enumerate(devices):
        lon = device.lon + ((i % 7) - 3) * 2e-5
        lat = device.lat + ((i % 5) - 2) * 2e-5
        x, y = from_wgs84(lon, lat, device.datum.value)
        fix = Fix(device.code, x, y, at, accuracy_m=10.0, battery=80.0)
        requests.append(care.IngestRequest(f"device:{device.code}", [fix]))
    t0 = time.perf_counter()
    for first in range(0, len(requests), batch):
        with transaction(engine) as session:
            results = care.ingest_many(
                session,
                requests[first : first + batch],
                epsg=EPSG,
                now=at,
                retention=timedelta(days=30),
            )
        assert all(isinstance(r, care.IngestResult) and r.stored == 1 for r in results), results
    return time.perf_counter() - t0


def _newest_fix_ms(engine: Engine, repeat: int = 200) -> float:
    with engine.connect() as conn:
        elders = conn.execute(text("SELECT id FROM elder ORDER BY id LIMIT :n"), {"n": repeat})
        ids = [r[0] for r in elders]
        times = []
        for elder in ids:
            t0 = time.perf_counter()
            conn.execute(
                text(
                    "SELECT id, time FROM position WHERE elder_id = :e "
                    "ORDER BY time DESC, id DESC LIMIT 1"
                ),
                {"e": elder},
            ).first()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=20_000_000, help="stored fixes, each table")
    parser.add_argument("--days", type=int, default=30, help="the retention period")
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20, help="ingest rounds, each table")
    parser.add_argument("--batch", type=int, default=500, help="requests per group commit")
    args = parser.parse_args(argv)

    now = datetime.now(UTC).replace(microsecond=0)
    today = datetime.combine(now.date(), datetime.min.time(), UTC)
    start = today - timedelta(days=args.days)  # whole UTC days, the oldest one to purge
    dbs = _databases(args.devices)
    figures: dict[str, dict[str, str]] = {label: {} for label in dbs}
    for label, (engine, _) in dbs.items():
        seconds = _fill(engine, rows=args.rows, days=args.days, start=start)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM position")).scalar_one()
            size = conn.execute(
                text(
                    "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c "
                    "WHERE c.relname = 'position' OR c.relname LIKE 'position\\_%' "
                    "AND c.relkind IN ('r', 'p')"
                )
            ).scalar_one()
        console.print(f"{label}: {stored:,} fixes stored in {seconds:.0f} s ({size})")
        figures[label]["fixes stored (table and indexes)"] = f"{stored:,} ({size})"

    # 1. group-commit ingest, the two tables taking turns
    spent = dict.fromkeys(dbs, 0.0)
    for round_no in range(args.rounds):
        at = now + timedelta(seconds=round_no + 1)
        for label, (engine, devices) in dbs.items():
            spent[label] += _ingest_round(engine, devices, at, args.batch)
    for label, (_, devices) in dbs.items():
        rate = len(devices) * args.rounds / spent[label]
        figures[label]["group-commit ingest (fixes / s)"] = f"{rate:,.0f}"

    # 2. the newest fix of an elder (every partition's index)
    for label, (engine, _) in dbs.items():
        figures[label]["newest fix of one elder, median (ms)"] = f"{_newest_fix_ms(engine):.2f}"

    # 3. a day's purge: the oldest day falls out of the retention period
    purge_at = start + timedelta(days=1 + args.days)
    purge_s: dict[str, float] = {}
    for label, (engine, _) in dbs.items():
        t0 = time.perf_counter()
        if label == PLAIN_L:  # the purge before migration 0019: one DELETE
            with transaction(engine) as session:
                purged = q.purge_positions(session, before=purge_at - timedelta(days=args.days))
        else:
            purged = care.purge(engine, now=purge_at, retention=timedelta(days=args.days))
        seconds = purge_s[label] = time.perf_counter() - t0
        figures[label]["a day's purge: fixes gone"] = f"{purged:,}"
        figures[label]["a day's purge (s)"] = f"{seconds:.2f}"
        # What the purge left dead: the plain table; the partitions it deleted in (the day
        # straddling the cut-off, the default one), not the untouched days.
        cutoff = purge_at - timedelta(days=args.days)
        touched = "position" if label == PLAIN_L else f"position_{cutoff:%Y%m%d}, position_default"
        with engine.connect() as conn:
            t0 = time.perf_counter()
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(f"VACUUM {touched}"))
            vacuum_s = time.perf_counter() - t0
        figures[label]["VACUUM of what it left dead (s)"] = f"{vacuum_s:.2f}"
        purge_s[label + " vacuum"] = vacuum_s

    table = Table(
        title=f"positions, {platform.node()} ({os.cpu_count()} CPUs), {args.rows:,} fixes over "
        f"{args.days} days, {args.devices} devices, same run"
    )
    table.add_column("measure")
    for label in dbs:
        table.add_column(label, justify="right")
    for measure in figures[PLAIN_L]:
        table.add_row(measure, *(figures[label][measure] for label in dbs))
    console.print(table)
    plain, parted = (len(dbs[k][1]) * args.rounds / spent[k] for k in (PLAIN_L, PARTED_L))
    console.print(f"group-commit ingest, partitioned ÷ plain: {parted / plain:.2f}×")
    delete, drop = purge_s[PLAIN_L], purge_s[PARTED_L]
    with_vacuum = (delete + purge_s[PLAIN_L + " vacuum"]) / (drop + purge_s[PARTED_L + " vacuum"])
    console.print(
        f"a day's purge, DELETE on the plain table ÷ partition dropped: {delete / drop:.0f}× "
        f"(with the VACUUM each needs after it: {with_vacuum:.0f}×)"
    )
    for engine, _ in dbs.values():
        engine.dispose()


if __name__ == "__main__":
    main()
