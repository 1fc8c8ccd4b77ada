"""Facility coverage read from the store: the road graph (cached), facilities, areas, households.

The walk itself is pure (:mod:`geo.coverage.walk`); this module feeds it. Building the road graph
and snapping every household onto it cost ~0.5 s each on a 150,000-household district, so
both live in a :class:`NetworkCache` kept per app and rebuilt only when the stored roads or
households change. Change is detected by the version the store keeps per table
(:mod:`data.table_versions`): any committed write of the roads, or of the households or
buildings (a household's community is its building's), makes a new one. A primary-key read,
where ``count(*), max(id), max(xmin)`` over the households took 0.13 s at 500,000 of them
and grew with them.

Coverage is computed over the caller's grids; where their area has no grids yet (the Porto
demo before planning), over its communities instead, so the map is never empty for lack of
a plan. Households are only counted per area: none leaves this module as a point.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from data.access.queries import AreaScope
from data.crs import metric_epsg
from data.district.hierarchy import read_level
from data.table_versions import table_versions
from geo.coverage.walk import (
    DEFAULT_SPEED_KMH,
    Coverage,
    RoadGraph,
    Snap,
    facilities_of_kind,
    facility_coverage,
    walk_distance_m,
)
from geo.errors import Conflict, InvalidInput, NotFound

Level = Literal["grids", "communities"]
WGS84 = 4326


@dataclass(frozen=True)
class _Households:
    """Every stored household as the walk needs it: metric xy, its areas, its snap."""

    ids: np.ndarray
    xy: np.ndarray
    grid_id: np.ndarray  # -1: not assigned
    community_id: np.ndarray  # of its building; -1: none
    snap: Snap
    geoms: np.ndarray  # the points themselves: making 150,000 of them costs ~0.3 s
    _groups: dict[Level, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def points(self, rows: np.ndarray) -> np.ndarray:
        return self.geoms[rows]

    def snap_of(self, rows: np.ndarray) -> Snap:
        return Snap(self.snap.edge[rows], self.snap.along_m[rows], self.snap.access_m[rows])

    def in_areas(
        self, level: Level, areas: gpd.GeoDataFrame
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Which households count (their positions, ascending), and the code of the area each
        lies in, by their stored area (a grid, or their building's community at the community
        level). When nothing is stored yet every household counts and the codes are None: the
        walk then assigns them in-process (``ST_Covers`` rule, lowest code on ties).

        The households of the areas are found through :meth:`_by_area`, not by testing every
        household of the city against the areas: 4 ms instead of 26 ms at 10 M households."""
        own = self.grid_id if level == "grids" else self.community_id
        order, area_ids, starts = self._by_area(level)
        if not len(area_ids) or area_ids[-1] < 0:
            return np.arange(len(own)), None
        wanted = areas["id"].to_numpy(dtype=np.int64)
        codes = areas["code"].astype(str).to_numpy(dtype=object)
        at = np.minimum(np.searchsorted(area_ids, wanted), len(area_ids) - 1)
        hit = np.flatnonzero(area_ids[at] == wanted)
        found, first = np.unique(at[hit], return_index=True)
        if not len(found):
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=object)
        taken = np.concatenate([order[starts[i] : starts[i + 1]] for i in found.tolist()])
        # Each area's run ascends: a stable sort (timsort) merges the runs, 30x a quicksort.
        by_id = np.argsort(taken, kind="stable")
        return taken[by_id], np.repeat(codes[hit[first]], np.diff(starts)[found])[by_id]

    def _by_area(self, level: Level) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The households grouped by their stored area, made once per household set: their
        positions ordered by area, the distinct area ids ascending, and where each area's
        run starts (one more entry: the end)."""
        cached = self._groups.get(level)
        if cached is None:
            own = self.grid_id if level == "grids" else self.community_id
            order = np.argsort(own, kind="stable")
            area_ids, starts = np.unique(own[order], return_index=True)
            cached = (order, area_ids, np.append(starts, len(own)))
            self._groups[level] = cached  # two threads may both build it: the same arrays
        return cached


class WalkInputs(NamedTuple):
    """What a coverage walk reads from the store (areas and facilities in WGS-84)."""

    epsg: int
    level: Level
    areas: gpd.GeoDataFrame
    graph: RoadGraph
    homes: _Households
    facilities: gpd.GeoDataFrame


@dataclass
class NetworkCache:
    """The road graph and the households snapped onto it, per app, rebuilt on change."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _graph: tuple[tuple[Any, ...], RoadGraph] | None = None
    _households: tuple[tuple[Any, ...], _Households] | None = None
    builds: int = 0  # how often the graph was (re)built: tests read it

    def graph(self, conn: Connection, epsg: int) -> RoadGraph:
        """The road network in ``epsg``; a 409 when no road is stored yet."""
        key = (epsg, *table_versions(conn, "road_segment"))
        with self._lock:
            if self._graph is not None and self._graph[0] == key:
                return self._graph[1]
            rows = conn.execute(
                text("SELECT ST_AsBinary(ST_Transform(geom, :epsg)) FROM road_segment ORDER BY id"),
                {"epsg": epsg},
            ).scalars()
            lines = shapely.from_wkb([bytes(r) for r in rows])
            if len(lines) == 0:
                raise Conflict("no roads are stored yet: import roads first", field="roads")
            graph = RoadGraph.from_segments(lines, crs=f"EPSG:{epsg}")
            self._graph = (key, graph)
            self._households = None  # snapped onto the old graph
            self.builds += 1
            return graph

    def households(self, conn: Connection, graph: RoadGraph, epsg: int) -> _Households:
        key = (epsg, id(graph), *table_versions(conn, "household", "building"))
        with self._lock:
            if self._households is not None and self._households[0] == key:
                return self._households[1]
            rows = conn.execute(
                text(
                    "SELECT h.id, ST_X(p.g), ST_Y(p.g), coalesce(h.grid_id, -1), "
                    "coalesce(b.community_id, -1) FROM household h "
                    "LEFT JOIN building b ON b.id = h.building_id "
                    "CROSS JOIN LATERAL (SELECT ST_Transform(h.geom, :epsg) AS g) p "
                    "ORDER BY h.id"
                ),
                {"epsg": epsg},
            ).all()
            table = np.array(rows, dtype=np.float64).reshape(-1, 5)
            xy = table[:, 1:3]
            geoms = np.asarray(shapely.points(xy), dtype=object)
            snap = graph.snap(geoms)
            found = _Households(
                ids=table[:, 0].astype(np.int64),
                xy=xy,
                grid_id=table[:, 3].astype(np.int64),
                community_id=table[:, 4].astype(np.int64),
                snap=snap,
                geoms=geoms,
            )
            self._households = (key, found)
            return found

    def walk_inputs(
        self, conn: Connection, scope: AreaScope | None, kind: str | None, override: int | None
    ) -> WalkInputs:
        """What a walk over the caller's areas reads: the metric CRS (``override``, else the
        stored one), the areas (``coverage_areas``; ``scope`` None: all, for a batch), the
        cached graph and households, and the facilities of ``kind`` (None: all) in id order.

        Refused in this order: nothing stored yet (409), no area (404), no roads (409)."""
        epsg = metric_epsg(conn, override)
        if epsg is None:
            raise Conflict("nothing is stored yet: import communities and roads first")
        level, areas = coverage_areas(conn, scope or AreaScope.everywhere())
        if areas.empty:
            held = "stored" if scope is None else "assigned to you"
            raise NotFound(f"no street, community or grid is {held} yet", field="scope")
        graph = self.graph(conn, epsg)
        homes = self.households(conn, graph, epsg)
        of_kind = "" if kind is None else "WHERE kind = :kind "
        facilities = gpd.read_postgis(
            text(
                "SELECT id, source_id, kind, name, capacity, geom FROM facility "  # noqa: S608
                f"{of_kind}ORDER BY id"
            ),
            conn,
            geom_col="geom",
            params=None if kind is None else {"kind": kind},
            crs=WGS84,
        ).rename_geometry("geometry")
        return WalkInputs(epsg, level, areas, graph, homes, facilities)


