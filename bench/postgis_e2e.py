"""End to end: household arrays → ``household`` rows in PostGIS with their grid set.

Every way ends in the same state — the real table with its constraints and five indexes
— from the same WGS-84 arrays, each in a forked child (so its peak RSS is its own), and all
but one load the same way, through :func:`bench.copy_load.bulk_load` (foreign keys and
non-unique indexes dropped and rebuilt in the transaction, as PostgreSQL advises for
populating a table), so that what differs is where the grid is decided:

* ``gridwork`` — :func:`bench.copy_load.insert_points`: index the stored grids in-process,
  assign, then one binary ``COPY`` that already carries ``grid_id`` (and snapped, distance);
* ``gridwork, indexes kept`` — the same without bulk mode (what smaller batches do): every
  row pays its foreign-key check and index insertions;
* ``load only`` — the same ``COPY`` without any grid: the floor every path pays;
* ``PostGIS UPDATE`` — load the points, then ``UPDATE … FROM grid WHERE ST_Covers(…)``;
* ``PostGIS INSERT … SELECT`` — ``COPY`` into an unindexed temporary table, then one
  ``INSERT … SELECT`` with the lowest-code covering grid from a correlated subquery.

The PostGIS paths neither snap points outside every grid nor record distances: they are
the obvious alternatives, not equivalents. Differences from gridwork's answer are counted
(they must be the snapped points only).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer
from sqlalchemy import Engine, text

from bench.copy_load import bulk_load, copy_rows, insert_points
from bench.synthetic_city import CRS, households
from data.assignment.service import load_grid_index
from data.db import make_engine, transaction
from data.settings import Settings

TABLE_COLUMNS = "code, size, lives_alone, estimated"


@dataclass(frozen=True)
class Inputs:
    """What a caller hands over: codes, sizes and WGS-84 coordinates, as arrays."""

    codes: list[str]
    size: NDArray[np.int32]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]

    def values(self) -> dict[str, tuple[str, Any]]:
        return {
            "code": ("text", self.codes),
            "size": ("int4", self.size),
            "lives_alone": ("bool", self.size == 1),
            "estimated": ("bool", np.zeros(len(self.codes), dtype=bool)),
        }


def make_inputs(n: int) -> Inputs:
    points = households(n)
    xy = np.column_stack([points.geometry.x.to_numpy(), points.geometry.y.to_numpy()])
    lon, lat = Transformer.from_crs(CRS, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    rng = np.random.default_rng(n)
    return Inputs(
        codes=[f"H{i:07d}" for i in range(1, n + 1)],
        size=rng.integers(1, 7, n).astype(np.int32),
        lon=np.asarray(lon),
        lat=np.asarray(lat),
    )


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    detail: dict[str, Any]


def _forked(fn: Callable[[], tuple[float, dict[str, Any]]]) -> Run:
    """Run ``fn`` in a forked child: its own wall time (measured inside) and peak RSS."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def target() -> None:
        seconds, detail = fn()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child.send(Run(seconds, peak, detail))
        child.close()

    proc = ctx.Process(target=target)
    proc.start()
    child.close()
    run: Run = parent.recv()
    proc.join()
    return run


def _truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE household RESTART IDENTITY CASCADE"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CHECKPOINT"))


def _gridwork(url: str, inputs: Inputs, *, bulk: bool = True) -> tuple[float, dict[str, Any]]:
    engine = make_engine(url)
    _truncate(engine)
    start = time.perf_counter()
    with transaction(engine) as session:
        index = load_grid_index(session, settings=Settings(database_url=url))
        placed = insert_points(
            session,
            "household",
            lon=inputs.lon,
            lat=inputs.lat,
            index=index,
            values=inputs.values(),
            bulk=bulk,
        )
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, {
        "snapped": int(placed.snapped.sum()),
        "unassigned": int((placed.area < 0).sum()),
    }


