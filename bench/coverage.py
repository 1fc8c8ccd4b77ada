"""Benchmark: walking coverage for 30 facilities on a 20k-edge road network, per request.

Run ``python -m bench.coverage`` (``--minutes``, ``--facilities``, ``--repeat``). The target
from the issue: one coverage request (reach + polygons + clip to grids) in ≤ 1 s on 2 cores.

The network is the synthetic district's ``roads`` (11,970 noded segments, EPSG:4326 → UTM
45N), each segment cut in two at its midpoint: 23,940 edges, the size of a real district's
walk network. The midpoints become ordinary degree-2 junctions, so distances are unchanged
and the graph simply has twice the edges to search. Facilities: 30 of the 178, picked
evenly by ``facility_id`` (every ~6th, all five kinds). Households keep the grid code they
would have been stored with (assigned once, outside the timer), as the API would read them.

Rows compare gridwork's path with the obvious alternative, in the same run:

* **gridwork** — :class:`geo.coverage.walk.RoadGraph` built once; per request
  :func:`~geo.coverage.walk.reachable` (a heap-bounded Dijkstra per facility),
  :func:`~geo.coverage.walk.reached_edges` (whole edges *and* the partial pieces),
  :func:`~geo.coverage.walk.service_area` + the straight-line layer, and
  :func:`~geo.coverage.walk.coverage_by_grid`.
* **networkx way** — the same junctions in an ``nx.Graph``; per request each facility goes to
  its nearest *node*, ``nx.single_source_dijkstra_path_length(cutoff=...)``, every edge whose
  two ends are reached is buffered and ``unary_union``-ed, then ``GeoSeries.intersection``
  clips the area to every grid and ``geopandas.sjoin`` counts the households inside. It is
  not the same answer: it drops the partial edges at the rim (under-covers) and keeps whole
  edges between two reached junctions even when their middle is out of reach (over-covers).
  The answer rows show how far apart the two land.

Times are best of ``--repeat`` after one warm-up, per step; "per request" is the best total
of whole runs, not the sum of the best steps.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table
from shapely.ops import substring

from geo.assignment.index import AreaIndex
from geo.coverage.walk import (
    DEFAULT_BUFFER_M,
    RoadGraph,
    Snap,
    coverage_by_grid,
    crow_flies_area,
    households_within,
    network_distances,
    reachable,
    reached_edges,
    service_area,
    walk_distance_m,
)

DISTRICT = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "samples"
    / "synthetic-district"
    / "synthetic-district.gpkg"
)
UTM_45N = 32645
console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True)
class District:
    """The inputs of one request, loaded and projected once."""

    roads: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    households: gpd.GeoDataFrame
    household_grid: NDArray[np.object_]
    facilities: gpd.GeoDataFrame


@dataclass(frozen=True)
class Answer:
    """What a request concluded, to compare the two ways (not timed)."""

    reached_nodes: int
    road_km: float
    area_km2: float
    crow_km2: float
    covered_households: int
    uncovered_grids: int


def split_in_two(roads: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Every road cut at its midpoint: twice the edges, the same distances."""
    lines = np.asarray(roads.geometry.array, dtype=object)
    halves = []
    for line in lines:
        half = line.length / 2
        halves.append(substring(line, 0, half))
        halves.append(substring(line, half, line.length))
    return gpd.GeoDataFrame(geometry=halves, crs=roads.crs)


def load(n_facilities: int) -> District:
    """The synthetic district in UTM 45N, with stored grid codes and N facilities."""
    read: Callable[[str], gpd.GeoDataFrame] = lambda layer: gpd.read_file(  # noqa: E731
        DISTRICT, layer=layer
    ).to_crs(UTM_45N)
    roads = split_in_two(read("roads"))
    grids = read("grids")
    households = read("households")
    facilities = read("facilities").sort_values("facility_id", kind="stable")
    pick = np.linspace(0, len(facilities) - 1, n_facilities).round().astype(int)
    xy = shapely.get_coordinates(np.asarray(households.geometry.array))
    codes = AreaIndex.from_geodataframe(grids).assign_points(xy[:, 0], xy[:, 1]).code
    return District(roads, grids, households, codes, facilities.iloc[pick])


# --------------------------------------------------------------------------- the two ways


