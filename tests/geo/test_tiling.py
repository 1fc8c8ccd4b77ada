"""Children fitted to their parent tile it exactly and keep their internal boundaries."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import Polygon, box

from geo.district.tiling import fit_to_parent
from geo.errors import InvalidGeometry


def test_hairline_gaps_and_overhangs_are_closed() -> None:
    """
    parent 0..10 × 0..10; two children split at x = 5 that miss the parent's edges by a hair:
    +-----+-----+
    | a   |   b |   a overhangs on the left by 1e-6, b stops 1e-6 short on the right
    +-----+-----+
    """
    parent = box(0, 0, 10, 10)
    a = box(-1e-6, 0, 5, 10)
    b = box(5, 0, 10 - 1e-6, 10)
    fitted = fit_to_parent([a, b], parent)
    assert shapely.union_all(fitted).symmetric_difference(parent).area < 1e-12
    assert fitted[0].intersection(fitted[1]).area == 0
    assert fitted[0].bounds[2] == pytest.approx(5)  # the internal boundary did not move


def test_a_gap_goes_to_the_child_sharing_most_boundary() -> None:
    parent = box(0, 0, 10, 10)
    a = box(0, 0, 4, 10)
    b = box(6, 0, 10, 10)
    c = Polygon([(4, 0), (6, 0), (6, 1), (4, 1)])  # a small child at the bottom of the gap
    fitted = fit_to_parent([a, b, c], parent)
    assert shapely.union_all(fitted).symmetric_difference(parent).area < 1e-9
    assert sum(f.area for f in fitted) == pytest.approx(100)
    assert fitted[2].area == pytest.approx(2)  # c keeps only itself; the gap went to a or b


def test_child_outside_the_parent_is_refused() -> None:
    with pytest.raises(InvalidGeometry):
        fit_to_parent([box(20, 20, 21, 21)], box(0, 0, 10, 10))
