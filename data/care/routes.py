"""Walking routes from an elder's position to facilities, drawn along the stored roads
(geo.care.route over the road graph that coverage caches), as WGS-84 lines for a map."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Point, mapping
from sqlalchemy.orm import Session

from data.coverage.service import NetworkCache
from geo.care.route import walking_routes
from geo.errors import Conflict

WALK_SEARCH_M = 3000.0  # as far as data.care.service ranks facilities by walking


def routes_to(
    session: Session,
    network: NetworkCache,
    *,
    epsg: int,
    lon: float,
    lat: float,
    facilities: list[dict[str, Any]],
) -> list[dict[str, Any] | None]:
    """Per facility (``lon``/``lat`` keys), the walking route from (lon, lat) as a GeoJSON
    LineString in WGS-84 with its ``length_m``; None where no road leads there within 3 km
    or no road is stored."""
    if not facilities:
        return []
    try:
        graph = network.graph(session.connection(), epsg)
    except Conflict:
        return [None] * len(facilities)
    to_metric = Transformer.from_crs(4326, epsg, always_xy=True)
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)
    x, y = to_metric.transform(lon, lat)
    fx, fy = to_metric.transform([f["lon"] for f in facilities], [f["lat"] for f in facilities])
    targets = [Point(a, b) for a, b in zip(fx, fy, strict=True)]
    out: list[dict[str, Any] | None] = []
    for route in walking_routes(graph, Point(x, y), targets, max_m=WALK_SEARCH_M):
        if route is None:
            out.append(None)
            continue
        line = shapely.transform(route.line, lambda xy: np.column_stack(to_wgs84.transform(*xy.T)))
        out.append({"geometry": mapping(line), "length_m": round(route.length_m, 1)})
    return out
