"""Simulated walks along the roads, for the demo's watches: seeded, pure, in metres.

A walk is a list of :class:`WalkFix` (x, y in the road graph's metric CRS, and a time), one
every ``interval_s``, ``step_m`` apart along the roads: every position lies on a road edge of
the :class:`~geo.coverage.road_graph.RoadGraph` it was drawn on. The same graph, start and
seed give the same walk.

:func:`stroll` wanders at random from junction to junction (never straight back unless the
road ends), and can be kept inside a safe zone; :func:`excursion` walks away from home until
it is ``beyond_m`` outside the zone, waits there a little, and comes back along the shortest
route (:func:`geo.care.route.walking_routes`): one ``left_zone`` and one ``returned`` alert.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString, Point

from geo.care.route import walking_routes
from geo.care.safezone import SafeZone
from geo.coverage.road_graph import RoadGraph
from geo.errors import InvalidInput

DEFAULT_STEP_M = 11.0
"""An elder's pace (about 1.1 m/s) times the demo watches' interval of 10 s."""


@dataclass(frozen=True)
class Pace:
    """How a walk is reported: one fix every ``interval_s``, ``step_m`` apart along the roads
    (both > 0, refused otherwise)."""

    interval_s: float = 10.0
    step_m: float = DEFAULT_STEP_M

    def __post_init__(self) -> None:
        if not math.isfinite(self.step_m) or self.step_m <= 0:
            raise InvalidInput(f"{self.step_m} is not a step > 0 m", field="step_m")
        if not math.isfinite(self.interval_s) or self.interval_s <= 0:
            raise InvalidInput(f"{self.interval_s} is not an interval > 0 s", field="interval_s")

    def after(self, time: datetime, fixes: int = 1) -> datetime:
        """When the fix ``fixes`` reports after the one at ``time`` is sent."""
        return time + timedelta(seconds=fixes * self.interval_s)


WATCH = Pace()
"""The demo watches' pace: a fix every 10 s, 11 m apart."""


@dataclass(frozen=True)
class WalkFix:
    x: float
    y: float
    time: datetime


@dataclass(frozen=True)
class _At:
    """Where a walker stands: a node, reached along ``edge`` (-1 at the start)."""

    node: int
    edge: int


def on_road(graph: RoadGraph, x: float, y: float) -> tuple[float, float]:
    """The nearest point of the roads that join the town's main network (a walk from a yard
    or a pedestrian precinct drawn apart from the streets would go nowhere): where a walk
    from a home starts and ends."""
    tree, edges = _main_roads(graph)
    edge = int(edges[int(tree.query_nearest(Point(x, y))[0])])
    line = graph.edge_geometry[edge]
    p = shapely.line_interpolate_point(line, shapely.line_locate_point(line, Point(x, y)))
    return float(p.x), float(p.y)


_MAIN: weakref.WeakKeyDictionary[RoadGraph, tuple[shapely.STRtree, NDArray[np.intp]]] = (
    weakref.WeakKeyDictionary()
)


