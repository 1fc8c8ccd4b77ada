"""Point → area assignment: ST_Covers semantics, the lowest-code tie-break, snapping.

Hand-drawn fixtures pin down each rule; property tests compare the fast engine with a slow,
obviously-correct reference (``shapely.covers`` and ``shapely.distance`` per area, plain loops)
on random tilings whose points sit exactly on vertices and edges, where fast paths go wrong.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from shapely.geometry import Polygon, box

from geo.assignment.index import AreaIndex, Assignment
from geo.errors import CRSError, InvalidGeometry, InvalidInput

UTM = "EPSG:32645"


def _squares() -> AreaIndex:
    """Four 100 m squares; codes chosen so the lowest code is *not* the first area given.

    200 +-------+-------+
        | C "d" | D "b" |
    100 +-------+-------+
        | A "c" | B "a" |
      0 +-------+-------+
        0      100     200

    Areas are given in the order A, B, C, D, so ``area`` indices are 0, 1, 2, 3.
    """
    return AreaIndex(
        [
            box(0, 0, 100, 100),
            box(100, 0, 200, 100),
            box(0, 100, 100, 200),
            box(100, 100, 200, 200),
        ],
        ["c", "a", "d", "b"],
    )


def _one(
    index: AreaIndex, x: float, y: float, **kw: float
) -> tuple[int, str | None, bool, float, str]:
    r = index.assign_points([x], [y], **kw)
    return int(r.area[0]), r.code[0], bool(r.snapped[0]), float(r.distance_m[0]), r.nearest_code[0]


@pytest.mark.parametrize(
    ("x", "y", "area", "code"),
    [
        pytest.param(50, 50, 0, "c", id="inside A"),
        pytest.param(150, 150, 3, "b", id="inside D"),
        pytest.param(100, 50, 1, "a", id="edge A|B -> a"),
        pytest.param(50, 100, 0, "c", id="edge A|C -> c"),
        pytest.param(150, 100, 1, "a", id="edge B|D -> a"),
        pytest.param(100, 150, 3, "b", id="edge C|D -> b"),
        pytest.param(100, 100, 1, "a", id="vertex of all four -> a"),
        pytest.param(0, 50, 0, "c", id="outer edge of A"),
        pytest.param(0, 0, 0, "c", id="outer corner of A"),
        pytest.param(200, 200, 3, "b", id="outer corner of D"),
        pytest.param(0, 100, 0, "c", id="outer vertex A|C -> c"),
    ],
)
def test_covered_points_follow_st_covers_and_lowest_code(
    x: float, y: float, area: int, code: str
) -> None:
    assert _one(_squares(), x, y) == (area, code, False, 0.0, code)


def test_outside_within_tolerance_is_snapped_to_nearest() -> None:
    assert _one(_squares(), -10, 50) == (0, "c", True, 10.0, "c")
    assert _one(_squares(), 150, 215) == (3, "b", True, 15.0, "b")


def test_outside_beyond_tolerance_reports_nearest_and_distance() -> None:
    assert _one(_squares(), -50, 50) == (-1, None, False, 50.0, "c")
    assert _one(_squares(), 230, 240) == (-1, None, False, 50.0, "b")  # 30-40-50 from corner


def test_snap_tolerance_is_a_keyword() -> None:
    assert _one(_squares(), -50, 50, snap_m=50.0)[:3] == (0, "c", True)
    assert _one(_squares(), -10, 50, snap_m=0.0)[:3] == (-1, None, False)


def test_equidistant_outside_point_goes_to_lowest_code() -> None:
    """(100, -30) is 30 m from the vertex A "c" and B "a" share; (100, 230) from C "d" / D "b".

    In both cases the lowest code is the area given *later*, so input order cannot pass.
    """
    assert _one(_squares(), 100, -30, snap_m=40.0) == (1, "a", True, 30.0, "a")
    assert _one(_squares(), 100, 230, snap_m=40.0) == (3, "b", True, 30.0, "b")
    assert _one(_squares(), 100, -30) == (-1, None, False, 30.0, "a")


def test_area_indices_refer_to_the_order_given() -> None:
    index = _squares()
    r = index.assign_points([50, 150, 50, 150], [50, 50, 150, 150])
    assert r.area.tolist() == [0, 1, 2, 3]
    assert r.code.tolist() == ["c", "a", "d", "b"]
    assert index.codes[r.area].tolist() == r.code.tolist()


def test_result_is_read_only_and_aligned() -> None:
    r = _squares().assign_points(np.array([50.0, -500.0]), np.array([50.0, 50.0]))
    assert isinstance(r, Assignment)
    assert len(r) == 2
    assert r.distance_m.tolist() == [0.0, 500.0]
    with pytest.raises(ValueError, match="read-only"):
        r.area[0] = 3


def test_no_points_gives_empty_result() -> None:
    r = _squares().assign_points([], [])
    assert len(r) == 0
    assert r.code.dtype == object


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_coordinates_are_rejected_with_their_index(bad: float) -> None:
    with pytest.raises(InvalidInput) as info:
        _squares().assign_points([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, bad, bad])
    assert info.value.field == "points"
    assert info.value.index == 2
    assert "1 more" in str(info.value)


def test_mismatched_or_non_numeric_coordinates_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="equal length"):
        _squares().assign_points([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInput, match="numbers"):
        _squares().assign_points(["a"], [1.0])
    with pytest.raises(InvalidInput) as info:
        _squares().assign_points([1.0], [1.0], snap_m=-1.0)
    assert info.value.field == "snap_m"


def test_unusable_areas_are_all_listed() -> None:
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    with pytest.raises(InvalidGeometry) as info:
        AreaIndex([box(0, 0, 1, 1), bowtie, shapely.Point(0, 0), Polygon()], ["a", "b", "c", "d"])
    assert info.value.index == 1
    assert "3 unusable" in str(info.value)
    assert "Point" in str(info.value)


def test_codes_must_be_unique_strings_one_per_area() -> None:
    with pytest.raises(InvalidInput) as info:
        AreaIndex([box(0, 0, 1, 1), box(1, 0, 2, 1)], ["a", "a"])
    assert (info.value.field, info.value.index) == ("codes", 1)
    with pytest.raises(InvalidInput, match="1 codes for 2 areas"):
        AreaIndex([box(0, 0, 1, 1), box(1, 0, 2, 1)], ["a"])
    with pytest.raises(InvalidInput, match="no areas"):
        AreaIndex([], [])


def test_distance_to_edge() -> None:
    index = _squares()
    assert index.distance_to_edge(50, 30) == 30.0
    assert index.distance_to_edge(100, 50) == 0.0
    assert index.distance_to_edge(-10, 50) == 10.0  # snapped: still measured to A's edge
    assert index.distance_to_edge(-50, 50) is None


def test_multipolygon_and_hole() -> None:
    """A "ring" area with a hole filled by "core", and a two-part area "twin".

    30 +-------------+     +--+
       |    ring     |     |tw|  twin: two 10 m squares at x 40–50
    20 |   +-----+   |     +--+
       |   |core |   |
    10 |   +-----+   |     +--+
       |             |     |tw|
     0 +-------------+     +--+
       0  10    20  30    40  50
    """
    ring = box(0, 0, 30, 30).difference(box(10, 10, 20, 20))
    twin = shapely.MultiPolygon([box(40, 0, 50, 10), box(40, 20, 50, 30)])
    index = AreaIndex([ring, box(10, 10, 20, 20), twin], ["ring", "core", "twin"])
    r = index.assign_points([15, 10, 5, 45, 45, 45], [15, 15, 5, 5, 25, 15], snap_m=0)
    assert r.code.tolist() == ["core", "core", "ring", "twin", "twin", None]
    assert r.nearest_code[5] == "twin"
    assert r.distance_m[5] == 5.0


def test_from_geodataframe_needs_a_metric_crs() -> None:
    frame = gpd.GeoDataFrame({"code": ["a"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(CRSError):
        AreaIndex.from_geodataframe(frame)
    with pytest.raises(InvalidInput, match="no column"):
        AreaIndex.from_geodataframe(frame.set_crs(UTM, allow_override=True), code_column="x")


def test_from_wgs84_measures_in_the_metric_crs() -> None:
    """A 1 km square in UTM 45N, stored in lon/lat, assigns and measures in metres again."""
    x0, y0 = 500_000.0, 5_050_000.0
    utm = gpd.GeoDataFrame(
        {"code": ["g1", "g2"]},
        geometry=[box(x0, y0, x0 + 1000, y0 + 1000), box(x0 + 1000, y0, x0 + 2000, y0 + 1000)],
        crs=UTM,
    )
    index = AreaIndex.from_wgs84(utm.to_crs("EPSG:4326"), epsg=32645)
    r = index.assign_points([x0 + 500, x0 + 1500, x0 - 100], [y0 + 500, y0 + 500, y0 + 500])
    assert r.code.tolist() == ["g1", "g2", None]
    assert r.distance_m[2] == pytest.approx(100.0, abs=0.01)
    with pytest.raises(CRSError):
        AreaIndex.from_wgs84(utm, epsg=32645)
    with pytest.raises(CRSError):
        AreaIndex.from_wgs84(utm.to_crs("EPSG:4326"), epsg=4326)
    with pytest.raises(CRSError, match="metres"):
        AreaIndex.from_wgs84(utm.to_crs("EPSG:4326"), epsg=2263)  # New York, US survey feet
    with pytest.raises(CRSError, match="unknown"):
        AreaIndex.from_wgs84(utm.to_crs("EPSG:4326"), epsg=999_999)


# --- the engine against a reference ------------------------------------------------------


def _reference(
    areas: list[Polygon],
    codes: list[str],
    xs: NDArray[np.float64],
    ys: NDArray[np.float64],
    snap_m: float,
) -> list[tuple[int, str | None, bool, float, str]]:
    """ST_Covers per area, lowest code on ties, nearest by brute force: slow but plain."""
    fresh = [shapely.from_wkb(shapely.to_wkb(a)) for a in areas]  # not prepared by the engine
    by_code = sorted(range(len(areas)), key=lambda i: codes[i])
    expected: list[tuple[int, str | None, bool, float, str]] = []
    for x, y in zip(xs, ys, strict=True):
        point = shapely.Point(x, y)
        covering = [i for i in by_code if shapely.covers(fresh[i], point)]
        if covering:
            i = covering[0]
            expected.append((i, codes[i], False, 0.0, codes[i]))
            continue
        dist = {i: float(shapely.distance(fresh[i], point)) for i in by_code}
        i = min(by_code, key=lambda j: (dist[j], codes[j]))
        if dist[i] <= snap_m:
            expected.append((i, codes[i], True, dist[i], codes[i]))
        else:
            expected.append((-1, None, False, dist[i], codes[i]))
    return expected


def _actual(r: Assignment) -> list[tuple[int, str | None, bool, float, str]]:
    return list(
        zip(
            r.area.tolist(),
            r.code.tolist(),
            r.snapped.tolist(),
            r.distance_m.tolist(),
            r.nearest_code.tolist(),
            strict=True,
        )
    )


def _boundary_points(areas: list[Polygon], rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Every vertex, plus ``n`` points interpolated along the boundaries (on or next to edges)."""
    vertices = shapely.get_coordinates(areas)
    lines = shapely.boundary(np.asarray(areas, dtype=object))
    which = rng.integers(0, len(areas), n)
    along = shapely.line_interpolate_point(lines[which], rng.random(n), normalized=True)
    return np.vstack([vertices, shapely.get_coordinates(along)])


