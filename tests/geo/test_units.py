"""Atomic units: blocks from roads, slivers, lots, entrances, the adjacency graph.

Hand-drawn fixtures live in UTM 45N (metres), so areas and lengths read straight off the
pictures. :func:`lattice` is shared with the splitter and metrics tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, box

from geo.errors import CRSError, InvalidInput
from geo.planning.units import ENTRANCE, LOT, ROAD, Detail, Units, build_units, units_from_frame

UTM = "EPSG:32645"


def lattice(
    households: Sequence[int],
    *,
    n: int = 3,
    size: float = 100.0,
    detail: Detail = "entrances",
    buildings_per_block: int = 1,
) -> Units:
    """An n × n block lattice: a square community crossed by roads every ``size`` metres,
    one small building (or a row of them) in the middle of each block holding
    ``households[k]`` (blocks numbered row by row from the north-west, as units are).

    300 +-----+-----+-----+      ─ and │ inside the square are roads;
        |  0  |  1  |  2  |      the outer edge is the community boundary.
    200 +-----+-----+-----+
        |  3  |  4  |  5  |
    100 +-----+-----+-----+
        |  6  |  7  |  8  |
      0 +-----+-----+-----+
        0    100   200   300
    """
    side = n * size
    community = gpd.GeoDataFrame({"code": ["C"]}, geometry=[box(0, 0, side, side)], crs=UTM)
    lines = [LineString([(k * size, 0), (k * size, side)]) for k in range(1, n)]
    lines += [LineString([(0, k * size), (side, k * size)]) for k in range(1, n)]
    roads = gpd.GeoDataFrame({"road_id": range(len(lines))}, geometry=lines, crs=UTM)
    geoms, counts = [], []
    for k, h in enumerate(households):
        row, col = divmod(k, n)
        x0, y0 = col * size, side - (row + 1) * size
        shares = np.full(buildings_per_block, h // buildings_per_block)
        shares[: h % buildings_per_block] += 1
        width = size * 0.6 / buildings_per_block
        for b in range(buildings_per_block):
            left = x0 + size * 0.2 + b * width
            geoms.append(box(left + 2, y0 + 40, left + width - 2, y0 + 60))
            counts.append(int(shares[b]))
    buildings = gpd.GeoDataFrame(
        {"building_id": [f"B{k}" for k in range(len(geoms))], "households": counts},
        geometry=geoms,
        crs=UTM,
    )
    return build_units(community, roads, buildings, detail=detail)


def _edges(units: Units) -> set[tuple[int, int, int]]:
    g = units.graph
    return set(zip(g.u.tolist(), g.v.tolist(), g.kind.tolist(), strict=True))


def test_lattice_blocks_tile_the_community_with_road_edges() -> None:
    units = lattice([10] * 9)
    frame = units.frame
    assert len(units) == 9
    assert frame["level"].eq("block").all()
    assert frame["area_m2"].sum() == pytest.approx(90_000)
    assert frame["households"].tolist() == [10] * 9
    assert frame["block"].tolist() == list(range(9))  # north-west first, row by row
    # Rook adjacency of a 3 × 3 lattice: 12 shared sides of 100 m, all roads.
    assert len(units.graph) == 12
    assert np.allclose(units.graph.length_m, 100.0)
    assert np.allclose(units.graph.road_m, units.graph.length_m)
    assert {(0, 1, ROAD), (0, 3, ROAD), (4, 5, ROAD), (7, 8, ROAD)} <= _edges(units)
    assert (0, 4, ROAD) not in _edges(units)  # a corner is not an adjacency


def test_sliver_between_nearly_parallel_roads_is_merged() -> None:
    """A road 0.3 m inside the west edge cuts off a 0.3 m × 100 m sliver (30 m²).

    100 +|----+
        ||    |
      0 +|----+
        0 0.3 100
    """
    community = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs=UTM)
    roads = gpd.GeoDataFrame(geometry=[LineString([(0.3, 0), (0.3, 100)])], crs=UTM)
    buildings = gpd.GeoDataFrame({"households": [5]}, geometry=[box(40, 40, 60, 60)], crs=UTM)
    units = build_units(community, roads, buildings)
    assert len(units) == 1
    assert units.slivers_merged == 1
    assert "sliver" in units.notes[0]
    assert units.frame["area_m2"].iloc[0] == pytest.approx(10_000)


def test_lots_split_a_block_between_its_buildings() -> None:
    """Two buildings in one block give two lots that tile it, joined by a lot edge."""
    units = lattice([20], n=1, buildings_per_block=2)
    frame = units.frame
    assert frame["level"].tolist() == ["lot", "lot"]
    assert frame["households"].tolist() == [10, 10]
    assert frame["area_m2"].sum() == pytest.approx(10_000)
    assert _edges(units) == {(0, 1, LOT)}
    assert units.graph.road_m.tolist() == [0.0]


def test_large_building_is_split_into_entrances_and_reported() -> None:
    """70 households → ceil(70 / 30) = 3 entrances; equal slabs of footprint → 24/23/23."""
    units = lattice([70], n=1)
    frame = units.frame
    assert frame["level"].tolist() == ["entrance"] * 3
    assert sorted(frame["households"].tolist()) == [23, 23, 24]
    assert frame["area_m2"].sum() == pytest.approx(10_000)
    assert {k for _, _, k in _edges(units)} == {ENTRANCE}
    [split] = units.entrance_splits.itertuples()
    assert (split.building_id, split.households, split.entrances) == ("B0", 70, 3)


def test_detail_blocks_keeps_blocks_whole() -> None:
    units = lattice([70, 20, 0, 0], n=2, detail="blocks", buildings_per_block=2)
    assert len(units) == 4
    assert units.frame["households"].tolist() == [70, 20, 0, 0]
    assert units.entrance_splits.empty


def test_household_points_decide_the_counts_and_are_attached_to_units() -> None:
    """Two blocks with a building each; the fourth point lies in no building."""
    community = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs=UTM)
    roads = gpd.GeoDataFrame(geometry=[LineString([(50, 0), (50, 100)])], crs=UTM)
    buildings = gpd.GeoDataFrame(
        {"building_id": ["W", "E"], "households": [999, 999]},
        geometry=[box(10, 40, 30, 60), box(70, 40, 90, 60)],
        crs=UTM,
    )
    points = gpd.GeoDataFrame(
        {"building_id": ["W", "W", "E", None]},
        geometry=shapely.points([(20, 50), (21, 50), (80, 50), (60, 10)]),
        crs=UTM,
    )
    units = build_units(community, roads, buildings, points)
    assert units.frame["households"].tolist() == [2, 2]  # the loose point is counted by place
    assert units.household_unit is not None
    assert units.household_unit.tolist() == [0, 0, 1, 1]


def test_geographic_and_mismatched_crs_are_refused() -> None:
    community = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    roads = gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)])], crs="EPSG:4326")
    buildings = gpd.GeoDataFrame({"households": [1]}, geometry=[box(0.4, 0.4, 0.6, 0.6)])
    with pytest.raises(CRSError, match="not a projected metric CRS"):
        build_units(community, roads, buildings.set_crs(4326))
    with pytest.raises(CRSError, match="buildings is in"):
        build_units(community.to_crs(UTM), roads.to_crs(UTM), buildings.set_crs(32644))


def test_missing_households_column_is_refused() -> None:
    community = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs=UTM)
    roads = gpd.GeoDataFrame(geometry=[LineString([(5, 0), (5, 10)])], crs=UTM)
    buildings = gpd.GeoDataFrame(geometry=[box(1, 1, 2, 2)], crs=UTM)
    with pytest.raises(InvalidInput, match="households"):
        build_units(community, roads, buildings)


def test_units_from_frame_builds_the_graph_of_given_polygons() -> None:
    """Three squares in a row; the two on the right share a block (a lot edge).

    +---+---+---+
    | a | b   c |   a│b is a road, b:c is inside block "east"
    +---+---+---+
    """
    frame = gpd.GeoDataFrame(
        {"households": [1, 2, 3], "block": ["west", "east", "east"]},
        geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10), box(20, 0, 30, 10)],
        crs=UTM,
    )
    units = units_from_frame(frame, block_col="block")
    assert _edges(units) == {(0, 1, ROAD), (1, 2, LOT)}
    with pytest.raises(InvalidInput, match="whole numbers"):
        units_from_frame(frame.assign(households=[1, -2, 3]))


def test_synthetic_oversized_community_units_tile_it(synthetic_district_path: Path) -> None:
    communities = gpd.read_file(synthetic_district_path, layer="communities").to_crs(32645)
    community = communities[communities["code"] == "S04-C11"]
    roads = gpd.read_file(synthetic_district_path, layer="roads", bbox=_bbox(community))
    buildings = gpd.read_file(synthetic_district_path, layer="buildings", bbox=_bbox(community))
    buildings = buildings[buildings["grid_code"].str.startswith("S04-C11")]
    units = build_units(community, roads.to_crs(32645), buildings.to_crs(32645))
    assert units.households == int(community["households"].iloc[0])
    assert units.frame["area_m2"].sum() == pytest.approx(community.area.iloc[0], rel=1e-6)
    assert units.frame["households"].max() <= 30  # entrances keep every unit ≤ the band width
    assert units.frame.geometry.geom_type.eq("Polygon").all()
    assert len(units.entrance_splits) > 0


def _bbox(frame: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    """The frame's extent in WGS-84, grown a little, to read only nearby features."""
    x0, y0, x1, y1 = frame.to_crs(4326).total_bounds
    return (x0 - 0.002, y0 - 0.002, x1 + 0.002, y1 + 0.002)
