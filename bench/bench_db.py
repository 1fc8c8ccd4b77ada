"""A scratch database for the benchmarks, in gridwork's own PostGIS (or ``DATABASE_URL``'s
server): dropped, recreated and migrated on every run, holding the synthetic city's streets,
communities, grids and one worker per grid. Never the database the demo or the tests use.
"""

from __future__ import annotations

from collections.abc import Iterable

import morecantile
import numpy as np
import shapely
from sqlalchemy import Engine, text

from bench.synthetic_city import City
from data import db
from data.cluster import LocalCluster
from data.db import make_engine
from data.settings import Settings

BENCH_DATABASE = "gridwork_bench"
METRIC_EPSG = 32645


def fresh_database(name: str = BENCH_DATABASE) -> str:
    """Drop and recreate ``name`` on the server gridwork uses; returns its URL, migrated."""
    settings = Settings()
    server = settings.database_url or LocalCluster(settings.state_path, settings.database_name).up()
    return db.fresh_database(server, name)


def load_city(engine: Engine, city: City) -> None:
    """Streets, communities, grids (WGS-84, as gridwork stores them) and a worker per grid."""
    streets = city.streets.to_crs(4326)
    communities = city.communities.to_crs(4326)
    grids = city.grids.to_crs(4326)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO deployment_setting (key, value) VALUES ('metric_epsg', :v)"),
            {"v": str(METRIC_EPSG)},
        )
        conn.execute(
            text(
                "INSERT INTO street (code, name, geom) "
                "VALUES (:code, :code, ST_SetSRID(ST_GeomFromWKB(:wkb), 4326))"
            ),
            [
                {"code": code, "wkb": shapely.to_wkb(g)}
                for code, g in zip(streets["code"], streets.geometry, strict=True)
            ],
        )
        conn.execute(
            text(
                "INSERT INTO community (code, name, kind, street_id, geom) VALUES (:code, :code, "
                "'community', "
                "(SELECT id FROM street WHERE code = :street), "
                "ST_SetSRID(ST_GeomFromWKB(:wkb), 4326))"
            ),
            [
                {"code": code, "street": street, "wkb": shapely.to_wkb(g)}
                for code, street, g in zip(
                    communities["code"],
                    communities["street_code"],
                    communities.geometry,
                    strict=True,
                )
            ],
        )
        conn.execute(
            text(
                "INSERT INTO worker (code, display_name, phone, community_id) VALUES "
                "(:worker, :name, :phone, (SELECT id FROM community WHERE code = :community))"
            ),
            [
                {
                    "worker": f"W{i + 1:04d}",
                    "name": f"Worker {i + 1}",
                    "phone": f"+86 990 000 {i + 1:04d}",
                    "community": community,
                }
                for i, community in enumerate(grids["community_code"])
            ],
        )
        conn.execute(
            text(
                "INSERT INTO grid (code, community_id, worker_id, geom) VALUES (:code, "
                "(SELECT id FROM community WHERE code = :community), "
                "(SELECT id FROM worker WHERE code = :worker), "
                "ST_SetSRID(ST_GeomFromWKB(:wkb), 4326))"
            ),
            [
                {
                    "code": code,
                    "community": community,
                    "worker": f"W{i + 1:04d}",
                    "wkb": shapely.to_wkb(g),
                }
                for i, (code, community, g) in enumerate(
                    zip(grids["code"], grids["community_code"], grids.geometry, strict=True)
                )
            ],
        )
        conn.execute(text("ANALYZE"))


def bench_engine(url: str) -> Engine:
    return make_engine(url)


def extent_of(engine: Engine, table: str) -> tuple[float, float, float, float]:
    """West, south, east, north of every geometry of ``table`` (WGS-84): where to ask for
    tiles. ``table`` is one of ours, never input."""
    with engine.connect() as conn:
        west, south, east, north = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                f"(SELECT ST_Extent(geom) e FROM {table}) x"
            )
        ).one()
    return float(west), float(south), float(east), float(north)


def tiles_over(
    extent: tuple[float, float, float, float], zooms: Iterable[int], per_zoom: int, *, seed: int
) -> list[tuple[int, int, int]]:
    """The Web Mercator tiles over ``extent`` at each of ``zooms``: all of them up to
    ``per_zoom``, else ``per_zoom`` spread over the extent (seeded, so runs compare)."""
    tms = morecantile.tms.get("WebMercatorQuad")
    rng = np.random.default_rng(seed)
    chosen: list[tuple[int, int, int]] = []
    for z in zooms:
        tiles = [(t.z, t.x, t.y) for t in tms.tiles(*extent, [z])]
        if len(tiles) > per_zoom:
            tiles = [tiles[i] for i in sorted(rng.choice(len(tiles), per_zoom, replace=False))]
        chosen += tiles
    return chosen
