"""Topology checks on hand-drawn tilings and on the synthetic district.

Every fixture is drawn on a 20 m × 20 m parent ``P`` in UTM 45N, so areas read straight off
the picture in square metres.
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from shapely.geometry import Polygon, box

from geo.district.topology import (
    TopologyIssue,
    check_hierarchy,
    check_level,
    issues_to_geodataframe,
)
from geo.errors import CRSError, InvalidInput

UTM = "EPSG:32645"


def _children(polys: dict[str, Polygon], parent: str = "P") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": list(polys), "parent_code": parent}, geometry=list(polys.values()), crs=UTM
    )


def _parent() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": ["P"]}, geometry=[box(0, 0, 20, 20)], crs=UTM)


def _check(polys: dict[str, Polygon]) -> list[TopologyIssue]:
    return check_level(_children(polys), _parent(), child_level="grid")


def _kinds(issues: list[TopologyIssue]) -> list[str]:
    return [i.kind for i in issues]


def _tiling() -> dict[str, Polygon]:
    """Four 10 m squares tiling P exactly.

    20 +----+----+
       | C  | D  |
    10 +----+----+
       | A  | B  |
     0 +----+----+
       0   10   20
    """
    return {
        "A": box(0, 0, 10, 10),
        "B": box(10, 0, 20, 10),
        "C": box(0, 10, 10, 20),
        "D": box(10, 10, 20, 20),
    }


def test_clean_tiling_has_no_issues() -> None:
    assert _check(_tiling()) == []


def test_overlap_is_found_with_its_area_and_place() -> None:
    """B reaches 2 m into A: a 2 m × 10 m overlap.

    10 +-----+-+----+
       | A   |#| B  |
     0 +-----+-+----+
       0     8 10   20
    """
    polys = _tiling() | {"B": box(8, 0, 20, 10)}
    [issue] = _check(polys)
    assert issue.kind == "overlap"
    assert issue.codes == ("A", "B")
    assert issue.area_m2 == pytest.approx(20.0)
    assert box(8, 0, 10, 10).contains(issue.location)


def test_gap_is_found_with_its_area_and_place() -> None:
    """D starts at x = 12, leaving a 2 m × 10 m strip of P uncovered.

    20 +----+--+--+
       | C  |..|D |
    10 +----+--+--+
       0   10  12 20
    """
    polys = _tiling() | {"D": box(12, 10, 20, 20)}
    [issue] = _check(polys)
    assert issue.kind == "gap"
    assert issue.codes == ("P",)
    assert issue.area_m2 == pytest.approx(20.0)
    assert box(10, 10, 12, 20).contains(issue.location)


def _polygon(geom: object) -> Polygon:
    assert isinstance(geom, Polygon)
    return geom


@pytest.mark.parametrize("matched", [True, False], ids=["edges matched", "edges not matched"])
def test_a_hole_among_children_is_one_gap_however_their_edges_meet(matched: bool) -> None:
    """A 2 m square hole in the middle of P, between the four children. With their shared
    edges matched vertex for vertex they are a valid coverage (GEOS's coverage union);
    with a vertex on B's edge that A lacks they are not (the general union): one gap of
    4 m² either way.

    20 +----+----+
       | C  | D  |
    11 +--+-+-+--+
       |  |##|  |      the hole: 9–11 × 9–11
     9 +--+-+-+--+
       | A  | B  |
     0 +----+----+
    """
    hole = box(9, 9, 11, 11)
    polys = {code: _polygon(shapely.difference(p, hole)) for code, p in _tiling().items()}
    if not matched:
        b = polys["B"]
        polys["B"] = Polygon([(10, 0), (20, 0), (20, 10), (11, 10), (11, 9), (10, 9), (10, 4)])
        assert polys["B"].equals(b)
    assert bool(shapely.coverage_is_valid(list(polys.values()))) is matched
    [issue] = _check(polys)
    assert issue.kind == "gap" and issue.codes == ("P",)
    assert issue.area_m2 == pytest.approx(4.0)
    assert hole.contains(issue.location)


def test_child_sticking_out_of_its_parent() -> None:
    """D runs 5 m past the right edge of P.

    20 +----+----+====+
       | C  | D  : D  |
    10 +----+----+====+
       0   10   20   25
    """
    polys = _tiling() | {"D": box(10, 10, 25, 20)}
    [issue] = _check(polys)
    assert issue.kind == "outside_parent"
    assert issue.codes == ("D", "P")
    assert issue.area_m2 == pytest.approx(50.0)
    assert box(20, 10, 25, 20).contains(issue.location)


def test_thin_overlap_is_a_sliver_not_an_overlap() -> None:
    """B reaches 0.1 m into A: 1 m² but 10 m long, a digitising sliver (Polsby-Popper ~0.03).

    10 +------++----+
       | A    || B  |
     0 +------++----+
       0   9.9 10   20
    """
    polys = _tiling() | {"B": box(9.9, 0, 20, 10)}
    [issue] = _check(polys)
    assert issue.kind == "sliver"
    assert issue.detail.startswith("overlap")
    assert issue.area_m2 == pytest.approx(1.0)


def test_tiny_child_is_a_sliver() -> None:
    """A fifth child E of 0.5 m² sits in the corner of D (and so overlaps D by 0.5 m²).

    20 +----+---+E
       | C  | D  |
    """
    polys = _tiling() | {"E": box(19.5, 19, 20, 20)}
    issues = _check(polys)
    assert _kinds(issues) == ["sliver", "sliver"]
    child = next(i for i in issues if i.detail.startswith("child"))
    assert child.codes == ("E",)
    assert child.area_m2 == pytest.approx(0.5)


def test_noise_below_tolerance_is_ignored() -> None:
    polys = _tiling() | {"B": box(10 - 1e-4, 0, 20, 10)}  # a 0.001 m² overlap
    assert _check(polys) == []


def test_bowtie_is_invalid_and_the_other_checks_still_run() -> None:
    """A is drawn as a bowtie: its two triangles meet at (5, 5) and leave half of A's square
    (the top and bottom triangles) uncovered.

    10 +\\  /+
       | \\/ |
       | /\\ |
     0 +/  \\+
       0    10
    """
    polys = _tiling() | {"A": Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])}
    issues = _check(polys)
    assert _kinds(issues) == ["invalid", "gap", "gap"]
    assert "Self-intersection" in issues[0].detail
    assert issues[0].codes == ("A",)
    assert sum(i.area_m2 for i in issues[1:]) == pytest.approx(50.0)


def test_without_parents_only_enclosed_holes_are_gaps() -> None:
    """Eight 1 m cells around a missing centre; the open outside is not a gap.

    3 +--+--+--+
      |  |  |  |
    2 +--+--+--+
      |  |..|  |
    1 +--+--+--+
      |  |  |  |
    0 +--+--+--+
    """
    cells = {f"{x}{y}": box(x, y, x + 1, y + 1) for x in range(3) for y in range(3)}
    del cells["11"]
    [issue] = check_level(_children(cells), None, child_level="street", sliver_area_m2=0.5)
    assert issue.kind == "gap"
    assert issue.area_m2 == pytest.approx(1.0)


def test_geographic_or_missing_crs_is_refused() -> None:
    with pytest.raises(CRSError, match="not a projected metric CRS"):
        check_level(_children(_tiling()).to_crs(4326), None, child_level="grid")
    with pytest.raises(CRSError, match="no CRS"):
        check_level(_children(_tiling()).set_crs(None, allow_override=True), None, child_level="g")


def test_unknown_parent_codes_are_listed_together() -> None:
    children = _children(_tiling())
    children.loc[[0, 3], "parent_code"] = ["X", "Y"]
    with pytest.raises(InvalidInput, match="unknown parent codes: X, Y"):
        check_level(children, _parent(), child_level="grid")


def test_issues_export_to_geojson() -> None:
    issues = _check(_tiling() | {"B": box(8, 0, 20, 10), "D": box(12, 10, 20, 20)})
    frame = issues_to_geodataframe(issues, UTM)
    assert list(frame["kind"]) == ["overlap", "gap"]
    assert list(frame["codes"]) == ["A,B", "P"]
    assert '"kind": "overlap"' in frame.to_crs(4326).to_json()
    assert issues_to_geodataframe([], UTM).empty


@pytest.fixture(scope="module")
def synthetic_levels(
    synthetic_district_path: Path,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    streets, communities, grids = (
        pyogrio.read_dataframe(synthetic_district_path, layer=layer).to_crs(UTM)
        for layer in ("streets", "communities", "grids")
    )
    return streets, communities, grids


def test_synthetic_district_tiles_exactly(
    synthetic_levels: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame],
) -> None:
    """The README guarantees exact tiling; 4 streets, 74 communities and 783 grids must be
    checked quickly (sibling pairs from an STRtree, not all pairs)."""
    streets, communities, grids = synthetic_levels
    district = shapely.union_all(streets.geometry.values)
    started = time.perf_counter()
    issues = check_hierarchy(streets, communities, grids, district=district, min_area_m2=1.0)
    elapsed = time.perf_counter() - started
    assert issues == []
    assert elapsed < 2.0


def test_synthetic_district_moved_grid_is_caught(
    synthetic_levels: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame],
) -> None:
    """Shift one grid 50 m east: it now overlaps a sibling and leaves a gap behind."""
    streets, communities, grids = synthetic_levels
    moved = grids.copy()
    moved.loc[0, "geometry"] = shapely.affinity.translate(moved.geometry.iloc[0], xoff=50)
    issues = check_hierarchy(streets, communities, moved, min_area_m2=1.0)
    kinds = {i.kind for i in issues if i.level == "grid"}
    assert {"overlap", "gap"} <= kinds
    assert all(i.level == "grid" for i in issues)
