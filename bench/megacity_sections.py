"""The megacity store against the one district, section by section, in one run each (issue 19).

Each section runs the product's own code on the store ``python -m bench.megacity load`` made
(``gridwork_bench_megacity``) and, in the same run, on the synthetic district imported as
``gridwork demo --sample synthetic-district`` does (``gridwork_bench_district``, 783 grids,
146,112 households; imported on first use). Every row prints both figures and their ratio:

* ``locate``: ``GET /locate`` p50/p99 over HTTP, 8 closed-loop clients, uvicorn with one
  worker (:mod:`bench.http_locate`), the two servers taking turns in short rounds;
* ``tiles``: ``ogc.grids`` vector tiles over HTTP at z10, z12, z14, z16, one client;
* ``coverage``: the coverage service (:func:`data.coverage.service.coverage`) for one street
  and for everything, the road graph cached (warm) and built afresh (cold);
* ``oversize``: the planners' oversize report;
* ``checks``: the topology checks (``gridwork check``), step by step;
* ``grid-page``: ``GET /maps/grids`` over HTTP for a coordinator whose scope is every street
  of one district (at the one district: its every street);
* ``plans``: a draft for each oversized community (the batch job), serially and on a
  ``LocalCluster``; a seeded sample where the whole list would take too long, extrapolated.

The people these need (a coordinator of one street, one of a whole district) are made in each
store on first use.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import geopandas as gpd
import morecantile
import numpy as np
import shapely
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection as SqlConnection
from sqlalchemy import Engine, text

from bench.batch import same_plans
from bench.bench_db import extent_of, tiles_over
from bench.http_client import Connection
from bench.http_locate import USER as LOCATE_USER
from bench.http_locate import Server, _load
from bench.megacity_store import (
    Meter,
    Spent,
    Steps,
    district_engine,
    load_average,
    measured,
    megacity_engine,
    store_counts,
)
from data.access.queries import (
    AreaScope,
    add_scope,
    create_api_key,
    create_user,
    find_user,
    remove_user,
    resolve_scope,
)
from data.batch.plan import PlanBatch, plan_oversized
from data.batch.runner import SerialRunner, dask_runner
from data.coverage import service as coverage_service
from data.coverage.service import NetworkCache, coverage
from data.crs import metric_epsg
from data.db import transaction
from data.district import checks
from data.district.maps import GridLayers, grid_layers
from data.models import Role, ScopeLevel
from data.planning.service import oversize_report
from data.settings import Settings
from data.table_versions import table_versions
from maps.grids import grid_band_map

console = Console(width=160)
STREET_USER, DISTRICT_USER = "bench-street", "bench-district"
COVERAGE_KIND = "school"  # a kind both stores hold


@dataclass(frozen=True)
class Store:
    """One store under test: its engine, its name in the tables and its people."""

    name: str
    engine: Engine
    street: AreaScope
    district: AreaScope
    district_key: str
    grids: int
    households: int

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)


def _people(engine: Engine) -> tuple[AreaScope, AreaScope, str]:
    """A coordinator of the first street, one of every street of the first district (every
    street where none has a district), and an API key of the latter; made afresh."""
    with transaction(engine) as session:
        streets = session.execute(
            text(
                "SELECT s.code FROM street s LEFT JOIN district d ON d.id = s.district_id "
                "WHERE d.code IS NOT DISTINCT FROM (SELECT min(code) FROM district) "
                "ORDER BY s.code"
            )
        ).scalars()
        codes = list(streets)
        for username, areas in ((STREET_USER, codes[:1]), (DISTRICT_USER, codes)):
            if find_user(session, username) is not None:
                remove_user(session, username)
            create_user(session, username, "!", Role.coordinator)
            for code in areas:
                add_scope(session, username, ScopeLevel.street, code)
        key = create_api_key(session, f"bench-{secrets.token_hex(4)}", Role.coordinator,
                             DISTRICT_USER)  # fmt: skip
        scopes = []
        for username in (STREET_USER, DISTRICT_USER):
            user = find_user(session, username)
            assert user is not None
            scopes.append(resolve_scope(session, Role.coordinator, user.id))
    return scopes[0], scopes[1], key


def stores() -> list[Store]:
    """The megacity and the one district, each with its people."""
    mega, _manifest = megacity_engine()
    out = []
    for name, engine in (("megacity", mega), ("one district", district_engine())):
        street, district, key = _people(engine)
        counts = store_counts(engine)
        out.append(
            Store(name, engine, street, district, key, counts["grids"], counts["households"])
        )
    return out


def _table(title: str, stores: Sequence[Store]) -> Table:
    table = Table(title=f"{title} (load average {load_average()} at the start)")
    table.add_column("what", justify="left")
    for s in stores:
        table.add_column(f"{s.name} ({s.grids:,} grids, {s.households:,} households)")
    table.add_column("ratio")
    table.add_column("target", justify="left")
    return table


def _number(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _row(table: Table, what: str, mega: float, one: float, unit: str, target: str = "") -> None:
    ratio = f"{mega / one:.2f}×" if one > 0 else "—"
    table.add_row(what, f"{_number(mega)} {unit}", f"{_number(one)} {unit}", ratio, target)


def _done(table: Table) -> None:
    console.print(table)
    console.print(f"load average at the end: {load_average()}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settled(servers: Sequence[Server], stores: Sequence[Store], timeout_s: float = 600.0) -> None:
    """Wait until every server is idle: at start a server builds the road graph and snaps
    every household onto it in a thread of its own (``api.road_warmup``; 10–50 s at a tenth
    of the megacity, minutes at full size), which would otherwise be measured as the latency
    of what runs beside it. Idle: under 0.05 CPU seconds in half a second, twice in a row,
    with no statement running in its store. The store matters: at full size the warm-up's
    read of 10 M households runs for seconds in PostgreSQL before its first row, while the
    server itself waits idle (the first full-size run measured /locate during it)."""
    deadline = time.monotonic() + timeout_s
    for server, store in zip(servers, stores, strict=True):
        pid, quiet = server.proc.pid, 0
        while time.monotonic() < deadline and quiet < 2:
            start = _cpu_seconds(pid)
            time.sleep(0.5)
            with store.engine.connect() as conn:
                busy = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND state = 'active' AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            quiet = quiet + 1 if _cpu_seconds(pid) - start < 0.05 and not busy else 0


@contextmanager
def _servers(
    all_stores: Sequence[Store], env: dict[str, str] | None = None
) -> Iterator[list[Server]]:
    """A uvicorn process per store (one worker; ``env``: more settings), signed in as the
    benchmark's admin, once its start-up work is done."""
    for s in all_stores:
        with s.engine.begin() as conn:
            conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": LOCATE_USER})
    with ExitStack() as stack:
        servers = [stack.enter_context(Server(s.url, env)) for s in all_stores]
        _settled(servers, all_stores)
        yield servers


