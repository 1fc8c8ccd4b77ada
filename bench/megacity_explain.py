"""``EXPLAIN`` of the statements the megacity sections run, at the store's own size.

``python -m bench.megacity explain`` runs each operation once on ``gridwork_bench_megacity``
while recording every statement SQLAlchemy sends, then asks PostgreSQL for the plan of each
``SELECT`` (no ``ANALYZE``: nothing runs twice, nothing is written) and prints the ones that
read a big table (≥ 10,000 rows) sequentially, with where in the plan the scan sits. A
sequential scan inside a ``SubPlan`` runs once per outer row: that is the pattern a missing
index leaves, and the one whose cost grows with the product of two tables. The operations
run with the proposed index in place, so that they finish at full scale; the plans are
asked once it is dropped again, as the schema is.

Vector tiles are asked by tipg through asyncpg, not SQLAlchemy: their statement is written
here in the form tipg sends it (``ST_AsMVT`` over ``ogc.grids`` for one z12 tile).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import morecantile
import sqlalchemy.exc
from rich.console import Console
from sqlalchemy import Connection, Engine, event, text

from bench.megacity_sections import (
    COVERAGE_KIND,
    INDEX,
    Store,
    stores,
)
from data.access.queries import AreaScope
from data.coverage.service import NetworkCache, coverage
from data.db import make_engine
from data.district.checks import run_checks
from data.district.maps import grid_layers
from data.planning.service import oversize_report
from data.settings import Settings

console = Console(width=160)
BIG = 10_000  # rows: a table this size scanned per request is a cost that grows with the city
SMALL = 1_000  # rows: scanned once per outer row (in a SubPlan), even this is flagged
CAPTURE_TIMEOUT_S = 60
TILE_SQL = (
    "WITH t AS (SELECT code, households, ST_AsMVTGeom(ST_Transform(geom, 3857), "
    "ST_TileEnvelope({z}, {x}, {y}), 4096, 256, true) AS geom FROM ogc.grids "
    "WHERE geom && ST_Transform(ST_TileEnvelope({z}, {x}, {y}, margin => 0.0625), 4326)) "
    "SELECT ST_AsMVT(t.*, 'default') FROM t"
)


def tile_at_centre(conn: Connection, z: int = 12) -> str:
    """The tile statement for the tile at the middle of the grids."""
    lon, lat = conn.execute(
        text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) c "
             "FROM grid) m")
    ).one()  # fmt: skip
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
    return TILE_SQL.format(z=z, x=tile.x, y=tile.y)


class _Recorder(list[tuple[str, Any]]):
    """A ``before_cursor_execute`` listener keeping every single statement (not
    ``executemany``) with its parameters."""

    def __call__(
        self, _c: Any, _cur: Any, statement: str, params: Any, _x: Any, many: bool
    ) -> None:
        if not many:
            self.append((statement, params))


@contextmanager
def recorded(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent through ``engine`` meanwhile."""
    recorder = _Recorder()
    event.listen(engine, "before_cursor_execute", recorder)
    try:
        yield recorder
    finally:
        event.remove(engine, "before_cursor_execute", recorder)


def _operations(s: Store) -> dict[str, Callable[[Connection], Any]]:
    settings = Settings(database_url=s.url)
    cache = NetworkCache()

    def street_coverage(conn: Connection) -> None:
        for _ in range(2):  # the second run is the cached one a served request takes
            coverage(conn, cache, kind=COVERAGE_KIND, minutes=15, scope=s.street, drawing=False)

    return {
        "oversize report": lambda conn: oversize_report(
            conn, min_households=settings.household_min, max_households=settings.household_max
        ),
        "grid page of a district-wide coordinator": lambda conn: grid_layers(conn, s.district),
        "coverage of one street": street_coverage,
        "coverage of everything": lambda conn: coverage(
            conn, cache, kind=COVERAGE_KIND, minutes=15, scope=AreaScope.everywhere()
        ),
        "topology checks": lambda conn: run_checks(s.engine, settings=settings),
        "a z12 vector tile (as tipg asks it)": lambda conn: conn.execute(
            text(tile_at_centre(conn))
        ).all(),
    }


def _table_rows(engine: Engine) -> dict[str, int]:
    """Estimated rows of every table of ``SMALL`` rows or more."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, reltuples::bigint FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace AND reltuples >= :small"
            ),
            {"small": SMALL},
        ).all()
    return {str(name): int(n) for name, n in rows}


def _seq_scans(plan: list[str], rows: dict[str, int]) -> list[str]:
    """The plan lines scanning a big table sequentially, or any table of ``SMALL`` rows or
    more once per outer row (inside a SubPlan)."""
    found = []
    sub_indent = None
    for line in plan:
        indent = len(line) - len(line.lstrip())
        if sub_indent is not None and indent <= sub_indent:
            sub_indent = None
        if "SubPlan" in line and sub_indent is None:
            sub_indent = indent
        match = re.search(r"Seq Scan on (\w+)", line)
        n = rows.get(match.group(1), 0) if match else 0
        if sub_indent is not None and n:
            found.append(f"{line.strip()} inside a SubPlan: once per outer row")
        elif n >= BIG:
            found.append(line.strip())
    return found


def _capture(s: Store) -> dict[str, list[tuple[str, Any]]]:
    """The statements of every operation, run with migration 0020's :data:`INDEX` in place (so
    the quadratic ones finish) and at most ``CAPTURE_TIMEOUT_S`` each: a statement that runs
    longer stops its operation, but is recorded (before it was sent)."""
    quick = replace(
        s,
        engine=make_engine(
            s.url, connect_args={"options": f"-c statement_timeout={CAPTURE_TIMEOUT_S}s"}
        ),
    )
    out = {}
    for name, operation in _operations(quick).items():
        with quick.engine.connect() as conn, recorded(quick.engine) as statements:
            try:
                operation(conn)
            except sqlalchemy.exc.OperationalError:
                console.print(f"{name}: stopped at a statement past {CAPTURE_TIMEOUT_S} s")
        out[name] = statements
    quick.engine.dispose()
    return out


def explain() -> None:
    """Plans of every SELECT the sections run on the megacity store, as its schema is, big
    sequential scans shown."""
    mega = stores()[0]
    rows = _table_rows(mega.engine)
    console.print("tables: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    with mega.engine.connect() as conn:
        for name, statements in _capture(mega).items():
            shown = set()
            flagged = 0
            for statement, params in statements:
                head = statement.lstrip().split(None, 1)[0].upper()
                if head not in ("SELECT", "WITH") or "pg_catalog" in statement:
                    continue  # writes, and pandas asking whether a table exists
                if statement in shown:
                    continue
                shown.add(statement)
                cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                plan = [r[0] for r in cursor.execute("EXPLAIN " + statement, params)]
                scans = _seq_scans(plan, rows)
                if scans:
                    flagged += 1
                    console.print(f"[bold]{name}[/]: {' '.join(statement.split())[:300]}")
                    for scan in scans:
                        console.print(f"    {scan}")
            console.print(
                f"{name}: {len(shown)} distinct SELECTs, {flagged} with a sequential scan "
                "of a big table"
            )
    console.print(f"in the schema since migration 0020: {INDEX};")