def facility_kinds(conn: Connection) -> list[str]:
    return [
        str(k)
        for k in conn.execute(text("SELECT DISTINCT kind FROM facility ORDER BY 1")).scalars()
    ]


def capacities(facilities: gpd.GeoDataFrame) -> np.ndarray | None:
    """The facilities' capacities when every one of them has one, so that the walk scores
    supply against demand (2SFCA); else None, no score (the walk refuses gaps)."""
    capacity = facilities["capacity"]
    aware = bool(len(capacity)) and bool(capacity.notna().all())
    return capacity.to_numpy() if aware else None


#: The numbers of one kind's coverage per area, as ``GET /coverage`` answers them (and
#: ``score`` besides when the kind's facilities all have a capacity).
NUMBERS = ("households", "covered_households", "household_share", "area_share", "uncovered")


def checked_kinds(
    conn: Connection, wanted: list[str] | None, *, minutes: float, speed_kmh: float
) -> list[str]:
    """The kinds to walk (``wanted``, or every stored kind when None), once the input is
    known good: minutes and speed out of range, then an unknown kind, are refused before
    anything heavy is read, the same for a request and for the city-wide batch."""
    walk_distance_m(minutes, speed_kmh=speed_kmh)
    known = facility_kinds(conn)
    kinds = known if wanted is None else wanted
    unknown = sorted(set(kinds) - set(known))
    if unknown:
        raise InvalidInput(
            f"unknown facility kind {', '.join(map(repr, unknown))}; "
            f"known kinds: {', '.join(known) or 'none'}",
            field="kind",
        )
    return kinds


