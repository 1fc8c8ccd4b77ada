"""The planner's domain on real shapes: units from roads, a split inside the band, moves.

A quick guard that the whole chain holds on the synthetic district's smallest oversized
community (S04-C11, 4,313 households in 10 grids of 315-528): every grid inside 150-180 and
contiguous, deterministic for a seed, and a move that breaks the band refused with its reason.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from geo.errors import InvalidInput
from geo.planning.metrics import move_unit
from geo.planning.split import SplitResult, split_community
from geo.planning.units import Units, build_units, units_from_frame

UTM45N = 32645
CODE = "S04-C11"


@pytest.fixture(scope="module")
def units(synthetic_district_path: Path) -> Units:
    read = lambda layer, **kw: gpd.read_file(synthetic_district_path, layer=layer, **kw)  # noqa: E731
    community = read("communities", where=f"code = '{CODE}'").to_crs(UTM45N)
    area = community.geometry.iloc[0].buffer(50)
    bbox = tuple(gpd.GeoSeries([area], crs=UTM45N).to_crs(4326).total_bounds)
    roads = read("roads", bbox=bbox).to_crs(UTM45N)
    buildings = read("buildings", bbox=bbox).to_crs(UTM45N)
    households = read("households", bbox=bbox).to_crs(UTM45N)
    inside = households[households.within(community.geometry.iloc[0])]
    return build_units(community, roads, buildings, inside[["geometry"]])


@pytest.fixture(scope="module")
def split(units: Units) -> SplitResult:
    return split_community(units, min_households=150, max_households=180, seed=1)


def test_every_grid_is_in_the_band_and_contiguous(units: Units, split: SplitResult) -> None:
    assert units.households == 4313
    result = split
    grids = result.metrics.grids
    assert result.metrics.in_band_share == 1.0
    assert grids["contiguous"].all()
    assert grids["households"].between(150, 180).all()
    assert int(grids["households"].sum()) == 4313
    assert 24 <= len(grids) <= 28  # 4313 / 180 ≈ 24 … 4313 / 150 ≈ 28


def test_same_seed_same_split() -> None:
    """
    a 6 × 5 lattice of 100 m blocks with 20-40 households each (seeded), split twice
    """
    rng = np.random.default_rng(0)
    cells = [
        box(x * 100, y * 100, x * 100 + 100, y * 100 + 100) for x in range(6) for y in range(5)
    ]
    frame = gpd.GeoDataFrame(
        {"households": rng.integers(20, 41, len(cells))}, geometry=cells, crs=UTM45N
    )
    lattice = units_from_frame(frame)
    a = split_community(lattice, seed=3)
    b = split_community(lattice, seed=3)
    pd.testing.assert_series_equal(a.assignment, b.assignment)
    assert a.metrics.in_band_share == 1.0


def test_move_that_breaks_the_band_is_refused_with_reasons(
    units: Units, split: SplitResult
) -> None:
    result = split
    nbrs = units.graph.neighbours()
    assignment = result.assignment
    for unit in range(len(units)):
        here = assignment.iloc[unit]
        others = {assignment.iloc[v] for v, _ in nbrs[unit]} - {here}
        if others and units.frame["households"].iloc[unit] > 0:
            target = sorted(others)[0]
            break
    moved = move_unit(units, assignment, unit, target)
    if not moved.moved:
        assert moved.reason
        forced = move_unit(units, assignment, unit, target, force=True)
        assert forced.moved
        assert forced.assignment.iloc[unit] == target


def test_a_community_under_the_minimum_is_one_flagged_grid() -> None:
    """
    +---+---+
    | 40| 50|   two blocks, 90 households: under the 150 minimum
    +---+---+
    """
    frame = gpd.GeoDataFrame(
        {"households": [40, 50]}, geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)], crs=UTM45N
    )
    result = split_community(units_from_frame(frame))
    assert len(result.metrics.grids) == 1
    assert {i.kind for i in result.issues} == {"below_min"}
    assert result.flagged


def test_min_above_max_is_refused() -> None:
    frame = gpd.GeoDataFrame({"households": [160]}, geometry=[box(0, 0, 100, 100)], crs=UTM45N)
    with pytest.raises(InvalidInput):
        split_community(units_from_frame(frame), min_households=200, max_households=180)