@st.composite
def _tilings(draw: st.DrawFn) -> tuple[list[Polygon], list[str]]:
    """A random guillotine tiling of integer rectangles (exactly shared edges and vertices),
    shifted to UTM-sized coordinates, with some rectangles dropped to leave holes and gaps,
    and codes in a random order so code order differs from input order."""
    rects = [(0, 0, draw(st.integers(4, 30)), draw(st.integers(4, 30)))]
    for _ in range(draw(st.integers(0, 12))):
        i = draw(st.integers(0, len(rects) - 1))
        x0, y0, x1, y1 = rects[i]
        vertical = draw(st.booleans())
        lo, hi = (x0, x1) if vertical else (y0, y1)
        if hi - lo < 2:
            continue
        cut = draw(st.integers(lo + 1, hi - 1))
        rects[i : i + 1] = (
            [(x0, y0, cut, y1), (cut, y0, x1, y1)]
            if vertical
            else [(x0, y0, x1, cut), (x0, cut, x1, y1)]
        )
    keep = (
        [r for r in rects if not draw(st.booleans())]
        if len(rects) > 1 and draw(st.booleans())
        else rects
    )
    unit = draw(st.sampled_from([1.0, 7.0, 25.0]))
    ox, oy = 400_000.0, 5_000_000.0
    areas = [
        box(ox + a * unit, oy + b * unit, ox + c * unit, oy + d * unit)
        for a, b, c, d in keep or rects
    ]
    codes = draw(st.permutations([f"G{i:02d}" for i in range(len(areas))]))
    return areas, list(codes)


