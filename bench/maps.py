"""Benchmark: coverage through the store, vector tiles over HTTP, the grid map — 783 grids.

Run ``python -m bench.maps`` (``--skip-import`` reuses the bench database). The targets from
issue 5, on 2 cores:

* coverage for ~30 facilities on a 20k-edge network ≤ 1 s end to end through the store;
* tile p99 ≤ 20 ms over HTTP at z12–z16;
* the grid map for 783 grids built in ≤ 1 s and ≤ 3 MB of HTML.

The synthetic district (783 grids, 146,112 households, 178 facilities) is imported once into
a database ``gridwork_bench_maps`` of gridwork's cluster (or of ``DATABASE_URL``'s server), with
every road cut in two at its midpoint: 23,940 road segments, a real district's walk network.
Each row is compared with the obvious alternative in the same run:

* coverage: the road-graph cache warm (what a served request pays) vs. cold (graph built
  and households snapped again, what a server without the cache would pay each time);
* tiles: tipg over HTTP through our auth wrapper vs. the bare ``ST_AsMVT`` query in SQL;
* grid map: our simplified display geometry vs. folium's GeoJson of the stored polygons.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import folium
import geopandas as gpd
import httpx
import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text

from bench.bench_db import extent_of, tiles_over
from bench.coverage import DISTRICT, split_in_two
from data.access.queries import AreaScope, create_api_key
from data.cluster import LocalCluster, ensure_database
from data.coverage.service import NetworkCache, coverage
from data.db import make_engine, migrate, transaction
from data.district.maps import grid_layers
from data.importing.loading import import_file
from data.models import Role
from data.settings import Settings
from maps.pages import build, render

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "gridwork_bench_maps"
EXPECTED = (783, 23_940, 146_112)  # grids, road segments, households once imported
console = Console(width=None if sys.stdout.isatty() else 160)
LAYERS = ["streets", "communities", "workers", "grids", "roads", "facilities", "buildings",
          "households"]  # fmt: skip


def bench_url() -> str:
    settings = Settings()
    if settings.database_url:
        server = settings.database_url
    else:
        cluster = LocalCluster(settings.state_path, settings.database_name)
        server = cluster.up()
    url = server.rsplit("/", 1)[0] + f"/{DATABASE}"
    ensure_database(url, DATABASE)
    migrate(url)
    return url


def load_district(engine: Engine, url: str) -> float:
    """Import the synthetic district (roads cut in two) and analyse it; seconds taken."""
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE household, incident, facility, building, road_segment, grid, worker, "
                "community, street, district, deployment_setting RESTART IDENTITY CASCADE"
            )
        )
    settings = Settings(database_url=url)
    with tempfile.TemporaryDirectory() as tmp:
        roads = gpd.read_file(DISTRICT, layer="roads")
        halves = split_in_two(roads.to_crs(32645)).to_crs(4326)
        halves["road_id"] = [f"{r}-{h}" for r in roads["road_id"] for h in ("a", "b")]
        halves["class"] = np.repeat(roads["class"].to_numpy(), 2)
        halves["name"] = np.repeat(roads["name"].to_numpy(), 2)
        split = Path(tmp) / "roads.gpkg"
        halves.to_file(split, layer="roads")
        for layer in LAYERS:
            path = split if layer == "roads" else DISTRICT
            report = import_file(engine, layer, path, layer=layer, settings=settings)  # type: ignore[arg-type]
            console.print(f"  {layer}: {report.inserted:,} rows")
    with engine.begin() as conn:  # fresh tables: plans on real statistics, as in production
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - start


def time_coverage(engine: Engine, kind: str, repeat: int) -> tuple[float, float, float, int, int]:
    """(JSON warm s, JSON cold s, map data warm s, facilities, edges), ``kind``, 10 min."""
    cache = NetworkCache()
    with engine.connect() as conn:
        coverage(conn, cache, kind=kind, minutes=10, scope=AreaScope.everywhere())  # warm up
        warm = []
        for _ in range(repeat):
            start = time.perf_counter()
            report = coverage(
                conn, cache, kind=kind, minutes=10, scope=AreaScope.everywhere(), drawing=False
            )
            warm.append(time.perf_counter() - start)
        cold = []
        drawn = []
        for _ in range(repeat):
            start = time.perf_counter()
            coverage(conn, cache, kind=kind, minutes=10, scope=AreaScope.everywhere())
            drawn.append(time.perf_counter() - start)
        for _ in range(max(1, repeat // 2)):
            start = time.perf_counter()
            coverage(
                conn,
                NetworkCache(),
                kind=kind,
                minutes=10,
                scope=AreaScope.everywhere(),
                drawing=False,
            )
            cold.append(time.perf_counter() - start)
        edges = cache._graph[1].n_edges if cache._graph else 0
    return min(warm), min(cold), min(drawn), len(report.facilities), edges


PAGE_REPEAT = 5


def time_tiles(
    url: str, key: str, tiles: list[tuple[int, int, int]], extent: tuple[float, ...]
) -> tuple[dict[int, list[float]], list[float], list[float]]:
    """Milliseconds per tile over HTTP against a uvicorn process, by zoom (after a warm-up);
    and, on the same server, the district-wide grid page in the frame and the basemap its
    browser asks for next (zoom 13 over the whole district), in seconds."""
    port = 18000 + secrets.randbelow(2000)
    env = {**os.environ, "GRIDWORK_LIVE_DATABASE_URL": url,
           "GRIDWORK_LIVE_SECRET": secrets.token_urlsafe(48)}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.live_server:app", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    times: dict[int, list[float]] = {}
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as client:
            path = "/ogc/collections/ogc.grids/tiles/WebMercatorQuad/{}/{}/{}"
            for z, x, y in tiles[:20]:
                client.get(path.format(z, x, y))
            for z, x, y in tiles:
                start = time.perf_counter()
                r = client.get(path.format(z, x, y))
                times.setdefault(z, []).append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200, r.text
            page_s, basemap_s = [], []
            bbox = ",".join(f"{v:.5f}" for v in extent)
            for _ in range(PAGE_REPEAT):
                start = time.perf_counter()
                r = client.get("/maps/grids", headers={"Accept": "text/html"})
                page_s.append(time.perf_counter() - start)
                assert r.status_code == 200, r.text[:200]
                start = time.perf_counter()
                r = client.get("/basemap", params={"bbox": bbox, "zoom": 13})
                basemap_s.append(time.perf_counter() - start)
                assert r.status_code == 200, r.text[:200]
    finally:
        server.terminate()
        server.wait(timeout=15)
    return times, page_s, basemap_s


def time_bare_mvt(url: str, tiles: list[tuple[int, int, int]]) -> list[float]:
    """Milliseconds for the ST_AsMVT query alone (psycopg, no HTTP, no auth)."""
    sql = (
        "WITH t AS (SELECT code, households, ST_AsMVTGeom(ST_Transform(geom, 3857), "
        "ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 256, true) AS geom FROM ogc.grids "
        "WHERE geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.0625), "
        "4326)) SELECT ST_AsMVT(t.*, 'default') FROM t"
    )
    out = []
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for z, x, y in tiles:
            start = time.perf_counter()
            conn.execute(sql, {"z": z, "x": x, "y": y}).fetchone()
            out.append((time.perf_counter() - start) * 1000)
    return out


def time_grid_map(engine: Engine, repeat: int) -> tuple[float, int, float, int]:
    """(ours s, ours bytes, plain folium s, plain folium bytes) for the 783-grid map."""
    settings = Settings()
    ours_s, ours_bytes = [], 0
    with engine.connect() as conn:
        for _ in range(repeat):
            start = time.perf_counter()
            page = render(
                lambda: build(
                    conn,
                    "grids",
                    scope=AreaScope.everywhere(),
                    settings=settings,
                    cache=NetworkCache(),
                    asset_mode="url",
                )
            )
            ours_s.append(time.perf_counter() - start)
            ours_bytes = len(page.encode())
        start = time.perf_counter()
        grids = grid_layers(conn, AreaScope.everywhere()).grids
        m = folium.Map(tiles=None)
        folium.GeoJson(
            grids[["code", "worker_name", "households", "geometry"]],
            tooltip=folium.GeoJsonTooltip(["code", "worker_name", "households"]),
        ).add_to(m)
        m.fit_bounds([[grids.total_bounds[1], grids.total_bounds[0]],
                      [grids.total_bounds[3], grids.total_bounds[2]]])  # fmt: skip
        plain = m.get_root().render()
        plain_s = time.perf_counter() - start
    return min(ours_s), ours_bytes, plain_s, len(plain.encode())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.maps", description=__doc__)
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tiles-per-zoom", type=int, default=120)
    args = parser.parse_args(argv)

    url = bench_url()
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM grid), (SELECT count(*) FROM road_segment), "
                "(SELECT count(*) FROM household)"
            )
        ).one()
    if not args.skip_import or tuple(found) != EXPECTED:
        console.print("importing the synthetic district (roads cut in two) …")
        console.print(f"imported in {load_district(engine, url):.0f} s (untimed)")
    with transaction(engine) as session:
        key = create_api_key(session, f"bench-{secrets.token_hex(4)}", Role.admin)
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM grid), (SELECT count(*) FROM road_segment), "
                "(SELECT count(*) FROM household), (SELECT count(*) FROM household "
                "WHERE grid_id IS NOT NULL)"
            )
        ).one()
    cores = len(os.sched_getaffinity(0))
    console.print(
        f"{counts[0]} grids, {counts[1]:,} road segments, {counts[2]:,} households "
        f"({counts[3]:,} assigned); {cores} core(s); best of {args.repeat}"
    )

    table = Table(title="issue 5 targets, one run")
    for col in ("what", "gridwork", "alternative", "ratio", "target"):
        table.add_column(col, justify="left" if col in ("what", "target") else "right")
    for kind in ("elderly_care", "school"):
        warm, cold, drawn, n, edges = time_coverage(engine, kind, args.repeat)
        table.add_row(
            f"GET /coverage data, {n} {kind}, 10 min, {edges:,} edges (cache warm | cold)",
            f"{warm:.3f} s",
            f"{cold:.3f} s",
            f"{cold / warm:.1f}×",
            "≤ 1 s " + ("✔" if warm <= 1 else "✘"),
        )
        table.add_row(
            "  the same with the map's layers (straight-line circles clipped)",
            f"{drawn:.3f} s",
            "",
            "",
            "",
        )
    extent = extent_of(engine, "grid")
    tiles = tiles_over(extent, range(12, 17), args.tiles_per_zoom, seed=5)
    http, page_s, basemap_s = time_tiles(url, key, tiles, extent)
    bare = time_bare_mvt(url, tiles)
    all_http = [t for z in sorted(http) for t in http[z]]
    for z in sorted(http):
        ms = http[z]
        table.add_row(
            f"tile z{z} over HTTP, {len(ms)} tiles (p50 | p99)",
            f"{np.percentile(ms, 50):.1f} | {np.percentile(ms, 99):.1f} ms",
            "",
            "",
            "",
        )
    p99 = float(np.percentile(all_http, 99))
    table.add_row(
        f"tile z12–z16 over HTTP, {len(all_http)} tiles, p99 (vs bare ST_AsMVT in SQL)",
        f"{p99:.1f} ms",
        f"{np.percentile(bare, 99):.1f} ms",
        f"{p99 / max(float(np.percentile(bare, 99)), 1e-9):.1f}×",
        "≤ 20 ms " + ("✔" if p99 <= 20 else "✘"),
    )
    table.add_row(
        "tile z12–z16 mean", f"{statistics.mean(all_http):.1f} ms",
        f"{statistics.mean(bare):.1f} ms", "", "",
    )  # fmt: skip
    ours_s, ours_b, plain_s, plain_b = time_grid_map(engine, args.repeat)
    table.add_row(
        f"grid map, {counts[0]} grids: build time (vs plain folium GeoJson)",
        f"{ours_s:.2f} s",
        f"{plain_s:.2f} s",
        f"{plain_s / ours_s:.1f}×",
        "≤ 1 s " + ("✔" if ours_s <= 1 else "✘"),
    )
    page, ground = min(page_s), min(basemap_s)
    table.add_row(
        "district-wide grid page over HTTP in the frame (| the basemap it asks for, z13)",
        f"{page:.2f} s | {ground:.2f} s",
        "",
        "",
        "≤ 1 s " + ("✔" if page + ground <= 1 else "✘") + " (both)",
    )
    table.add_row(
        "grid map HTML size",
        f"{ours_b / 1e6:.2f} MB",
        f"{plain_b / 1e6:.2f} MB",
        f"{plain_b / ours_b:.1f}×",
        "≤ 3 MB " + ("✔" if ours_b <= 3e6 else "✘"),
    )
    console.print(table)
    engine.dispose()


if __name__ == "__main__":
    main()
