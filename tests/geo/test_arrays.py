"""Read-only row records and the nearest query that weighs every exact tie."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import shapely
from numpy.typing import NDArray

from geo.arrays import ReadOnlyRows, nearest_lowest


@dataclass(frozen=True)
class _Rows(ReadOnlyRows):
    n: int
    a: NDArray[np.intp]
    b: NDArray[np.float64]


def test_rows_are_read_only_and_counted_by_the_first_array() -> None:
    rows = _Rows(7, np.arange(3), np.zeros(3))
    assert len(rows) == 3
    with pytest.raises(ValueError, match="read-only"):
        rows.a[0] = 5
    with pytest.raises(ValueError, match="read-only"):
        rows.b[0] = 1.0


def test_an_exact_tie_goes_to_the_lowest_key_whatever_the_tree_order() -> None:
    # Two squares share the edge x = 1: the point (1, 3) lies 2 from both, (3, 0.5) lies 1
    # from the right one and 2 from the left.
    #   +---+---+
    #   | 0 | 1 |
    #   +---+---+
    squares = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], dtype=object)
    points = np.array([shapely.Point(1, 3), shapely.Point(3, 0.5)], dtype=object)
    for key in (np.array([5, 2]), np.array([2, 5])):
        nearest, distance = nearest_lowest(shapely.STRtree(squares), points, key)
        assert nearest.tolist() == [2, int(key[1])]
        assert distance.tolist() == [2.0, 1.0]
    nearest, _ = nearest_lowest(shapely.STRtree(squares[::-1]), points)
    assert nearest.tolist() == [0, 0]  # no key: the lowest tree index
