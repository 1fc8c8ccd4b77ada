"""Size limits on geometries that come from outside, checked before any geometry is built.

A polygon with a million vertices is a few megabytes of JSON but minutes of overlay work and
a lot of memory once shapely and PostGIS hold it. :func:`check_geometry_size` counts the
positions of a GeoJSON geometry from the lengths of its coordinate arrays (never touching each
position) and stops as soon as the limit is passed, so refusing a huge geometry costs little.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geo.errors import InvalidGeometry, PayloadTooLarge

# A community boundary traced from a cadastral map has a few thousand vertices; a whole city
# district rarely more than 50,000. Above this, something is wrong (or hostile).
DEFAULT_MAX_VERTICES = 100_000
# GeometryCollections inside GeometryCollections: RFC 7946 advises against any nesting.
MAX_COLLECTION_DEPTH = 4

# How many array levels lie between "coordinates" and a position, per geometry type.
_POSITION_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}


def check_geometry_size(
    geom_json: Mapping[str, Any],
    *,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    field: str = "geometry",
) -> int:
    """Refuse a GeoJSON geometry (or Feature) with more than ``max_vertices`` positions.

    Returns the number of positions. Raises :class:`~geo.errors.PayloadTooLarge` (HTTP 413)
    when there are too many, and :class:`~geo.errors.InvalidGeometry` (422) when the structure
    is not GeoJSON enough to count; positions themselves are validated later, by whoever
    builds the geometry.
    """
    counter = _Counter(max_vertices, field)
    counter.geometry(geom_json, field, depth=0)
    return counter.total


class _Counter:
    def __init__(self, max_vertices: int, field: str) -> None:
        self.max_vertices = max_vertices
        self.field = field
        self.total = 0

    def geometry(self, geom: Any, where: str, *, depth: int) -> None:
        if not isinstance(geom, Mapping):
            raise InvalidGeometry("expected a GeoJSON object", field=where)
        kind = geom.get("type")
        if kind == "Feature":
            inner = geom.get("geometry")
            if inner is not None:
                self.geometry(inner, f"{where}.geometry", depth=depth)
            return
        if kind == "GeometryCollection":
            if depth >= MAX_COLLECTION_DEPTH:
                raise InvalidGeometry(
                    f"GeometryCollections nested more than {MAX_COLLECTION_DEPTH} deep",
                    field=where,
                )
            parts = geom.get("geometries")
            if not isinstance(parts, list):
                raise InvalidGeometry("'geometries' must be an array", field=where)
            for i, part in enumerate(parts):
                self.geometry(part, f"{where}.geometries[{i}]", depth=depth + 1)
            return
        if kind not in _POSITION_DEPTH:
            names = ", ".join([*_POSITION_DEPTH, "GeometryCollection", "Feature"])
            raise InvalidGeometry(f"unknown GeoJSON type {kind!r}; one of {names}", field=where)
        self._count(geom.get("coordinates"), _POSITION_DEPTH[kind], f"{where}.coordinates")

    def _count(self, coords: Any, levels: int, where: str) -> None:
        if not isinstance(coords, list):
            raise InvalidGeometry("coordinates must be an array", field=where)
        if levels == 0:
            self._add(1)
        elif levels == 1:
            self._add(max(len(coords), 1))  # an empty part still costs a loop: count it
        else:
            for i, part in enumerate(coords):
                self._count(part, levels - 1, f"{where}[{i}]")

    def _add(self, n: int) -> None:
        self.total += n
        if self.total > self.max_vertices:
            raise PayloadTooLarge(
                f"more than {self.max_vertices} vertices; simplify the geometry or split it",
                field=self.field,
            )
