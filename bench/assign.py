"""Benchmark: assigning households to grids, gridwork's way against the obvious way.

Run ``python -m bench.assign`` (or ``make bench``). Each section compares one gridwork path
with the alternative a newcomer would reach for, on the same synthetic city
(:mod:`bench.synthetic_city`), in the same run, and checks that both give the same answer —
a speed-up that changes results is a bug, not a speed-up.

Sections (one function each, listed in :data:`SECTIONS`):

* ``in-process`` — :meth:`geo.assignment.index.AreaIndex.assign_points` against
  ``geopandas.sjoin(points, grids, predicate="within")``.
* ``postgis`` — end to end, household arrays → ``household`` rows with their grid set:
  :func:`bench.copy_load.insert_points` (in-process assignment, one binary ``COPY``) against
  loading the points and then ``UPDATE … FROM grid WHERE ST_Covers(…)``, or an
  ``INSERT … SELECT`` with a covering-grid subquery (:mod:`bench.postgis_e2e`);
* ``http`` — ``GET /locate`` over loopback HTTP at 1, 8 and 32 concurrent clients, next to a
  trivial authenticated endpoint of the same app and a raw prepared PostGIS query
  (:mod:`bench.http_locate`).

The database sections use a scratch database ``gridwork_bench`` in gridwork's own PostGIS
(or on ``DATABASE_URL``'s server), recreated on every run.

How it measures: every measurement runs in a forked child, so its peak RSS (``ru_maxrss``) is
that method's own peak on top of the shared data, not the worst of everything so far. Times
are the best of ``--repeat`` runs after one warm-up. The comparison is generous to sjoin: its
point geometries are built outside the timer and its spatial index is cached by the warm-up,
just as gridwork's index is built once, outside the timer.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from bench.synthetic_city import build_city, households
from geo.assignment.index import AreaIndex

T = TypeVar("T")
# Wide enough for the table when the output is piped into a file or a CI log.
console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True)
class Measured:
    """One method's result on one input: best wall time, peak memory, and what it answered."""

    seconds: float
    peak_rss_mb: float
    answer: Any


