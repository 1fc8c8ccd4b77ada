"""Display geometry: Douglas-Peucker where it keeps the shape, topology-preserving where not.

A map simplifies every area for the browser. The fast simplifier may drop a small hole or
make a ring cross itself; then the topology-preserving one is used for that shape, so what a
coordinator sees keeps every hole and part of the stored polygon.
"""

from __future__ import annotations

import geopandas as gpd
import shapely
from pyproj import CRS

from maps.base import display_geometry

UTM = CRS.from_epsg(32629)  # Porto's zone: metres


def _frame(*geoms: shapely.Geometry) -> gpd.GeoDataFrame:
    moved = [shapely.affinity.translate(g, 530_000, 4_554_000) for g in geoms]
    return gpd.GeoDataFrame(geometry=moved, crs=UTM)


def test_a_small_hole_that_douglas_peucker_would_drop_is_kept() -> None:
    square = shapely.box(0, 0, 100, 100)
    hole = shapely.Polygon([(50, 50), (53, 50), (51.5, 52.5)])  # 3 m across
    holed = shapely.Polygon(square.exterior, [hole.exterior])
    fast = shapely.simplify(holed, 5.0, preserve_topology=False)
    assert shapely.get_num_interior_rings(fast) != 1 or not shapely.is_valid(fast)

    shown = display_geometry(_frame(holed), tolerance_m=5.0).to_crs(UTM)
    assert shapely.get_num_interior_rings(shown.iloc[0]) == 1
    assert shown.iloc[0].is_valid


def test_densified_edges_are_simplified_and_the_area_kept() -> None:
    # A square whose edges carry a vertex every metre: 4 corners are enough to draw it.
    square = shapely.segmentize(shapely.box(0, 0, 200, 200), 1.0)
    shown = display_geometry(_frame(square, square), tolerance_m=2.0).to_crs(UTM)
    for geom in shown:
        assert shapely.get_num_coordinates(geom) <= 6
        assert abs(geom.area - 200 * 200) / (200 * 200) < 0.001
