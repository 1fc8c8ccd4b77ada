"""validate_geometries: every bad row named once, every good row kept, repairs only when safe."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)

from geo.district.validate import validate_geometries
from geo.errors import CRSError, InvalidInput

SQUARE = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
FAR_SQUARE = Polygon([(5, 5), (6, 5), (6, 6), (5, 6)])

BOWTIE = Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
"""Two triangles meeting at (1, 1); the signed areas cancel, so the repair changes the area::

    (0,2) *   * (2,2)
          |\\ /|
          | X |
          |/ \\|
    (0,0) *   * (2,0)
"""

SELF_TOUCHING = Polygon([(0, 0), (5, 0), (4, 2), (6, 2), (5, 0), (10, 0), (10, 10), (0, 10)])
"""A 10 x 10 square whose ring dips into a small triangle touching the bottom edge at (5, 0)::

    +-------------------+
    |                   |
    |      +-----+      |
    |       \\   /       |
    +---------*---------+
            (5,0)

The triangle is an "inverted hole": repaired into a proper hole, the area stays 98.
"""


def frame(*geoms: object, **columns: list[object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=list(geoms), crs="EPSG:4326")


def test_good_rows_pass_unchanged_with_their_index() -> None:
    gdf = frame(SQUARE, FAR_SQUARE, source_id=["a", "b"])
    gdf.index = [10, 20]
    good, rejects = validate_geometries(gdf, expected="Polygon", source="t")
    assert rejects == []
    assert list(good.index) == [10, 20]
    assert good.crs == "EPSG:4326"
    assert good.geometry.equals(gdf.geometry)


def test_missing_and_empty_geometries_are_named() -> None:
    gdf = frame(SQUARE, None, Polygon(), source_id=["a", "b", "c"])
    good, rejects = validate_geometries(gdf, expected="Polygon", source="t")
    assert list(good["source_id"]) == ["a"]
    assert [(r.row, r.source_id, r.reason) for r in rejects] == [
        (2, "b", "no geometry"),
        (3, "c", "empty geometry"),
    ]


def test_wrong_type_names_both_types() -> None:
    gdf = frame(Point(0, 0), GeometryCollection([SQUARE]))
    good, rejects = validate_geometries(gdf, expected="Polygon", source="t")
    assert good.empty
    assert [r.reason for r in rejects] == [
        "expected Polygon, got Point",
        "expected Polygon, got GeometryCollection",
    ]


def test_single_part_multi_geometries_become_single() -> None:
    gdf = frame(MultiPolygon([SQUARE]), source_id=["a"])
    good, rejects = validate_geometries(gdf, expected="Polygon", source="t")
    assert rejects == []
    assert good.geometry.iloc[0].geom_type == "Polygon"
    points, _ = validate_geometries(frame(MultiPoint([(1, 2)])), expected="Point", source="t")
    assert points.geometry.iloc[0].equals(Point(1, 2))


def test_multipolygon_with_several_parts_is_refused_as_not_contiguous() -> None:
    gdf = frame(MultiPolygon([SQUARE, FAR_SQUARE]), source_id=["c1"])
    good, rejects = validate_geometries(gdf, expected="Polygon", source="t")
    assert good.empty
    assert rejects[0].source_id == "c1"
    assert "2 separate parts" in rejects[0].reason
    assert "contiguous" in rejects[0].reason


def test_multipoint_with_several_points_is_refused() -> None:
    _, rejects = validate_geometries(
        frame(MultiPoint([(0, 0), (1, 1)])), expected="Point", source="t"
    )
    assert rejects[0].reason == "MultiPoint with 2 points; one point per row expected"


def test_multilinestring_becomes_one_row_per_part_with_suffixed_ids() -> None:
    lines = MultiLineString([[(0, 0), (1, 1)], [(2, 2), (3, 3)]])
    gdf = frame(LineString([(0, 1), (1, 0)]), lines, source_id=["r1", "r2"], _row=[5, 6])
    good, rejects = validate_geometries(gdf, expected="LineString", source="t")
    assert rejects == []
    assert list(good["source_id"]) == ["r1", "r2#1", "r2#2"]
    assert list(good.index) == [0, 1, 1]  # the parts keep their row's index label
    assert list(good["_row"]) == [5, 6, 6]
    assert good.geometry.iloc[2].equals(LineString([(2, 2), (3, 3)]))


def test_bowtie_is_not_repaired_because_the_repair_changes_it_too_much() -> None:
    assert not BOWTIE.is_valid
    good, rejects = validate_geometries(
        frame(BOWTIE, source_id=["b"]), expected="Polygon", source="t"
    )
    assert good.empty
    assert "Self-intersection" in rejects[0].reason
    assert "not repaired" in rejects[0].reason


def test_self_touching_ring_is_repaired_into_a_polygon_with_a_hole() -> None:
    assert not SELF_TOUCHING.is_valid
    good, rejects = validate_geometries(frame(SELF_TOUCHING), expected="Polygon", source="t")
    assert rejects == []
    repaired = good.geometry.iloc[0]
    assert repaired.is_valid
    assert repaired.geom_type == "Polygon"
    assert len(repaired.interiors) == 1
    assert repaired.area == pytest.approx(98.0)


def test_repair_that_changes_the_area_by_a_percent_or_more_is_refused() -> None:
    # a spike that runs back along itself: repairing drops it and a sliver, 101 -> 99 (2 %)
    spike = Polygon(
        [(0, 0), (10, 0), (10, 10), (5, 10), (5, 5), (6, 6), (4, 6), (5, 5), (5, 10), (0, 10)]
    )
    _, rejects = validate_geometries(frame(spike), expected="Polygon", source="t")
    assert "changes the area by 2.0%" in rejects[0].reason


def test_invalid_line_is_refused() -> None:
    _, rejects = validate_geometries(
        frame(LineString([(1, 1), (1, 1)])), expected="LineString", source="t"
    )
    assert rejects[0].reason.startswith("invalid LineString: Too few points")


def test_out_of_range_coordinates_name_the_row_and_the_value() -> None:
    gdf = frame(Point(10, 10), Point(200, 10), Point(100, -91.5), _row=[2, 3, 4])
    good, rejects = validate_geometries(gdf, expected="Point", source="t")
    assert list(good["_row"]) == [2]
    assert [str(r) for r in rejects] == [
        "row 3: longitude 200 is out of range [-180, 180]",
        "row 4: latitude -91.5 is out of range [-90, 90]",
    ]


def test_non_finite_coordinates_are_refused() -> None:
    gdf = frame(Point(float("inf"), 1), Point(1, float("nan")))
    _, rejects = validate_geometries(gdf, expected="Point", source="t")
    assert [r.reason for r in rejects] == [
        "longitude is infinite (inf)",
        "latitude is not a number (NaN)",
    ]


def test_a_layer_with_lat_and_lon_swapped_is_refused_row_by_row() -> None:
    # Beijing written as (lat, lon): every "latitude" is about 116
    gdf = frame(Point(39.9, 116.4), Point(39.95, 116.3), Point(40.0, 116.5))
    good, rejects = validate_geometries(gdf, expected="Point", source="t")
    assert good.empty
    assert [r.row for r in rejects] == [1, 2, 3]
    assert all("looks like lat/lon are swapped" in r.reason for r in rejects)


def test_one_swapped_row_in_a_sound_layer_gets_a_hint() -> None:
    gdf = frame(Point(116.4, 39.9), Point(116.3, 39.95), Point(39.9, 116.4))
    good, rejects = validate_geometries(gdf, expected="Point", source="t")
    assert len(good) == 2
    assert rejects[0].row == 3
    assert rejects[0].reason == (
        "latitude 116.4 is out of range [-90, 90]; looks like lat/lon are swapped"
    )


def test_z_values_are_dropped() -> None:
    good, _ = validate_geometries(frame(Point(1, 2, 3)), expected="Point", source="t")
    assert not shapely.has_z(good.geometry.iloc[0])


def test_a_projected_frame_is_refused() -> None:
    gdf = frame(Point(0, 0)).set_crs(3763, allow_override=True)
    with pytest.raises(CRSError, match="EPSG:3763"):
        validate_geometries(gdf, expected="Point", source="t")


def test_an_unknown_expected_type_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        validate_geometries(frame(Point(0, 0)), expected="Circle", source="t")  # type: ignore[arg-type]
    assert err.value.field == "expected"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.floats(allow_nan=True, allow_infinity=True, width=32),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_every_point_is_either_kept_or_rejected_once(coords: list[tuple[float, float]]) -> None:
    gdf = frame(*(Point(x, y) for x, y in coords))
    good, rejects = validate_geometries(gdf, expected="Point", source="t")
    kept = set(good.index + 1)
    refused = [r.row for r in rejects]
    assert len(refused) == len(set(refused))
    assert kept.isdisjoint(refused)
    assert kept | set(refused) == set(range(1, len(coords) + 1))
    for x, y in good.geometry.get_coordinates().itertuples(index=False):
        assert -180 <= x <= 180
        assert -90 <= y <= 90
