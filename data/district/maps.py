"""What the coordinators' maps show, assembled from the store (the map builders never query).

Every function takes the caller's :class:`AreaScope` and reads through ``read_level``, so a
coordinator's map holds their area and nothing else. Households and incidents leave as
counts per area, never as points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from data.access.queries import AreaScope
from data.district.hierarchy import read_level
from geo.errors import InvalidInput

MAX_DAYS = 3650

Level = Literal["grids", "communities"]


@dataclass(frozen=True)
class GridLayers:
    """The caller's grids (code, worker, households) with their communities for context
    (id, code, name and outline: the maps draw them as lines)."""

    grids: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame


def grid_layers(conn: Connection, scope: AreaScope) -> GridLayers:
    return GridLayers(
        grids=read_level(conn, "grids", scope),
        communities=read_level(conn, "community_outlines", scope),
    )


def worker_load(grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """Per worker: how many grids and households they answer for; no worker is one row too.

    Sorted by households, heaviest first, then worker code, so the table reads as a queue of
    who needs relief.
    """
    frame = pd.DataFrame(
        {
            "worker_code": grids["worker_code"].astype(object).where(grids["worker_code"].notna()),
            "worker_name": grids["worker_name"].astype(object).where(grids["worker_name"].notna()),
            "households": grids["households"].astype(np.int64),
        }
    )
    frame["worker_code"] = frame["worker_code"].fillna("")
    frame["worker_name"] = frame["worker_name"].fillna("")
    load = (
        frame.groupby(["worker_code", "worker_name"], sort=False)
        .agg(grids=("households", "size"), households=("households", "sum"))
        .reset_index()
    )
    load = load.sort_values(["households", "worker_code"], ascending=[False, True])
    return load.reset_index(drop=True)


@dataclass(frozen=True)
class IncidentCounts:
    """Incidents reported in the last ``days`` per area, open (open or in progress) and closed."""

    level: Level
    days: int
    areas: gpd.GeoDataFrame  # id, code, name?, open, closed, total; geometry


_COUNT = {
    # An incident not yet assigned to a grid counts where its point lies (ST_Covers rule).
    "grids": "i.grid_id = a.id OR (i.grid_id IS NULL AND ST_Covers(a.geom, i.geom))",
    "communities": "ST_Covers(a.geom, i.geom)",
}


def incident_counts(conn: Connection, scope: AreaScope, *, days: int) -> IncidentCounts:
    """Per grid (per community where there are no grids yet), over the last ``days``."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"must be a whole number of days, 1–{MAX_DAYS}", field="days")
    level: Level = "grids"
    areas = read_level(conn, "grids", scope)
    if areas.empty:
        level = "communities"
        areas = read_level(conn, "communities", scope)
    table = "grid" if level == "grids" else "community"
    # The table and join come from the fixed registry above; values are bound parameters.
    rows = conn.execute(
        text(
            "SELECT a.id, count(*) FILTER (WHERE i.status <> 'closed'), "  # noqa: S608
            "count(*) FILTER (WHERE i.status = 'closed') "
            f"FROM {table} a JOIN incident i ON ({_COUNT[level]}) "
            "WHERE a.id = ANY(:ids) AND i.reported_at >= now() - make_interval(days => :days) "
            "GROUP BY a.id"
        ),
        {"ids": areas["id"].astype(int).tolist(), "days": days},
    ).all()
    counts = {int(r[0]): (int(r[1]), int(r[2])) for r in rows}
    out = areas.copy()
    out["open"] = [counts.get(int(i), (0, 0))[0] for i in areas["id"]]
    out["closed"] = [counts.get(int(i), (0, 0))[1] for i in areas["id"]]
    out["total"] = out["open"] + out["closed"]
    return IncidentCounts(level=level, days=days, areas=out)


def district_bounds(conn: Connection) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of everything administrative stored, or None when empty."""
    row = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) "
            "AS e FROM (SELECT geom FROM street UNION ALL SELECT geom FROM community "
            "UNION ALL SELECT geom FROM grid WHERE valid_to IS NULL) g) x"
        )
    ).one()
    if row[0] is None:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


#: A table's rows as the planner's statistics have them (every import ends with ANALYZE),
#: counted only for a table never analysed: the viewer needs the order of magnitude, and a
#: city's millions of buildings took a sequential count on every opening.
_ESTIMATED_ROWS = (
    "(SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE (SELECT count(*) FROM {t}) "
    "END FROM pg_class c WHERE c.oid = '{t}'::regclass)"
)


def tiled_counts(conn: Connection) -> tuple[int, int, int]:
    """(current grids, road segments, buildings) stored: how dense the viewer's tiles get.
    Grids are counted (their current ones are what matters); roads and buildings estimated."""
    roads = _ESTIMATED_ROWS.format(t="road_segment")
    buildings = _ESTIMATED_ROWS.format(t="building")
    grids, roads_n, buildings_n = conn.execute(
        text(f"SELECT (SELECT count(*) FROM grid WHERE valid_to IS NULL), {roads}, {buildings}")  # noqa: S608
    ).one()
    return int(grids), int(roads_n), int(buildings_n)
