"""A plan out of the browser: GeoPackage (grids and units layers, for QGIS), GeoJSON (the
grids) and a unit → grid CSV (the street office's records)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import geopandas as gpd
from sqlalchemy import text
from sqlalchemy.orm import Session

from data.planning.service import Db, get_plan
from data.planning.workspace import unit_csv

FORMATS = ("gpkg", "geojson", "csv")


def _read(db: Db, sql: str, plan_id: int) -> gpd.GeoDataFrame:
    conn = db.connection() if isinstance(db, Session) else db
    return gpd.read_postgis(text(sql), conn, geom_col="geom", crs=4326, params={"p": plan_id})


def grids_frame(db: Db, plan_id: int) -> gpd.GeoDataFrame:
    plan = get_plan(db, plan_id)
    frame = _read(
        db,
        "SELECT g.code AS grid, g.published_code, g.households, g.locked, "
        "(g.metrics->>'polsby_popper')::float AS compactness, "
        "(g.metrics->>'road_share')::float AS on_roads, "
        "(SELECT w.display_name FROM grid n JOIN worker w ON w.id = n.worker_id "
        " WHERE n.plan_id = g.plan_id AND n.code = g.published_code AND n.valid_to IS NULL) "
        "AS worker, g.geom FROM plan_grid g WHERE g.plan_id = :p ORDER BY g.code",
        plan_id,
    )
    frame["plan"] = plan_id
    frame["community"] = plan.community_code
    return frame


def export(db: Db, plan_id: int, fmt: str) -> tuple[bytes, str]:
    if fmt == "csv":
        return unit_csv(db, plan_id).encode("utf-8-sig"), "text/csv; charset=utf-8"
    grids = grids_frame(db, plan_id)
    if fmt == "geojson":
        return grids.to_json(drop_id=True).encode(), "application/geo+json"
    units = _read(
        db,
        "SELECT unit, grid_code AS grid, households, block, level, building_id, geom "
        "FROM plan_unit WHERE plan_id = :p ORDER BY unit",
        plan_id,
    )
    with tempfile.TemporaryDirectory(prefix="gridwork-plan-") as folder:
        path = Path(folder) / f"plan-{plan_id}.gpkg"
        grids.to_file(path, layer="grids", driver="GPKG")
        units.to_file(path, layer="units", driver="GPKG")
        return path.read_bytes(), "application/geopackage+sqlite3"