def gridwork_request(
    graph: RoadGraph, d: District, max_m: float, snap: Snap
) -> tuple[dict[str, float], Answer]:
    """One request the gridwork way, timed per step; households walk from their own door
    (``snap``, the households snapped to the roads, is cached per network as the store does)."""
    t = {}
    start = time.perf_counter()
    reach = reachable(graph, d.facilities, max_m)
    t["reach"] = time.perf_counter() - start
    mark = time.perf_counter()
    pieces = reached_edges(graph, reach)
    area = service_area(pieces, buffer_m=DEFAULT_BUFFER_M)
    crow = crow_flies_area(d.facilities, max_m)
    t["polygons"] = time.perf_counter() - mark
    mark = time.perf_counter()
    covered = households_within(network_distances(graph, reach, d.households, snap=snap))
    table = coverage_by_grid(
        area, d.grids, d.households, household_grid=d.household_grid, household_covered=covered
    )
    t["grids"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    return t, Answer(
        reached_nodes=len(np.unique(reach.node)),
        road_km=pieces.length_m / 1000,
        area_km2=area.area / 1e6,
        crow_km2=crow.area / 1e6,
        covered_households=int(table["covered_households"].sum()),
        uncovered_grids=int(table["uncovered"].sum()),
    )


@dataclass(frozen=True)
class NxGraph:
    graph: Any
    node_tree: shapely.STRtree
    edge_u: NDArray[np.intp]
    edge_v: NDArray[np.intp]
    edge_geometry: NDArray[np.object_]


def networkx_build(graph: RoadGraph) -> NxGraph:
    """The same junctions in a networkx graph (junction detection is not timed twice)."""
    import networkx as nx

    g = nx.Graph()
    g.add_weighted_edges_from(
        zip(graph.edge_u.tolist(), graph.edge_v.tolist(), graph.edge_length.tolist(), strict=True),
        weight="length",
    )
    tree = shapely.STRtree(np.asarray(shapely.points(graph.node_xy), dtype=object))
    return NxGraph(g, tree, graph.edge_u, graph.edge_v, graph.edge_geometry)


def networkx_request(nxg: NxGraph, d: District, max_m: float) -> tuple[dict[str, float], Answer]:
    """One request the obvious way, timed per step."""
    import networkx as nx

    t = {}
    start = time.perf_counter()
    points = np.asarray(d.facilities.geometry.array, dtype=object)
    sources = nxg.node_tree.query_nearest(points)[1]
    reached_sets = [
        nx.single_source_dijkstra_path_length(nxg.graph, int(s), cutoff=max_m, weight="length")
        for s in sources
    ]
    t["reach"] = time.perf_counter() - start
    mark = time.perf_counter()
    n_nodes = len(nxg.node_tree)
    keep = np.zeros(len(nxg.edge_u), dtype=bool)
    for reached in reached_sets:
        mask = np.zeros(n_nodes, dtype=bool)
        mask[list(reached)] = True
        keep |= mask[nxg.edge_u] & mask[nxg.edge_v]
    edges = nxg.edge_geometry[keep]
    area = shapely.unary_union(shapely.buffer(edges, DEFAULT_BUFFER_M))
    crow = shapely.unary_union(shapely.buffer(points, max_m))
    t["polygons"] = time.perf_counter() - mark
    mark = time.perf_counter()
    clipped = d.grids.geometry.intersection(area)
    area_share = clipped.area / d.grids.geometry.area
    inside = gpd.sjoin(
        d.households[["geometry"]],
        gpd.GeoDataFrame(geometry=[area], crs=d.grids.crs),
        predicate="within",
    )
    covered = pd.Series(d.household_grid[inside.index.to_numpy()]).value_counts()
    per_grid = covered.reindex(d.grids["code"], fill_value=0).to_numpy()
    total = pd.Series(d.household_grid).value_counts().reindex(d.grids["code"], fill_value=0)
    judged = np.where(total > 0, per_grid / np.maximum(total.to_numpy(), 1), area_share)
    t["grids"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    return t, Answer(
        reached_nodes=len(set().union(*reached_sets)),
        road_km=float(shapely.length(edges).sum()) / 1000,
        area_km2=area.area / 1e6,
        crow_km2=crow.area / 1e6,
        covered_households=int(per_grid.sum()),
        uncovered_grids=int((judged == 0).sum()),
    )


def one_multilinestring_buffer(graph: RoadGraph, d: District, max_m: float) -> float:
    """Seconds to buffer the reached pieces as ONE MultiLineString (the first plan)."""
    pieces = reached_edges(graph, reachable(graph, d.facilities, max_m))
    start = time.perf_counter()
    shapely.MultiLineString(list(pieces.geometry)).buffer(DEFAULT_BUFFER_M)
    return time.perf_counter() - start


def best_of(
    fn: Callable[[], tuple[dict[str, float], Answer]], repeat: int
) -> tuple[dict[str, float], Answer]:
    """Best time per step (and best whole run) over ``repeat`` runs after one warm-up."""
    _, answer = fn()
    best: dict[str, float] = {}
    for _ in range(repeat):
        times, answer = fn()
        for step, seconds in times.items():
            best[step] = min(best.get(step, np.inf), seconds)
    return best, answer


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# --------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.coverage", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--facilities", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--skip-multilinestring",
        action="store_true",
        help="skip timing the single-MultiLineString buffer (takes a few seconds)",
    )
    args = parser.parse_args(argv)
    try:
        import networkx as nx

        nx_version: str | None = nx.__version__
    except ImportError:
        nx_version = None

    cores = len(os.sched_getaffinity(0))
    console.print(
        f"Python {platform.python_version()}, shapely {shapely.__version__} "
        f"(GEOS {shapely.geos_version_string}), geopandas {gpd.__version__}, numpy "
        f"{np.__version__}, networkx {nx_version or 'not installed'}; {cores} core(s); "
        f"best of {args.repeat} after one warm-up"
    )
    load_s, district = timed(lambda: load(args.facilities))
    max_m = walk_distance_m(args.minutes)
    build_s, graph = timed(lambda: RoadGraph.from_segments(district.roads))
    kinds = district.facilities["kind"].value_counts().to_dict()
    console.print(
        f"synthetic district: {len(district.roads):,} road pieces → {graph.n_edges:,} edges, "
        f"{graph.n_nodes:,} junctions; {len(district.grids)} grids, "
        f"{len(district.households):,} households; {len(district.facilities)} facilities "
        f"{kinds}; {args.minutes:g} min = {max_m:g} m; roadside strip {DEFAULT_BUFFER_M:g} m "
        f"(data loaded in {load_s:.1f} s, untimed)"
    )

    snap = graph.snap(np.asarray(district.households.geometry.array, dtype=object))
    ours, ours_answer = best_of(lambda: gridwork_request(graph, district, max_m, snap), args.repeat)
    theirs: dict[str, float] | None = None
    theirs_answer: Answer | None = None
    nx_build_s = float("nan")
    if nx_version is not None:
        nx_build_s, nxg = timed(lambda: networkx_build(graph))
        theirs, theirs_answer = best_of(lambda: networkx_request(nxg, district, max_m), args.repeat)

    table = Table(title=f"coverage of {len(district.facilities)} facilities, one request")
    for col in ("step", "gridwork s", "networkx way s", "networkx / gridwork"):
        table.add_column(col, justify="right" if col != "step" else "left", no_wrap=True)

    def row(label: str, a: float, b: float | None) -> None:
        ratio = f"{b / a:.1f}×" if b is not None and a > 0 and np.isfinite(b) else "—"
        table.add_row(label, f"{a:.3f}", f"{b:.3f}" if b is not None else "—", ratio)

    row(
        "graph build (once; networkx reuses our junctions)", build_s, nx_build_s if theirs else None
    )
    for step, label in (
        ("reach", "reach (Dijkstra from every facility)"),
        ("polygons", "polygons (roads → area, + straight-line layer)"),
        ("grids", "clip to grids + households covered (own walk / strip)"),
    ):
        row(label, ours[step], theirs[step] if theirs else None)
    table.add_section()
    row("[bold]per request[/]", ours["total"], theirs["total"] if theirs else None)
    console.print(table)

    answers = Table(title="what each concluded (the two differ by design)")
    for col in ("", "gridwork", "networkx way"):
        answers.add_column(col, justify="right" if col else "left", no_wrap=True)
    for field, label, fmt in (
        ("reached_nodes", "junctions reached", "{:,}"),
        ("road_km", "road walkable, km", "{:.1f}"),
        ("area_km2", "service area, km²", "{:.2f}"),
        ("crow_km2", "straight-line circles, km²", "{:.2f}"),
        ("covered_households", "households covered", "{:,}"),
        ("uncovered_grids", "grids uncovered", "{:,}"),
    ):
        other = getattr(theirs_answer, field) if theirs_answer else None
        answers.add_row(
            label, fmt.format(getattr(ours_answer, field)), fmt.format(other) if other else "—"
        )
    console.print(answers)

    verdict = "meets" if ours["total"] <= 1.0 else "MISSES"
    console.print(f"gridwork per request: {ours['total']:.3f} s — {verdict} the ≤ 1 s target.")
    if nx_version is None:
        console.print("networkx is not installed: `pip install networkx` to time the alternative.")
    if not args.skip_multilinestring:
        seconds = one_multilinestring_buffer(graph, district, max_m)
        console.print(
            f"for the record: buffering the same pieces as ONE MultiLineString takes "
            f"{seconds:.2f} s (vs union of per-piece buffers in the polygons row)."
        )


if __name__ == "__main__":
    main()
