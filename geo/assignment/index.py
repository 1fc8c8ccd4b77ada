"""Assign points (households, incidents, a clicked location) to the area that covers them.

The rule is PostGIS ``ST_Covers(area, point)``: a point on an area's boundary belongs to that
area, so every point of a gap-free tiling gets an area, including points on shared edges.

Tie-break, written down so results never depend on input order: a point covered by several
areas (on an edge two grids share, on a vertex where four meet, or inside an overlap of a
broken tiling) belongs to the area with the **lowest code** in plain string order (code
points, as Python compares ``str`` and PostgreSQL sorts with ``COLLATE "C"``). The same rule
picks the nearest area when several are exactly equally near.

Points outside every area are not silently dropped: the result reports the nearest area and
the distance to it. Within ``snap_m`` (20 m by default, since geocoded addresses land in the
road just outside a grid's edge) they are assigned to that nearest area and flagged
``snapped``; beyond it they stay unassigned (area ``-1``, code ``None``) for a clerk to review.

Coordinates are in a projected metric CRS; distances are in metres. Build the index once per
set of areas; assigning a million points then takes well under a second.

How it is fast (``python -m bench.assign``: 1M households in 783 grids in 0.12 s, 6–7 times
faster than ``geopandas.sjoin`` and 60 MB over the input instead of 190 MB): the areas'
extent is cut into square cells once. A cell that lies strictly inside one area, away from
every boundary, settles all its points with one array lookup; only points in cells that a
boundary crosses are tested, against the few areas touching their cell, with
``shapely.intersects_xy`` on prepared polygons (exactly ``covers`` for a point). No point
geometries are created except for the few points that need a nearest-area search.

The cells are sized by the areas' median extent (about 128 per area, up to 8 M cells) and
classified without a geometry test (:class:`_CellGrid`), so at 60,000 grids a cell still holds
about two candidates and the build grows with the boundaries' length (``python -m
bench.megacity``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS
from pyproj.exceptions import CRSError as PyprojCRSError
from shapely.geometry.base import BaseGeometry

from geo.arrays import ReadOnlyRows, nearest_lowest
from geo.errors import CRSError, InvalidGeometry, InvalidInput

DEFAULT_SNAP_M = 20.0
_UNASSIGNED = -1
_MIXED = -2  # a cell crossed by a boundary: its points need a real test
_CELLS_PER_AREA = 128  # cells over a typical area's bbox; 64 → 256 trades build for speed
_MAX_CELLS = 8_000_000  # bounds memory (~0.2 GB) when areas lie far apart


@dataclass(frozen=True)
class Assignment(ReadOnlyRows):
    """Where each point went; arrays aligned with the input points, read-only.

    ``area`` indexes the areas as given to :class:`AreaIndex` (``-1``: unassigned);
    ``distance_m`` is 0 for covered points; ``nearest_code`` is the covering area's code for
    covered points and the nearest area's code for the others, so it is never ``None``.
    """

    area: NDArray[np.intp]
    code: NDArray[np.object_]
    snapped: NDArray[np.bool_]
    distance_m: NDArray[np.float64]
    nearest_code: NDArray[np.object_]


class AreaIndex:
    """Areas with codes, indexed once so that many points can be assigned cheaply.

    ``crs`` is only carried along, so a caller holding the index knows which CRS its points
    must be in. Internally areas are kept in code order, so "lowest code wins" becomes
    "lowest rank wins" everywhere below.
    """

    def __init__(
        self,
        areas: ArrayLike | Sequence[BaseGeometry],
        codes: Sequence[str],
        *,
        crs: CRS | None = None,
    ) -> None:
        geoms = np.asarray(areas, dtype=object).ravel()
        codes_arr = _check_codes(codes, len(geoms))
        _check_areas(geoms)
        self.crs = crs
        self.codes: NDArray[np.object_] = codes_arr  # in the caller's order
        self._rank_to_input = np.argsort(codes_arr.astype(str), kind="stable").astype(np.intp)
        self._input_to_rank = np.argsort(self._rank_to_input).astype(np.intp)
        self._areas = geoms[self._rank_to_input]
        # A trailing entry makes rank -1 (unassigned) gather None / -1: no masks, no loops.
        self._code_of_rank = np.append(codes_arr[self._rank_to_input], [None]).astype(object)
        self._area_of_rank = np.append(self._rank_to_input, [_UNASSIGNED]).astype(np.intp)
        shapely.prepare(self._areas)
        self._segments = _Segments.of(self._areas)
        self._cells = _CellGrid(self._areas, self._segments)
        self._edges: shapely.STRtree | None = None

    @classmethod
    def from_geodataframe(cls, frame: gpd.GeoDataFrame, *, code_column: str = "code") -> AreaIndex:
        """Build from a GeoDataFrame already in a projected metric CRS (refused otherwise)."""
        _require_metres(frame.crs, field="crs")
        if code_column not in frame.columns:
            raise InvalidInput(f"no column '{code_column}'", field="codes")
        return cls(np.asarray(frame.geometry.array), list(frame[code_column]), crs=frame.crs)

    @classmethod
    def from_wgs84(
        cls, frame: gpd.GeoDataFrame, *, epsg: int, code_column: str = "code"
    ) -> AreaIndex:
        """Build from lon/lat areas (as stored and served), measuring in metric ``epsg``."""
        if frame.crs is None or not frame.crs.equals("EPSG:4326", ignore_axis_order=True):
            raise CRSError(f"areas must be in WGS-84 (EPSG:4326), got {frame.crs}", field="crs")
        try:
            target = CRS.from_epsg(epsg)
        except PyprojCRSError as exc:
            raise CRSError(f"unknown EPSG code {epsg}", field="epsg") from exc
        _require_metres(target, field="epsg")
        return cls.from_geodataframe(frame.to_crs(target), code_column=code_column)

    def __len__(self) -> int:
        return len(self._areas)

    def assign_points(
        self, x: ArrayLike, y: ArrayLike, *, snap_m: float = DEFAULT_SNAP_M
    ) -> Assignment:
        """Assign every point by ``ST_Covers``, lowest code on ties, snapping within ``snap_m``."""
        xs, ys = _check_points(x, y)
        if not (snap_m >= 0 and np.isfinite(snap_m)):
            raise InvalidInput(f"must be a finite distance ≥ 0 m, got {snap_m}", field="snap_m")
        rank = self._cells.covering_rank(xs, ys)
        distance = np.zeros(len(xs))
        nearest = rank.copy()
        outside = np.flatnonzero(rank == _UNASSIGNED)
        if len(outside):
            nearest[outside], distance[outside] = self._nearest(xs[outside], ys[outside])
            snap = distance[outside] <= snap_m
            rank[outside[snap]] = nearest[outside[snap]]
        snapped = np.zeros(len(xs), dtype=bool)
        snapped[outside] = rank[outside] != _UNASSIGNED
        return Assignment(
            area=self._area_of_rank[rank],
            code=self._code_of_rank[rank],
            snapped=snapped,
            distance_m=distance,
            nearest_code=self._code_of_rank[nearest],
        )

    def covering_area(self, x: float, y: float) -> int:
        """The area (input position) covering one point, lowest code on ties; -1 if none.

        The same rule as :meth:`assign_points` without its array set-up, which is most of
        the cost for a single point (a ``/locate``).
        """
        rank = self._cells.covering_rank_one(x, y)
        return _UNASSIGNED if rank == _UNASSIGNED else int(self._rank_to_input[rank])

    def distance_to_edge(
        self, x: float, y: float, *, snap_m: float = DEFAULT_SNAP_M
    ) -> float | None:
        """Metres from a point to the boundary of the area it is assigned to; None if none.

        Tells a caller how sure an assignment is: a household 0.5 m inside a grid's edge is
        worth a second look, one 80 m inside is not.
        """
        result = self.assign_points([x], [y], snap_m=snap_m)
        area = int(result.area[0])
        if area == _UNASSIGNED:
            return None
        boundary = shapely.boundary(self._areas[self._input_to_rank[area]])
        return float(shapely.distance(boundary, shapely.Point(x, y)))

    def _nearest(
        self, xs: NDArray[np.float64], ys: NDArray[np.float64]
    ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Nearest area (lowest rank among exact ties) and its distance, per point."""
        if self._edges is None:
            self._edges = _edge_tree(self._segments)
        points = np.asarray(shapely.points(xs, ys), dtype=object)
        return nearest_lowest(self._edges, points, self._segments.rank)