def walk_kind(
    graph: RoadGraph,
    facilities: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    homes: gpd.GeoDataFrame,
    *,
    minutes: float,
    speed_kmh: float,
    household_grid: np.ndarray | None,
    household_snap: Snap,
    straight_line: bool,
) -> tuple[Coverage, pd.DataFrame]:
    """One kind's walk over ``areas`` (everything in the graph's metric CRS), scored when
    every facility has a capacity, with its numbers per area in area order: ``NUMBERS``,
    and ``score`` when scored. A request (:func:`coverage`) and the city-wide batch
    (:mod:`data.batch.coverage`) both walk through here, so their numbers cannot part."""
    capacity = capacities(facilities)
    result = facility_coverage(
        graph,
        facilities,
        areas,
        homes,
        minutes=minutes,
        speed_kmh=speed_kmh,
        household_grid=household_grid,
        household_snap=household_snap,
        capacity=capacity,
        straight_line=straight_line,
    )
    columns = [*NUMBERS, *(["score"] if capacity is not None else [])]
    return result, pd.DataFrame({c: result.grids[c].to_numpy() for c in columns})


def coverage_areas(conn: Connection, scope: AreaScope) -> tuple[Level, gpd.GeoDataFrame]:
    """The caller's grids, or their communities where there are no grids yet."""
    grids = read_level(conn, "grids", scope)
    if not grids.empty:
        return "grids", grids
    return "communities", read_level(conn, "communities", scope)


@dataclass(frozen=True)
class CoverageReport:
    """One coverage request's answer, WGS-84 throughout, ready for a map or JSON."""

    kind: str
    minutes: float
    speed_kmh: float
    max_m: float
    level: Level
    areas: gpd.GeoDataFrame  # code, name?, worker_name?, households, covered_households,
    # household_share, area_share, uncovered, score?; geometry = the area
    covered: gpd.GeoSeries  # walking service area clipped to each area (same index)
    crow_flies: shapely.Geometry  # straight-line circles clipped to the areas
    facilities: gpd.GeoDataFrame  # the kind's facilities near the areas
    capacity_aware: bool
    seconds: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        """Per-area numbers (no geometry): what ``GET /coverage`` answers."""
        columns = ["code", "households", "covered_households", "household_share"]
        columns += ["area_share", "uncovered"] + (["score"] if self.capacity_aware else [])
        rows = []
        for record in self.areas[columns].to_dict("records"):
            rows.append({k: _json_value(v) for k, v in record.items()})
        households = int(self.areas["households"].sum()) if len(self.areas) else 0
        covered = int(self.areas["covered_households"].sum()) if len(self.areas) else 0
        return {
            "kind": self.kind,
            "minutes": self.minutes,
            "speed_kmh": self.speed_kmh,
            "max_m": round(self.max_m, 1),
            "level": self.level,
            "capacity_aware": self.capacity_aware,
            "households": households,
            "covered_households": covered,
            "household_share": covered / households if households else None,
            "uncovered": int(self.areas["uncovered"].sum()) if len(self.areas) else 0,
            "areas": rows,
        }


