"""Facility coverage read from the store: the road graph (cached), facilities, areas, households.

The walk itself is pure (:mod:`geo.coverage.walk`); this module feeds it. Building the road graph
and snapping households onto it cost ~0.5 s each on a 150,000-household district, so both live
in a :class:`NetworkCache` kept per app. Change is detected by the versions the store keeps
(:mod:`data.table_versions`), each read by primary key: the roads' table version for the
graph; for the households of a grid, that grid's token (migration 0025), which any committed
write of one of its households, or of one moved into or out of it, makes anew; for those of
a community, the ``household`` and ``building`` tables' versions (a household's community is
its building's).

The cache keeps the households **per area** (grid, or community), each under the versions
it was read under, and a request re-reads only those of its own areas that changed (one
indexed read) and snaps only the households that are new or moved. At the grid level that
is the grids written since: after one household edit, even the whole city's request re-reads
that household's grid (both, for one moved between grids), where it re-read every household
of the city while the store versioned only whole tables (6–8 s at the megacity's tenth). At
the community level (areas without grids) any household or building write makes a request
re-read all of its own communities: one street's ~60,000 households at the megacity's tenth,
not the city's million.

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
from data.table_versions import grid_household_versions, table_versions
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
    """The households one request counts, as the walk needs them: those stored in its areas
    (every household when none is stored in an area of the level yet), ascending by id, in
    metric xy, snapped onto the graph."""

    level: Level
    ids: np.ndarray
    xy: np.ndarray
    area_id: np.ndarray  # its grid, or its building's community; -1 when not ``stored``
    snap: Snap
    geoms: np.ndarray  # the points themselves: making 150,000 of them costs ~0.3 s
    stored: bool  # whether any household has an area at this level

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

        Only the households of the request's areas are held, so testing each of them against
        ``areas`` is work of the request's size, not the city's."""
        if level != self.level:
            raise ValueError(f"these households were read by {self.level}, not by {level}")
        if not self.stored:
            return np.arange(len(self.ids)), None
        wanted = areas["id"].to_numpy(dtype=np.int64)
        codes = areas["code"].astype(str).to_numpy(dtype=object)
        if not len(wanted):
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=object)
        order = np.argsort(wanted, kind="stable")
        at = np.minimum(np.searchsorted(wanted[order], self.area_id), len(wanted) - 1)
        rows = np.flatnonzero(wanted[order][at] == self.area_id)
        return rows, codes[order][at[rows]]


@dataclass(frozen=True, eq=False)
class _Chunk:
    """The households stored in one area (or every household: ``_EVERY``), snapped onto
    ``graph``, ascending by id, with the versions of the tables they were read under."""

    graph: RoadGraph
    versions: tuple[Any, ...]
    ids: np.ndarray
    xy: np.ndarray
    snap: Snap
    geoms: np.ndarray


_EVERY = -1  # the chunk key of every household, for a level where none has an area yet

