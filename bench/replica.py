"""Benchmark: non-personal reads served from a hot standby vs from the primary, same run.

Run ``python -m bench.replica``. It makes a private primary (Porto loaded, as ``make demo``
does) and its standby by ``pg_basebackup`` in a temporary folder (tests/standby.py: no
fsync, which reads do not notice), then serves the API with uvicorn, without
``GRIDWORK_READ_DATABASE_URL`` (every read on the primary) and with it, in alternated
rounds, and times the same requests against each: OGC vector tiles of the roads at z14–z16
and the ``/basemap`` of a viewport of the old town. Both servers run on this machine's
cores, so this measures what the detour through the standby costs a request, not the
capacity a standby on its own machine adds (the primary's CPU it frees: docs/scale.md).
The rows the standby returned during each run show where the reads went. Both clusters
are removed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

from bench.bench_db import extent_of, tiles_over
from data.access.queries import create_api_key
from data.cluster import LocalCluster
from data.db import make_engine, transaction
from data.importing.loading import load_porto
from data.models import Role
from data.settings import Settings
from tests.gridded import live_server
from tests.standby import primary_and_standby

console = Console(width=None if sys.stdout.isatty() else 160)
TILE = "/ogc/collections/ogc.roads/tiles/WebMercatorQuad/{}/{}/{}"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def rows_returned(standby: LocalCluster) -> int:
    """Rows the standby's database has returned so far (its own statistics)."""
    with psycopg.connect(_libpq(standby.url()), autocommit=True) as conn:
        found = conn.execute(
            "SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = %s",
            (standby.database,),
        ).fetchone()
    return int(found[0]) if found else 0


@contextmanager
def _reads_at(read_url: str | None) -> Iterator[None]:
    """``GRIDWORK_READ_DATABASE_URL`` for the server started meanwhile (None: unset)."""
    before = os.environ.pop("GRIDWORK_READ_DATABASE_URL", None)
    if read_url:
        os.environ["GRIDWORK_READ_DATABASE_URL"] = read_url
    try:
        yield
    finally:
        os.environ.pop("GRIDWORK_READ_DATABASE_URL", None)
        if before is not None:
            os.environ["GRIDWORK_READ_DATABASE_URL"] = before


def serve_and_time(
    primary_url: str,
    read_url: str | None,
    key: str,
    tiles: list[tuple[int, int, int]],
    bbox: str,
    basemaps: int,
) -> tuple[list[float], list[float], str]:
    """Milliseconds per tile and per basemap against one uvicorn process (after a warm-up),
    and its /metrics lines about the standby."""
    with (
        _reads_at(read_url),
        live_server(primary_url) as live,
        httpx.Client(base_url=live.url, headers={"X-API-Key": key}, timeout=30) as client,
    ):
        for z, x, y in tiles[:20]:  # warm-up: pools, the OGC catalog
            client.get(TILE.format(z, x, y))
        client.get("/basemap", params={"bbox": bbox, "zoom": 16})
        tile_ms, basemap_ms = [], []
        for z, x, y in tiles:
            start = time.perf_counter()
            r = client.get(TILE.format(z, x, y))
            tile_ms.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200, r.text[:200]
        for _ in range(basemaps):
            start = time.perf_counter()
            r = client.get("/basemap", params={"bbox": bbox, "zoom": 16})
            basemap_ms.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200, r.text[:200]
        metrics = client.get("/metrics").text
    replica = "\n".join(
        line for line in metrics.splitlines() if line.startswith("gridwork_replica_")
    )
    return tile_ms, basemap_ms, replica


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replica", description=__doc__)
    parser.add_argument("--tiles-per-zoom", type=int, default=100)
    parser.add_argument("--basemaps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=4, help="runs of each, alternated")
    args = parser.parse_args(argv)

    console.print("a primary with Porto, and its standby by pg_basebackup …")
    with primary_and_standby(migrated=True) as pair:
        primary, standby = pair.primary, pair.standby
        url = primary.url()
        engine = make_engine(url)
        list(load_porto(engine, settings=Settings(database_url=url)))
        with transaction(engine) as session:
            key = create_api_key(session, "bench-replica", Role.admin)
        extent = extent_of(engine, "road_segment")
        engine.dispose()
        pair.wait_for_replay(within_s=120)
        tiles = tiles_over(extent, (14, 15, 16), args.tiles_per_zoom, seed=19)
        bbox = ",".join(f"{v:.5f}" for v in (-8.6175, 41.1385, -8.6055, 41.1455))

        today = f"{datetime.now(UTC):%Y-%m-%d}"
        table = Table(title=f"reads: primary vs hot standby, one run ({today})")
        for col in ("reads go to", "tiles z14–16 p50 | p99", "/basemap p50 | p99",
                    "standby rows returned", "load average (1 min)"):  # fmt: skip
            table.add_column(col, justify="left" if col == "reads go to" else "right")
        replica_lines = ""
        modes = (("primary", None), ("standby", standby.url()))
        times: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m, _ in modes}
        rows = dict.fromkeys(times, 0)
        loads: dict[str, list[float]] = {m: [] for m in times}
        for round_ in range(args.rounds):  # alternated, so that drift in load hits both
            for name, read_url in modes if round_ % 2 == 0 else modes[::-1]:
                before_rows = rows_returned(standby)
                loads[name].append(os.getloadavg()[0])
                tile_ms, basemap_ms, lines = serve_and_time(
                    url, read_url, key, tiles, bbox, args.basemaps
                )
                rows[name] += rows_returned(standby) - before_rows
                loads[name].append(os.getloadavg()[0])
                times[name][0].extend(tile_ms)
                times[name][1].extend(basemap_ms)
                replica_lines = lines or replica_lines
        for name, (tile_ms, basemap_ms) in times.items():
            table.add_row(
                name,
                f"{np.percentile(tile_ms, 50):.1f} | {np.percentile(tile_ms, 99):.1f} ms "
                f"({len(tile_ms)})",
                f"{np.percentile(basemap_ms, 50):.1f} | {np.percentile(basemap_ms, 99):.1f} ms "
                f"({len(basemap_ms)})",
                f"{rows[name]:,}",
                f"{min(loads[name]):.2f}–{max(loads[name]):.2f}",
            )
        console.print(table)
        console.print(f"{len(os.sched_getaffinity(0))} core(s); the standby's /metrics:")
        console.print(replica_lines)


if __name__ == "__main__":
    main()
