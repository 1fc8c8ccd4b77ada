"""The hierarchy and buildings read back as GeoDataFrames (WGS-84) for the domain to work on."""

from __future__ import annotations

import geopandas as gpd
from sqlalchemy import Connection, text

_SQL = {
    "streets": "SELECT s.code, s.name, s.geom FROM street s ORDER BY s.code",
    "communities": (
        "SELECT c.code, c.name, c.name_local, c.kind::text AS kind, c.population, "
        "s.code AS street_code, (SELECT count(*) FROM household h JOIN building b "
        "ON b.id = h.building_id WHERE b.community_id = c.id) AS households, "
        "c.geom FROM community c LEFT JOIN street s ON s.id = c.street_id "
        "ORDER BY c.code"
    ),
    "grids": (
        "SELECT g.id, g.code, c.code AS community_code, w.code AS worker_code, "
        "w.display_name AS worker_name, (SELECT count(*) FROM household h "
        "WHERE h.grid_id = g.id) AS households, g.geom FROM grid g JOIN community c ON c.id = "
        "g.community_id LEFT JOIN worker w ON w.id = g.worker_id WHERE g.valid_to IS NULL "
        "ORDER BY g.code"
    ),
    "buildings": (
        "SELECT b.id, b.source_id, b.building_type AS building, b.levels, b.households, "
        "c.code AS community_code, b.geom FROM building b "
        "LEFT JOIN community c ON c.id = b.community_id ORDER BY b.id"
    ),
    "roads": "SELECT r.id, r.source_id, r.name, r.road_class, r.geom FROM road_segment r "
    "ORDER BY r.id",
    "facilities": "SELECT f.id, f.source_id, f.kind, f.name, f.capacity, f.geom FROM facility f "
    "ORDER BY f.id",
}


def read_level(conn: Connection, level: str) -> gpd.GeoDataFrame:
    """One stored layer as a GeoDataFrame in EPSG:4326 (possibly empty, never None)."""
    frame = gpd.read_postgis(text(_SQL[level]), conn, geom_col="geom", crs=4326)
    return frame.rename_geometry("geometry")


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
    """Keep each street's district geometry equal to the union of its streets."""
    conn.execute(
        text(
            "UPDATE district d SET geom = ST_Multi(u.geom) FROM (SELECT district_id, "
            "ST_Union(geom) AS geom FROM street GROUP BY district_id) u WHERE u.district_id = d.id"
        )
    )
