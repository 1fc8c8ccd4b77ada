"""Households are covered by their own walk, not by where the roadside strip happens to end.

One straight road, 1 km long, a facility at its west end and a 10-minute walk (750 m)::

      y=200   H3 (100, 200): 200 m up to the road, 100 m along  -> 300 m, covered, outside strip
      y=30                               H2 (740, 30): 30 + 740 = 770 m -> not covered, in strip
      y=0   F=================================================== road (0..1000)
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, Point, box

from geo.coverage.walk import RoadGraph, facility_coverage, households_within, network_distances
from geo.coverage.walk import reachable as reach_from
from geo.errors import InvalidInput

UTM = "EPSG:32645"


def _setup() -> tuple[RoadGraph, gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    graph = RoadGraph.from_segments(gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs=UTM))
    facilities = gpd.GeoDataFrame({"kind": ["clinic"]}, geometry=[Point(0, 0)], crs=UTM)
    homes = gpd.GeoDataFrame(geometry=[Point(700, 10), Point(740, 30), Point(100, 200)], crs=UTM)
    grids = gpd.GeoDataFrame({"code": ["G1"]}, geometry=[box(-100, -300, 1100, 300)], crs=UTM)
    return graph, facilities, homes, grids


def test_the_households_own_walk_decides_not_the_strip() -> None:
    graph, facilities, homes, grids = _setup()
    result = facility_coverage(graph, facilities, grids, homes, minutes=10)
    covered = households_within(result.distances)
    assert covered.tolist() == [True, False, True]
    # The strip still covers H2 (drawn) and not H3: the two layers differ on purpose.
    assert result.network_area.covers(Point(740, 30))
    assert not result.network_area.covers(Point(100, 200))
    row = result.grids.iloc[0]
    assert (row["households"], row["covered_households"]) == (3, 2)


def test_a_cached_snap_gives_the_same_distances() -> None:
    graph, facilities, homes, _ = _setup()
    reach = reach_from(graph, facilities, 750.0)
    points = np.asarray(homes.geometry.array, dtype=object)
    fresh = network_distances(graph, reach, homes)
    cached = network_distances(graph, reach, homes, snap=graph.snap(points))
    assert np.allclose(fresh.distance_m, cached.distance_m)
    with pytest.raises(InvalidInput, match="snap"):
        network_distances(graph, reach, homes, snap=graph.snap(points[:1]))


def test_capacity_gives_each_grid_a_2sfca_score() -> None:
    graph, facilities, homes, grids = _setup()
    result = facility_coverage(graph, facilities, grids, homes, minutes=10, capacity=[4])
    # 4 places shared by the 2 households in reach: 2 each; the grid mean over 3 is 4/3.
    assert result.grids.iloc[0]["score"] == pytest.approx(4 / 3)
