"""Geometry size limits: counted from array lengths, refused early, structure named."""

from __future__ import annotations

import time

import pytest

from geo.errors import InvalidGeometry, PayloadTooLarge
from geo.limits import check_geometry_size


def _ring(n: int) -> list[list[float]]:
    return [[float(i % 360 - 180), 0.0] for i in range(n)]


@pytest.mark.parametrize(
    ("geom", "count"),
    [
        ({"type": "Point", "coordinates": [1, 2]}, 1),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1], [2, 2]]}, 3),
        ({"type": "Polygon", "coordinates": [_ring(5), _ring(4)]}, 9),
        ({"type": "MultiPolygon", "coordinates": [[_ring(5)], [_ring(6), _ring(4)]]}, 15),
        (
            {
                "type": "GeometryCollection",
                "geometries": [
                    {"type": "Point", "coordinates": [0, 0]},
                    {"type": "MultiPoint", "coordinates": [[0, 0], [1, 1]]},
                ],
            },
            3,
        ),
        (
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [0, 0]},
            },
            1,
        ),
    ],
)
def test_counts_positions(geom: dict[str, object], count: int) -> None:
    assert check_geometry_size(geom) == count


def test_a_million_vertices_is_refused_quickly() -> None:
    geom = {"type": "Polygon", "coordinates": [[[8.6, 41.1]] * 1_000_000]}
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match="more than 100000 vertices") as info:
        check_geometry_size(geom)
    assert info.value.field == "geometry"
    assert time.perf_counter() - started < 0.5


def test_empty_parts_count_so_a_flood_of_them_stops_early() -> None:
    geom = {"type": "MultiLineString", "coordinates": [[]] * 2_000_000}
    with pytest.raises(PayloadTooLarge):
        check_geometry_size(geom, max_vertices=1000)


@pytest.mark.parametrize(
    ("geom", "where"),
    [
        ({"type": "Polygon", "coordinates": "0 0, 1 1"}, "geometry.coordinates"),
        ({"type": "Polygon", "coordinates": [[[0, 0]], 7]}, "geometry.coordinates[1]"),
        ({"type": "Circle", "coordinates": [0, 0]}, "geometry"),
        ({"type": "GeometryCollection", "geometries": {}}, "geometry"),
        ([1, 2], "geometry"),
    ],
)
def test_malformed_structure_names_where(geom: object, where: str) -> None:
    with pytest.raises(InvalidGeometry) as info:
        check_geometry_size(geom)  # type: ignore[arg-type]
    assert info.value.field == where


def test_nested_collections_are_bounded() -> None:
    geom: dict[str, object] = {"type": "Point", "coordinates": [0, 0]}
    for _ in range(10):
        geom = {"type": "GeometryCollection", "geometries": [geom]}
    with pytest.raises(InvalidGeometry, match="nested"):
        check_geometry_size(geom)