def _main_roads(graph: RoadGraph) -> tuple[shapely.STRtree, NDArray[np.intp]]:
    """The edges of the largest connected part of the graph, with a tree over them."""
    cached = _MAIN.get(graph)
    if cached is not None:
        return cached
    parent = np.arange(graph.n_nodes)

    def find(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = int(parent[n])
        return n

    for u, v in zip(graph.edge_u.tolist(), graph.edge_v.tolist(), strict=True):
        a, b = find(u), find(v)
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = np.array([find(n) for n in range(graph.n_nodes)])
    biggest = np.bincount(roots).argmax()
    edges = np.flatnonzero(roots[graph.edge_u] == biggest).astype(np.intp)
    out = (shapely.STRtree(graph.edge_geometry[edges]), edges)
    _MAIN[graph] = out
    return out


def _oriented(graph: RoadGraph, edge: int, from_node: int) -> NDArray[np.float64]:
    xy = shapely.get_coordinates(graph.edge_geometry[edge])
    return xy if int(graph.edge_u[edge]) == from_node else xy[::-1]


def _other(graph: RoadGraph, edge: int, node: int) -> int:
    u, v = int(graph.edge_u[edge]), int(graph.edge_v[edge])
    return v if u == node else u


def _leave_start(
    graph: RoadGraph,
    start: tuple[float, float],
    rng: np.random.Generator,
    zone: SafeZone | None = None,
) -> tuple[list[NDArray[np.float64]], _At]:
    """From the start (snapped onto its road) to one end of that road: chosen at random, or
    with ``zone`` the end deeper inside it."""
    snap = graph.snap(np.array([Point(*start)], dtype=object))
    edge, along = int(snap.edge[0]), float(snap.along_m[0])
    line = graph.edge_geometry[edge]
    xy = shapely.get_coordinates(line)
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    here = shapely.get_coordinates(shapely.line_interpolate_point(line, along))
    to_u = bool(rng.integers(2))
    if zone is not None:
        u, v = int(graph.edge_u[edge]), int(graph.edge_v[edge])
        to_u = zone.signed_distance(*graph.node_xy[u]) < zone.signed_distance(*graph.node_xy[v])
    if to_u:
        inner, node = xy[cum < along][::-1], int(graph.edge_u[edge])
    else:
        inner, node = xy[cum > along], int(graph.edge_v[edge])
    return [here, inner], _At(node, edge)


def _next_edge(
    graph: RoadGraph,
    at: _At,
    rng: np.random.Generator,
    *,
    score: NDArray[np.float64] | None = None,
    edge_score: NDArray[np.float64] | None = None,
) -> int:
    """A road out of the junction, chosen at random: without ``score`` never the one just
    walked unless it is the only one; with it, weighted by ``exp(score)`` of the junction
    each leads to, turning back weighing ``exp(-BACK)`` as much (a way out of a corner)."""
    _, found = graph.incident_edges(np.array([at.node]))
    edges = [int(e) for e in found]
    choices = [e for e in edges if e != at.edge] or edges
    if score is None:
        return choices[int(rng.integers(len(choices)))]
    if at.edge in edges and len(choices) < len(edges):
        choices.append(at.edge)
    weights = np.array(
        [
            score[_other(graph, e, at.node)]
            + (0.0 if edge_score is None else edge_score[e])
            - (_BACK if e == at.edge else 0.0)
            for e in choices
        ]
    )
    weights = np.exp(weights - weights.max())
    return choices[int(rng.choice(len(choices), p=weights / weights.sum()))]


_BACK = 8.0


def _edge_depth(graph: RoadGraph, zone: SafeZone) -> NDArray[np.float64]:
    """Per edge, the signed distance to the zone's edge of its vertex farthest out."""
    xy, edge = shapely.get_coordinates(graph.edge_geometry, return_index=True)
    geometry = zone.geometry
    outside = np.asarray(shapely.distance(geometry.boundary, shapely.points(xy)))
    covered = shapely.covers(geometry, shapely.points(xy))
    depth = np.where(covered, -outside, outside)
    out = np.full(graph.n_edges, -np.inf)
    np.maximum.at(out, edge, depth)
    return out


def _sample(
    parts: list[NDArray[np.float64]], pace: Pace, start_time: datetime, count: int | None = None
) -> list[WalkFix]:
    """Positions every ``step_m`` along the joined parts, one every ``interval_s``."""
    xy = np.concatenate([p for p in parts if len(p)])
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.hypot(*np.diff(xy, axis=0).T) > 1e-9
    xy = xy[keep]
    if len(xy) == 1:
        xy = np.vstack([xy, xy])
    line = LineString(xy)
    step_m = pace.step_m
    n = int(line.length // step_m) + 1 if count is None else count
    points = shapely.line_interpolate_point(line, np.minimum(np.arange(n) * step_m, line.length))
    coords = shapely.get_coordinates(points)
    return [
        WalkFix(float(x), float(y), pace.after(start_time, i)) for i, (x, y) in enumerate(coords)
    ]


def stroll(
    graph: RoadGraph,
    start: tuple[float, float],
    *,
    seed: int,
    fixes: int,
    start_time: datetime,
    within: SafeZone | None = None,
    margin_m: float = 30.0,
    pace: Pace = WATCH,
) -> list[WalkFix]:
    """``fixes`` positions of a random walk along the roads from the road nearest ``start``.

    With ``within``, roads that come closer than ``margin_m`` to the zone's edge are avoided
    whenever another way exists (if need be by turning back), so the stroll raises no alert.
    """
    if fixes < 1:
        raise InvalidInput(f"{fixes} is not a number of fixes ≥ 1", field="fixes")
    rng = np.random.default_rng(seed)
    parts, at = _leave_start(graph, start, rng, within)
    need = fixes * pace.step_m
    walked = float(sum(np.hypot(*np.diff(p, axis=0).T).sum() for p in parts if len(p) > 1))
    flat = np.zeros(graph.n_nodes)
    inside: NDArray[np.float64] | None = None
    if within is not None:
        inside = np.where(_edge_depth(graph, within) < -margin_m, 0.0, -50.0)
    while walked < need:
        edge = _next_edge(graph, at, rng, score=flat, edge_score=inside)
        parts.append(_oriented(graph, edge, at.node))
        walked += float(graph.edge_length[edge])
        at = _At(_other(graph, edge, at.node), edge)
    return _sample(parts, pace, start_time, count=fixes)


def excursion(
    graph: RoadGraph,
    home: tuple[float, float],
    zone: SafeZone,
    *,
    seed: int,
    start_time: datetime,
    beyond_m: float = 40.0,
    linger: int = 3,
    max_m: float = 20_000.0,
    pace: Pace = WATCH,
) -> list[WalkFix]:
    """From the road nearest ``home`` out of ``zone`` by ``beyond_m``, ``linger`` fixes
    standing there, and back to where it started along the shortest route."""
    rng = np.random.default_rng(seed)
    origin = on_road(graph, *home)
    parts, at = _leave_start(graph, origin, rng)
    hx, hy = origin
    # Away from home: junctions farther from it weigh more (a 25 m gain: e times likelier).
    away = np.hypot(graph.node_xy[:, 0] - hx, graph.node_xy[:, 1] - hy) / 25.0
    walked = 0.0
    while zone.signed_distance(*graph.node_xy[at.node]) <= beyond_m:
        if walked > max_m:
            raise InvalidInput(f"no way out of the zone within {max_m:g} m of roads", field="zone")
        edge = _next_edge(graph, at, rng, score=away)
        parts.append(_oriented(graph, edge, at.node))
        walked += float(graph.edge_length[edge])
        at = _At(_other(graph, edge, at.node), edge)
    out = _sample(parts, pace, start_time)
    far = graph.node_xy[at.node]
    out_end = out[-1]
    if (out_end.x, out_end.y) != (float(far[0]), float(far[1])):
        out.append(WalkFix(float(far[0]), float(far[1]), pace.after(out_end.time)))
    for _ in range(linger):
        out.append(WalkFix(out[-1].x, out[-1].y, pace.after(out[-1].time)))
    [route] = walking_routes(graph, Point(far), [Point(origin)], max_m=max_m + walked)
    if route is None:  # pragma: no cover - the way out is a way back
        raise InvalidInput("no way back home along the roads", field="home")
    back = _sample([shapely.get_coordinates(route.line)], pace, out[-1].time)
    last = shapely.get_coordinates(route.line)[-1]
    tail = [WalkFix(float(last[0]), float(last[1]), back[-1].time)]
    if (back[-1].x, back[-1].y) != (tail[0].x, tail[0].y):
        tail = [WalkFix(tail[0].x, tail[0].y, pace.after(back[-1].time))]
    else:
        tail = []
    return out + back[1:] + tail