def coverage(
    conn: Connection,
    cache: NetworkCache,
    *,
    kind: str,
    minutes: float,
    scope: AreaScope,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    metric_override: int | None = None,
    drawing: bool = True,
) -> CoverageReport:
    """Walking coverage of one facility kind over the caller's areas.

    Every facility of the kind counts, inside the caller's area or not: a clinic across the
    boundary still serves the people on this side. Bad input (an unknown kind, minutes
    outside 0–120) is refused before anything heavy runs. Without ``drawing`` (the JSON
    answer) the straight-line layer, which only a map shows, is not built.
    """
    started = time.perf_counter()
    checked_kinds(conn, [kind], minutes=minutes, speed_kmh=speed_kmh)
    max_m = walk_distance_m(minutes, speed_kmh=speed_kmh)
    epsg, level, areas, graph, homes, stored = cache.walk_inputs(
        conn, scope, kind=kind, override=metric_override
    )
    facilities = facilities_of_kind(stored, kind)
    read_s = time.perf_counter() - started

    metric = f"EPSG:{epsg}"
    areas_m = areas.to_crs(metric)
    rows, household_grid = homes.in_areas(level, areas)
    result, numbers = walk_kind(
        graph,
        facilities.to_crs(metric),
        areas_m,
        gpd.GeoDataFrame(geometry=homes.points(rows), crs=metric),
        minutes=minutes,
        speed_kmh=speed_kmh,
        household_grid=household_grid,
        household_snap=homes.snap_of(rows),
        straight_line=drawing,
    )
    walk_s = time.perf_counter() - started - read_s

    capacity_aware = "score" in numbers
    out = areas.drop(columns=["households"], errors="ignore").copy()
    for column in numbers:
        out[column] = numbers[column].to_numpy()
    covered = gpd.GeoSeries(result.grids["covered"].to_numpy(), crs=metric, index=areas.index)
    if drawing:
        outline = _outline(np.asarray(areas_m.geometry.array, dtype=object))
        crow = shapely.intersection(result.crow_flies_area, outline)
    else:
        outline = shapely.box(*areas_m.total_bounds)
        crow = shapely.Polygon()
    lo_x, lo_y, hi_x, hi_y = (float(v) for v in shapely.bounds(outline))
    near = facilities.to_crs(metric).geometry.intersects(
        shapely.box(lo_x - max_m, lo_y - max_m, hi_x + max_m, hi_y + max_m)
    )
    report = CoverageReport(
        kind=kind,
        minutes=float(minutes),
        speed_kmh=float(speed_kmh),
        max_m=max_m,
        level=level,
        areas=out,
        covered=covered.to_crs(WGS84),
        crow_flies=gpd.GeoSeries([crow], crs=metric).to_crs(WGS84).iloc[0],
        facilities=facilities[near.to_numpy()],
        capacity_aware=capacity_aware,
        seconds={},
    )
    report.seconds.update(
        read=read_s, walk=walk_s, total=time.perf_counter() - started, graph_builds=cache.builds
    )
    return report


def _outline(areas: np.ndarray) -> shapely.Geometry:
    """The union of the areas, for clipping the straight-line layer.

    Grids that tile their district with shared vertices take the linear-time coverage union,
    5–10x faster than a general union; anything else (areas drawn independently, overlaps)
    falls back to the latter.
    """
    if len(areas) == 0:
        return shapely.Polygon()
    try:
        outline = shapely.coverage_union_all(areas)
    except shapely.errors.GEOSException:  # not noded as a coverage (drawn independently)
        return shapely.union_all(areas)
    return outline if shapely.is_valid(outline) else shapely.union_all(areas)


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value