def _load_only(url: str, inputs: Inputs) -> tuple[float, dict[str, Any]]:
    engine = make_engine(url)
    _truncate(engine)
    start = time.perf_counter()
    with transaction(engine) as session, bulk_load(session, "household"):
        _copy_plain(session, "household", inputs)
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, {}


def _copy_plain(session: Any, table: str, inputs: Inputs) -> None:
    columns = [*inputs.values().values(), ("point", np.column_stack([inputs.lon, inputs.lat]))]
    copy_rows(session, f"COPY {table} ({TABLE_COLUMNS}, geom) FROM STDIN (FORMAT BINARY)", columns)


def _postgis_update(url: str, inputs: Inputs) -> tuple[float, dict[str, Any]]:
    engine = make_engine(url)
    _truncate(engine)
    start = time.perf_counter()
    with transaction(engine) as session, bulk_load(session, "household"):
        _copy_plain(session, "household", inputs)
        session.execute(
            text(
                "UPDATE household h SET grid_id = g.id FROM grid g "
                "WHERE g.valid_to IS NULL AND ST_Covers(g.geom, h.geom)"
            )
        )
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, {}


def _postgis_insert_select(url: str, inputs: Inputs) -> tuple[float, dict[str, Any]]:
    engine = make_engine(url)
    _truncate(engine)
    start = time.perf_counter()
    with transaction(engine) as session, bulk_load(session, "household"):
        session.execute(
            text(
                "CREATE TEMP TABLE _load (code text, size int, lives_alone bool, estimated bool, "
                "geom geometry(Point, 4326)) ON COMMIT DROP"
            )
        )
        _copy_plain(session, "_load", inputs)
        session.execute(
            text(
                f"INSERT INTO household ({TABLE_COLUMNS}, geom, grid_id) "
                f"SELECT {TABLE_COLUMNS}, l.geom, (SELECT g.id FROM grid g "
                "WHERE g.valid_to IS NULL AND ST_Covers(g.geom, l.geom) "
                'ORDER BY g.code COLLATE "C" LIMIT 1) FROM _load l'
            )
        )
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, {}


def _remember(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_expected"))
        conn.execute(
            text("CREATE UNLOGGED TABLE bench_expected AS SELECT code, grid_id FROM household")
        )


def _differences(engine: Engine) -> tuple[int, int]:
    """(rows stored, rows whose grid differs from gridwork's answer)."""
    with engine.connect() as conn:
        rows, diff = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE h.grid_id IS DISTINCT FROM e.grid_id) "
                "FROM household h JOIN bench_expected e USING (code)"
            )
        ).one()
    return int(rows), int(diff)


METHODS: dict[str, Callable[[str, Inputs], tuple[float, dict[str, Any]]]] = {
    "gridwork": _gridwork,
    "gridwork, indexes kept": lambda url, inputs: _gridwork(url, inputs, bulk=False),
    "load only": _load_only,
    "PostGIS UPDATE": _postgis_update,
    "PostGIS INSERT … SELECT": _postgis_insert_select,
}


@dataclass(frozen=True)
class E2EResult:
    points: int
    runs: dict[str, Run]
    rows: dict[str, int]
    differences: dict[str, int]
    idle_rss_mb: float


def compare(url: str, n: int, repeat: int) -> E2EResult:
    """Every method on the same ``n`` households; best of ``repeat`` runs each."""
    inputs = make_inputs(n)
    engine = make_engine(url)
    idle = _forked(lambda: (0.0, {}))
    runs: dict[str, Run] = {}
    rows: dict[str, int] = {}
    differences: dict[str, int] = {}
    for name, method in METHODS.items():
        engine.dispose()  # no pooled connection crosses the fork
        best = min(
            (_forked(lambda m=method: m(url, inputs)) for _ in range(repeat)),  # type: ignore[misc]
            key=lambda r: r.seconds,
        )
        runs[name] = best
        if name == "gridwork":
            _remember(engine)
        rows[name], differences[name] = _differences(engine)
    engine.dispose()
    return E2EResult(n, runs, rows, differences, idle.peak_rss_mb)