def _best_of(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Best wall time of ``repeat`` calls after one warm-up (caches, lazy indexes, page faults)."""
    result = fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _child(fn: Callable[[], Any], repeat: int, conn: Any) -> None:
    seconds, answer = _best_of(fn, repeat)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    conn.send(Measured(seconds, peak_kb / 1024, answer))
    conn.close()


def measure(fn: Callable[[], Any], repeat: int) -> Measured:
    """Run ``fn`` in a forked child: its own peak RSS, no memory left behind for the next."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, repeat, child))
    proc.start()
    child.close()
    measured: Measured = parent.recv()
    proc.join()
    return measured


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- section: in-process assignment ----------------------------------------------------------


@dataclass(frozen=True)
class InProcessRow:
    """One line of the in-process table."""

    points: int
    ours: Measured
    sjoin: Measured
    idle_rss_mb: float
    mismatches: int
    boundary_only_ours: int
    snapped: int
    unassigned: int


def _per_point_codes(joined: gpd.GeoDataFrame, n: int) -> NDArray[np.object_]:
    """sjoin's join table as one grid code per point (None outside; lowest code if several)."""
    first = joined["code"].groupby(level=0).min()
    codes = np.full(n, None, dtype=object)
    codes[first.index.to_numpy()] = first.to_numpy()
    return codes


def compare_in_process(
    index: AreaIndex, grids: gpd.GeoDataFrame, n: int, repeat: int
) -> InProcessRow:
    """gridwork's assign against sjoin on ``n`` households; both must agree on inside points."""
    points = households(n)
    xy = shapely.get_coordinates(points.geometry.array)
    xs, ys = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    right = grids[["code", "geometry"]]
    _ = right.sindex  # built once and cached, like our index

    idle = measure(lambda: None, 0)
    ours = measure(lambda: index.assign_points(xs, ys), repeat)
    theirs = measure(lambda: gpd.sjoin(points, right, predicate="within", how="inner"), repeat)
    result = ours.answer
    theirs_code = _per_point_codes(theirs.answer, n)  # untimed: only to compare answers
    ours_inside = (result.area >= 0) & ~result.snapped
    theirs_inside = np.fromiter((c is not None for c in theirs_code), bool, count=n)
    # ``within`` leaves out points on a grid's boundary, which ST_Covers includes: those are
    # expected differences, every other disagreement is a mismatch.
    only_ours = np.flatnonzero(ours_inside & ~theirs_inside)
    on_boundary = shapely.intersects_xy(
        shapely.boundary(np.asarray(grids.geometry.array)[result.area[only_ours]]),
        xs[only_ours],
        ys[only_ours],
    )
    both = ours_inside & theirs_inside
    mismatches = (
        int((result.code[both] != theirs_code[both]).sum())
        + int((theirs_inside & ~ours_inside).sum())
        + int((~on_boundary).sum())
    )
    return InProcessRow(
        points=n,
        ours=ours,
        sjoin=theirs,
        idle_rss_mb=idle.peak_rss_mb,
        mismatches=mismatches,
        boundary_only_ours=int(on_boundary.sum()),
        snapped=int(result.snapped.sum()),
        unassigned=int((result.area < 0).sum()),
    )


def run_in_process(args: argparse.Namespace) -> None:
    """Section ``in-process``: build the index once, then compare per point count."""
    city = build_city()
    start = time.perf_counter()
    index = AreaIndex.from_geodataframe(city.grids)
    build_s = time.perf_counter() - start
    vertices = shapely.get_num_coordinates(np.asarray(city.grids.geometry.array))
    console.print(
        f"[bold]in-process assignment[/]: {len(city.grids)} grids in "
        f"{len(city.communities)} communities, {vertices.min()}–{vertices.max()} vertices per "
        f"grid; AreaIndex built in {build_s:.3f} s (once, untimed below)"
    )
    table = Table(title="households → grids: AreaIndex.assign_points vs geopandas.sjoin(within)")
    for col in (
        "points",
        "gridwork s",
        "sjoin s",
        "speed-up",
        "peak RSS gridwork",
        "peak RSS sjoin",
        "peak RSS idle",
        "mismatches",
        "snapped ≤ 20 m",
        "unassigned",
    ):
        table.add_column(col, justify="right", no_wrap=True)
    for n in args.sizes:
        row = compare_in_process(index, city.grids, n, args.repeat)
        table.add_row(
            f"{n:,}",
            f"{row.ours.seconds:.3f}",
            f"{row.sjoin.seconds:.3f}",
            f"{row.sjoin.seconds / row.ours.seconds:.1f}×",
            f"{row.ours.peak_rss_mb:,.0f} MB",
            f"{row.sjoin.peak_rss_mb:,.0f} MB",
            f"{row.idle_rss_mb:,.0f} MB",
            f"{row.mismatches}"
            + (f" (+{row.boundary_only_ours} on a boundary)" if row.boundary_only_ours else ""),
            f"{row.snapped:,}",
            f"{row.unassigned:,}",
        )
    console.print(table)
    console.print(
        "peak RSS: ru_maxrss of a forked child running only that method; 'idle' is a child "
        "that runs nothing (the shared city and points). mismatches: points the two place in "
        "different grids, or inside vs outside — except points on a boundary, which ST_Covers "
        "includes and 'within' leaves out (counted apart)."
    )


# --- sections: PostGIS end to end, and /locate over HTTP ----------------------------------


def _bench_database() -> str:
    from bench.bench_db import fresh_database, load_city

    url = fresh_database()
    from data.db import make_engine

    engine = make_engine(url)
    load_city(engine, build_city())
    engine.dispose()
    return url


def run_postgis(args: argparse.Namespace) -> None:
    """Section ``postgis``: arrays → household rows with grid_id, four ways, same run."""
    from bench.postgis_e2e import METHODS, compare

    url = _bench_database()
    console.print(
        "[bold]end to end into PostGIS[/]: WGS-84 arrays → rows of the real household table "
        "(5 indexes) with grid_id set; best of "
        f"{args.e2e_repeat}; each method in a forked child"
    )
    table = Table(title="household arrays → PostGIS rows with their grid")
    for col in (
        "points",
        "method",
        "seconds",
        "vs gridwork",
        "peak RSS",
        "rows",
        "grid ≠ gridwork",
    ):
        table.add_column(col, justify="right", no_wrap=True)
    for n in args.e2e_sizes:
        result = compare(url, n, args.e2e_repeat)
        ours = result.runs["gridwork"].seconds
        for name in METHODS:
            run = result.runs[name]
            table.add_row(
                f"{n:,}",
                name,
                f"{run.seconds:.2f}",
                "1.0×" if name == "gridwork" else f"{run.seconds / ours:.2f}×",
                f"{run.peak_rss_mb:,.0f} MB",
                f"{result.rows[name]:,}",
                "—"
                if name.startswith(("gridwork", "load only"))
                else f"{result.differences[name]:,}",
            )
        detail = result.runs["gridwork"].detail
        console.print(
            f"{n:,} households: gridwork snapped {detail['snapped']:,} (≤ 20 m outside every "
            f"grid), left {detail['unassigned']:,} unassigned; idle child "
            f"{result.idle_rss_mb:,.0f} MB"
        )
    console.print(table)
    console.print(
        "vs gridwork: time ÷ gridwork's time (above 1 = slower than gridwork). peak RSS: the "
        "client process (the arrays, the index, the COPY buffers), not the PostgreSQL server. "
        "grid ≠ gridwork: rows whose grid differs from gridwork's answer — the PostGIS paths "
        "do not snap, so these should be exactly the snapped points."
    )


def run_http(args: argparse.Namespace) -> None:
    """Section ``http``: /locate against the framework floor and raw PostGIS, same run."""
    from bench.http_locate import run
    from bench.postgis_e2e import make_inputs

    url = _bench_database()
    city = build_city()
    index = AreaIndex.from_geodataframe(city.grids)
    sample = make_inputs(20_000)
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, city.grids.crs, always_xy=True).transform(
        sample.lon, sample.lat
    )
    inside = index.assign_points(x, y, snap_m=0).area >= 0
    points = np.column_stack([sample.lon[inside], sample.lat[inside]])[:5000]
    console.print(
        f"[bold]GET /locate over HTTP[/]: uvicorn (1 worker) on 127.0.0.1, closed-loop "
        f"clients in another process, {args.http_seconds:g} s per cell, {len(points):,} "
        "household points (inside a grid) in turn"
    )
    results = run(url, points, clients=args.clients, seconds=args.http_seconds)
    table = Table(title="GET /locate vs the app's trivial endpoint vs raw PostGIS")
    for col in ("target", "clients", "requests", "p50 ms", "p99 ms", "req/s", "vs floor req/s"):
        table.add_column(col, justify="right", no_wrap=True)
    floor = {r.clients: r.rps for r in results if r.target.startswith("GET /bench/ping")}
    for r in results:
        table.add_row(
            r.target,
            str(r.clients),
            f"{r.requests:,}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.rps:,.0f}",
            f"{r.rps / floor[r.clients]:.2f}",
        )
    console.print(table)
    console.print(
        "vs floor: requests/s ÷ those of /bench/ping at the same concurrency (the same "
        "sign-in and role check, an empty answer). Client and server share the machine's "
        "cores."
    )


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "in-process": run_in_process,
    "postgis": run_postgis,
    "http": run_http,
}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the chosen sections (all by default) and print one table each."""
    parser = argparse.ArgumentParser(prog="python -m bench.assign", description=__doc__)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--e2e-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--e2e-repeat", type=int, default=1)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--http-seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    console.print(
        f"Python {platform.python_version()}, shapely {shapely.__version__} "
        f"(GEOS {shapely.geos_version_string}), geopandas {gpd.__version__}, "
        f"numpy {np.__version__}; {cores} core(s) available; best of {args.repeat} after warm-up"
    )
    for name in args.only or list(SECTIONS):
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
