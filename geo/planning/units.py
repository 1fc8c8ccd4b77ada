"""Atomic units of a community and their adjacency graph: what grids are built from.

A grid is a union of units. Road-bounded blocks are the natural units (a grid boundary on a
road is one a resident can see), but in dense communities a block holds more households than a
grid may, and even whole buildings (57-135 households each in the synthetic district) turn a
30-household band into a subset-sum problem with no solution. So units go finer where needed:

1. **Blocks.** The community boundary and the road lines inside it are noded (snap-rounded to
   1 mm) and polygonized. Blocks under ``sliver_area_m2`` are merged into the neighbour they
   share the longest boundary with (they are digitising slivers, not places).
2. **Lots** (``detail="buildings"`` or finer). In a block with households and two or more
   buildings, each building gets the part of the block nearer to it than to any other
   building: Voronoi cells of the footprints' outlines (points every 5 m), dissolved per
   building and clipped to the block. Lots tile the block exactly, so grids still tile.
3. **Entrances** (``detail="entrances"``, the default). A building with ``H`` households above
   ``entrance_households`` has ``e = ceil(H / entrance_households)`` entrances (单元, the
   stairwell units a block of flats is already organised by): its lot is cut into ``e`` slabs
   across the footprint's long axis (across the lot's long side for a tower), cutting the
   footprint into parts of equal area. Without household points the households are
   apportioned by the footprint area in each slab (largest remainder, so they differ by at
   most one); with points, each household goes to the slab its point lies in. Parts of at
   most 30 households (the width of the 150-180 band) mean a grid can always be completed one
   part at a time without jumping over the band. Every building split this way is listed in
   :attr:`Units.entrance_splits`.

Opening a block into lots costs nothing by itself: the splitter keeps blocks whole where whole
blocks can make the band, prefers road edges to lot edges and lot edges to entrance edges
elsewhere, and reports which blocks it really cut and which buildings it really shared.

The graph is built once. Two units are adjacent when their boundaries share more than
``MIN_SHARED_M`` of line (corner contacts do not count: a grid joined at a point is not
contiguous). Each edge carries the shared length, the part of it that runs along a road, and its
kind: ``ROAD`` between blocks, ``LOT`` between lots of one block, ``ENTRANCE`` between entrances
of one building.

Everything is measured in the inputs' projected metric CRS.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from geo.arrays import ReadOnlyRows
from geo.assignment.index import AreaIndex
from geo.district.households import apportion
from geo.errors import CRSError, InvalidGeometry, InvalidInput

Detail = Literal["blocks", "buildings", "entrances"]

ROAD, LOT, ENTRANCE = 0, 1, 2
"""Edge kinds, in the order the splitter prefers to cut them."""

EDGE_KINDS = ("road", "lot", "entrance")

DEFAULT_SLIVER_AREA_M2 = 50.0
"""Blocks smaller than this are slivers between nearly coincident lines, merged away."""

ENTRANCE_HOUSEHOLDS = 30
"""Households per entrance when a building is split: ``e = ceil(H / 30)``."""

MIN_SHARED_M = 0.1
"""Shared boundary shorter than this is a corner contact, not an adjacency."""

SNAP_M = 1e-3
"""Grid size for noding and for comparing boundaries: 1 mm, as the synthetic roads are."""

SQUARE_ASPECT = 1.5
"""A footprint less elongated than this is a tower: its entrances are cut across its lot's
long side, so that each part of the lot stays compact."""

_OUTLINE_STEP_M = 5.0


@dataclass(frozen=True)
class UnitGraph(ReadOnlyRows):
    """Undirected adjacency of units; edge ``i`` joins ``u[i] < v[i]`` (unit positions).

    Its length is the number of edges; the arrays are read-only."""

    n: int
    u: NDArray[np.intp]
    v: NDArray[np.intp]
    length_m: NDArray[np.float64]
    road_m: NDArray[np.float64]
    kind: NDArray[np.int8]

    def neighbours(self) -> list[list[tuple[int, int]]]:
        """Per unit, its ``(neighbour, edge)`` pairs in edge order (a fresh list each call)."""
        out: list[list[tuple[int, int]]] = [[] for _ in range(self.n)]
        for e, (a, b) in enumerate(zip(self.u.tolist(), self.v.tolist(), strict=True)):
            out[a].append((b, e))
            out[b].append((a, e))
        return out

    def edges_frame(self) -> pd.DataFrame:
        """The edges as a table (``u, v, length_m, road_m, kind``) for inspection and export."""
        return pd.DataFrame(
            {
                "u": self.u,
                "v": self.v,
                "length_m": self.length_m,
                "road_m": self.road_m,
                "kind": pd.Categorical.from_codes(self.kind.astype(np.int64), pd.Index(EDGE_KINDS)),
            }
        )


@dataclass(frozen=True)
class Units:
    """Units of one community with their graph, as the splitter and the metrics take them.

    ``frame`` is indexed by unit position ``0..n-1`` (index name ``unit``) with columns
    ``block`` (block number), ``building_id`` (None for a whole block), ``entrance`` (-1 unless
    an entrance), ``level`` (block / lot / entrance), ``households``, ``area_m2``,
    ``perimeter_m`` and the geometry. ``entrance_splits`` lists each building cut into
    entrances (``building_id, households, entrances, per_entrance``); ``notes`` says what else
    was changed or left out, in words a planner can check.
    """

    frame: gpd.GeoDataFrame
    graph: UnitGraph
    entrance_splits: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"building_id": [], "households": [], "entrances": [], "per_entrance": []}
        )
    )
    slivers_merged: int = 0
    notes: tuple[str, ...] = ()
    household_unit: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def crs(self) -> CRS:
        return CRS.from_user_input(self.frame.crs)

    @property
    def households(self) -> int:
        return int(self.frame["households"].sum())


def build_units(
    community: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame | None = None,
    *,
    detail: Detail = "entrances",
    sliver_area_m2: float = DEFAULT_SLIVER_AREA_M2,
    entrance_households: int = ENTRANCE_HOUSEHOLDS,
    households_col: str = "households",
    building_id_col: str = "building_id",
) -> Units:
    """Cut a community (the union of ``community``'s polygons) into blocks, lots and entrances.

    Households per building come from the household points when given (matched on
    ``building_id_col`` when both frames have it, else by location; points in no building go to
    the unit they lie in), else from ``buildings[households_col]``.
    """
    crs = _common_metric_crs(
        community=community, roads=roads, buildings=buildings, households=households
    )
    if detail not in ("blocks", "buildings", "entrances"):
        raise InvalidInput(
            f"must be blocks, buildings or entrances, got {detail!r}", field="detail"
        )
    if not entrance_households >= 1:
        raise InvalidInput(f"must be >= 1, got {entrance_households}", field="entrance_households")
    if not sliver_area_m2 >= 0:
        raise InvalidInput(f"must be >= 0 m², got {sliver_area_m2}", field="sliver_area_m2")
    area = _community_area(community)
    notes: list[str] = []

    blocks = _polygonize(area, roads)
    blocks, merged = _merge_slivers(blocks, sliver_area_m2)
    if merged:
        notes.append(
            f"{merged} sliver block(s) under {sliver_area_m2:g} m² merged into a neighbour"
        )
    blocks = blocks[_reading_order(blocks)]

    bld = _Buildings.attach(buildings, blocks, area, building_id_col, notes)
    points = _HouseholdPoints.attach(households, bld, building_id_col, notes)
    bld.households = (
        points.per_building(len(bld.geoms))
        if points is not None
        else _household_column(buildings, bld.rows, households_col)
    )

    pieces: list[_Piece] = []
    splits: list[tuple[object, int, int, str]] = []
    for j, block in enumerate(blocks):
        members = np.flatnonzero(bld.block == j)
        total = int(bld.households[members].sum())
        if detail == "blocks" or total == 0 or len(members) == 0:
            pieces.append(_Piece(block, j, None, -1, "block", total, members))
            continue
        lots = [block] if len(members) == 1 else _lots(block, bld.geoms[members])
        for b, lot in zip(members.tolist(), lots, strict=True):
            h = int(bld.households[b])
            whole_block = len(members) == 1
            if detail == "entrances" and h > entrance_households:
                e = math.ceil(h / entrance_households)
                slabs = _entrances(lot, bld.geoms[b], e, h, points, b)
                if len(slabs) > 1:
                    for k, (geom, share) in enumerate(slabs):
                        pieces.append(_Piece(geom, j, b, k, "entrance", share, np.array([b])))
                    per = "/".join(str(s) for _, s in slabs)
                    splits.append((bld.ids[b], h, len(slabs), per))
                    continue
            level = "block" if whole_block else "lot"
            building = None if whole_block else b
            pieces.append(_Piece(lot, j, building, -1, level, h, np.array([b])))

    pieces = _drop_empty(pieces)
    frame = gpd.GeoDataFrame(
        {
            "block": np.array([p.block for p in pieces], dtype=np.int64),
            "building_id": pd.Series(
                [None if p.building is None else bld.ids[p.building] for p in pieces],
                dtype=object,
            ),
            "entrance": np.array([p.entrance for p in pieces], dtype=np.int64),
            "level": pd.Series([p.level for p in pieces], dtype=object),
            "households": np.array([p.households for p in pieces], dtype=np.int64),
        },
        geometry=np.array([p.geom for p in pieces], dtype=object),
        crs=crs,
    )
    frame.index.name = "unit"
    frame["area_m2"] = shapely.area(frame.geometry.values)
    frame["perimeter_m"] = shapely.length(frame.geometry.values)
    household_unit = None
    if points is not None:
        frame["households"], household_unit = points.to_units(pieces, frame)
    graph = _graph(
        np.asarray(frame.geometry.values, dtype=object),
        frame["block"].to_numpy(),
        _building_keys(frame),
    )
    split_frame = pd.DataFrame(
        splits, columns=["building_id", "households", "entrances", "per_entrance"]
    )
    return Units(frame, graph, split_frame, merged, tuple(notes), household_unit)


def units_from_frame(
    frame: gpd.GeoDataFrame,
    *,
    households_col: str = "households",
    block_col: str | None = None,
    building_col: str | None = None,
) -> Units:
    """Take ready-made unit polygons (stored blocks, a hand-drawn test) and build their graph.

    Without ``block_col`` every polygon is its own road-bounded block, so every shared edge is a
    road edge; with it, edges inside one block are lot edges (entrance edges when
    ``building_col`` names the same building on both sides).
    """
    crs = _common_metric_crs(units=frame)
    if households_col not in frame.columns:
        raise InvalidInput(f"column {households_col!r} is missing", field="frame")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    _check_polygons(geoms, "frame")
    hh = pd.to_numeric(frame[households_col], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(hh) & (hh >= 0) & (hh == np.round(hh))))
    if len(bad):
        raise InvalidInput(
            f"households must be whole numbers >= 0, got {frame[households_col].iloc[bad[0]]!r}",
            field=households_col,
            index=int(bad[0]),
        )
    n = len(frame)
    if block_col is not None:
        codes, block = np.unique(frame[block_col].astype(str).to_numpy(), return_inverse=True)
        del codes
    else:
        block = np.arange(n)
    building = (
        frame[building_col].to_numpy(dtype=object)
        if building_col is not None
        else np.full(n, None, dtype=object)
    )
    out = gpd.GeoDataFrame(
        {
            "block": block.astype(np.int64),
            "building_id": pd.Series(building, dtype=object),
            "entrance": np.full(n, -1, dtype=np.int64),
            "level": "block",
            "households": hh.astype(np.int64),
        },
        geometry=geoms,
        crs=crs,
    )
    out.index.name = "unit"
    out["area_m2"] = shapely.area(geoms)
    out["perimeter_m"] = shapely.length(geoms)
    return Units(out, _graph(geoms, out["block"].to_numpy(), _building_keys(out)))


# --- blocks ----------------------------------------------------------------------------------


def _community_area(community: gpd.GeoDataFrame) -> BaseGeometry:
    geoms = np.asarray(community.geometry.values, dtype=object)
    if len(geoms) == 0:
        raise InvalidInput("no community polygon", field="community")
    _check_polygons(geoms, "community")
    area = shapely.union_all(geoms, grid_size=SNAP_M)
    if area.is_empty or not area.area > 0:
        raise InvalidGeometry("the community has no area", field="community")
    return area


def _polygonize(area: BaseGeometry, roads: gpd.GeoDataFrame) -> NDArray[np.object_]:
    """Blocks: the faces of the community boundary noded with the road lines inside it."""
    lines = np.asarray(roads.geometry.values, dtype=object)
    lines = lines[~(shapely.is_missing(lines) | shapely.is_empty(lines))]
    if len(lines):
        tree = shapely.STRtree(lines)
        lines = lines[tree.query(area, predicate="intersects")]
        lines = shapely.intersection(lines, area, grid_size=SNAP_M)
    linework = shapely.union_all(
        np.concatenate([[shapely.boundary(area)], np.asarray(lines, dtype=object)]),
        grid_size=SNAP_M,
    )
    parts = shapely.get_parts(linework)
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2))]  # lines and rings only
    faces = shapely.get_parts(shapely.polygonize(parts))
    inside = shapely.covers(area, shapely.point_on_surface(faces))
    return np.asarray(faces[inside & (shapely.area(faces) > 0)], dtype=object)


def _merge_slivers(
    blocks: NDArray[np.object_], sliver_area_m2: float
) -> tuple[NDArray[np.object_], int]:
    """Merge blocks under the threshold, smallest first, into their longest-sharing neighbour."""
    areas = shapely.area(blocks)
    if sliver_area_m2 <= 0 or not (areas < sliver_area_m2).any() or len(blocks) < 2:
        return blocks, 0
    i, j, length = _shared_lengths(blocks)
    parent = np.arange(len(blocks))
    group_area = areas.copy()

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    merged = 0
    for s in np.argsort(areas, kind="stable"):
        root = find(int(s))
        if group_area[root] >= sliver_area_m2:
            continue
        best: dict[int, float] = {}
        for a, b, ln in zip(i.tolist(), j.tolist(), length.tolist(), strict=True):
            ra, rb = find(a), find(b)
            if ra == rb or root not in (ra, rb):
                continue
            other = rb if ra == root else ra
            best[other] = best.get(other, 0.0) + ln
        if not best:
            continue
        target = max(sorted(best), key=lambda k: best[k])
        parent[root] = target
        group_area[target] += group_area[root]
        merged += 1
    roots = np.array([find(k) for k in range(len(blocks))])
    out = [
        shapely.union_all(blocks[roots == r], grid_size=SNAP_M)
        if (roots == r).sum() > 1
        else blocks[r]
        for r in np.unique(roots)
    ]
    return np.asarray(out, dtype=object), merged


def _reading_order(geoms: NDArray[np.object_]) -> NDArray[np.intp]:
    """North to south, then west to east, by representative point (a stable numbering)."""
    pts = shapely.point_on_surface(geoms)
    return np.lexsort((shapely.get_x(pts), -shapely.get_y(pts))).astype(np.intp)


# --- buildings and households ----------------------------------------------------------------


def _by_position(areas: NDArray[np.object_]) -> AreaIndex:
    """An index answering positions in ``areas``: codes that sort as the positions do, so a
    point on a shared edge goes to the first area, as ``AreaIndex`` gives the lowest code."""
    return AreaIndex(areas, [f"{k:08d}" for k in range(len(areas))])


@dataclass
class _Buildings:
    """Buildings inside the community: source row, id, footprint, block, households."""

    rows: NDArray[np.intp]
    ids: NDArray[np.object_]
    geoms: NDArray[np.object_]
    block: NDArray[np.intp]
    households: NDArray[np.int64]

    @classmethod
    def attach(
        cls,
        buildings: gpd.GeoDataFrame,
        blocks: NDArray[np.object_],
        area: BaseGeometry,
        id_col: str,
        notes: list[str],
    ) -> _Buildings:
        geoms = np.asarray(buildings.geometry.values, dtype=object)
        usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        usable[usable] = shapely.is_valid(geoms[usable]) & (shapely.area(geoms[usable]) > 0)
        if (~usable).any():
            notes.append(f"{int((~usable).sum())} building(s) without a valid footprint ignored")
        rows = np.flatnonzero(usable)
        pts = shapely.point_on_surface(geoms[rows])
        index = _by_position(blocks)
        block = index.assign_points(shapely.get_x(pts), shapely.get_y(pts), snap_m=0).area
        inside = block >= 0
        if (~inside).any():
            notes.append(f"{int((~inside).sum())} building(s) outside the community ignored")
        rows, block = rows[inside], block[inside]
        ids = (
            buildings[id_col].to_numpy(dtype=object)[rows]
            if id_col in buildings.columns
            else buildings.index.to_numpy(dtype=object)[rows]
        )
        return cls(rows, ids, geoms[rows], block.astype(np.intp), np.zeros(len(rows), np.int64))


def _household_column(buildings: gpd.GeoDataFrame, rows: NDArray[np.intp], col: str) -> NDArray:
    if col not in buildings.columns:
        raise InvalidInput(
            f"column {col!r} is missing and no household points were given", field="buildings"
        )
    values = pd.to_numeric(buildings[col], errors="coerce").to_numpy(dtype=float)[rows]
    bad = np.flatnonzero(~(np.isfinite(values) & (values >= 0)))
    if len(bad):
        raise InvalidInput(
            f"households must be numbers >= 0, got {values[bad[0]]!r}",
            field=col,
            index=int(rows[bad[0]]),
        )
    return np.round(values).astype(np.int64)


@dataclass
class _HouseholdPoints:
    """Household points with the building (position in ``_Buildings``) they belong to or -1."""

    index: pd.Index
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    building: NDArray[np.intp]
    slab: NDArray[np.intp]

    @classmethod
    def attach(
        cls,
        households: gpd.GeoDataFrame | None,
        bld: _Buildings,
        id_col: str,
        notes: list[str],
    ) -> _HouseholdPoints | None:
        if households is None:
            return None
        geoms = np.asarray(households.geometry.values, dtype=object)
        if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
            raise InvalidGeometry("household locations must be points", field="households")
        x, y = shapely.get_x(geoms), shapely.get_y(geoms)
        building = np.full(len(geoms), -1, dtype=np.intp)
        if id_col in households.columns and len(bld.ids):
            lookup = {key: k for k, key in enumerate(bld.ids.tolist())}
            building = np.array(
                [lookup.get(key, -1) for key in households[id_col].tolist()], dtype=np.intp
            )
        elif len(bld.geoms) and len(geoms):
            building = _by_position(bld.geoms).assign_points(x, y, snap_m=0).area.astype(np.intp)
        loose = int((building < 0).sum())
        if loose:
            notes.append(f"{loose} household(s) in no building, attached by location")
        return cls(households.index, x, y, building, np.zeros(len(geoms), dtype=np.intp))

    def per_building(self, n: int) -> NDArray[np.int64]:
        linked = self.building[self.building >= 0]
        return np.bincount(linked, minlength=n).astype(np.int64)

    def to_units(
        self, pieces: Sequence[_Piece], frame: gpd.GeoDataFrame
    ) -> tuple[NDArray[np.int64], pd.Series]:
        """Each household's unit, and the households per unit counted from the points.

        By location first: a unit holds the households whose points it covers, which is how
        the published grids will count them (a building astride a block boundary has people
        on both sides). Points in no unit fall back to their building's unit.
        """
        index = _by_position(np.asarray(frame.geometry.values, dtype=object))
        unit = index.assign_points(self.x, self.y).area.astype(np.intp)
        by_building: dict[tuple[int, int], int] = {}
        for k, p in enumerate(pieces):
            if p.level == "block":
                for b in p.members.tolist():
                    by_building[(b, 0)] = k
            else:
                by_building[(int(p.members[0]), max(p.entrance, 0))] = k
        for h in np.flatnonzero(unit < 0).tolist():
            b, s = int(self.building[h]), int(self.slab[h])
            if b >= 0:
                unit[h] = by_building.get((b, s), -1)
        counts = np.bincount(unit[unit >= 0], minlength=len(frame)).astype(np.int64)
        return counts, pd.Series(unit, index=self.index, name="unit")


# --- lots and entrances ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    geom: BaseGeometry
    block: int
    building: int | None
    entrance: int
    level: str
    households: int
    members: NDArray[np.intp]  # buildings whose households the piece holds


def _drop_empty(pieces: list[_Piece]) -> list[_Piece]:
    """Drop pieces with no ground (a footprint duplicating another's gets an empty lot).

    Their households, if any, go to the largest piece of the same block, so none is lost.
    """
    kept = [p for p in pieces if not p.geom.is_empty and p.geom.area > 0]
    for gone in (p for p in pieces if p.geom.is_empty or p.geom.area <= 0):
        if gone.households:
            same = [p for p in kept if p.block == gone.block] or kept
            host = max(same, key=lambda p: p.geom.area)
            kept[kept.index(host)] = replace(host, households=host.households + gone.households)
    return kept


def _lots(block: BaseGeometry, footprints: NDArray[np.object_]) -> list[BaseGeometry]:
    """One lot per footprint: the block's points nearer to it than to the other footprints.

    GEOS's Voronoi diagram and coverage union lose precision far from the origin: in UTM
    metres (10^5 to 10^6) with outline points a metre apart, blocks of the generated megacity
    failed with "CoverageUnion cannot process incorrectly noded inputs", "Overlay input is
    mixed-dimension" or "side location conflict". Such a block is drawn again moved to the
    origin, and moved back (the graph compares boundaries snapped to a millimetre, far above
    the rounding of the move); one that still fails gets the lots of one point per footprint.
    """
    try:
        return _lots_by_outlines(block, footprints)
    except shapely.errors.GEOSException:
        pass
    origin = shapely.get_coordinates(shapely.centroid(block))[0]
    try:
        lots = _lots_by_outlines(
            shapely.transform(block, lambda xy: xy - origin),
            shapely.transform(footprints, lambda xy: xy - origin),
        )
    except shapely.errors.GEOSException:
        return _lots_by_points(block, footprints)
    return [shapely.transform(lot, lambda xy: xy + origin) for lot in lots]


def _lots_by_outlines(block: BaseGeometry, footprints: NDArray[np.object_]) -> list[BaseGeometry]:
    """:func:`_lots` where GEOS manages: Voronoi cells of the footprints' outline points."""
    rings = shapely.segmentize(
        shapely.get_exterior_ring(_largest_polygons(footprints)), _OUTLINE_STEP_M
    )
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    coords, first = np.unique(coords, axis=0, return_index=True)
    owner = owner[first]
    if len(np.unique(owner)) < len(footprints) or len(coords) < 3:
        return _lots_by_points(block, footprints)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=block, ordered=True)
    )
    if len(cells) != len(coords):
        return _lots_by_points(block, footprints)
    lots = [
        shapely.intersection(shapely.coverage_union_all(cells[owner == k]), block)
        for k in range(len(footprints))
    ]
    return _resolve_parts(lots, list(footprints))