@settings(max_examples=60, deadline=None)
@given(tiling=_tilings(), seed=st.integers(0, 2**32 - 1), snap_m=st.sampled_from([0.0, 5.0, 20.0]))
def test_matches_reference_on_random_rectangle_tilings(
    tiling: tuple[list[Polygon], list[str]], seed: int, snap_m: float
) -> None:
    areas, codes = tiling
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = shapely.total_bounds(areas)
    pad = 0.3 * max(xmax - xmin, ymax - ymin)
    on_edges = _boundary_points(areas, rng, 40)
    # Crossings of the lines through all vertices, and midway between them: many land exactly
    # on an edge or a vertex (half-integers × unit are exact in floats).
    vx, vy = (np.unique(shapely.get_coordinates(areas)[:, k]) for k in (0, 1))
    vx, vy = (np.concatenate([v, (v[1:] + v[:-1]) / 2]) for v in (vx, vy))
    lattice = np.column_stack([rng.choice(vx, 60), rng.choice(vy, 60)])
    scattered = np.column_stack(
        [rng.uniform(xmin - pad, xmax + pad, 60), rng.uniform(ymin - pad, ymax + pad, 60)]
    )
    points = np.vstack([on_edges, lattice, scattered])
    xs, ys = points[:, 0], points[:, 1]
    index = AreaIndex(areas, codes)
    expected = _reference(areas, codes, xs, ys, snap_m)
    assert _actual(index.assign_points(xs, ys, snap_m=snap_m)) == expected
    # One point at a time (``/locate``): the covering area alone, the same rule.
    one = [index.covering_area(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    assert one == [-1 if snapped else area for area, _, snapped, _, _ in expected]


def _voronoi_tiling(seed: int, n: int) -> tuple[list[Polygon], list[str]]:
    """Voronoi cells of random seeds clipped to a 3 km × 2 km box: irregular shared edges."""
    rng = np.random.default_rng(seed)
    frame = box(300_000, 5_040_000, 303_000, 5_042_000)
    seeds = shapely.multipoints(
        np.column_stack([rng.uniform(300_000, 303_000, n), rng.uniform(5_040_000, 5_042_000, n)])
    )
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame
    )
    areas = [shapely.segmentize(c, 40.0) for c in cells]
    codes = [f"{rng.integers(10**6):06d}-{i}" for i in range(len(areas))]
    return areas, codes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_reference_on_voronoi_tiling(seed: int) -> None:
    areas, codes = _voronoi_tiling(seed, 40)
    rng = np.random.default_rng(seed + 100)
    on_edges = _boundary_points(areas, rng, 300)
    scattered = np.column_stack(
        [rng.uniform(299_800, 303_200, 400), rng.uniform(5_039_800, 5_042_200, 400)]
    )
    points = np.vstack([on_edges, scattered])
    result = AreaIndex(areas, codes).assign_points(points[:, 0], points[:, 1])
    assert _actual(result) == _reference(areas, codes, points[:, 0], points[:, 1], 20.0)
    # Every vertex lies on at least one area, so it must be covered (not merely snapped).
    n_vertices = len(shapely.get_coordinates(areas))
    assert not result.snapped[:n_vertices].any()
    assert (result.area[:n_vertices] >= 0).all()


def test_many_points_agree_with_per_area_covers() -> None:
    """Enough points that most are settled by whole cells, not by a point-in-polygon test."""
    areas, codes = _voronoi_tiling(7, 60)
    rng = np.random.default_rng(7)
    xs = rng.uniform(299_900, 303_100, 50_000)
    ys = rng.uniform(5_039_900, 5_042_100, 50_000)
    result = AreaIndex(areas, codes).assign_points(xs, ys, snap_m=0)
    points = shapely.points(xs, ys)
    expected = np.full(len(xs), -1)
    for i in sorted(range(len(areas)), key=lambda i: codes[i], reverse=True):
        expected[shapely.covers(shapely.from_wkb(shapely.to_wkb(areas[i])), points)] = i
    np.testing.assert_array_equal(result.area, expected)
    assert (expected >= 0).mean() > 0.8  # the test really is mostly about covered points


def test_far_apart_areas_still_assign_exactly() -> None:
    """Two 10 m squares 80 km apart: cells are capped, so they are far larger than the areas
    and every point takes the exact path instead of the cell shortcut."""
    index = AreaIndex([box(0, 0, 10, 10), box(80_000, 80_000, 80_010, 80_010)], ["b", "a"])
    r = index.assign_points([5, 80_005, 10, 40_000], [5, 80_010, 0, 40_000], snap_m=0)
    assert r.code.tolist() == ["b", "a", "b", None]
    assert r.nearest_code[3] == "b"  # ~56.55 km vs ~56.57 km away
