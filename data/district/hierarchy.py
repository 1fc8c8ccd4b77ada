"""The hierarchy and buildings read back as GeoDataFrames (WGS-84) for the domain to work on."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from data.access.queries import WITHIN_AREA_SQL, AreaScope
from data.policy import FACILITY_ROW_SQL

# Every statement ends in its own top-level WHERE, so a scope filter is appended with AND and
# can never attach itself to a subquery or a join condition. Geometry leaves as WKB (bytes).
_SQL = {
    "streets": "SELECT t.id, t.code, t.name, ST_AsBinary(t.geom) AS geom FROM street t WHERE TRUE",
    "communities": (
        "SELECT t.id, t.code, t.name, t.name_local, t.kind::text AS kind, t.population, "
        "s.code AS street_code, (SELECT count(*) FROM household h JOIN building b "
        "ON b.id = h.building_id WHERE b.community_id = t.id) AS households, "
        "ST_AsBinary(t.geom) AS geom FROM community t LEFT JOIN street s ON s.id = t.street_id "
        "WHERE TRUE"
    ),
    # Communities as context around their grids: no household count, which costs a join of
    # every household of the area (0.5 s for a district of the megacity's tenth) to draw lines.
    "community_outlines": "SELECT t.id, t.code, t.name, ST_AsBinary(t.geom) AS geom "
    "FROM community t WHERE TRUE",
    "grids": (
        "SELECT t.id, t.code, c.code AS community_code, w.code AS worker_code, "
        "w.display_name AS worker_name, coalesce(n.households, 0) AS households, "
        "ST_AsBinary(t.geom) AS geom FROM grid t JOIN community c ON c.id = t.community_id "
        "LEFT JOIN worker w ON w.id = t.worker_id "
        "LEFT JOIN grid_households n ON n.grid_id = t.id "  # kept by the store (0022)
        "WHERE t.valid_to IS NULL"
    ),
    "buildings": (
        "SELECT t.id, t.source_id, t.building_type AS building, t.levels, t.households, "
        "c.code AS community_code, ST_AsBinary(t.geom) AS geom FROM building t "
        "LEFT JOIN community c ON c.id = t.community_id WHERE TRUE"
    ),
    "roads": "SELECT t.id, t.source_id, t.name, t.road_class, ST_AsBinary(t.geom) AS geom "
    "FROM road_segment t WHERE TRUE",
    "facilities": "SELECT t.id, t.source_id, t.kind, t.name, t.capacity, "
    "ST_AsBinary(t.geom) AS geom FROM facility t WHERE TRUE",
}

_SCOPE = {
    "streets": "t.id = ANY(:street_ids)",
    "communities": "t.id = ANY(:community_ids)",
    "community_outlines": "t.id = ANY(:community_ids)",
    "grids": "t.id = ANY(:grid_ids)",
    "buildings": WITHIN_AREA_SQL,
    "roads": WITHIN_AREA_SQL,
    "facilities": FACILITY_ROW_SQL,  # as GET /facilities/{id}: its grid is the caller's
}


def read_level(conn: Connection, level: str, scope: AreaScope | None = None) -> gpd.GeoDataFrame:
    """One stored layer as a GeoDataFrame in EPSG:4326, limited to ``scope`` when given."""
    sql = _SQL[level]
    params: dict[str, Any] = {}
    if scope is not None and not scope.unrestricted:
        sql += " AND " + _SCOPE[level]
        params = {
            "street_ids": scope.sql_ids("street"),
            "community_ids": scope.sql_ids("community"),
            "grid_ids": scope.sql_ids("grid"),
        }
    coded = ("streets", "communities", "community_outlines", "grids")
    sql += " ORDER BY t.code" if level in coded else " ORDER BY t.id"
    result = conn.execute(text(sql), params)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    # WKB as bytes, decoded in one call: a district's 3,345 grids as hex EWKB cost ~0.3 s to
    # fetch and parse one by one (geopandas.read_postgis), as WKB ~0.06 s.
    wkb = frame.pop("geom").to_numpy(dtype=object)
    geometry = gpd.GeoSeries(shapely.from_wkb(wkb), index=frame.index, crs=4326)
    return gpd.GeoDataFrame(frame, geometry=geometry)


def count_grids(conn: Connection, scope: AreaScope | None = None) -> int:
    """How many current grids ``read_level(conn, "grids", scope)`` would read."""
    sql = "SELECT count(*) FROM grid t WHERE t.valid_to IS NULL"
    params: dict[str, Any] = {}
    if scope is not None and not scope.unrestricted:
        sql += " AND " + _SCOPE["grids"]
        params = {"grid_ids": scope.sql_ids("grid")}
    return int(conn.execute(text(sql), params).scalar_one())


def attach_buildings_to_communities(conn: Connection) -> int:
    """Each building belongs to the community covering a point on its surface."""
    result = conn.execute(
        text(
            "UPDATE building b SET community_id = c.id FROM community c "
            "WHERE ST_Covers(c.geom, ST_PointOnSurface(b.geom)) "
            "AND b.community_id IS DISTINCT FROM c.id"
        )
    )
    return int(result.rowcount or 0)


def district_outline(conn: Connection) -> None:
    """Keep each district's geometry equal to the union of its streets."""
    conn.execute(
        text(
            "UPDATE district d SET geom = ST_Multi(u.geom) FROM (SELECT district_id, "
            "ST_Union(geom) AS geom FROM street GROUP BY district_id) u WHERE u.district_id = d.id"
        )
    )