class _CellGrid:
    """Square cells over the areas' extent, each either owned by one area, empty, or mixed.

    A cell is *mixed* if a boundary may pass through it: every boundary segment is cut into
    pieces no longer than a cell and marks the cells its piece's box (grown by twice the margin
    below) reaches, with the piece's area as a candidate. Any other cell has no boundary in
    it, so all its points lie in the same areas: it is *owned* by the lowest of them, or
    *empty*. Which areas contain such a cell is read along the row of cell centres: the
    boundary crossings of each area on that line, in x order, pair up into the spans inside
    the area (even-odd, over every ring of every part). A mixed cell's candidates are the areas
    whose boundary marked it and the areas that contain its centre, so an overlap that wholly
    contains a mixed cell is still tested. No cell is tested with GEOS, so building grows with
    the number of cells and boundary pieces, not with cells × areas nearby.

    Cells are classified grown by a margin larger than any rounding in
    ``floor((x - x0) / size)``, so a point is always inside the grown cell it is binned to and
    the shortcut is exact.
    """

    def __init__(self, areas: NDArray[np.object_], segments: _Segments) -> None:
        self.areas = areas
        bounds = shapely.bounds(areas)
        self.x0, self.y0 = float(bounds[:, 0].min()), float(bounds[:, 1].min())
        width = float(bounds[:, 2].max()) - self.x0
        height = float(bounds[:, 3].max()) - self.y0
        typical = float(
            np.median(np.sqrt((bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1])))
        )
        size = max(typical / np.sqrt(_CELLS_PER_AREA), np.sqrt(width * height / _MAX_CELLS))
        self.size = size if size > 0 else 1.0
        self.nx = int(width // self.size) + 1
        self.ny = int(height // self.size) + 1
        magnitude = float(np.abs(bounds).max()) + width + height
        self.grow = 1e-3 * self.size + 64 * float(np.spacing(magnitude))
        n_cells = self.nx * self.ny
        n_ranks = len(areas)
        marked = self._marked(segments)  # cell * n_ranks + rank, unique
        inside = self._inside(segments)
        touched = np.zeros(n_cells, dtype=bool)
        touched[marked // n_ranks] = True
        owner = np.full(n_cells, _UNASSIGNED, dtype=np.intp)
        in_cell, in_rank = inside // n_ranks, inside % n_ranks
        clear = ~touched[in_cell]
        # ``inside`` is sorted by cell, then rank: a cell's first entry is its lowest area.
        first = np.ones(len(in_cell), dtype=bool)
        first[1:] = in_cell[1:] != in_cell[:-1]
        owner[in_cell[first & clear]] = in_rank[first & clear]
        owner[touched] = _MIXED
        # Sorted: per cell, its candidates in rank (= code) order.
        pairs = _sorted_unique(np.concatenate([marked, inside[~clear]]))
        cell_i = pairs // n_ranks
        self.candidates = (pairs % n_ranks).astype(np.intp)
        count = np.bincount(cell_i, minlength=n_cells)
        self.start = np.concatenate([[0], np.cumsum(count)]).astype(np.intp)
        self.owner = owner

    def _marked(self, seg: _Segments) -> NDArray[np.int64]:
        """(cell, rank) keys of the cells each boundary piece may pass through, grown."""
        d = seg.end - seg.start
        pieces = np.maximum(1, np.ceil(np.hypot(d[:, 0], d[:, 1]) / self.size)).astype(np.intp)
        of = np.repeat(np.arange(len(pieces)), pieces)
        j = np.arange(len(of)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        t0 = (j / pieces[of])[:, None]
        t1 = ((j + 1) / pieces[of])[:, None]
        a = seg.start[of] + t0 * d[of]
        b = np.where(j[:, None] + 1 == pieces[of][:, None], seg.end[of], seg.start[of] + t1 * d[of])
        margin = 2 * self.grow
        lo = np.floor((np.minimum(a, b) - margin - (self.x0, self.y0)) / self.size)
        hi = np.floor((np.maximum(a, b) + margin - (self.x0, self.y0)) / self.size)
        top = np.array([self.nx - 1, self.ny - 1])
        lo = np.clip(lo, 0, top).astype(np.int64)
        hi = np.clip(hi, 0, top).astype(np.int64)
        rank = seg.rank[of].astype(np.int64)
        keys = []
        span = int((hi - lo).max(initial=0))
        for dx in range(span + 1):
            for dy in range(span + 1):
                ok = (lo[:, 0] + dx <= hi[:, 0]) & (lo[:, 1] + dy <= hi[:, 1])
                cell = (lo[ok, 0] + dx) * self.ny + (lo[ok, 1] + dy)
                keys.append(cell * len(self.areas) + rank[ok])
        return _sorted_unique(np.concatenate(keys))

    def _inside(self, seg: _Segments) -> NDArray[np.int64]:
        """(cell, rank) keys, sorted, of the cells whose centre lies inside the area."""
        n_ranks = len(self.areas)
        ya, yb = seg.start[:, 1], seg.end[:, 1]
        lo = np.floor((np.minimum(ya, yb) - self.y0) / self.size - 0.5).astype(np.int64)
        hi = np.floor((np.maximum(ya, yb) - self.y0) / self.size - 0.5).astype(np.int64) + 1
        lo, hi = np.clip(lo, 0, self.ny - 1), np.clip(hi, 0, self.ny - 1)
        rows = hi - lo + 1
        of = np.repeat(np.arange(len(rows)), rows)
        row = np.repeat(lo, rows) + (np.arange(len(of)) - np.repeat(np.cumsum(rows) - rows, rows))
        yc = self.y0 + (row + 0.5) * self.size
        # Half-open: a segment crosses the line y = yc iff exactly one end is at or below it.
        cross = (ya[of] <= yc) != (yb[of] <= yc)
        of, row, yc = of[cross], row[cross], yc[cross]
        s, e = seg.start[of], seg.end[of]
        x = s[:, 0] + (yc - s[:, 1]) * (e[:, 0] - s[:, 0]) / (e[:, 1] - s[:, 1])
        rank = seg.rank[of].astype(np.int64)
        order = np.lexsort((x, rank, row))
        row, rank, x = row[order], rank[order], x[order]
        # Each area crosses each line an even number of times: entries 0-1, 2-3 … are spans.
        row, rank, x_in, x_out = row[0::2], rank[0::2], x[0::2], x[1::2]
        first = np.ceil((x_in - self.x0) / self.size - 0.5).astype(np.int64) - 1
        last = np.floor((x_out - self.x0) / self.size - 0.5).astype(np.int64) + 1
        first, last = np.clip(first, 0, self.nx - 1), np.clip(last, 0, self.nx - 1)
        cells = np.maximum(last - first + 1, 0)
        of = np.repeat(np.arange(len(cells)), cells)
        ix = np.repeat(first, cells) + (
            np.arange(len(of)) - np.repeat(np.cumsum(cells) - cells, cells)
        )
        xc = self.x0 + (ix + 0.5) * self.size
        ok = (x_in[of] < xc) & (xc < x_out[of])
        keys = (ix[ok] * self.ny + row[of][ok]) * n_ranks + rank[of][ok]
        return _sorted_unique(keys)

    def covering_rank(self, xs: NDArray[np.float64], ys: NDArray[np.float64]) -> NDArray[np.intp]:
        """Rank of the lowest-code area covering each point, -1 where none does."""
        fx = np.floor((xs - self.x0) / self.size)
        fy = np.floor((ys - self.y0) / self.size)
        inside = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)
        cell = np.where(inside, fx * self.ny + fy, 0).astype(np.intp)
        rank = np.where(inside, self.owner[cell], _UNASSIGNED)
        mixed = np.flatnonzero(rank == _MIXED)
        rank[mixed] = _UNASSIGNED
        # In cell order, so that neighbouring tests touch the same few prepared polygons (at
        # 60,000 grids, testing in input order is bound by memory, not by GEOS).
        mixed = mixed[np.argsort(cell[mixed], kind="stable")]
        # One (point, candidate area) pair per area touching the point's cell, in rank order.
        first = self.start[cell[mixed]]
        count = self.start[cell[mixed] + 1] - first
        point = np.repeat(mixed, count)
        offset = np.repeat(first - (np.cumsum(count) - count), count)
        candidate = self.candidates[offset + np.arange(len(point))]
        hit = shapely.intersects_xy(self.areas[candidate], xs[point], ys[point])
        point, candidate = point[hit], candidate[hit]
        # Pairs are grouped by point and rank-ordered: the first hit is the lowest code.
        lowest = np.ones(len(point), dtype=bool)
        lowest[1:] = point[1:] != point[:-1]
        rank[point[lowest]] = candidate[lowest]
        return rank

    def covering_rank_one(self, x: float, y: float) -> int:
        """:meth:`covering_rank` for one point, with the same float arithmetic."""
        fx = math.floor((x - self.x0) / self.size)
        fy = math.floor((y - self.y0) / self.size)
        if not (0 <= fx < self.nx and 0 <= fy < self.ny):
            return _UNASSIGNED
        cell = fx * self.ny + fy
        owner = int(self.owner[cell])
        if owner != _MIXED:
            return owner
        for candidate in self.candidates[self.start[cell] : self.start[cell + 1]]:
            if shapely.intersects_xy(self.areas[candidate], x, y):  # in rank (= code) order
                return int(candidate)
        return _UNASSIGNED


def _sorted_unique(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """``np.unique`` by sorting (numpy 2's hashing ``unique`` is several times slower here)."""
    keys = np.sort(keys)
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


@dataclass(frozen=True)
class _Segments:
    """Every boundary segment of the areas (each ring's own direction) and its area's rank."""

    start: NDArray[np.float64]
    end: NDArray[np.float64]
    rank: NDArray[np.intp]

    @classmethod
    def of(cls, areas: NDArray[np.object_]) -> _Segments:
        parts, part_rank = shapely.get_parts(areas, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
        same_ring = coord_ring[1:] == coord_ring[:-1]
        rank = part_rank[ring_part[coord_ring[:-1][same_ring]]].astype(np.intp)
        return cls(coords[:-1][same_ring], coords[1:][same_ring], rank)


def _edge_tree(segments: _Segments) -> shapely.STRtree:
    """Every boundary segment as its own 2-point line, indexed (rank: ``segments.rank``).

    Why not query the polygons: GEOS measures a point against a whole polygon by walking all
    its segments, which made nearest-area search cost more than assigning a million points.
    A tree of single segments prunes to a handful. The numbers are bitwise the same: polygon
    distance is the minimum of the same point-to-segment computation over the same segments,
    each kept in its ring's own direction (a shared edge appears once per neighbour, which is
    how exact ties between neighbours are found). Built on the first point outside every
    area: at 60,000 grids it is most of the index's build, and ``/locate`` never needs it.
    """
    lines = shapely.linestrings(np.stack([segments.start, segments.end], axis=1))
    return shapely.STRtree(np.asarray(lines, dtype=object))


def _require_metres(crs: CRS | None, *, field: str) -> None:
    """Distances are reported in metres, so the CRS must be projected *and* in metres."""
    units = {axis.unit_name for axis in crs.axis_info} if crs is not None else set()
    if crs is None or not crs.is_projected or not units <= {"metre", "meter"}:
        raise CRSError(f"a projected CRS in metres is required, got {crs}", field=field)


def _check_points(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two equal-length 1-D float arrays of finite numbers, or an error naming the first bad one."""
    try:
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"coordinates must be numbers: {exc}", field="points") from exc
    if xs.ndim != 1 or xs.shape != ys.shape:
        raise InvalidInput(
            f"x and y must be 1-D and of equal length, got shapes {xs.shape} and {ys.shape}",
            field="points",
        )
    bad = np.flatnonzero(~(np.isfinite(xs) & np.isfinite(ys)))
    if len(bad):
        i = int(bad[0])
        raise InvalidInput(
            f"coordinates must be finite, got ({xs[i]}, {ys[i]})"
            + (f"; {len(bad) - 1} more point(s) like this" if len(bad) > 1 else ""),
            field="points",
            index=i,
        )
    return xs, ys


def _check_codes(codes: Sequence[str], n: int) -> NDArray[np.object_]:
    """One non-empty, unique string code per area: codes are how results name areas."""
    arr = np.empty(len(codes), dtype=object)
    arr[:] = list(codes)
    if len(arr) != n:
        raise InvalidInput(f"{len(arr)} codes for {n} areas", field="codes")
    if n == 0:
        raise InvalidInput("no areas to assign points to", field="areas")
    seen: dict[str, int] = {}
    for i, code in enumerate(arr):
        if not isinstance(code, str) or not code:
            raise InvalidInput(
                f"code must be a non-empty string, got {code!r}", field="codes", index=i
            )
        if code in seen:
            raise InvalidInput(
                f"code '{code}' already used by area {seen[code]}", field="codes", index=i
            )
        seen[code] = i
    return arr


def _check_areas(geoms: NDArray[np.object_]) -> None:
    """Refuse anything that is not a valid, non-empty (multi)polygon, listing every problem."""
    problems: dict[int, str] = {}
    for i, geom in enumerate(geoms):
        if not isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
            problems[i] = f"expected a polygon, got {type(geom).__name__}"
        elif geom.is_empty:
            problems[i] = "empty polygon"
        elif not geom.is_valid:
            problems[i] = shapely.is_valid_reason(geom)
    if problems:
        first = min(problems)
        listed = "; ".join(f"[{i}] {why}" for i, why in sorted(problems.items())[:10])
        raise InvalidGeometry(
            f"{len(problems)} unusable area(s): {listed}", field="areas", index=first
        )
