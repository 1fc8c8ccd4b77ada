"""Facility coverage: who can walk to a facility of a kind within so many minutes.

The pipeline, each step a function so that a database can replace any of them:

1. :meth:`RoadGraph.from_segments` — the road network as a graph, built once per district.
2. :func:`reachable` — network distances from each facility to the junctions it reaches
   within the walk (a bounded Dijkstra here; pgRouting's ``pgr_drivingDistance`` rows fit
   :meth:`Reach.from_node_distances` just as well).
3. :func:`reached_edges` — the *road pieces* walkable in time: whole edges, plus the part of
   each edge that a walker gets into before the time runs out. Coverage along roads is
   edges, not junctions: a 150 m block with 60 m to spare at one end is 60 m covered.
4. :func:`service_area` — those pieces as one polygon: a strip of ``buffer_m`` either side
   of every reached road, the land a walker can reach from the road (front doors, courtyard
   gates). The strip is what a map *draws*.
5. :func:`network_distances` — each household's own walk: the straight leg from its door to
   the nearest road, then along the network to a facility. A household is covered when that
   walk fits in the time, wherever the strip's edge happens to fall.
6. :func:`coverage_by_grid` — per grid, the share of its households covered, the share of
   its land inside the strip, the covered part clipped to the grid, and an ``uncovered`` flag.

:func:`crow_flies_area` draws the straight-line circles of the same radius, the layer to
compare against (and the one that over-promises across rivers and railway lines);
:func:`two_step_fca` scores capacity against the demand within reach (2SFCA) when facilities
carry a capacity. :func:`facility_coverage` runs steps 2–6 for one request.

Every length is in metres in a projected CRS; minutes become metres at a walking speed of
4.5 km/h (75 m a minute) unless told otherwise. Every walk includes the straight leg from the
facility to its nearest road, so a network distance is never shorter than the straight line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS

from geo.assignment.index import DEFAULT_SNAP_M, AreaIndex, _require_metres
from geo.coverage.road_graph import RoadGraph, Snap
from geo.errors import CRSError, InvalidGeometry, InvalidInput

__all__ = [
    "DEFAULT_BUFFER_M",
    "DEFAULT_SPEED_KMH",
    "MAX_MINUTES",
    "Coverage",
    "ODPairs",
    "Reach",
    "RoadGraph",
    "RoadPieces",
    "Snap",
    "coverage_by_grid",
    "crow_flies_area",
    "facilities_in_reach",
    "facilities_of_kind",
    "facility_coverage",
    "households_within",
    "network_distances",
    "reachable",
    "reached_edges",
    "service_area",
    "two_step_fca",
    "walk_distance_m",
]

DEFAULT_SPEED_KMH = 4.5  # an unhurried adult; 75 m a minute
MIN_SPEED_KMH = 1.0  # slower than a frail walker with a frame: a typo, not a person
MAX_SPEED_KMH = 10.0  # faster is running, not walking
MAX_MINUTES = 120.0  # beyond two hours "walking distance" stops meaning anything
DEFAULT_BUFFER_M = 50.0  # a roadside strip: front doors and courtyard gates off the road
MAX_BUFFER_M = 500.0
REACH_SLACK_M = 1.0  # kept beyond a walk's straight-line bound: rounding can never drop one


# --------------------------------------------------------------------------- parameters


def walk_distance_m(minutes: float, *, speed_kmh: float = DEFAULT_SPEED_KMH) -> float:
    """Metres walked in ``minutes``; refuses a walk of no time, or of more than two hours."""
    minutes_ = _number(minutes, field="minutes")
    if not 0 < minutes_ <= MAX_MINUTES:
        raise InvalidInput(
            f"must be more than 0 and at most {MAX_MINUTES:g} minutes, got {minutes!r}",
            field="minutes",
        )
    speed = _number(speed_kmh, field="speed_kmh")
    if not MIN_SPEED_KMH <= speed <= MAX_SPEED_KMH:
        raise InvalidInput(
            f"a walking speed is {MIN_SPEED_KMH:g}–{MAX_SPEED_KMH:g} km/h, got {speed_kmh!r}",
            field="speed_kmh",
        )
    return minutes_ * speed * 1000.0 / 60.0


def facilities_of_kind(
    facilities: gpd.GeoDataFrame, kind: str, *, column: str = "kind"
) -> gpd.GeoDataFrame:
    """The facilities of one kind; an unknown kind is an error listing the known ones.

    An empty answer would draw a map of a district where nothing is covered, which reads as
    a finding, not as the typo it is.
    """
    if column not in facilities.columns:
        raise InvalidInput(f"facilities have no column '{column}'", field="kind")
    known = sorted({str(k) for k in facilities[column].dropna()})
    if not isinstance(kind, str) or kind not in known:
        raise InvalidInput(
            f"unknown facility kind {kind!r}; known kinds: {', '.join(known) or 'none'}",
            field="kind",
        )
    return facilities[facilities[column] == kind]


# --------------------------------------------------------------------------- reach


@dataclass(frozen=True)
class Reach:
    """Network distances from origins (facilities) to the junctions each reaches in time.

    One row per (origin, node) pair within ``max_m``, sorted by origin then node: the shape
    of ``pgr_drivingDistance``'s answer. ``snap`` says where each origin joins the roads.
    """

    max_m: float
    snap: Snap
    origin: NDArray[np.intp]
    node: NDArray[np.intp]
    distance_m: NDArray[np.float64]

    @property
    def n_origins(self) -> int:
        return len(self.snap)

    def for_origin(self, origin: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Nodes one origin reaches and their distances, in node order."""
        lo, hi = np.searchsorted(self.origin, [origin, origin + 1])
        return self.node[lo:hi], self.distance_m[lo:hi]

    @classmethod
    def from_node_distances(
        cls,
        graph: RoadGraph,
        *,
        origin_nodes: ArrayLike,
        origin: ArrayLike,
        node: ArrayLike,
        distance_m: ArrayLike,
        max_m: float,
    ) -> Reach:
        """A reach computed elsewhere (pgRouting) from origins that are nodes of ``graph``.

        ``origin`` indexes ``origin_nodes`` per row; node ids are this graph's (map
        pgRouting's vertex ids with :meth:`RoadGraph.node_index` on their coordinates).
        Rows beyond ``max_m`` are dropped.
        """
        max_m = _positive(max_m, field="max_m")
        starts = _node_ids(graph, origin_nodes, field="origin_nodes")
        rows = np.asarray(origin, dtype=np.intp).ravel()
        nodes = _node_ids(graph, node, field="node")
        dist = np.asarray(distance_m, dtype=np.float64).ravel()
        if not len(rows) == len(nodes) == len(dist):
            raise InvalidInput("origin, node and distance_m differ in length", field="node")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(starts)):
            raise InvalidInput("an origin index is out of range", field="origin")
        if not np.all(np.isfinite(dist) & (dist >= 0)):
            raise InvalidInput("distances must be finite and ≥ 0 m", field="distance_m")
        keep = dist <= max_m
        order = np.lexsort((nodes[keep], rows[keep]))
        return cls(
            max_m=max_m,
            snap=graph.node_snap(starts),
            origin=rows[keep][order],
            node=nodes[keep][order],
            distance_m=dist[keep][order],
        )