#: A level's households, read for some of its areas (``:ids``) in area order, then id order;
#: the index on ``household.grid_id`` finds a street's (a bitmap scan: 60,589 rows in 0.15 s
#: at the megacity's tenth). For a street's communities the planner there still prefers a
#: parallel scan of every household to the indexes on ``building.community_id`` and
#: ``household.building_id`` (0.36 s); the community level serves only areas without grids.
_READ: dict[Level, str] = {
    "grids": "SELECT h.id, ST_X(p.g), ST_Y(p.g), h.grid_id FROM household h "
    "CROSS JOIN LATERAL (SELECT ST_Transform(h.geom, :epsg) AS g) p "
    "WHERE h.grid_id = ANY(:ids) ORDER BY h.grid_id, h.id",
    "communities": "SELECT h.id, ST_X(p.g), ST_Y(p.g), b.community_id FROM household h "
    "JOIN building b ON b.id = h.building_id "
    "CROSS JOIN LATERAL (SELECT ST_Transform(h.geom, :epsg) AS g) p "
    "WHERE b.community_id = ANY(:ids) ORDER BY b.community_id, h.id",
}
_READ_EVERY = (
    "SELECT h.id, ST_X(p.g), ST_Y(p.g), -1 FROM household h "
    "CROSS JOIN LATERAL (SELECT ST_Transform(h.geom, :epsg) AS g) p ORDER BY h.id"
)
#: Whether any household has an area at the level (else every one counts, :meth:`in_areas`).
_STORED: dict[Level, str] = {
    "grids": "SELECT EXISTS (SELECT FROM household WHERE grid_id IS NOT NULL)",
    "communities": "SELECT EXISTS (SELECT FROM household h JOIN building b "
    "ON b.id = h.building_id WHERE b.community_id IS NOT NULL)",
}
#: The tables whose versions say whether a level has households with an area (``_STORED``),
#: and under which its households are filed where no finer token is kept: every household
#: while none has an area, and the communities' (a household's community is its building's).
#: At the grid level a building's community does not matter: a building's write reads
#: nothing again.
_TABLES: dict[Level, tuple[str, ...]] = {
    "grids": ("household",),
    "communities": ("household", "building"),
}


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
    """The road graph, and the households snapped onto it area by area, per app.

    The graph is rebuilt when the roads change. The households are kept per area, each filed
    under the versions it was read under: a grid's under its own token, so that a request
    re-reads only those of **its** grids whose households were written since, one indexed
    read; a community's under the household and building tables' versions, so that after
    any such write a request re-reads its own communities. Only households that are new or
    moved are snapped again; the others keep their snap. So a request after a household edit
    does the work of the grids edited, and the whole city's request reuses what the streets
    left (and the reverse)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _graph: tuple[tuple[Any, ...], RoadGraph] | None = None
    _chunks: dict[tuple[Level, int], _Chunk] = field(default_factory=dict)
    _stored: dict[Level, tuple[tuple[Any, ...], bool]] = field(default_factory=dict)
    _last: tuple[tuple[Any, ...], RoadGraph, _Households] | None = None
    builds: int = 0  # how often the graph was (re)built: tests read it
    households_read: int = 0  # households read from the store, and snapped anew: tests and
    households_snapped: int = 0  # the benchmark read them

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
            self._chunks.clear()  # snapped onto the old graph
            self._last = None
            self.builds += 1
            return graph

    def households(
        self,
        conn: Connection,
        graph: RoadGraph,
        epsg: int,
        level: Level | None = None,
        area_ids: np.ndarray | None = None,
    ) -> _Households:
        """The households of the areas ``area_ids`` of ``level`` (every area of the level
        coverage would walk for everyone when None: what the start-up build fills)."""
        if level is None or area_ids is None:
            level, every = coverage_areas(conn, AreaScope.everywhere())
            area_ids = every["id"].to_numpy(dtype=np.int64)
        wanted = np.unique(np.asarray(area_ids, dtype=np.int64))
        # Every version before the rows it stands for (data.table_versions).
        tables = table_versions(conn, *_TABLES[level])
        grids = grid_household_versions(conn, wanted.tolist()) if level == "grids" else None
        with self._lock:
            stored = self._stored.get(level)
            if stored is None or stored[0] != tables:
                stored = (tables, bool(conn.execute(text(_STORED[level])).scalar_one()))
                self._stored[level] = stored
            if not stored[1]:
                wanted = np.array([_EVERY], dtype=np.int64)
            versions = (
                [(token,) for token in grids]
                if grids is not None and stored[1]
                else [tables] * len(wanted)
            )
            key = (level, wanted.tobytes(), tuple(versions))
            if self._last is not None and self._last[0] == key and self._last[1] is graph:
                return self._last[2]
            stale = [
                (a, v)
                for a, v in zip(wanted.tolist(), versions, strict=True)
                if (held := self._chunks.get((level, a))) is None
                or held.versions != v
                or held.graph is not graph  # a request that began before the roads changed
            ]
            if stale:
                self._read(conn, graph, epsg, level, dict(stale))
            found = self._assemble(level, wanted, stored=stored[1])
            self._last = (key, graph, found)
            if stored[1]:
                self._chunks.pop((level, _EVERY), None)
            return found

    def _read(
        self,
        conn: Connection,
        graph: RoadGraph,
        epsg: int,
        level: Level,
        versions: dict[int, tuple[Any, ...]],
    ) -> None:
        """Read the households of the areas ``versions`` names in one statement and file them
        per area under its version; a household whose id and position were held before
        keeps its snap and point."""
        areas = list(versions)
        every = areas == [_EVERY]
        rows = conn.execute(
            text(_READ_EVERY if every else _READ[level]),
            {"epsg": epsg} if every else {"epsg": epsg, "ids": areas},
        )
        # Plain tuples: numpy probing each Row for an array interface took 40 µs a row.
        table = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, 4)
        ids = table[:, 0].astype(np.int64)
        xy = table[:, 1:3]
        area = table[:, 3].astype(np.int64)
        self.households_read += len(ids)

        edge = np.empty(len(ids), dtype=np.intp)
        along = np.empty(len(ids))
        access = np.empty(len(ids))
        geoms = np.empty(len(ids), dtype=object)
        fresh = np.ones(len(ids), dtype=bool)
        old = [
            c for a in areas if (c := self._chunks.get((level, a))) is not None and c.graph is graph
        ]
        if old and len(ids):
            old_ids = np.concatenate([c.ids for c in old])
            order = np.argsort(old_ids, kind="stable")
            old_ids = old_ids[order]
            at = np.minimum(np.searchsorted(old_ids, ids), len(old_ids) - 1)
            same = old_ids[at] == ids
            old_xy = np.concatenate([c.xy for c in old])[order][at]
            same &= (old_xy == xy).all(axis=1)
            src = order[at[same]]
            edge[same] = np.concatenate([c.snap.edge for c in old])[src]
            along[same] = np.concatenate([c.snap.along_m for c in old])[src]
            access[same] = np.concatenate([c.snap.access_m for c in old])[src]
            geoms[same] = np.concatenate([c.geoms for c in old])[src]
            fresh = ~same
        if fresh.any():
            points = np.asarray(shapely.points(xy[fresh]), dtype=object)
            snap = graph.snap(points)
            edge[fresh], along[fresh], access[fresh] = snap.edge, snap.along_m, snap.access_m
            geoms[fresh] = points
            self.households_snapped += len(points)

        # Rows come by area, then id: each area's run is one slice.
        starts = np.searchsorted(area, np.asarray(areas, dtype=np.int64), side="left")
        ends = np.searchsorted(area, np.asarray(areas, dtype=np.int64), side="right")
        if every:
            starts, ends = np.array([0]), np.array([len(ids)])
        for a, lo, hi in zip(areas, starts.tolist(), ends.tolist(), strict=True):
            part = slice(lo, hi)
            self._chunks[(level, a)] = _Chunk(
                graph,
                versions[a],
                ids[part],
                xy[part],
                Snap(edge[part], along[part], access[part]),
                geoms[part],
            )

    def _assemble(self, level: Level, wanted: np.ndarray, *, stored: bool) -> _Households:
        """The held households of ``wanted`` areas as one request's, ascending by id."""
        chunks = [self._chunks[(level, a)] for a in wanted.tolist()]
        ids = np.concatenate([c.ids for c in chunks]) if chunks else np.empty(0, np.int64)
        # Each area's run ascends: a stable sort (timsort) merges the runs, 30x a quicksort.
        order = np.argsort(ids, kind="stable")
        sizes = [len(c.ids) for c in chunks]
        area = np.repeat(wanted if stored else np.full(len(wanted), -1), sizes)[order]

        def joined(arrays: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
            return np.concatenate(arrays)[order] if arrays else empty

        return _Households(
            level=level,
            ids=ids[order],
            xy=joined([c.xy for c in chunks], np.empty((0, 2))),
            area_id=area,
            snap=Snap(
                joined([c.snap.edge for c in chunks], np.empty(0, np.intp)),
                joined([c.snap.along_m for c in chunks], np.empty(0)),
                joined([c.snap.access_m for c in chunks], np.empty(0)),
            ),
            geoms=joined([c.geoms for c in chunks], np.empty(0, dtype=object)),
            stored=stored,
        )

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
        homes = self.households(conn, graph, epsg, level, areas["id"].to_numpy(dtype=np.int64))
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
