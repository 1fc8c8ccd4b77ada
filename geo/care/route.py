"""The walking route itself, not only its length: the path along the roads from where an
elder is to the facilities near them, so that a dispatcher sees which way to go.

One bounded Dijkstra from the origin (snapped onto its nearest road, the straight walk to the
road counted as in :mod:`geo.coverage.walk`) with each node's predecessor kept; each target is
reached through either end of its own nearest road, or directly along the origin's road when
both lie on the same one. Everything is in the graph's metric CRS.
"""

from __future__ import annotations

import heapq
import weakref
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString, Point

from geo.coverage.road_graph import RoadGraph

_ADJACENCY: weakref.WeakKeyDictionary[RoadGraph, tuple[list[int], list[int], list[int]]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class Route:
    """A walk along the roads: its line (origin first) and its length in metres."""

    line: LineString
    length_m: float


def _adjacency(graph: RoadGraph) -> tuple[list[int], list[int], list[int]]:
    """Per node, (neighbour, edge) pairs in CSR form; built once per graph."""
    cached = _ADJACENCY.get(graph)
    if cached is not None:
        return cached
    u, v = graph.edge_u, graph.edge_v
    edges = np.arange(graph.n_edges, dtype=np.intp)
    a = np.concatenate([u, v])
    b = np.concatenate([v, u])
    e = np.concatenate([edges, edges])
    order = np.argsort(a, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(a, minlength=graph.n_nodes))])
    out = (indptr.tolist(), b[order].tolist(), e[order].tolist())
    _ADJACENCY[graph] = out
    return out


def _piece(graph: RoadGraph, edge: int, start_m: float, end_m: float) -> NDArray[np.float64]:
    """Coordinates of the edge between two distances from its ``u`` end, in walking order
    (reversed when ``start_m > end_m``); empty when the two are the same point."""
    lo, hi = sorted((start_m, end_m))
    if hi - lo < 1e-6:
        return np.empty((0, 2))
    [line] = graph.substrings(np.array([edge]), np.array([lo]), np.array([hi]))
    xy = shapely.get_coordinates(line)
    return xy[::-1] if start_m > end_m else xy


def _oriented(graph: RoadGraph, edge: int, from_node: int) -> NDArray[np.float64]:
    xy = shapely.get_coordinates(graph.edge_geometry[edge])
    return xy if int(graph.edge_u[edge]) == from_node else xy[::-1]


def walking_routes(
    graph: RoadGraph, origin: Point, targets: list[Point], *, max_m: float
) -> list[Route | None]:
    """The shortest walk along the roads from ``origin`` to each target (metric CRS), or
    None for a target farther than ``max_m``."""
    if not targets:
        return []
    snap = graph.snap(np.array([origin, *targets], dtype=object))
    length = graph.edge_length
    o_edge, o_along, o_access = int(snap.edge[0]), float(snap.along_m[0]), float(snap.access_m[0])
    o_u, o_v = int(graph.edge_u[o_edge]), int(graph.edge_v[o_edge])
    wanted = {int(n) for i in range(1, len(snap)) for n in (graph.edge_u[snap.edge[i]],
                                                           graph.edge_v[snap.edge[i]])}  # fmt: skip

    # Dijkstra with predecessors: prev[node] = (previous node, edge), or (-1, -1) at a seed.
    indptr, adjacent, edge_of = _adjacency(graph)
    seeds = ((o_access + o_along, o_u), (o_access + float(length[o_edge]) - o_along, o_v))
    best: dict[int, float] = {}
    prev: dict[int, tuple[int, int]] = {}
    heap: list[tuple[float, int]] = []
    for d, n in seeds:
        if d <= max_m and d < best.get(n, np.inf):
            best[n], prev[n] = d, (-1, -1)
            heap.append((d, n))
    heapq.heapify(heap)
    done: dict[int, float] = {}
    while heap and not wanted.issubset(done):
        d, n = heapq.heappop(heap)
        if n in done:
            continue
        done[n] = d
        for k in range(indptr[n], indptr[n + 1]):
            m, e = adjacent[k], edge_of[k]
            nd = d + float(length[e])
            if nd <= max_m and m not in done and nd < best.get(m, np.inf):
                best[m], prev[m] = nd, (n, e)
                heapq.heappush(heap, (nd, m))

    def path_to(node: int) -> NDArray[np.float64]:
        """Origin point → its road → the roads to ``node``."""
        chain: list[tuple[int, int]] = []
        n = node
        while prev[n][0] != -1:
            chain.append((prev[n][0], prev[n][1]))
            n = prev[n][0]
        first = n  # the seed: o_u or o_v
        parts = [
            np.array([[origin.x, origin.y]]),
            _piece(graph, o_edge, o_along, 0.0 if first == o_u else float(length[o_edge])),
        ]
        parts += [_oriented(graph, e, a) for a, e in reversed(chain)]
        return np.concatenate([p for p in parts if len(p)])

    routes: list[Route | None] = []
    for i, target in enumerate(targets, start=1):
        t_edge, t_along = int(snap.edge[i]), float(snap.along_m[i])
        t_access = float(snap.access_m[i])
        t_u, t_v = int(graph.edge_u[t_edge]), int(graph.edge_v[t_edge])
        options: list[tuple[float, str]] = []
        if t_u in done:
            options.append((done[t_u] + t_along + t_access, "u"))
        if t_v in done:
            options.append((done[t_v] + float(length[t_edge]) - t_along + t_access, "v"))
        if t_edge == o_edge:
            options.append((o_access + abs(o_along - t_along) + t_access, "same"))
        options = [o for o in options if o[0] <= max_m]
        if not options:
            routes.append(None)
            continue
        metres, how = min(options)
        end = np.array([[target.x, target.y]])
        if how == "same":
            xy = np.concatenate(
                [
                    p
                    for p in (
                        np.array([[origin.x, origin.y]]),
                        _piece(graph, o_edge, o_along, t_along),
                        end,
                    )
                    if len(p)
                ]
            )
        else:
            node = t_u if how == "u" else t_v
            last = _piece(graph, t_edge, 0.0 if how == "u" else float(length[t_edge]), t_along)
            xy = np.concatenate([p for p in (path_to(node), last, end) if len(p)])
        if len(xy) < 2:
            xy = np.vstack([xy, xy])
        routes.append(Route(LineString(xy), metres))
    return routes
