"""The walking route drawn on the locate page follows the roads (geo.care.route)."""

from __future__ import annotations

import shapely
from shapely.geometry import LineString, Point

from geo.care.route import walking_routes
from geo.coverage.road_graph import RoadGraph


def _ell() -> RoadGraph:
    # An L of roads: east 100 m, then north 100 m; and a long detour that must not be taken.
    roads = [
        LineString([(0, 0), (100, 0)]),
        LineString([(100, 0), (100, 100)]),
        LineString([(0, 0), (0, 300), (100, 300), (100, 100)]),
    ]
    return RoadGraph.from_segments(roads, crs="EPSG:32645")


def test_the_route_turns_the_corner_along_the_roads_not_across() -> None:
    [route] = walking_routes(_ell(), Point(10, -5), [Point(95, 90)], max_m=3000)
    assert route is not None
    # 5 m to the road, 90 m east, 90 m north, 5 m to the door.
    assert abs(route.length_m - 190) < 1e-6
    coords = shapely.get_coordinates(route.line).tolist()
    assert coords[0] == [10, -5] and coords[-1] == [95, 90]
    assert [100, 0] in coords  # it passes the corner
    assert route.line.length >= route.length_m - 1e-6  # never shorter than what it claims


def test_a_target_beyond_the_walking_budget_has_no_route() -> None:
    near, far = walking_routes(_ell(), Point(10, -5), [Point(50, 5), Point(95, 90)], max_m=100)
    assert near is not None and abs(near.length_m - 50) < 1e-6
    assert far is None