# --- locate -----------------------------------------------------------------------------------


def _household_points(engine: Engine, n: int) -> np.ndarray:
    """``n`` stored household points inside a grid, spread over the whole store."""
    sql = (
        "SELECT ST_X(geom), ST_Y(geom) FROM household WHERE grid_id IS NOT NULL AND id % "
        "(SELECT greatest(1, max(id) / :n) FROM household) = 0 ORDER BY id LIMIT :n"
    )
    with engine.connect() as conn:
        return np.array(conn.execute(text(sql), {"n": n}).all(), dtype=np.float64)


def locate(clients: int = 8, seconds: float = 6.0, rounds: int = 3) -> None:
    """``GET /locate`` p50/p99 at ``clients`` concurrent clients, both stores in turn."""
    all_stores = stores()
    table = _table(f"GET /locate over HTTP, {clients} clients, {seconds:g} s each", all_stores)
    got: dict[str, list[float]] = {s.name: [] for s in all_stores}
    took = dict.fromkeys(got, 0.0)
    with _servers(all_stores) as servers:
        jobs = []
        for s, server in zip(all_stores, servers, strict=True):
            points = _household_points(s.engine, 5000).tolist()
            paths = [f"/locate?lon={x!r}&lat={y!r}" for x, y in points]
            jobs.append((s.name, {"port": server.port, "token": server.token, "paths": paths}))
        for _, args in jobs:
            _load("http", 2, 2.0, args)  # warm-up: the grid index built, pools filled
        for _ in range(rounds):
            for name, args in jobs:
                latencies, elapsed = _load("http", clients, seconds / rounds, args)
                got[name] += latencies
                took[name] += elapsed
    figures = {
        name: (np.percentile(ms, 50) * 1000, np.percentile(ms, 99) * 1000, len(ms) / took[name])
        for name, ms in got.items()
    }
    mega, one = figures["megacity"], figures["one district"]
    _row(table, "p50", mega[0], one[0], "ms")
    _row(table, "p99", mega[1], one[1], "ms", "p99 ≤ 1.5× the one district")
    _row(table, "requests per second", mega[2], one[2], "req/s")
    _done(table)


# --- tiles ------------------------------------------------------------------------------------

ZOOMS = (10, 12, 14, 16)
SEEDED_ZOOM = 10  # of ZOOMS, the one the seeder keeps drawn (it does up to 11)


def _tiles(engine: Engine, per_zoom: int) -> dict[int, list[str]]:
    """Up to ``per_zoom`` tile paths per zoom over the grids' extent, spread evenly."""
    path = "/ogc/collections/ogc.grids/tiles/WebMercatorQuad/{}/{}/{}"
    out: dict[int, list[str]] = {z: [] for z in ZOOMS}
    for z, x, y in tiles_over(extent_of(engine, "grid"), ZOOMS, per_zoom, seed=19):
        out[z].append(path.format(z, x, y))
    return out


def _fetch(port: int, headers: str, paths: Sequence[str]) -> list[float]:
    """Seconds for each path, one after another on one keep-alive connection."""

    async def run() -> list[float]:
        connection = Connection(port, headers)
        out = []
        try:
            for path in paths:
                start = time.perf_counter()
                status = await connection.get(path)
                out.append(time.perf_counter() - start)
                if status != 200:
                    raise RuntimeError(f"{path}: HTTP {status}")
        finally:
            connection.close()
        return out

    return asyncio.run(run())


def _renew_every_grid_tile(engine: Engine) -> None:
    """Write one community without changing it: ``table_version['community']`` is renewed
    and with it the key of every grid tile (they show community codes; migration 0029), so
    each tile's next request draws it as the first one did. Before 0029 any grid or
    household-count edit anywhere did this. (Not a worker: the megacity has none.)"""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE community SET code = code WHERE id = (SELECT min(id) FROM community)")
        )


_A_HOUSEHOLD = (
    "SELECT h.id, h.grid_id, (SELECT n.id FROM grid g JOIN grid n ON n.valid_to IS NULL "
    "AND n.id <> g.id AND ST_Touches(n.geom, g.geom) WHERE g.id = h.grid_id "
    "ORDER BY n.id LIMIT 1) FROM household h WHERE h.grid_id IS NOT NULL ORDER BY h.id LIMIT 1"
)


def _move_a_household(engine: Engine, back: tuple[int, int] | None = None) -> tuple[int, int]:
    """Move the first household into a neighbouring grid (two grids' counts move, the edit a
    city makes all day), or ``back`` (household, grid) where it was; returns how to undo it."""
    with engine.begin() as conn:
        if back is None:
            household, grid, neighbour = conn.execute(text(_A_HOUSEHOLD)).one()
            back, to = (household, grid), neighbour
        else:
            to = back[1]
        conn.execute(text("UPDATE household SET grid_id = :g WHERE id = :h"),
                     {"g": to, "h": back[0]})  # fmt: skip
    return back


_Keys = tuple[list[tuple[Any, ...]], list[float]]


def _grid_tile_keys(engine: Engine, paths: Sequence[str]) -> _Keys:
    """Each tile's key as the API reads it before serving it (0029's
    :data:`api.tile_cache.GRID_TILE_KEY`) and the milliseconds that read takes, median of 3."""
    from api.tile_cache import GRID_TILE_KEY, GRID_TILE_TABLES, grid_tile_envelope

    async def run() -> _Keys:
        import asyncpg

        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        keys, ms = [], []
        try:
            await conn.execute("SET jit = off")
            for path in paths:
                envelope = grid_tile_envelope(path.removeprefix("/ogc"))
                assert envelope is not None, path
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    row = await conn.fetchrow(GRID_TILE_KEY, *envelope, list(GRID_TILE_TABLES))
                    times.append((time.perf_counter() - start) * 1000)
                keys.append((*row[:3], tuple(row[3])))
                ms.append(statistics.median(times))
        finally:
            await conn.close()
        return keys, ms

    return asyncio.run(run())


