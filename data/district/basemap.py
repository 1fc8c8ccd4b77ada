"""The basemap under every map: roads with their names, buildings, and the outlines of
streets, communities and grids, read from gridwork's own tables for one viewport.

Deployments run on intranets with no tile server, so the ground people recognise (a street
name, a block of buildings) must come from what gridwork stores. These layers hold no
personal data: every signed-in member of staff may see them, everywhere.

Only what is legible at a zoom is sent: outlines of streets always, of communities from
zoom 11, of grids from 13; roads from 13 (main roads from 11); buildings from 15. Geometry is
simplified to about a pixel and capped per layer, so a viewport costs one small answer
whatever the district's size.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

BBox = tuple[float, float, float, float]

MAIN_ROADS = ("motorway", "trunk", "primary", "secondary", "tertiary")
#: Features per layer and viewport at most (largest first: long roads, big buildings).
CAP = {"roads": 4000, "buildings": 4000, "streets": 200, "communities": 400, "grids": 2000}


def _pixel_degrees(zoom: int) -> float:
    """About one screen pixel in degrees at ``zoom`` (256-pixel tiles)."""
    return 360.0 / (256 * 2**zoom)


_LAYERS: dict[str, tuple[int, str]] = {
    # layer: (lowest zoom, SQL selecting name, name_local, kind, geometry as g over :bbox)
    "streets": (
        0,
        "SELECT code, name, name_local, NULL AS kind, geom AS g FROM street t",
    ),
    "communities": (
        11,
        "SELECT code, name, name_local, kind::text AS kind, geom AS g FROM community t",
    ),
    "grids": (
        13,
        "SELECT code, NULL AS name, NULL AS name_local, NULL AS kind, geom AS g FROM grid t "
        "WHERE t.valid_to IS NULL",
    ),
    "roads": (
        11,
        "SELECT NULL AS code, name, NULL AS name_local, road_class AS kind, geom AS g "
        "FROM road_segment t WHERE (:zoom >= 13 OR road_class = ANY(:main))",
    ),
    "buildings": (
        15,
        "SELECT NULL AS code, NULL AS name, NULL AS name_local, building_type AS kind, "
        "geom AS g FROM building t",
    ),
}


def _query(layer: str, sql: str) -> str:
    joiner = " AND " if " WHERE " in sql else " WHERE "
    size = "ST_Length(g)" if layer == "roads" else "ST_Area(g)"
    return (
        f"SELECT code, name, name_local, kind, "  # noqa: S608 - fixed SQL, values bound
        f"ST_AsGeoJSON(ST_SimplifyPreserveTopology(g, :tol), 6) AS geometry "
        f"FROM ({sql}{joiner}t.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)) q "
        f"ORDER BY {size} DESC LIMIT :cap"
    )


def basemap(conn: Connection, bbox: BBox, zoom: int) -> dict[str, Any]:
    """Per layer, a GeoJSON FeatureCollection of what is legible in ``bbox`` at ``zoom``."""
    west, south, east, north = bbox
    out: dict[str, Any] = {"zoom": zoom, "layers": {}}
    for layer, (min_zoom, sql) in _LAYERS.items():
        features: list[dict[str, Any]] = []
        if zoom >= min_zoom:
            rows = conn.execute(
                text(_query(layer, sql)),
                {
                    "w": west,
                    "s": south,
                    "e": east,
                    "n": north,
                    "tol": _pixel_degrees(zoom),
                    "cap": CAP[layer],
                    "zoom": zoom,
                    "main": list(MAIN_ROADS),
                },
            ).all()
            features = [
                {
                    "type": "Feature",
                    "geometry": json.loads(r.geometry),
                    "properties": {
                        k: v
                        for k, v in (
                            ("code", r.code),
                            ("name", r.name),
                            ("name_local", r.name_local),
                            ("kind", r.kind),
                        )
                        if v is not None
                    },
                }
                for r in rows
                if r.geometry
            ]
        out["layers"][layer] = {"type": "FeatureCollection", "features": features}
    return out