def reachable(graph: RoadGraph, origins: Any, max_m: float) -> Reach:
    """Snap each origin to its nearest road and find the junctions it reaches in ``max_m``.

    ``origins`` are points (a GeoDataFrame, GeoSeries or array of Points) in the graph's
    CRS. The walk starts with the straight leg to the road, then follows the edge both ways.
    """
    max_m = _positive(max_m, field="max_m")
    points = _points(origins, graph.crs, field="facilities")
    snap = graph.snap(points)
    origin, node, dist = graph.distances(snap, max_m)
    return Reach(max_m=max_m, snap=snap, origin=origin, node=node, distance_m=dist)


@dataclass(frozen=True)
class RoadPieces:
    """Walkable pieces of edges: edge ``edge[i]`` from ``start_m[i]`` to ``end_m[i]`` (from
    its ``u`` end), drawn as ``geometry[i]``. At most one piece per edge end, merged."""

    edge: NDArray[np.intp]
    start_m: NDArray[np.float64]
    end_m: NDArray[np.float64]
    geometry: NDArray[np.object_]

    def __len__(self) -> int:
        return len(self.edge)

    @property
    def length_m(self) -> float:
        return float(np.sum(self.end_m - self.start_m))


def reached_edges(graph: RoadGraph, reach: Reach, *, origin: int | None = None) -> RoadPieces:
    """The road a walker covers in time: whole edges and the reachable part of the rest.

    From a junction reached with ``r`` metres to spare, every edge leaving it is walkable
    for its first ``r`` metres; where the pieces from both ends meet, the whole edge is.
    The origin's own edge is walkable both ways from the snapped point. ``origin`` picks
    one facility's roads; by default the union over all facilities.
    """
    if origin is None:
        rows = slice(None)
        snap_rows: NDArray[np.intp] | slice = slice(None)
    else:
        if not 0 <= origin < reach.n_origins:
            raise InvalidInput(
                f"no origin {origin}; there are {reach.n_origins}", field="origin", index=origin
            )
        lo, hi = np.searchsorted(reach.origin, [origin, origin + 1])
        rows = slice(int(lo), int(hi))
        snap_rows = np.array([origin], dtype=np.intp)
    best = np.full(graph.n_nodes, np.inf)
    np.minimum.at(best, reach.node[rows], reach.distance_m[rows])
    length = graph.edge_length
    spare_u = reach.max_m - best[graph.edge_u]
    spare_v = reach.max_m - best[graph.edge_v]
    from_u = np.flatnonzero(spare_u > 0)
    from_v = np.flatnonzero(spare_v > 0)
    own = reach.snap.edge[snap_rows]
    along = reach.snap.along_m[snap_rows]
    spare = reach.max_m - reach.snap.access_m[snap_rows]
    own, along, spare = own[spare > 0], along[spare > 0], spare[spare > 0]
    edge = np.concatenate([from_u, from_v, own])
    start = np.concatenate(
        [np.zeros(len(from_u)), np.maximum(length[from_v] - spare_v[from_v], 0.0),
         np.maximum(along - spare, 0.0)]
    )  # fmt: skip
    end = np.concatenate(
        [np.minimum(spare_u[from_u], length[from_u]), length[from_v],
         np.minimum(along + spare, length[own])]
    )  # fmt: skip
    edge, start, end = _merge_intervals(edge, start, end, length)
    whole = (start == 0.0) & (end == length[edge])
    geometry = np.empty(len(edge), dtype=object)
    geometry[whole] = graph.edge_geometry[edge[whole]]
    part = ~whole
    geometry[part] = graph.substrings(edge[part], start[part], end[part])
    return RoadPieces(edge=edge, start_m=start, end_m=end, geometry=geometry)