def _tile_sql(engine: Engine, paths: Sequence[str]) -> dict[str, list[float]]:
    """Milliseconds PostgreSQL takes for each tile, median of 3, as tipg's own query (every
    vertex projected on the fly) and as :class:`api.grid_tiles.GridTiles` writes it (the
    outlines kept in Web Mercator by 0024): the same tiles, on one connection set up as the
    API's (no JIT)."""
    from tipg.collections import pg_get_collection_index
    from tipg.database import connection_factory
    from tipg.settings import DatabaseSettings

    from api.grid_tiles import with_stored_shapes

    class Capture:
        sql: str = ""
        params: tuple[Any, ...] = ()

        async def fetchval(self, sql: str, *params: Any) -> bytes:
            self.sql, self.params = sql, params
            return b""

    async def run() -> dict[str, list[float]]:
        import asyncpg

        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            await connection_factory(["ogc"], "pg_temp")(conn)
            await conn.execute("SET jit = off")
            found = await pg_get_collection_index(
                conn,
                settings=DatabaseSettings(schemas=["ogc"], functions=[],
                                          exclude_function_schemas=None),
            )  # fmt: skip
            tipg = {c.id: c for c in found}["ogc.grids"]
            ways = {"tipg": tipg, "stored": with_stored_shapes(tipg)}
            tms = morecantile.tms.get("WebMercatorQuad")
            out: dict[str, list[float]] = {way: [] for way in ways}
            for path in paths:
                z, x, y = (int(v) for v in path.rsplit("/", 3)[1:])
                for way, collection in ways.items():
                    capture = Capture()
                    await collection.get_tile(capture, tms=tms, tile=morecantile.Tile(x, y, z))
                    times = []
                    for _ in range(3):
                        start = time.perf_counter()
                        await conn.fetchval(capture.sql, *capture.params)
                        times.append((time.perf_counter() - start) * 1000)
                    out[way].append(statistics.median(times))
            return out
        finally:
            await conn.close()

    return asyncio.run(run())


_NO_SEEDER = {"GRIDWORK_TILE_SEED_ZOOM": "-1"}
_SEEDER = {"GRIDWORK_TILE_SEED_ZOOM": "11"}  # the default, said here so that a run says it


