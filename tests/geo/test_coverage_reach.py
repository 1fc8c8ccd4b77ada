"""One street's coverage walks only from the facilities within reach, and answers the same.

The synthetic district (Karamay, 783 grids, 146,112 households, 178 facilities with
capacities): its first street's grids and the households in them, every facility of a kind
in the district. The walk from the facilities near the street must give the very table the
walk from all of them gives, capacity scores included, while walking from fewer; the land
share differs only by the rounding of a polygon union (below).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.assignment.index import AreaIndex
from geo.coverage.walk import RoadGraph, facilities_in_reach, facility_coverage

UTM = "EPSG:32645"  # Karamay
# Counted, not drawn: these are bit for bit the same.
EXACT = ["code", "households", "covered_households", "household_share", "uncovered", "score"]


@pytest.fixture(scope="module")
def street(
    synthetic_district_path: Path,
) -> tuple[RoadGraph, gpd.GeoDataFrame, gpd.GeoDataFrame, np.ndarray, gpd.GeoDataFrame]:
    """The road graph, the first street's grids, its households (each with its grid code)
    and the district's facilities, all in metres."""

    def layer(name: str) -> gpd.GeoDataFrame:
        return gpd.read_file(synthetic_district_path, layer=name).to_crs(UTM)

    graph = RoadGraph.from_segments(layer("roads"))
    grids = layer("grids")
    index = AreaIndex(np.asarray(grids.geometry.array), list(grids["code"]), crs=grids.crs)
    homes = layer("households")
    xy = shapely.get_coordinates(np.asarray(homes.geometry.array))
    position = index.assign_points(xy[:, 0], xy[:, 1]).area
    first = sorted(grids["street_code"])[0]
    ours = np.flatnonzero((grids["street_code"] == first).to_numpy())
    inside = np.isin(position, ours)
    codes = grids["code"].to_numpy(dtype=object)[position[inside]]
    street_grids = grids.iloc[ours].reset_index(drop=True)
    return graph, street_grids, homes[inside].reset_index(drop=True), codes, layer("facilities")


@pytest.mark.parametrize("kind", ["school", "clinic", "community_centre"])
def test_a_street_walks_from_fewer_facilities_and_answers_the_same(
    street: tuple[RoadGraph, gpd.GeoDataFrame, gpd.GeoDataFrame, np.ndarray, gpd.GeoDataFrame],
    kind: str,
) -> None:
    graph, grids, homes, codes, facilities = street
    of_kind = facilities[facilities["kind"] == kind].reset_index(drop=True)
    snap = graph.snap(np.asarray(homes.geometry.array))
    answers = [
        facility_coverage(
            graph,
            of_kind,
            grids,
            homes,
            minutes=10,
            household_grid=codes,
            household_snap=snap,
            capacity=of_kind["capacity"].to_numpy(),
            every_facility=every,
        )
        for every in (False, True)
    ]
    near, every = answers
    assert len(every.walked) == len(of_kind)
    assert 0 < len(near.walked) < len(of_kind)  # the filter drops some and keeps some
    assert int(every.grids["covered_households"].sum()) > 0
    pd.testing.assert_frame_equal(near.grids[EXACT], every.grids[EXACT], check_exact=True)
    # The roadside strip near the street is the same land, but its union is built from fewer
    # pieces (the far ones gone, pieces no longer merged with them), so its vertices and the
    # land share differ by the overlay's rounding: 1e-10 of a share, 1e-4 m² of a grid.
    # Exactly as much as adding one facility across the city changes them.
    assert (near.grids["area_share"] == 0).equals(every.grids["area_share"] == 0)
    np.testing.assert_allclose(near.grids["area_share"], every.grids["area_share"], atol=1e-9)
    apart = shapely.symmetric_difference(near.grids["covered"].array, every.grids["covered"].array)
    assert float(shapely.area(apart).max()) < 1e-3


def test_facilities_beyond_the_walk_and_the_strip_are_left_out() -> None:
    grids = gpd.GeoDataFrame({"code": ["G"]}, geometry=[shapely.box(0, 0, 100, 100)], crs=UTM)
    homes = gpd.GeoDataFrame(geometry=[shapely.Point(500, 50)], crs=UTM)
    # 700 m from the household: in; 760 and 800 m from the grid, farther from the household:
    # in, their strip (750 + 50 m) may reach the grid; 900 m from the grid: out.
    points = [(1200, 50), (-760, 50), (-900, 50), (50, -800)]
    facilities = gpd.GeoDataFrame(geometry=[shapely.Point(p) for p in points], crs=UTM)
    walked = facilities_in_reach(facilities, grids, homes, max_m=750.0, buffer_m=50.0)
    assert walked.tolist() == [0, 1, 3]
    walked = facilities_in_reach(facilities, grids, homes, max_m=700.0, buffer_m=50.0)
    assert walked.tolist() == [0]