def _lots_by_points(block: BaseGeometry, footprints: NDArray[np.object_]) -> list[BaseGeometry]:
    """Fallback for degenerate outlines: Voronoi of one inner point per footprint."""
    pts = shapely.point_on_surface(footprints)
    coords = shapely.get_coordinates(pts)
    _, first = np.unique(coords, axis=0, return_index=True)
    if len(first) < len(pts):  # coincident points: spread them by a millimetre
        coords = coords + np.arange(len(coords))[:, None] * SNAP_M
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=block, ordered=True)
    )
    lots = [shapely.intersection(c, block) for c in cells]
    return _resolve_parts(lots, list(footprints))


def _largest_polygons(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    out = []
    for g in geoms:
        parts = shapely.get_parts(g)
        out.append(parts[int(np.argmax(shapely.area(parts)))])
    return np.asarray(out, dtype=object)


def _entrances(
    lot: BaseGeometry,
    footprint: BaseGeometry,
    e: int,
    households: int,
    points: _HouseholdPoints | None,
    building: int,
) -> list[tuple[BaseGeometry, int]]:
    """Cut a lot into ``e`` slabs across the footprint's long axis, with their households."""
    axis = _long_axis(footprint)
    if axis is None:
        return [(lot, households)]
    along, across = _extent(footprint, axis)
    if along < SQUARE_ASPECT * across:  # a tower: cut across the lot's long side instead
        lot_axis = _long_axis(lot)
        axis = axis if lot_axis is None else lot_axis
    normal = np.array([-axis[1], axis[0]])
    origin = np.asarray(shapely.get_coordinates(shapely.centroid(lot))[0])
    x0, y0, x1, y1 = shapely.bounds(shapely.union(lot, footprint))
    big = 2.0 * (np.hypot(x1 - x0, y1 - y0) + 1.0)
    cuts = _equal_area_cuts(footprint, origin, axis, normal, e, big)
    edges = np.concatenate([[-big], cuts, [big]])
    strips = [
        shapely.Polygon(
            [origin + sa * axis - big * normal, origin + sb * axis - big * normal,
             origin + sb * axis + big * normal, origin + sa * axis + big * normal]
        )
        for sa, sb in itertools.pairwise(edges)
    ]  # fmt: skip
    slabs = [shapely.intersection(lot, strip) for strip in strips]
    if points is not None:
        mine = np.flatnonzero(points.building == building)
        along = (np.column_stack([points.x[mine], points.y[mine]]) - origin) @ axis
        slab_of = np.searchsorted(cuts, along).astype(np.intp)
        shares = np.bincount(slab_of, minlength=e).astype(np.int64)
    else:
        weights = shapely.area([shapely.intersection(footprint, strip) for strip in strips])
        shares = apportion(weights, households) if weights.sum() > 0 else np.full(e, 0)
        slab_of = np.zeros(0, dtype=np.intp)
        mine = np.zeros(0, dtype=np.intp)
    keep = [k for k in range(e) if not shapely.is_empty(slabs[k]) and shapely.area(slabs[k]) > 0]
    if len(keep) < 2:
        return [(lot, households)]
    # An empty slab's households (possible only for odd footprints) go to the nearest kept one.
    renumber = np.array([keep[int(np.argmin([abs(k - q) for q in keep]))] for k in range(e)])
    merged = np.bincount(renumber, weights=shares, minlength=e).astype(np.int64)
    parts = _resolve_parts([slabs[k] for k in keep], [strips[k] for k in keep])
    if points is not None:
        new_index = {k: i for i, k in enumerate(keep)}
        points.slab[mine] = [new_index[int(renumber[q])] for q in slab_of.tolist()]
    return [(parts[i], int(merged[k])) for i, k in enumerate(keep)]


def _equal_area_cuts(
    footprint: BaseGeometry,
    origin: NDArray[np.float64],
    axis: NDArray[np.float64],
    normal: NDArray[np.float64],
    e: int,
    big: float,
) -> NDArray[np.float64]:
    """Positions along ``axis`` that cut the footprint into ``e`` slabs of equal area
    (bisection to a millimetre; slabs of equal length only for a rectangle across its axis)."""
    s = (shapely.get_coordinates(footprint) - origin) @ axis
    s_min, s_max = float(s.min()), float(s.max())
    total = float(footprint.area)

    def area_below(c: float) -> float:
        half = shapely.Polygon(
            [origin - big * axis - big * normal, origin + c * axis - big * normal,
             origin + c * axis + big * normal, origin - big * axis + big * normal]
        )  # fmt: skip
        return float(shapely.area(shapely.intersection(footprint, half)))

    cuts = []
    for i in range(1, e):
        lo, hi = s_min, s_max
        while hi - lo > SNAP_M:
            mid = (lo + hi) / 2
            if area_below(mid) < total * i / e:
                lo = mid
            else:
                hi = mid
        cuts.append((lo + hi) / 2)
    return np.asarray(cuts)


def _long_axis(geom: BaseGeometry) -> NDArray[np.float64] | None:
    """Unit vector along the longer side of the minimum rotated rectangle, None if degenerate."""
    rect = shapely.get_coordinates(shapely.oriented_envelope(geom))
    if len(rect) < 4:
        return None
    side_a, side_b = rect[1] - rect[0], rect[2] - rect[1]
    axis = side_a if np.hypot(*side_a) >= np.hypot(*side_b) else side_b
    norm = float(np.hypot(*axis))
    return axis / norm if norm > 0 else None


def _extent(geom: BaseGeometry, axis: NDArray[np.float64]) -> tuple[float, float]:
    """Lengths of ``geom`` along ``axis`` and across it."""
    xy = shapely.get_coordinates(geom)
    along = xy @ axis
    across = xy @ np.array([-axis[1], axis[0]])
    return float(np.ptp(along)), float(np.ptp(across))


def _resolve_parts(pieces: list[BaseGeometry], anchors: list[BaseGeometry]) -> list[BaseGeometry]:
    """Make every piece one polygon: stray parts join the neighbour they share most edge with.

    Clipping a Voronoi cell or a slab to a concave block can leave a piece in several parts;
    the part overlapping its anchor (footprint or strip) most stays, the others are handed to
    an adjacent piece so that the pieces still tile ``container``.
    """
    owner: list[int] = []
    parts: list[BaseGeometry] = []
    main: list[bool] = []
    for k, piece in enumerate(pieces):
        polys = [p for p in shapely.get_parts(piece) if p.geom_type == "Polygon" and p.area > 0]
        if not polys:
            continue
        overlap = [shapely.area(shapely.intersection(p, anchors[k])) for p in polys]
        best = (
            int(np.argmax(overlap)) if max(overlap) > 0 else int(np.argmax([p.area for p in polys]))
        )
        for q, p in enumerate(polys):
            owner.append(k)
            parts.append(p)
            main.append(q == best)
    if all(main):
        return [
            parts[owner.index(k)] if k in owner else shapely.Polygon() for k in range(len(pieces))
        ]
    geoms = np.asarray(parts, dtype=object)
    i, j, length = _shared_lengths(geoms)
    owner_arr = np.array(owner)
    settled = np.array(main)
    for _ in range(len(parts)):
        todo = np.flatnonzero(~settled)
        if not len(todo):
            break
        progress = False
        for t in todo.tolist():
            touching = [
                (ln, int(b if a == t else a))
                for a, b, ln in zip(i.tolist(), j.tolist(), length.tolist(), strict=True)
                if t in (a, b) and settled[b if a == t else a]
            ]
            if touching:
                _, best_part = max(touching)
                owner_arr[t] = owner_arr[best_part]
                settled[t] = True
                progress = True
        if not progress:
            for t in np.flatnonzero(~settled).tolist():
                dist = shapely.distance(geoms[t], geoms[settled])
                owner_arr[t] = owner_arr[np.flatnonzero(settled)[int(np.argmin(dist))]]
                settled[t] = True
    return [
        shapely.union_all(geoms[owner_arr == k], grid_size=SNAP_M)
        if (owner_arr == k).sum() > 1
        else (geoms[owner_arr == k][0] if (owner_arr == k).any() else shapely.Polygon())
        for k in range(len(pieces))
    ]


# --- graph -----------------------------------------------------------------------------------


def _shared_lengths(
    geoms: NDArray[np.object_],
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Pairs ``i < j`` whose boundaries share more than ``MIN_SHARED_M``, with the length."""
    if len(geoms) < 2:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.zeros(0)
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    bounds = shapely.boundary(geoms)
    shared = shapely.intersection(bounds[i], bounds[j], grid_size=SNAP_M)
    length = shapely.length(shared)
    ok = length > MIN_SHARED_M
    order = np.lexsort((j[ok], i[ok]))
    return i[ok][order].astype(np.intp), j[ok][order].astype(np.intp), length[ok][order]


def _graph(
    geoms: NDArray[np.object_], block: NDArray[np.int64], building: NDArray[np.object_]
) -> UnitGraph:
    i, j, length = _shared_lengths(geoms)
    same_block = block[i] == block[j]
    same_building = np.array(
        [a is not None and a == b for a, b in zip(building[i], building[j], strict=True)],
        dtype=bool,
    )
    kind = np.where(same_block, np.where(same_building, ENTRANCE, LOT), ROAD).astype(np.int8)
    road = np.where(kind == ROAD, length, 0.0)
    return UnitGraph(len(geoms), i, j, length, road, kind)


def _building_keys(frame: gpd.GeoDataFrame) -> NDArray[np.object_]:
    """A key per unit naming its building when it is one of several entrances, else None."""
    keys = np.full(len(frame), None, dtype=object)
    entr = frame["entrance"].to_numpy() >= 0
    ids = frame["building_id"].to_numpy(dtype=object)
    for k in np.flatnonzero(entr).tolist():
        keys[k] = ids[k]
    return keys


# --- validation ------------------------------------------------------------------------------


def _common_metric_crs(**frames: gpd.GeoDataFrame | None) -> CRS:
    """The one projected metric CRS all given frames share, or a CRSError naming the culprit."""
    crs: CRS | None = None
    first = ""
    for name, frame in frames.items():
        if frame is None:
            continue
        if frame.crs is None:
            raise CRSError("no CRS set; reproject to a projected metric CRS", field=name)
        this = CRS.from_user_input(frame.crs)
        units = {axis.unit_name for axis in this.axis_info}
        if not this.is_projected or not units <= {"metre", "meter"}:
            raise CRSError(
                f"{this.to_string()} is not a projected metric CRS; lengths would not be metres",
                field=name,
            )
        if crs is None:
            crs, first = this, name
        elif not crs.equals(this):
            raise CRSError(
                f"{name} is in {this.to_string()}, {first} in {crs.to_string()}", field=name
            )
    assert crs is not None
    return crs


def _check_polygons(geoms: NDArray[np.object_], name: str) -> None:
    problems: list[tuple[int, str]] = []
    for k, g in enumerate(geoms):
        if g is None or not isinstance(g, shapely.Polygon | shapely.MultiPolygon):
            problems.append((k, f"expected a polygon, got {type(g).__name__}"))
        elif g.is_empty:
            problems.append((k, "empty polygon"))
        elif not g.is_valid:
            problems.append((k, shapely.is_valid_reason(g)))
    if problems:
        listed = "; ".join(f"[{k}] {why}" for k, why in problems[:10])
        raise InvalidGeometry(
            f"{len(problems)} unusable polygon(s): {listed}", field=name, index=problems[0][0]
        )