def _seeder_figures(server: Server) -> dict[str, float]:
    """The server's ``gridwork_tile_seed_*`` metrics (:mod:`api.tile_seeder`)."""
    request = urllib.request.Request(
        server.url("/metrics"), headers={"Authorization": f"Bearer {server.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        lines = r.read().decode().splitlines()
    out = {}
    for line in lines:
        if line.startswith(("gridwork_tile_seed_", "gridwork_tile_cache_bytes ")):
            name, value = line.rsplit(" ", 1)
            out[name.removeprefix("gridwork_tile_seed_")] = float(value)
    return out


def _seeder_pass(server: Server, passes: float, timeout_s: float = 900.0) -> dict[str, float]:
    """The seeder's figures once it has finished more than ``passes`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = _seeder_figures(server)
        if now.get("passes_total", 0) > passes and not now.get("busy"):
            return now
        if time.monotonic() > deadline:
            raise RuntimeError(f"the tile seeder did not finish a pass in {timeout_s:g} s")
        time.sleep(0.1)


@dataclass
class _Seeded:
    """The ``tiles`` figures with the seeder on, for one store."""

    passes: dict[str, tuple[float, float, float]]  # what set it off: seconds, drawn, tiles
    kept_bytes: float  # the tile cache's bytes after the first pass (all of it seeded tiles)
    after_write: list[float]  # ms of each seeded-zoom tile's first request after the pass
    after_move: list[float]


def _with_seeder(s: Store, server: Server, paths: Sequence[str]) -> _Seeded:
    """The seeder's passes at start, after a community write (every grid tile's key
    renewed) and after a household moved, and the requests of ``paths`` after each pass."""
    auth = f"Authorization: Bearer {server.token}\r\n"
    passes: dict[str, tuple[float, float, float]] = {}
    done, drawn = 0.0, 0.0

    def record(what: str) -> None:
        nonlocal done, drawn
        now = _seeder_pass(server, done)
        passes[what] = (now["last_pass_seconds"], now["drawn_total"] - drawn, now["tiles"])
        done, drawn = now["passes_total"], now["drawn_total"]

    record("start")
    kept = _seeder_figures(server)["gridwork_tile_cache_bytes"]
    _fetch(server.port, auth, list(paths))  # the connection and statements warm
    _renew_every_grid_tile(s.engine)
    record("a community written")
    after_write = [t * 1000 for t in _fetch(server.port, auth, paths)]
    undo = _move_a_household(s.engine)
    try:
        record("a household moved")
        after_move = [t * 1000 for t in _fetch(server.port, auth, paths)]
    finally:
        _move_a_household(s.engine, back=undo)
    return _Seeded(passes, kept, after_write, after_move)


def tiles(per_zoom: int = 60, repeat: int = 3) -> None:
    """Tile latency by zoom over HTTP, both stores, three ways. **Cold**: each tile's first
    request after a write to the communities (whose codes every grid tile shows), so the API's
    tile cache (:mod:`api.tile_cache`) holds nothing valid and PostgreSQL draws every tile;
    the connection and the statement plans are warm from a first pass, and the server has
    finished what the write set off. **Warm**: ``repeat`` more requests of each, from memory.
    **After one household moved** into a neighbouring grid: since 0029 a grid tile is kept
    with the key of the grids under it, read when the versions moved, so only the tiles over
    those two grids are drawn again (how many of the sample is counted from the keys before
    and after, as the API reads them), the others served after that read; before, any such
    edit anywhere made every tile cold. Then, for the same tiles, PostgreSQL's time
    alone for tipg's own query against the one the API sends (:mod:`api.grid_tiles`), and
    for reading a tile's key."""
    all_stores = stores()
    table = _table(f"ogc.grids vector tiles over HTTP, ≤ {per_zoom} tiles per zoom", all_stores)
    cold: dict[str, dict[int, list[float]]] = {}
    warm: dict[str, dict[int, list[float]]] = {}
    moved: dict[str, dict[int, list[float]]] = {}
    redrawn: dict[str, dict[int, int]] = {}
    key_ms: dict[str, dict[int, list[float]]] = {}
    sql: dict[str, dict[int, dict[str, list[float]]]] = {}
    with _servers(all_stores, _NO_SEEDER) as servers:
        for s, server in zip(all_stores, servers, strict=True):
            auth = f"Authorization: Bearer {server.token}\r\n"
            paths = _tiles(s.engine, per_zoom)
            _fetch(server.port, auth, [p for z in ZOOMS for p in paths[z]])
            _renew_every_grid_tile(s.engine)
            _settled(servers, all_stores)
            cold[s.name] = {z: [t * 1000 for t in _fetch(server.port, auth, paths[z])]
                            for z in ZOOMS}  # fmt: skip
            warm[s.name] = {
                z: [t * 1000 for t in _fetch(server.port, auth, paths[z] * repeat)] for z in ZOOMS
            }
            before = {z: _grid_tile_keys(s.engine, paths[z])[0] for z in ZOOMS}
            undo = _move_a_household(s.engine)
            try:
                _settled(servers, all_stores)
                moved[s.name] = {z: [t * 1000 for t in _fetch(server.port, auth, paths[z])]
                                 for z in ZOOMS}  # fmt: skip
                after = {z: _grid_tile_keys(s.engine, paths[z]) for z in ZOOMS}
            finally:
                _move_a_household(s.engine, back=undo)
            redrawn[s.name] = {
                z: sum(a != b for a, b in zip(after[z][0], before[z], strict=True)) for z in ZOOMS
            }
            key_ms[s.name] = {z: after[z][1] for z in ZOOMS}
            sql[s.name] = {z: _tile_sql(s.engine, paths[z]) for z in ZOOMS}
    seeded: dict[str, _Seeded] = {}
    with _servers(all_stores, _SEEDER) as servers:  # the same, the low zooms kept drawn
        for s, server in zip(all_stores, servers, strict=True):
            seeded[s.name] = _with_seeder(s, server, _tiles(s.engine, per_zoom)[SEEDED_ZOOM])
    for z in ZOOMS:
        for label, ms in (("cold", cold), ("warm", warm)):
            mega, one = ms["megacity"][z], ms["one district"][z]
            _row(table, f"z{z} {label} p50 ({len(mega)} | {len(one)} requests)",
                 float(np.percentile(mega, 50)), float(np.percentile(one, 50)), "ms")  # fmt: skip
            p99 = float(np.percentile(mega, 99))
            _row(table, f"z{z} {label} p99", p99, float(np.percentile(one, 99)), "ms",
                 "≤ 20 ms " + ("✔" if p99 <= 20 else "✘"))  # fmt: skip
        mega, one = moved["megacity"][z], moved["one district"][z]
        p99 = float(np.percentile(mega, 99))
        drawn = f"{redrawn['megacity'][z]} | {redrawn['one district'][z]}"
        _row(table, f"z{z} after one household moved, p99 ({drawn} tiles drawn again)",
             p99, float(np.percentile(one, 99)), "ms",
             "≤ 20 ms " + ("✔" if p99 <= 20 else "✘"))  # fmt: skip
        _row(table, f"z{z} after one household moved, p50", float(np.percentile(mega, 50)),
             float(np.percentile(one, 50)), "ms")  # fmt: skip
        for way, what in (("tipg", "tipg's query (projected per tile)"),
                          ("stored", "stored Web Mercator shapes (0024)")):  # fmt: skip
            mega, one = sql["megacity"][z][way], sql["one district"][z][way]
            _row(table, f"z{z} SQL alone, {what}, max", max(mega), max(one), "ms")
        mega_ratio = max(sql["megacity"][z]["tipg"]) / max(sql["megacity"][z]["stored"])
        one_ratio = max(sql["one district"][z]["tipg"]) / max(sql["one district"][z]["stored"])
        table.add_row(f"⤷ z{z} tipg's ÷ stored shapes (max)", f"{mega_ratio:.2f}×",
                      f"{one_ratio:.2f}×", "", "")  # fmt: skip
        _row(table, f"z{z} SQL alone, the tile's key (0029), max", max(key_ms["megacity"][z]),
             max(key_ms["one district"][z]), "ms")  # fmt: skip
    sm, so = seeded["megacity"], seeded["one district"]
    for what in sm.passes:
        (m_s, m_drawn, m_tiles), (o_s, o_drawn, o_tiles) = sm.passes[what], so.passes[what]
        drawn = f"{m_drawn:.0f} of {m_tiles:.0f} | {o_drawn:.0f} of {o_tiles:.0f} tiles drawn"
        _row(table, f"with the seeder: its pass after {what} ({drawn})", m_s * 1000, o_s * 1000,
             "ms")  # fmt: skip
    _row(table, "with the seeder: bytes of the tiles it keeps (the cache holds 64 MiB)",
         sm.kept_bytes / 2**20, so.kept_bytes / 2**20, "MiB")  # fmt: skip
    for label, m_ms, o_ms in (
        ("a community written", sm.after_write, so.after_write),
        ("a household moved", sm.after_move, so.after_move),
    ):
        for q in (50, 99):
            p = float(np.percentile(m_ms, q))
            _row(table, f"z{SEEDED_ZOOM} with the seeder, after {label} and its pass, p{q}", p,
                 float(np.percentile(o_ms, q)), "ms",
                 ("≤ 20 ms " + ("✔" if p <= 20 else "✘")) if q == 99 else "")  # fmt: skip
    _done(table)


# --- coverage, oversize, checks ---------------------------------------------------------------


def _best(fn: Callable[[], Any], repeat: int, meter: Meter) -> tuple[Spent, Spent]:
    """(the fastest, the median) of ``repeat`` runs of ``fn``."""
    runs = []
    for _ in range(repeat):
        with measured(meter, Spent()) as spent:
            fn()
        runs.append(spent)
    runs.sort(key=lambda r: r.wall)
    return runs[0], runs[len(runs) // 2]


#: The coverage cache's change check before migration 0021: a scan of the whole table.
_SCANNED = "SELECT count(*), coalesce(max(id), 0), coalesce(max(xmin::text::bigint), 0) FROM {}"


def _scanned_versions(conn: SqlConnection, *tables: str) -> tuple[object, ...]:
    """The old check, in place of :func:`data.table_versions.table_versions`: the roads and
    the households scanned, as the cache did before 0021 (the buildings were not checked)."""
    return tuple(conn.execute(text(_SCANNED.format(t))).one() for t in tables if t != "building")


def _median_s(fn: Callable[[], Any], repeat: int) -> float:
    """The median wall seconds of ``repeat`` runs of ``fn`` (no CPU meter: its reads of
    ``/proc`` would outweigh a primary-key lookup)."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def _edit_elsewhere(engine: Engine, street: AreaScope) -> tuple[int, bytes]:
    """Move one household outside ``street`` by ~1 m and commit: a household edit somewhere
    else in the city. Its id and former geometry (EWKB), for :func:`_undo_edit`."""
    with engine.begin() as conn:
        hid, ewkb = conn.execute(
            text("SELECT id, ST_AsEWKB(geom) FROM household WHERE grid_id IS NOT NULL "
                 "AND grid_id <> ALL(:g) ORDER BY id LIMIT 1"),
            {"g": sorted(street.grid_ids or ())},
        ).one()  # fmt: skip
        conn.execute(
            text("UPDATE household SET geom = ST_Translate(geom, 0.00001, 0) WHERE id = :i"),
            {"i": hid},
        )
    return int(hid), bytes(ewkb)


def _undo_edit(engine: Engine, edit: tuple[int, bytes]) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE household SET geom = ST_GeomFromEWKB(:g) WHERE id = :i"),
                     {"g": edit[1], "i": edit[0]})  # fmt: skip


def _households_before(conn: SqlConnection, graph: Any, epsg: int) -> int:
    """What the coverage cache did after any household edit before it kept households per
    area: every household read (with its building's community) and snapped, as the code of
    7ab55f1 did it, rows handed to numpy as they come. The count read."""
    rows = conn.execute(
        text(
            "SELECT h.id, ST_X(p.g), ST_Y(p.g), coalesce(h.grid_id, -1), "
            "coalesce(b.community_id, -1) FROM household h "
            "LEFT JOIN building b ON b.id = h.building_id "
            "CROSS JOIN LATERAL (SELECT ST_Transform(h.geom, :epsg) AS g) p "
            "ORDER BY h.id"
        ),
        {"epsg": epsg},
    ).all()
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)
    graph.snap(np.asarray(shapely.points(table[:, 1:3]), dtype=object))
    return len(table)


def _coverage_figures(s: Store, minutes: float, repeat: int) -> dict[str, float]:
    """Seconds (and counts of households read and snapped): the graph built; every household
    read and snapped (what the cache did after any household edit before it kept them per
    area); one street cold, warm, and cold again after one household edit elsewhere; the
    change check of 0021 against the scans it replaced; and everything, cold and warm."""
    meter = Meter(s.engine)
    f: dict[str, float] = {}
    with s.engine.connect() as conn:
        epsg = metric_epsg(conn)
        assert epsg is not None

        def run(scope: AreaScope, on: NetworkCache) -> None:
            coverage(conn, on, kind=COVERAGE_KIND, minutes=minutes, scope=scope,
                     drawing=False)  # fmt: skip

        def timed(fn: Callable[[], Any], name: str, on: NetworkCache) -> None:
            read, snapped = on.households_read, on.households_snapped
            with measured(meter, Spent()) as spent:
                fn()
            f[name] = spent.wall
            f[f"{name} read"] = on.households_read - read
            f[f"{name} snapped"] = on.households_snapped - snapped

        city = NetworkCache()  # filled for the whole city, as the start-up build fills it
        timed(lambda: city.graph(conn, epsg), "graph", city)
        graph = city.graph(conn, epsg)
        timed(lambda: city.households(conn, graph, epsg), "every household", city)
        with measured(meter, Spent()) as before:
            f["before read"] = _households_before(conn, graph, epsg)
        f["before"] = before.wall

        cache = NetworkCache()  # a street's request with nothing but the graph held
        cache.graph(conn, epsg)
        timed(lambda: run(s.street, cache), "street cold", cache)
        builds = cache.builds
        best, median = _best(lambda: run(s.street, cache), repeat, meter)
        f["street warm"], f["street warm median"] = best.wall, median.wall
        assert cache.builds == builds, "the road graph was rebuilt while warm"
        f["check"] = _median_s(
            lambda: table_versions(conn, "road_segment", "household", "building"), 50
        )
        with mock.patch.object(coverage_service, "table_versions", _scanned_versions):
            run(s.street, cache)  # the cache filed anew under the old kind of key, not timed
            builds = cache.builds
            best, median = _best(lambda: run(s.street, cache), repeat, meter)
            f["street warm, scan"], f["street warm median, scan"] = best.wall, median.wall
            assert cache.builds == builds, "the road graph was rebuilt while warm"
            f["check, scan"] = _median_s(
                lambda: _scanned_versions(conn, "road_segment", "household"), repeat
            )
        run(s.street, city)
        conn.commit()  # the edit below is seen by the next statements
        edit = _edit_elsewhere(s.engine, s.street)
        try:
            timed(lambda: run(s.street, city), "street after edit", city)
            best, _ = _best(lambda: run(s.street, city), repeat, meter)
            f["street after edit, then warm"] = best.wall
            timed(lambda: run(AreaScope.everywhere(), city), "everything after edit", city)
        finally:
            conn.commit()
            _undo_edit(s.engine, edit)
        best, _ = _best(lambda: run(AreaScope.everywhere(), city), max(2, repeat // 2), meter)
        f["everything warm"] = best.wall
    return f


def coverage_section(minutes: float = 15.0, repeat: int = 5) -> None:
    """One street's and everything's walking coverage of one kind: warm, cold, and cold again
    after one household edit elsewhere (the cache re-reads the street's households only)."""
    all_stores = stores()
    table = _table(f"coverage of '{COVERAGE_KIND}', {minutes:g} min walk", all_stores)
    mega, one = (_coverage_figures(s, minutes, repeat) for s in all_stores)
    warm = mega["street warm"]
    _row(table, "one street, road graph and households cached (best)", warm,
         one["street warm"], "s", "≤ 1 s " + ("✔" if warm <= 1 else "✘"))  # fmt: skip
    _row(table, "one street, cached (median)", mega["street warm median"],
         one["street warm median"], "s")  # fmt: skip
    scanned = mega["street warm, scan"]
    _row(table, "one street, cached, old change check: tables scanned (best)", scanned,
         one["street warm, scan"], "s", "≤ 1 s " + ("✔" if scanned <= 1 else "✘"))  # fmt: skip
    _row(table, "one street, cached, old change check (median)",
         mega["street warm median, scan"], one["street warm median, scan"], "s")  # fmt: skip
    _row(table, "change check: table_version (0021), median", mega["check"], one["check"],
         "s", f"{mega['check, scan'] / mega['check']:,.0f}× faster than the scan")  # fmt: skip
    _row(table, "change check: count, max(id), max(xmin) scans, median", mega["check, scan"],
         one["check, scan"], "s")  # fmt: skip
    _row(table, "road graph built (every road of the city)", mega["graph"], one["graph"], "s")
    before = mega["before"]
    _row(table, f"before: every household read and snapped ({mega['before read']:,.0f}), "
         "as a street's request did after any household edit", before, one["before"],
         "s")  # fmt: skip
    _row(table, "every household read and snapped now (the start-up build)",
         mega["every household"], one["every household"], "s")  # fmt: skip
    after = mega["street after edit"]
    target = f"≤ 1 s {'✔' if after <= 1 else '✘'}; {before / after:,.0f}× less than before"
    _row(table, f"one street, cold after one household edit elsewhere "
         f"({mega['street after edit read']:,.0f} read, "
         f"{mega['street after edit snapped']:,.0f} snapped)", after, one["street after edit"],
         "s", target)  # fmt: skip
    _row(table, "⤷ the same street's next request (best)", mega["street after edit, then warm"],
         one["street after edit, then warm"], "s")  # fmt: skip
    _row(table, f"one street, no household held yet (graph cached; "
         f"{mega['street cold read']:,.0f} read and snapped)", mega["street cold"],
         one["street cold"], "s")  # fmt: skip
    _row(table, f"everything after that edit ({mega['everything after edit read']:,.0f} read, "
         f"{mega['everything after edit snapped']:,.0f} snapped)",
         mega["everything after edit"], one["everything after edit"], "s")  # fmt: skip
    _row(table, "everything (city | district), cached", mega["everything warm"],
         one["everything warm"], "s")  # fmt: skip
    _done(table)


def _oversize_figures(s: Store, repeat: int) -> tuple[Spent, int]:
    settings = Settings()
    rows: list[Any] = []
    with s.engine.connect() as conn:

        def report() -> None:
            rows[:] = oversize_report(conn, min_households=settings.household_min,
                                      max_households=settings.household_max)  # fmt: skip

        best, _ = _best(report, repeat, Meter(s.engine))
    return best, len(rows)


#: Migration 0020's index, which ``explain`` found missing: every community's household count
#: (oversize report, the communities layer of every map, the checks, ``ogc.communities``)
#: joins buildings by ``community_id`` once per community. The "without" rows drop it
#: meanwhile, to show what it saves.
INDEX = "CREATE INDEX IF NOT EXISTS ix_building_community_id ON building (community_id)"


def _index(all_stores: Sequence[Store], sql: str) -> None:
    for s in all_stores:
        with s.engine.begin() as conn:
            conn.execute(text(sql))
            conn.execute(text("ANALYZE building"))


@contextmanager
def without_index(all_stores: Sequence[Store]) -> Iterator[None]:
    """The stores as they were before migration 0020 meanwhile; the index again after."""
    _index(all_stores, "DROP INDEX IF EXISTS ix_building_community_id")
    try:
        yield
    finally:
        _index(all_stores, INDEX)


def oversize(repeat: int = 3, *, unindexed: bool = True) -> None:
    """The oversize report over every community, 150-180 households a grid (best of
    ``repeat``), and once without migration 0020's index (at full scale that scans every
    building once per community, for hours; skip it with ``unindexed=False``)."""
    all_stores = stores()
    _index(all_stores, INDEX)  # a store loaded before migration 0020
    table = _table("oversize report, every community", all_stores)
    (mega, n_mega), (one, n_one) = (_oversize_figures(s, repeat) for s in all_stores)
    _row(table, f"report ({n_mega:,} | {n_one:,} communities listed), wall", mega.wall,
         one.wall, "s")  # fmt: skip
    _row(table, "the same, CPU (client + database)", mega.cpu, one.cpu, "s")
    if unindexed:
        with without_index(all_stores):
            (bare, _), (one_bare, _) = (_oversize_figures(s, 1) for s in all_stores)
        _row(table, "without the index on building (community_id), wall", bare.wall,
             one_bare.wall, "s")  # fmt: skip
        _row(table, "the same, CPU (client + database)", bare.cpu, one_bare.cpu, "s")
    _done(table)


CHECK_STEPS = {
    "read_level": "read the levels",
    "assignment_mismatches": "stored assignment vs ST_Covers",
    "check_level": "topology (geo)",
}


def checks_section() -> None:
    """The topology checks, every level, with the stored assignment checked row by row."""
    all_stores = stores()
    table = _table("topology checks (gridwork check)", all_stores)
    spent: dict[str, dict[str, Spent]] = {}
    issues = {}
    for s in all_stores:
        meter = Meter(s.engine)
        steps = Steps(meter, checks, CHECK_STEPS)
        with measured(meter, Spent()) as total, steps.timing() as by_step:
            report = checks.run_checks(s.engine, settings=Settings(database_url=s.url))
        spent[s.name] = {"total": total, **by_step}
        issues[s.name] = (len(report.issues), len(report.assignment))
    for step in ("total", *CHECK_STEPS.values()):
        mega, one = spent["megacity"][step], spent["one district"][step]
        _row(table, step, mega.wall, one.wall, "s")
    mega_issues, one_issues = issues["megacity"], issues["one district"]
    table.add_row("issues | mismatches", f"{mega_issues[0]} | {mega_issues[1]}",
                  f"{one_issues[0]} | {one_issues[1]}", "", "")  # fmt: skip
    _done(table)


# --- a plan for every oversized community -------------------------------------------------------

#: The author of the drafts :func:`plans` writes; they are deleted by it before and after, so
#: that no other section (nor a planner's page of the bench stores) sees them.
PLAN_AUTHOR = "bench.megacity plans"


def _oversized_codes(s: Store) -> list[str]:
    """The communities the oversize report lists, in code order: what the batch job plans."""
    settings = Settings()
    with s.engine.connect() as conn:
        rows = oversize_report(conn, min_households=settings.household_min,
                               max_households=settings.household_max)  # fmt: skip
    return [str(row["code"]) for row in rows]


def _sampled(codes: Sequence[str], n: int | None, seed: int) -> list[str]:
    """``n`` of ``codes`` drawn with ``seed`` (all of them when there are no more than ``n``),
    in code order, so a run can be repeated community by community."""
    if n is None or len(codes) <= n:
        return list(codes)
    picked = np.random.default_rng(seed).choice(len(codes), n, replace=False)
    return sorted(codes[i] for i in picked)


@contextmanager
def _bench_drafts_deleted(all_stores: Sequence[Store]) -> Iterator[None]:
    """The drafts this section writes deleted before (a run cut short) and after it; plan
    grids, units, edges and steps go with them (``ON DELETE CASCADE``)."""

    def delete() -> None:
        for s in all_stores:
            with s.engine.begin() as conn:
                conn.execute(text("DELETE FROM plan WHERE author = :a AND status = 'draft'"),
                             {"a": PLAN_AUTHOR})  # fmt: skip

    delete()
    try:
        yield
    finally:
        delete()


def plans(sample: int | None = 24, workers: int = 2, seed: int = 19) -> None:
    """Drafts for the oversized communities (:func:`data.batch.plan.plan_oversized`, as
    ``gridwork batch plan`` runs it, drafts written), serially and on a ``LocalCluster`` of
    ``workers`` processes, both stores in the same run. At a tenth of the megacity nearly every
    community is oversized and each takes seconds, so a seeded sample of ``sample``
    communities is planned (all of them where there are fewer, as at the one district) and the
    whole list's time is extrapolated from the sample's time per community, labelled as such.
    The answers of both runners are compared (unit → grid of every community)."""
    all_stores = stores()
    table = _table(f"a draft for each oversized community, serial and LocalCluster({workers})",
                   all_stores)  # fmt: skip
    listed = {s.name: _oversized_codes(s) for s in all_stores}
    chosen = {s.name: _sampled(listed[s.name], sample, seed) for s in all_stores}
    runs: dict[str, dict[str, PlanBatch]] = {s.name: {} for s in all_stores}
    with _bench_drafts_deleted(all_stores):
        started = time.perf_counter()
        with dask_runner(workers=workers, threads_per_worker=1, processes=True) as dask:
            console.print(f"LocalCluster({workers} workers, 1 thread each) started in "
                          f"{time.perf_counter() - started:.1f} s (not timed)")  # fmt: skip
            for s in all_stores:
                for runner in (SerialRunner(), dask):
                    runs[s.name][runner.name] = plan_oversized(
                        s.engine, runner, settings=Settings(database_url=s.url), seed=1,
                        communities=chosen[s.name], author=PLAN_AUTHOR,
                    )  # fmt: skip
                    console.print(f"{s.name}, {runner.name}: "
                                  f"{runs[s.name][runner.name].total_s:.1f} s "
                                  f"(load average {load_average()})")  # fmt: skip
    mega, one = runs["megacity"], runs["one district"]
    sampled = any(len(chosen[n]) < len(listed[n]) for n in chosen)

    def count(name: str) -> str:
        n, of = len(chosen[name]), len(listed[name])
        return f"{n} of {of} (seeded sample, seed {seed})" if n < of else f"all {of}"

    table.add_row("communities listed by the oversize report → planned here",
                  count("megacity"), count("one district"), "", "")  # fmt: skip

    def mean_households(batch: PlanBatch) -> float:
        return statistics.fmean(c.households for c in batch.communities)

    def mean_units(batch: PlanBatch) -> float:
        return statistics.fmean(
            len(c.assignment) for c in batch.communities if c.assignment is not None
        )

    _row(table, "households per planned community, mean", mean_households(mega["serial"]),
         mean_households(one["serial"]), "")  # fmt: skip
    # The search's work follows its units (blocks, lots, entrances), not the households.
    _row(table, "units per planned community, mean", mean_units(mega["serial"]),
         mean_units(one["serial"]), "")  # fmt: skip
    for way in ("serial", "dask"):
        m, o = mega[way], one[way]
        label = "serial" if way == "serial" else f"LocalCluster({workers})"
        planned = f"{m.planned} | {o.planned} planned, {sum(c.grids for c in m.communities):,} "
        _row(table, f"{label}: wall, the planned communities ({planned}"
             f"| {sum(c.grids for c in o.communities):,} grids)", m.total_s, o.total_s,
             "s")  # fmt: skip
        _row(table, f"{label}: per community", _per(m), _per(o), "s")
        if way == "serial":
            for phase, of in (("read", "read_s"), ("write", "write_s")):
                _row(table, f"⤷ {phase} the store, per community",
                     getattr(m, of) / len(m.communities), getattr(o, of) / len(o.communities),
                     "s")  # fmt: skip
            _row(table, "⤷ split (the splitter's own seconds), per community",
                 _split_per(m), _split_per(o), "s")  # fmt: skip
            _row(table, "serial, per 1,000 households", _per(m) / mean_households(m) * 1000,
                 _per(o) / mean_households(o) * 1000, "s")  # fmt: skip
            _row(table, "serial, per 100 units", _per(m) / mean_units(m) * 100,
                 _per(o) / mean_units(o) * 100, "s")  # fmt: skip
    table.add_row(
        f"serial ÷ LocalCluster({workers})",
        f"{mega['serial'].total_s / mega['dask'].total_s:.2f}×",
        f"{one['serial'].total_s / one['dask'].total_s:.2f}×", "", "",
    )  # fmt: skip
    table.add_row("identical drafts, serial and LocalCluster",
                  "yes" if same_plans(mega["serial"], mega["dask"]) else "NO",
                  "yes" if same_plans(one["serial"], one["dask"]) else "NO", "", "")  # fmt: skip
    what = "per community × their number: extrapolated where sampled" if sampled else "as run"
    for way in ("serial", "dask"):
        label = "serial" if way == "serial" else f"LocalCluster({workers})"
        _row(table, f"every listed community ({len(listed['megacity']):,} | "
             f"{len(listed['one district']):,}), {label}: {what}",
             _per(mega[way]) * len(listed["megacity"]),
             _per(one[way]) * len(listed["one district"]), "s")  # fmt: skip
    _done(table)


def _per(batch: PlanBatch) -> float:
    """Wall seconds per community asked for (one that could not be planned counts: its read
    was paid)."""
    return batch.total_s / max(1, len(batch.communities))


def _split_per(batch: PlanBatch) -> float:
    return sum(c.split_s for c in batch.communities) / max(1, len(batch.communities))


# --- the grid map of a district-wide coordinator ------------------------------------------------


def _pages(all_stores: Sequence[Store], servers: Sequence[Server], repeat: int) -> list[Any]:
    """Seconds for each fetch of the grid page by each store's district-wide coordinator."""
    out = []
    for s, server in zip(all_stores, servers, strict=True):
        headers = f"X-API-Key: {s.district_key}\r\nAccept: text/html\r\n"
        _fetch(server.port, headers, ["/maps/grids"])  # warm-up
        out.append(_fetch(server.port, headers, ["/maps/grids"] * repeat))
    return out


#: What the grid page read before migration 0022 and the reads of this round: every grid's
#: households counted per request, every community's through its buildings (drawn only as an
#: outline), geometry as hex EWKB parsed row by row (``geopandas.read_postgis``).
SCOPE_OF = {"grids": "grid", "communities": "community"}
BEFORE_SQL = {
    "grids": "SELECT t.id, t.code, c.code AS community_code, w.code AS worker_code, "
    "w.display_name AS worker_name, (SELECT count(*) FROM household h WHERE h.grid_id = t.id) "
    "AS households, t.geom FROM grid t JOIN community c ON c.id = t.community_id "
    "LEFT JOIN worker w ON w.id = t.worker_id WHERE t.valid_to IS NULL "
    "AND t.id = ANY(:ids) ORDER BY t.code",
    "communities": "SELECT t.id, t.code, t.name, t.name_local, t.kind::text AS kind, "
    "t.population, s.code AS street_code, (SELECT count(*) FROM household h JOIN building b "
    "ON b.id = h.building_id WHERE b.community_id = t.id) AS households, t.geom "
    "FROM community t LEFT JOIN street s ON s.id = t.street_id WHERE t.id = ANY(:ids) "
    "ORDER BY t.code",
}


def _page_work(s: Store, repeat: int) -> dict[str, Spent]:
    """The page's own work in this process (read its layers, draw the map, render the HTML),
    as before and as now: the best of ``repeat`` each, wall and CPU (client + database)."""
    settings = Settings()
    meter = Meter(s.engine)

    def draw(layers: GridLayers) -> None:
        grid_band_map(layers.grids, layers.communities, household_min=settings.household_min,
                      household_max=settings.household_max,
                      asset_mode="url").get_root().render()  # fmt: skip

    def before() -> None:
        with s.engine.connect() as conn:
            read = {
                level: gpd.read_postgis(text(sql), conn, geom_col="geom", crs=4326,
                                        params={"ids": s.district.sql_ids(SCOPE_OF[level])})
                for level, sql in BEFORE_SQL.items()
            }  # fmt: skip
        draw(GridLayers(read["grids"], read["communities"]))

    def now() -> None:
        with s.engine.connect() as conn:
            layers = grid_layers(conn, s.district)
        draw(layers)

    out = {}
    for name, fn in (("before", before), ("now", now)):
        out[name], _ = _best(fn, repeat, meter)
    return out


def grid_page(repeat: int = 3) -> None:
    """``GET /maps/grids`` in the frame for a coordinator of a whole district over HTTP, and
    the page's work in this process as before migration 0022 and as now, in the same run.
    (The page no longer counts its communities' households, so migration 0020's index no
    longer changes it: the run without it is gone.)"""
    all_stores = stores()
    _index(all_stores, INDEX)  # a store loaded before migration 0020
    table = _table("GET /maps/grids, a coordinator of one whole district", all_stores)
    with _servers(all_stores) as servers:
        mega, one = _pages(all_stores, servers, repeat)
    work = {s.name: _page_work(s, repeat) for s in all_stores}
    grids = {s.name: len(s.district.grid_ids or ()) for s in all_stores}
    _row(table, f"page ({grids['megacity']:,} | {grids['one district']:,} grids), best",
         min(mega), min(one), "s", "≤ 1 s " + ("✔" if min(mega) <= 1 else "✘"))  # fmt: skip
    _row(table, "page, median", statistics.median(mega), statistics.median(one), "s")
    for when in ("before", "now"):
        m, o = work["megacity"][when], work["one district"][when]
        _row(table, f"its work in-process {when} 0022, best: wall", m.wall, o.wall, "s")
        _row(table, f"its work in-process {when} 0022: CPU (client + db)", m.cpu, o.cpu, "s")
    city = work["megacity"]
    wall, cpu = city["before"].wall / city["now"].wall, city["before"].cpu / city["now"].cpu
    table.add_row("⤷ before ÷ now (megacity): wall | CPU", f"{wall:.2f}× | {cpu:.2f}×", "", "", "")
    _done(table)


SECTIONS: dict[str, Callable[[], None]] = {
    "http-locate": locate,
    "tiles": tiles,
    "coverage": coverage_section,
    "oversize": oversize,
    "checks": checks_section,
    "grid-page": grid_page,
    "plans": plans,
}


def _explain() -> None:
    from bench.megacity_explain import explain

    explain()


SECTIONS["explain"] = _explain