def _merge_intervals(
    edge: NDArray[np.intp],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    length: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Union of [start, end] intervals per edge; touching intervals merge, empty ones go."""
    keep = end > start
    edge, start, end = edge[keep], start[keep], end[keep]
    if len(edge) == 0:
        return edge.astype(np.intp), start, end
    order = np.lexsort((start, edge))
    edge, start, end = edge[order], start[order], end[order]
    # Offsetting each edge past the previous one lets one running maximum serve all edges.
    shift = np.cumsum(length + 1.0) - (length + 1.0)
    reach_so_far = np.maximum.accumulate(end + shift[edge])
    new = np.ones(len(edge), dtype=bool)
    new[1:] = (edge[1:] != edge[:-1]) | (start[1:] + shift[edge[1:]] > reach_so_far[:-1])
    first = np.flatnonzero(new)
    return edge[first].astype(np.intp), start[first], np.maximum.reduceat(end, first)


# --------------------------------------------------------------------------- polygons


def service_area(
    pieces: RoadPieces | Sequence[shapely.Geometry] | NDArray[np.object_],
    *,
    buffer_m: float = DEFAULT_BUFFER_M,
) -> shapely.Polygon | shapely.MultiPolygon:
    """The reached roads as land: a strip of ``buffer_m`` either side of each piece.

    The strip is the land a walker reaches from the road itself (doors, gates, a few steps
    into a courtyard); it is not more walking. Each piece is buffered on its own and the
    strips are merged by one cascaded ``union_all``: 20–50x faster than buffering all pieces
    as one MultiLineString (0.2 s against 4 s for 3,500 pieces, 12 s for 6,000), whose
    single buffer nodes every offset curve against every other. The two differ only in how
    arcs are approximated (0.04 % of the area).
    """
    buffer_m = _positive(buffer_m, field="buffer_m")
    if buffer_m > MAX_BUFFER_M:
        raise InvalidInput(f"at most {MAX_BUFFER_M:g} m, got {buffer_m:g}", field="buffer_m")
    lines = pieces.geometry if isinstance(pieces, RoadPieces) else np.asarray(pieces, dtype=object)
    lines = shapely.get_parts(np.asarray(lines, dtype=object).ravel())
    if len(lines) == 0:
        return shapely.Polygon()
    # Pieces meeting end to end at a bend (a degree-2 junction) become one line first:
    # fewer, longer strips to union, half the work on networks cut at every vertex.
    merged = shapely.get_parts(shapely.line_merge(shapely.MultiLineString(list(lines))))
    return _polygonal(shapely.union_all(shapely.buffer(merged, buffer_m)))


def crow_flies_area(
    facilities: Any, radius_m: float, *, crs: CRS | None = None
) -> shapely.Polygon | shapely.MultiPolygon:
    """Circles of ``radius_m`` around the facilities: the straight-line layer to compare with.

    It over-promises wherever the roads go round (a river, a railway, a walled campus); the
    difference between this and :func:`service_area` is what the network adds.
    """
    radius_m = _positive(radius_m, field="radius_m")
    points = _points(facilities, crs, field="facilities")
    if len(points) == 0:
        return shapely.Polygon()
    return _polygonal(shapely.union_all(shapely.buffer(points, radius_m)))


# --------------------------------------------------------------------------- grids


def coverage_by_grid(
    service_areas: Any,
    grids: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    code_column: str = "code",
    min_share: float = 0.0,
    household_grid: ArrayLike | None = None,
    snap_m: float = DEFAULT_SNAP_M,
    household_scores: ArrayLike | None = None,
    household_covered: ArrayLike | None = None,
) -> gpd.GeoDataFrame:
    """Per grid: the share of its households covered, and the share of its land in the area.

    A grid is ``uncovered`` when its share is 0 or below ``min_share``; the share judged is
    the households' where the grid has any, else the land's (a grid nobody is registered in
    yet is still a gap on the map). ``household_covered`` (one flag per household) says who
    is covered — by their own walk, see :func:`households_within` — and is what
    :func:`facility_coverage` passes; without it a household counts as covered when the
    area covers its point (for areas that come without a road graph).

    Households belong to the grid named in ``household_grid`` (one code per household, as
    stored after assignment; None for none), else to the grid
    :class:`geo.assignment.index.AreaIndex`
    assigns them (``ST_Covers``, lowest code on ties, snapped within ``snap_m``), which
    costs a fifth of a second for a district's 800 grids: pass the stored codes when serving.
    ``household_scores`` (per household, e.g. from :func:`two_step_fca`) adds their mean
    per grid as ``score``.

    Returns the grids (same order and index, grid polygon as geometry) with ``households``,
    ``covered_households``, ``household_share`` (NaN without households), ``area_share``,
    ``uncovered``, ``covered`` (the area clipped to the grid) and maybe ``score``.
    """
    if not 0.0 <= _number(min_share, field="min_share") <= 1.0:
        raise InvalidInput(f"a share is 0–1, got {min_share!r}", field="min_share")
    _require_metres(grids.crs, field="crs")
    if code_column not in grids.columns:
        raise InvalidInput(f"grids have no column '{code_column}'", field="codes")
    _same_crs(households.crs, grids.crs, field="households")
    area = _one_area(service_areas)
    grid_geoms = np.asarray(grids.geometry.array, dtype=object)
    codes = np.asarray(grids[code_column], dtype=object)
    n = len(grid_geoms)

    hx, hy = _xy(households, field="households")
    if household_grid is None:
        index = AreaIndex(grid_geoms, list(codes), crs=grids.crs)
        grid_of = index.assign_points(hx, hy, snap_m=snap_m).area
    else:
        grid_of = _grid_positions(household_grid, codes, len(hx))
    placed = grid_of >= 0
    clipped = _clip(area, grid_geoms)
    grid_area = shapely.area(grid_geoms)
    area_share = np.divide(shapely.area(clipped), grid_area, out=np.zeros(n), where=grid_area > 0)
    if household_covered is not None:
        flags = np.asarray(household_covered, dtype=bool).ravel()
        if len(flags) != len(hx):
            raise InvalidInput(
                f"{len(flags)} flags for {len(hx)} households", field="household_covered"
            )
        covered_mask = flags & placed
    else:
        # Households of grids the area misses entirely need no point test.
        test = placed & (np.where(placed, area_share[grid_of], 0.0) > 0)
        covered_mask = np.zeros(len(hx), dtype=bool)
        if test.any():
            shapely.prepare(area)
            covered_mask[test] = shapely.intersects_xy(area, hx[test], hy[test])

    total = np.bincount(grid_of[placed], minlength=n)
    covered = np.bincount(grid_of[covered_mask], minlength=n)
    household_share = np.divide(
        covered, total, out=np.full(n, np.nan), where=total > 0, dtype=np.float64
    )
    judged = np.where(total > 0, household_share, area_share)
    frame = gpd.GeoDataFrame(
        {
            code_column: codes,
            "households": total,
            "covered_households": covered,
            "household_share": household_share,
            "area_share": area_share,
            "uncovered": (judged == 0) | (judged < min_share),
            "covered": gpd.GeoSeries(clipped, crs=grids.crs, index=grids.index),
        },
        geometry=gpd.GeoSeries(grid_geoms, crs=grids.crs, index=grids.index),
        index=grids.index,
    )
    if household_scores is not None:
        scores = np.asarray(household_scores, dtype=np.float64).ravel()
        if len(scores) != len(hx):
            raise InvalidInput(
                f"{len(scores)} scores for {len(hx)} households", field="household_scores"
            )
        sums = np.bincount(grid_of[placed], weights=scores[placed], minlength=n)
        frame["score"] = np.divide(sums, total, out=np.full(n, np.nan), where=total > 0)
    return frame


def _grid_positions(
    household_grid: ArrayLike, codes: NDArray[np.object_], n_households: int
) -> NDArray[np.intp]:
    """Grid position per household from stored grid codes; -1 for none. Unknown codes fail."""
    given = pd.Series(np.asarray(household_grid, dtype=object).ravel())
    if len(given) != n_households:
        raise InvalidInput(
            f"{len(given)} grid codes for {n_households} households", field="household_grid"
        )
    missing = given.isna() | (given == "")
    position = pd.Index(codes).get_indexer(pd.Index(given.where(~missing, None)))
    unknown = np.flatnonzero((position < 0) & ~missing.to_numpy())
    if len(unknown):
        i = int(unknown[0])
        raise InvalidInput(
            f"{len(unknown)} household(s) in grids not given, the first {given[i]!r}",
            field="household_grid",
            index=i,
        )
    return np.where(missing.to_numpy(), -1, position).astype(np.intp)


def _clip(area: shapely.Geometry, grid_geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """The area inside each grid, as polygons; grids it misses or contains need no overlay.

    Each overlay runs against the area cut down to the grid's bounding box first, so it
    handles a few dozen vertices instead of the whole district's tens of thousands: 5x
    faster than intersecting with the whole area.
    """
    out = np.full(len(grid_geoms), shapely.Polygon(), dtype=object)
    if shapely.is_empty(area) or len(grid_geoms) == 0:
        return out
    tree = shapely.STRtree(grid_geoms)
    touched = np.unique(tree.query(shapely.get_parts(area), predicate="intersects")[1])
    if len(touched) == 0:
        return out
    shapely.prepare(area)
    inside = shapely.contains_properly(area, grid_geoms[touched])
    out[touched[inside]] = grid_geoms[touched[inside]]
    rest = touched[~inside]
    local = np.array(
        [shapely.clip_by_rect(area, *box) for box in shapely.bounds(grid_geoms[rest])],
        dtype=object,
    )
    pieces = shapely.intersection(local, grid_geoms[rest])
    mixed = np.flatnonzero(
        ~np.isin(
            shapely.get_type_id(pieces),
            [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON],
        )
    )
    for i in mixed:  # a grid that only touches the area: drop the lines and points
        pieces[i] = _polygonal(pieces[i])
    out[rest] = pieces
    return out


# --------------------------------------------------------------------------- capacity


@dataclass(frozen=True)
class ODPairs:
    """Network distances between origins (facilities) and points (households) within reach.

    One row per pair, sorted by origin then point; pairs farther than ``max_m`` are absent.
    """

    origin: NDArray[np.intp]
    point: NDArray[np.intp]
    distance_m: NDArray[np.float64]
    n_origins: int
    n_points: int
    max_m: float

    def __len__(self) -> int:
        return len(self.origin)


def network_distances(
    graph: RoadGraph, reach: Reach, points: Any, *, snap: Snap | None = None
) -> ODPairs:
    """Walking distance from each origin of ``reach`` to each point it reaches in time.

    A point walks straight to its nearest road, then along its edge to a reached junction
    (or, on the origin's own edge, straight along it to the origin). ``snap`` is
    ``graph.snap(points)`` computed earlier: snapping a district's 150,000 households costs
    half a second, so a server snaps them once per road network and household set.
    """
    pts = _points(points, graph.crs, field="points")
    if snap is None:
        snap = graph.snap(pts)
    elif len(snap) != len(pts):
        raise InvalidInput(f"{len(snap)} snaps for {len(pts)} points", field="snap")
    by_edge = np.argsort(snap.edge, kind="stable")
    edge_ptr = np.concatenate(
        [[0], np.cumsum(np.bincount(snap.edge, minlength=graph.n_edges))]
    ).astype(np.intp)

    def points_on(edges: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        count = edge_ptr[edges + 1] - edge_ptr[edges]
        which = np.repeat(np.arange(len(edges)), count)
        offset = np.arange(len(which)) - np.repeat(np.cumsum(count) - count, count)
        return which, by_edge[np.repeat(edge_ptr[edges], count) + offset]

    # Via a reached junction: every point on every edge touching it.
    row, edge = graph.incident_edges(reach.node)
    which, point = points_on(edge)
    row, edge = row[which], edge[which]
    node = reach.node[row]
    t = snap.along_m[point]
    tail = np.where(node == graph.edge_u[edge], t, graph.edge_length[edge] - t)
    # A self-loop is walked in from whichever end is shorter.
    loop = graph.edge_u[edge] == graph.edge_v[edge]
    tail[loop] = np.minimum(t[loop], graph.edge_length[edge[loop]] - t[loop])
    via_node = reach.distance_m[row] + tail + snap.access_m[point]
    # Along the origin's own edge, without passing a junction.
    which_o, point_o = points_on(reach.snap.edge)
    direct = (
        reach.snap.access_m[which_o]
        + np.abs(reach.snap.along_m[which_o] - snap.along_m[point_o])
        + snap.access_m[point_o]
    )
    origin = np.concatenate([reach.origin[row], which_o]).astype(np.intp)
    point_all = np.concatenate([point, point_o]).astype(np.intp)
    dist = np.concatenate([via_node, direct])
    keep = dist <= reach.max_m
    origin, point_all, dist = origin[keep], point_all[keep], dist[keep]
    order = np.lexsort((dist, point_all, origin))
    origin, point_all, dist = origin[order], point_all[order], dist[order]
    first = np.ones(len(origin), dtype=bool)
    first[1:] = (origin[1:] != origin[:-1]) | (point_all[1:] != point_all[:-1])
    return ODPairs(
        origin=origin[first],
        point=point_all[first],
        distance_m=dist[first],
        n_origins=reach.n_origins,
        n_points=len(pts),
        max_m=reach.max_m,
    )


def households_within(distances: ODPairs) -> NDArray[np.bool_]:
    """Per point, whether any origin reaches it in time: coverage by the household's own walk.

    A household 60 m off a reached road is covered if the walk still fits, and one inside
    the roadside strip is not if its door opens onto a road the walk never gets to.
    """
    covered = np.zeros(distances.n_points, dtype=bool)
    covered[distances.point] = True
    return covered


def two_step_fca(
    capacity: ArrayLike | Sequence[float | None],
    distances: ODPairs,
    *,
    catchment_m: float | None = None,
    demand: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Capacity available to each point, shared fairly among everyone within reach (2SFCA).

    Step 1: each facility's capacity is divided by the demand within ``catchment_m`` of it
    (``demand`` per point, 1 each by default). Step 2: each point sums those ratios over the
    facilities within ``catchment_m``. So 0.02 means "two places per hundred households",
    counting competition for the same places, which plain coverage cannot see. A facility
    with nobody in reach offers nothing to anyone.
    """
    cap = _capacities(capacity, distances.n_origins)
    catchment = distances.max_m if catchment_m is None else _positive(catchment_m, "catchment_m")
    if catchment > distances.max_m:
        raise InvalidInput(
            f"the distances stop at {distances.max_m:g} m; a catchment of {catchment:g} m "
            "needs a longer reach",
            field="catchment_m",
        )
    weight = np.ones(distances.n_points) if demand is None else np.asarray(demand, np.float64)
    if weight.shape != (distances.n_points,) or not np.all(np.isfinite(weight) & (weight >= 0)):
        raise InvalidInput(
            f"one finite demand ≥ 0 per point ({distances.n_points}) is needed", field="demand"
        )
    within = distances.distance_m <= catchment
    origin, point = distances.origin[within], distances.point[within]
    wanted = np.bincount(origin, weights=weight[point], minlength=distances.n_origins)
    ratio = np.divide(cap, wanted, out=np.zeros(distances.n_origins), where=wanted > 0)
    score = np.bincount(point, weights=ratio[origin], minlength=distances.n_points)
    return score.astype(np.float64)


# --------------------------------------------------------------------------- one request


@dataclass(frozen=True)
class Coverage:
    """Everything one coverage request produces: the walk, both layers and the grid table."""

    max_m: float
    reach: Reach  # origin i is facility ``walked[i]``
    roads: RoadPieces
    network_area: shapely.Polygon | shapely.MultiPolygon
    crow_flies_area: shapely.Polygon | shapely.MultiPolygon
    grids: gpd.GeoDataFrame
    distances: ODPairs
    walked: NDArray[np.intp]  # positions of the facilities walked from, ascending


def facilities_in_reach(
    facilities: Any,
    grids: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    max_m: float,
    buffer_m: float = DEFAULT_BUFFER_M,
) -> NDArray[np.intp]:
    """Positions of the facilities whose walk can touch ``grids`` or ``households``.

    The others change nothing in the grid table (but the rounding of the strip's union), so
    one street's coverage need not walk from every facility of the city. A walk of ``max_m``
    never ends farther than ``max_m`` from its facility in a straight line: the legs between
    a door and its road are straight and every road piece is at least as long as its chord.
    So a facility farther than ``max_m`` from the households' bounding box reaches none of
    them, and one farther than ``max_m + buffer_m`` from the grids' draws no strip on any
    grid. ``REACH_SLACK_M`` more is kept against rounding: keeping one facility too many
    costs a walk, dropping one would change the answer.
    """
    points = _points(facilities, grids.crs, field="facilities")
    xy = shapely.get_coordinates(points)
    keep = np.zeros(len(points), dtype=bool)
    for frame, radius in ((grids, max_m + buffer_m), (households, max_m)):
        if len(frame) == 0 or len(points) == 0:
            continue
        lo_x, lo_y, hi_x, hi_y = frame.total_bounds
        dx = np.maximum(np.maximum(lo_x - xy[:, 0], xy[:, 0] - hi_x), 0.0)
        dy = np.maximum(np.maximum(lo_y - xy[:, 1], xy[:, 1] - hi_y), 0.0)
        keep |= np.hypot(dx, dy) <= radius + REACH_SLACK_M
    return np.flatnonzero(keep).astype(np.intp)


def facility_coverage(
    graph: RoadGraph,
    facilities: Any,
    grids: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    minutes: float,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    buffer_m: float = DEFAULT_BUFFER_M,
    min_share: float = 0.0,
    code_column: str = "code",
    household_grid: ArrayLike | None = None,
    household_snap: Snap | None = None,
    capacity: ArrayLike | Sequence[float | None] | None = None,
    straight_line: bool = True,
    every_facility: bool = False,
) -> Coverage:
    """Walking coverage of ``facilities`` (already one kind) over ``grids``, for one request.

    ``household_grid`` is each household's stored grid code (see :func:`coverage_by_grid`);
    ``household_snap`` their snap onto ``graph`` when cached. Households are covered by
    their own walk (:func:`network_distances`); the strip is drawn. With ``capacity`` (one
    per facility) each grid also gets the mean 2SFCA ``score`` of its households. Without
    ``straight_line`` the comparison circles are left empty (numbers only, nothing drawn).

    Only the facilities that can reach a grid or a household are walked from
    (:func:`facilities_in_reach`), so a street's request no longer walks from the whole
    city: the counts, shares and scores are the same; ``area_share`` and ``covered`` only
    differ by the rounding of the strip's union (~1e-10 of a share), as they do when a
    facility is added across the city. The strip (``network_area``) is then drawn near the
    grids only; ``every_facility`` walks from all of them, for a map of the whole area.
    """
    max_m = walk_distance_m(minutes, speed_kmh=speed_kmh)
    points = _points(facilities, graph.crs, field="facilities")
    _same_crs(households.crs, graph.crs, field="households")
    if every_facility:
        walked = np.arange(len(points), dtype=np.intp)
    else:
        walked = facilities_in_reach(points, grids, households, max_m=max_m, buffer_m=buffer_m)
    reach = reachable(graph, points[walked], max_m)
    roads = reached_edges(graph, reach)
    area = service_area(roads, buffer_m=buffer_m)
    distances = network_distances(graph, reach, households, snap=household_snap)
    # Capacities are checked for every facility, walked or not: a gap is refused either way.
    scores = (
        None
        if capacity is None
        else two_step_fca(_capacities(capacity, len(points))[walked], distances)
    )
    table = coverage_by_grid(
        area,
        grids,
        households,
        code_column=code_column,
        min_share=min_share,
        household_grid=household_grid,
        household_scores=scores,
        household_covered=households_within(distances),
    )
    return Coverage(
        max_m=max_m,
        reach=reach,
        roads=roads,
        network_area=area,
        crow_flies_area=crow_flies_area(points, max_m) if straight_line else shapely.Polygon(),
        grids=table,
        distances=distances,
        walked=walked,
    )


# --------------------------------------------------------------------------- checks


def _number(value: Any, *, field: str) -> float:
    """A finite real number (not a bool, not NaN), or an error naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInput(f"must be a number, got {value!r}", field=field)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"must be finite, got {value!r}", field=field)
    return number


def _positive(value: Any, field: str) -> float:
    number = _number(value, field=field)
    if number <= 0:
        raise InvalidInput(f"must be more than 0 m, got {value!r}", field=field)
    return number


def _same_crs(crs: CRS | None, expected: CRS | None, *, field: str) -> None:
    if crs is not None and expected is not None and not CRS.from_user_input(crs).equals(expected):
        raise CRSError(f"must be in {expected}, got {crs}", field=field)


def _points(obj: Any, crs: CRS | None, *, field: str) -> NDArray[np.object_]:
    """Point geometries from a GeoDataFrame / GeoSeries (CRS checked) or an array of Points."""
    if isinstance(obj, gpd.GeoDataFrame | gpd.GeoSeries):
        _same_crs(obj.crs, crs, field=field)
        geoms = np.asarray(obj.geometry.array, dtype=object)
    else:
        geoms = np.asarray(obj, dtype=object).ravel()
    is_point = shapely.get_type_id(geoms) == shapely.GeometryType.POINT
    bad = np.flatnonzero(~is_point | shapely.is_empty(geoms))
    if len(bad):
        i = int(bad[0])
        raise InvalidGeometry(
            f"{len(bad)} location(s) are not points, the first {geoms[i]!r}", field=field, index=i
        )
    return geoms


def _xy(frame: gpd.GeoDataFrame, *, field: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    geoms = _points(frame, frame.crs, field=field)
    return shapely.get_x(geoms), shapely.get_y(geoms)


def _one_area(service_areas: Any) -> shapely.Geometry:
    """One (multi)polygon from a geometry or a sequence of them."""
    if isinstance(service_areas, shapely.Geometry):
        geoms = np.array([service_areas], dtype=object)
    elif isinstance(service_areas, Sequence | np.ndarray | gpd.GeoSeries | pd.Series):
        geoms = np.asarray(service_areas, dtype=object).ravel()
    else:
        raise InvalidInput("expected a polygon or a list of polygons", field="service_areas")
    kinds = shapely.get_type_id(geoms)
    polygonal = (kinds == shapely.GeometryType.POLYGON) | (
        kinds == shapely.GeometryType.MULTIPOLYGON
    )
    if not polygonal.all():
        i = int(np.flatnonzero(~polygonal)[0])
        raise InvalidGeometry("service areas must be polygons", field="service_areas", index=i)
    return geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)


def _polygonal(geom: shapely.Geometry) -> shapely.Polygon | shapely.MultiPolygon:
    """The polygons of an overlay's result as one (multi)polygon; an empty Polygon if none."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    polygons = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon)]
    if not polygons:
        return shapely.Polygon()
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def _node_ids(graph: RoadGraph, values: ArrayLike, *, field: str) -> NDArray[np.intp]:
    ids = np.asarray(values, dtype=np.intp).ravel()
    if len(ids) and (ids.min() < 0 or ids.max() >= graph.n_nodes):
        i = int(np.flatnonzero((ids < 0) | (ids >= graph.n_nodes))[0])
        raise InvalidInput(f"no node {ids[i]} in the graph", field=field, index=i)
    return ids


def _capacities(capacity: ArrayLike | Sequence[float | None], n: int) -> NDArray[np.float64]:
    """One finite capacity ≥ 0 per facility; every missing one is listed, not just the first."""
    values = pd.Series(np.asarray(capacity, dtype=object).ravel(), dtype=object)
    cap = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if len(cap) != n:
        raise InvalidInput(f"{len(cap)} capacities for {n} facilities", field="capacity")
    bad = np.flatnonzero(~(np.isfinite(cap) & (cap >= 0)))
    if len(bad):
        raise InvalidInput(
            f"{len(bad)} facility(ies) without a usable capacity (finite, ≥ 0), "
            f"at {', '.join(map(str, bad[:10]))}",
            field="capacity",
            index=int(bad[0]),
        )
    return cap
