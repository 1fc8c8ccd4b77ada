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
  of one district (at the one district: its every street).

The people these need (a coordinator of one street, one of a whole district) are made in each
store on first use.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import morecantile
import numpy as np
import shapely
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

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
from data.coverage.service import NetworkCache, coverage
from data.db import transaction
from data.district import checks
from data.models import Role, ScopeLevel
from data.planning.service import oversize_report
from data.settings import Settings

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


@contextmanager
def _servers(all_stores: Sequence[Store]) -> Iterator[list[Server]]:
    """A uvicorn process per store (one worker), signed in as the benchmark's admin."""
    for s in all_stores:
        with s.engine.begin() as conn:
            conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": LOCATE_USER})
    with ExitStack() as stack:
        yield [stack.enter_context(Server(s.url)) for s in all_stores]


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


def _tiles(engine: Engine, per_zoom: int) -> dict[int, list[str]]:
    """Up to ``per_zoom`` tile paths per zoom over the grids' extent, spread evenly."""
    with engine.connect() as conn:
        extent = conn.execute(
            text("SELECT ST_AsBinary(ST_Extent(geom)::geometry) FROM grid WHERE valid_to IS NULL")
        ).scalar_one()
    west, south, east, north = shapely.from_wkb(bytes(extent)).bounds
    tms = morecantile.tms.get("WebMercatorQuad")
    rng = np.random.default_rng(19)
    out = {}
    for z in ZOOMS:
        tiles = list(tms.tiles(west, south, east, north, [z]))
        if len(tiles) > per_zoom:
            tiles = [tiles[i] for i in sorted(rng.choice(len(tiles), per_zoom, replace=False))]
        path = "/ogc/collections/ogc.grids/tiles/WebMercatorQuad/{}/{}/{}"
        out[z] = [path.format(t.z, t.x, t.y) for t in tiles]
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


def tiles(per_zoom: int = 60, repeat: int = 3) -> None:
    """Tile latency by zoom over HTTP, both stores, after one warm-up pass over every tile."""
    all_stores = stores()
    table = _table(f"ogc.grids vector tiles over HTTP, ≤ {per_zoom} tiles per zoom", all_stores)
    ms: dict[str, dict[int, list[float]]] = {}
    with _servers(all_stores) as servers:
        for s, server in zip(all_stores, servers, strict=True):
            auth = f"Authorization: Bearer {server.token}\r\n"
            paths = _tiles(s.engine, per_zoom)
            _fetch(server.port, auth, [p for z in ZOOMS for p in paths[z]])
            ms[s.name] = {
                z: [t * 1000 for t in _fetch(server.port, auth, paths[z] * repeat)] for z in ZOOMS
            }
    for z in ZOOMS:
        mega, one = ms["megacity"][z], ms["one district"][z]
        _row(table, f"z{z} p50 ({len(mega)} | {len(one)} requests)",
             float(np.percentile(mega, 50)), float(np.percentile(one, 50)), "ms")  # fmt: skip
        p99 = float(np.percentile(mega, 99))
        _row(table, f"z{z} p99", p99, float(np.percentile(one, 99)), "ms",
             "≤ 20 ms " + ("✔" if p99 <= 20 else "✘"))  # fmt: skip
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


def _coverage_figures(s: Store, minutes: float, repeat: int) -> dict[str, float]:
    """Seconds: one street cold (a fresh cache) and warm, and everything warm."""
    meter = Meter(s.engine)
    cache = NetworkCache()
    f = {}
    with s.engine.connect() as conn:

        def run(scope: AreaScope) -> None:
            coverage(conn, cache, kind=COVERAGE_KIND, minutes=minutes, scope=scope,
                     drawing=False)  # fmt: skip

        with measured(meter, Spent()) as cold:
            run(s.street)
        f["street cold"] = cold.wall
        best, median = _best(lambda: run(s.street), repeat, meter)
        f["street warm"], f["street warm median"] = best.wall, median.wall
        best, _ = _best(lambda: run(AreaScope.everywhere()), max(1, repeat // 2), meter)
        f["everything warm"] = best.wall
    return f


def coverage_section(minutes: float = 15.0, repeat: int = 5) -> None:
    """One street's and everything's walking coverage of one kind, warm and cold."""
    all_stores = stores()
    table = _table(f"coverage of '{COVERAGE_KIND}', {minutes:g} min walk", all_stores)
    mega, one = (_coverage_figures(s, minutes, repeat) for s in all_stores)
    warm = mega["street warm"]
    _row(table, "one street, road graph and households cached (best)", warm,
         one["street warm"], "s", "≤ 1 s " + ("✔" if warm <= 1 else "✘"))  # fmt: skip
    _row(table, "one street, cached (median)", mega["street warm median"],
         one["street warm median"], "s")  # fmt: skip
    _row(table, "one street, cold (graph built, every household snapped)",
         mega["street cold"], one["street cold"], "s")  # fmt: skip
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


# --- the grid map of a district-wide coordinator ------------------------------------------------


def _pages(all_stores: Sequence[Store], servers: Sequence[Server], repeat: int) -> list[Any]:
    """Seconds for each fetch of the grid page by each store's district-wide coordinator."""
    out = []
    for s, server in zip(all_stores, servers, strict=True):
        headers = f"X-API-Key: {s.district_key}\r\nAccept: text/html\r\n"
        _fetch(server.port, headers, ["/maps/grids"])  # warm-up
        out.append(_fetch(server.port, headers, ["/maps/grids"] * repeat))
    return out


def grid_page(repeat: int = 3) -> None:
    """``GET /maps/grids`` in the frame for a coordinator of a whole district, and without
    migration 0020's index."""
    all_stores = stores()
    _index(all_stores, INDEX)  # a store loaded before migration 0020
    table = _table("GET /maps/grids, a coordinator of one whole district", all_stores)
    with _servers(all_stores) as servers:
        mega, one = _pages(all_stores, servers, repeat)
        with without_index(all_stores):
            bare, one_bare = _pages(all_stores, servers, repeat)
    grids = {s.name: len(s.district.grid_ids or ()) for s in all_stores}
    _row(table, f"page ({grids['megacity']:,} | {grids['one district']:,} grids), best",
         min(mega), min(one), "s", "≤ 1 s " + ("✔" if min(mega) <= 1 else "✘"))  # fmt: skip
    _row(table, "page, median", statistics.median(mega), statistics.median(one), "s")
    _row(table, "without the index on building (community_id), best", min(bare),
         min(one_bare), "s")  # fmt: skip
    _done(table)


SECTIONS: dict[str, Callable[[], None]] = {
    "http-locate": locate,
    "tiles": tiles,
    "coverage": coverage_section,
    "oversize": oversize,
    "checks": checks_section,
    "grid-page": grid_page,
}


def _explain() -> None:
    from bench.megacity_explain import explain

    explain()


SECTIONS["explain"] = _explain
