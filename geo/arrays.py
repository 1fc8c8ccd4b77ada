"""Array helpers the domain modules share: read-only row records and tie-broken nearest queries.

Results made of aligned arrays (one row per point, per edge…) are cached and handed to many
callers, so they are made read-only once built. Nearest-geometry answers break exact ties by
a key the caller chooses (an area's rank, an edge's index), so that they never depend on the
order an ``STRtree`` happens to keep internally.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import shapely
from numpy.typing import NDArray


class ReadOnlyRows:
    """Base of a frozen dataclass whose array fields are aligned rows: every array field is
    made read-only once the record is built, and the record's length is its rows'.

    A result shared by reference (a cached assignment, a plan's unit graph) cannot then be
    changed behind its owner's back; fields that are not arrays (counts) are left alone.
    """

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __post_init__(self) -> None:
        for values in self._arrays():
            values.flags.writeable = False

    def __len__(self) -> int:
        return len(next(self._arrays()))

    def _arrays(self) -> Iterator[np.ndarray]:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                yield value


def nearest_lowest(
    tree: shapely.STRtree, points: NDArray[np.object_], key: NDArray[np.intp] | None = None
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Per point, the lowest ``key`` (default: the tree index) among the tree's geometries at
    the nearest distance, and that distance: every exact tie is weighed, not the first found."""
    (point_i, item_i), dist = tree.query_nearest(points, return_distance=True, all_matches=True)
    key_i = item_i if key is None else key[item_i]
    order = np.lexsort((key_i, point_i))
    point_i, key_i, dist = point_i[order], key_i[order], dist[order]
    first = np.ones(len(point_i), dtype=bool)
    first[1:] = point_i[1:] != point_i[:-1]
    nearest = np.empty(len(points), dtype=np.intp)
    distance = np.empty(len(points))
    nearest[point_i[first]] = key_i[first]
    distance[point_i[first]] = dist[first]
    return nearest, distance
