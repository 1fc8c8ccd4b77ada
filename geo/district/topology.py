"""Topology checks for the district → street → community → grid hierarchy.

A grid plan is only trustworthy if every level tiles its parent: no household may fall in two
grids (overlap), in none (gap), or in a grid that belongs to another community (outside its
parent). These checks find those places and say where they are, so a clerk can fix the
boundary in the map editor instead of discovering the double count in a report months later.

Everything is computed in the frame's projected metric CRS; areas are square metres.
Sibling pairs come from an STRtree, so a level of ~800 grids is checked in well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from geo.errors import CRSError, InvalidInput

IssueKind = Literal["overlap", "gap", "outside_parent", "sliver", "invalid"]

MIN_AREA_M2 = 0.01
"""Pieces at or below this area are floating-point noise from the overlay, not real problems."""

NOISE_WIDTH_M = 0.005
"""Pieces narrower than this on average (5 mm) are noise too: a straight edge in WGS-84 bows
by a fraction of a millimetre once projected, so two polygons that share it exactly in storage
show a hair-thin 'gap' over its whole length in metres. No boundary is drawn that finely."""

SLIVER_AREA_M2 = 1.0
"""A piece smaller than this is a digitising sliver (fix by snapping), not a boundary dispute."""

SLIVER_THINNESS = 0.05
"""Polsby-Popper below this (about a 1:60 rectangle) marks a piece as a thin sliver."""


@dataclass(frozen=True)
class TopologyIssue:
    """One place where a level fails to tile its parent.

    ``codes`` names the polygons involved: both siblings for an overlap, the parent for a gap,
    child then parent for ``outside_parent``, the child alone for ``invalid`` and for a child
    that is itself a sliver. A ``sliver`` issue replaces the overlap / gap / outside issue it
    would otherwise be; ``detail`` starts with which of those it came from.
    """

    kind: IssueKind
    level: str
    codes: tuple[str, ...]
    area_m2: float
    location: Point
    detail: str


def check_level(
    children: gpd.GeoDataFrame,
    parents: gpd.GeoDataFrame | None,
    *,
    child_level: str,
    code_col: str = "code",
    parent_col: str = "parent_code",
    parent_code_col: str = "code",
    min_area_m2: float = MIN_AREA_M2,
    sliver_area_m2: float = SLIVER_AREA_M2,
    sliver_thinness: float = SLIVER_THINNESS,
) -> list[TopologyIssue]:
    """Report every overlap, gap, overhang, sliver and invalid polygon of one level.

    Without ``parents`` all children count as siblings and the only gaps reported are holes
    enclosed by their union: an enclosed hole cannot be outside the area, so it must be a gap.
    Invalid polygons are reported and then repaired with ``make_valid`` for the other checks,
    so one bowtie does not hide the overlaps around it. Overlaps between children of different
    parents are not searched for: if the parents tile, such an overlap also sticks out of a
    parent and is reported as ``outside_parent``.
    """
    _require_metric(children, "children")
    codes = _codes(children, code_col, "children")
    geoms, issues = _valid_geometries(children, codes, child_level)
    tol = _Tolerance(min_area_m2, sliver_area_m2, sliver_thinness)

    if parents is None:
        groups = np.zeros(len(children), dtype=np.int64)
        issues += _overlaps(geoms, codes, groups, child_level, tol)
        issues += _enclosed_holes(geoms, child_level, tol)
    else:
        _require_metric(parents, "parents")
        if not CRS.from_user_input(parents.crs).equals(CRS.from_user_input(children.crs)):
            raise CRSError(
                f"children are in {children.crs}, parents in {parents.crs}; reproject one",
                field="parents",
            )
        parent_codes = _codes(parents, parent_code_col, "parents")
        parent_geoms = shapely.make_valid(np.asarray(parents.geometry.values, dtype=object))
        parent_idx = _parent_index(children, parent_col, parent_codes)
        issues += _overlaps(geoms, codes, parent_idx, child_level, tol)
        parent = _Parents(parent_idx, parent_geoms, parent_codes)
        issues += _gaps(geoms, parent, child_level, tol)
        issues += _outside(geoms, codes, parent, child_level, tol)

    issues += _sliver_children(geoms, codes, child_level, tol)
    order = {"invalid": 0, "overlap": 1, "gap": 2, "outside_parent": 3, "sliver": 4}
    return sorted(issues, key=lambda i: (order[i.kind], i.codes, -i.area_m2, i.detail))


def check_hierarchy(
    streets: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    district: BaseGeometry | None = None,
    min_area_m2: float = MIN_AREA_M2,
    sliver_area_m2: float = SLIVER_AREA_M2,
    sliver_thinness: float = SLIVER_THINNESS,
) -> list[TopologyIssue]:
    """Check every level of a district at once: streets in the district, communities in their
    street (``street_code``), grids in their community (``community_code``).

    Without ``district`` the streets are only checked against each other.
    """
    district_frame = None
    if district is not None:
        streets = streets.assign(_district="district")
        district_frame = gpd.GeoDataFrame(
            {"code": ["district"]}, geometry=[district], crs=streets.crs
        )

    def level(
        children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame | None, name: str, parent_col: str
    ) -> list[TopologyIssue]:
        return check_level(
            children,
            parents,
            child_level=name,
            parent_col=parent_col,
            min_area_m2=min_area_m2,
            sliver_area_m2=sliver_area_m2,
            sliver_thinness=sliver_thinness,
        )

    return [
        *level(streets, district_frame, "street", "_district"),
        *level(communities, streets, "community", "street_code"),
        *level(grids, communities, "grid", "community_code"),
    ]


def issues_to_geodataframe(issues: Iterable[TopologyIssue], crs: object) -> gpd.GeoDataFrame:
    """Flatten issues to one point per row, for GeoJSON / GeoPackage export and map layers.

    ``codes`` becomes one comma-separated string because GeoPackage has no list columns.
    """
    rows = list(issues)
    return gpd.GeoDataFrame(
        {
            "kind": pd.Series([i.kind for i in rows], dtype=object),
            "level": pd.Series([i.level for i in rows], dtype=object),
            "codes": pd.Series([",".join(i.codes) for i in rows], dtype=object),
            "area_m2": pd.Series([i.area_m2 for i in rows], dtype=float),
            "detail": pd.Series([i.detail for i in rows], dtype=object),
        },
        geometry=gpd.GeoSeries([i.location for i in rows], crs=crs),
        crs=crs,
    )


# --- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tolerance:
    min_area_m2: float
    sliver_area_m2: float
    sliver_thinness: float

    def classify(self, area: float, thinness: float) -> Literal["noise", "sliver", "real"]:
        # Mean width from Polsby-Popper: P = sqrt(4πA / PP), width ≈ 2A / P.
        width = 2 * math.sqrt(area * max(thinness, 0.0) / (4 * math.pi))
        if area <= self.min_area_m2 or width < NOISE_WIDTH_M:
            return "noise"
        if area < self.sliver_area_m2 or thinness < self.sliver_thinness:
            return "sliver"
        return "real"


def _require_metric(frame: gpd.GeoDataFrame, name: str) -> None:
    if frame.crs is None:
        raise CRSError("no CRS set; reproject to a metric CRS first", field=name)
    crs = CRS.from_user_input(frame.crs)
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise CRSError(
            f"{crs.to_string()} is not a projected metric CRS; areas would not be in m²",
            field=name,
        )


def _codes(frame: gpd.GeoDataFrame, col: str, name: str) -> np.ndarray:
    if col not in frame.columns:
        raise InvalidInput(f"column {col!r} is missing", field=name)
    codes = frame[col].astype(str).to_numpy(dtype=object)
    dup = sorted(set(pd.Series(codes)[pd.Series(codes).duplicated()]))
    if dup:
        raise InvalidInput(f"duplicate codes in {col!r}: {', '.join(dup)}", field=name)
    return codes


def _parent_index(
    children: gpd.GeoDataFrame, parent_col: str, parent_codes: np.ndarray
) -> np.ndarray:
    """Position of each child's parent; every unknown parent code is listed in one error."""
    if parent_col not in children.columns:
        raise InvalidInput(f"column {parent_col!r} is missing", field="children")
    lookup = {code: i for i, code in enumerate(parent_codes)}
    refs = children[parent_col].astype(str).to_numpy(dtype=object)
    unknown = sorted({r for r in refs if r not in lookup})
    if unknown:
        raise InvalidInput(f"unknown parent codes: {', '.join(unknown)}", field=parent_col)
    return np.array([lookup[r] for r in refs], dtype=np.int64)


def _valid_geometries(
    frame: gpd.GeoDataFrame, codes: np.ndarray, level: str
) -> tuple[np.ndarray, list[TopologyIssue]]:
    """Report invalid or empty polygons and return repaired polygonal geometries to go on with."""
    geoms = np.asarray(frame.geometry.values, dtype=object)
    issues: list[TopologyIssue] = []
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        issues.append(
            TopologyIssue("invalid", level, (codes[i],), 0.0, Point(), "empty or missing geometry")
        )
    geoms = geoms.copy()
    geoms[missing] = shapely.Polygon()
    bad = ~shapely.is_valid(geoms)
    reasons = shapely.is_valid_reason(geoms)
    repaired = geoms.copy()
    repaired[bad] = shapely.make_valid(geoms[bad])
    for i in np.flatnonzero(bad):
        issues.append(
            TopologyIssue(
                "invalid",
                level,
                (codes[i],),
                float(shapely.area(repaired[i])),
                _location(geoms[i]),
                str(reasons[i]),
            )
        )
    # make_valid may leave stray lines or points next to the polygons: only area matters here.
    repaired[bad] = [_polygonal(g) for g in repaired[bad]]
    return repaired, issues


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _location(geom: BaseGeometry) -> Point:
    """A point on the geometry even when it is invalid (point_on_surface needs a valid one)."""
    try:
        point = shapely.point_on_surface(geom)
    except shapely.errors.GEOSException:
        point = shapely.centroid(geom)
    return point if isinstance(point, Point) else Point()


def _pieces(geom: BaseGeometry) -> Iterator[BaseGeometry]:
    """Connected polygon pieces of an overlay result, each a separate place to fix."""
    for part in shapely.get_parts(geom):
        if part.geom_type == "Polygon" and not part.is_empty:
            yield part
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            yield from _pieces(part)


def _issues_for(
    geom: BaseGeometry,
    kind: Literal["overlap", "gap", "outside_parent"],
    level: str,
    codes: tuple[str, ...],
    tol: _Tolerance,
) -> list[TopologyIssue]:
    out: list[TopologyIssue] = []
    for piece in _pieces(geom):
        area = float(piece.area)
        thinness = _polsby_popper(area, float(piece.length))
        verdict = tol.classify(area, thinness)
        if verdict == "noise":
            continue
        names = " and ".join(codes)
        detail = f"{kind} of {names}: {area:.2f} m²"
        if verdict == "sliver":
            detail += f", Polsby-Popper {thinness:.3f}"
        out.append(
            TopologyIssue(
                kind if verdict == "real" else "sliver",
                level,
                codes,
                area,
                _location(piece),
                detail,
            )
        )
    return out


def _polsby_popper(area: float, perimeter: float) -> float:
    """4πA/P²: 1 for a disc, ~0.785 for a square, towards 0 for a thin strip."""
    return 4 * np.pi * area / perimeter**2 if perimeter > 0 else 0.0


def _overlaps(
    geoms: np.ndarray, codes: np.ndarray, groups: np.ndarray, level: str, tol: _Tolerance
) -> list[TopologyIssue]:
    """Overlaps between siblings; pairs come from an STRtree, interiors tested by DE-9IM first
    so that the costly overlay runs only on pairs that really share area."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = (left < right) & (groups[left] == groups[right])
    left, right = left[keep], right[keep]
    share = shapely.relate_pattern(geoms[left], geoms[right], "T********")
    left, right = left[share], right[share]
    overlap = shapely.intersection(geoms[left], geoms[right])
    issues: list[TopologyIssue] = []
    for a, b, geom in zip(left, right, overlap, strict=True):
        pair = tuple(sorted((str(codes[a]), str(codes[b]))))
        issues += _issues_for(geom, "overlap", level, pair, tol)
    return issues


class _Parents(NamedTuple):
    """The level above, lined up with the children: ``idx[i]`` is child i's parent's row."""

    idx: np.ndarray
    geoms: np.ndarray
    codes: np.ndarray


def _gaps(geoms: np.ndarray, parents: _Parents, level: str, tol: _Tolerance) -> list[TopologyIssue]:
    """Parts of each parent that none of its children cover (a parent with no child is one gap)."""
    issues: list[TopologyIssue] = []
    order = np.argsort(parents.idx, kind="stable")
    starts = np.searchsorted(parents.idx[order], np.arange(len(parents.geoms) + 1))
    for p, parent in enumerate(parents.geoms):
        union = _union(geoms[order[starts[p] : starts[p + 1]]])
        issues += _issues_for(
            shapely.difference(parent, union), "gap", level, (str(parents.codes[p]),), tol
        )
    return issues


def _union(geoms: np.ndarray) -> BaseGeometry:
    """The union of one parent's children. Where they form a valid coverage (no overlaps,
    shared edges matched vertex for vertex, as a planner's grids do) GEOS's coverage union,
    which only drops the shared edges: the topology part of the checks at the megacity's full
    size took 18.8 s with it, 35.3 s without (``python -m bench.megacity checks``). Anything
    else (overlaps, edges that do not match) takes the general one."""
    if len(geoms) > 1:
        try:
            if shapely.coverage_is_valid(geoms):
                return shapely.coverage_union_all(geoms)
        except shapely.errors.GEOSException:
            pass
    return shapely.union_all(geoms)


def _outside(
    geoms: np.ndarray, codes: np.ndarray, parents: _Parents, level: str, tol: _Tolerance
) -> list[TopologyIssue]:
    """Parts of a child outside its own parent: households there would be served twice or by
    the wrong community. Children fully covered by their parent skip the overlay."""
    mine = parents.geoms[parents.idx]
    sticks_out = ~shapely.covers(mine, geoms)
    issues: list[TopologyIssue] = []
    for i in np.flatnonzero(sticks_out):
        rest = shapely.difference(geoms[i], mine[i])
        pair = (str(codes[i]), str(parents.codes[parents.idx[i]]))
        issues += _issues_for(rest, "outside_parent", level, pair, tol)
    return issues


def _enclosed_holes(geoms: np.ndarray, level: str, tol: _Tolerance) -> list[TopologyIssue]:
    """Holes in the union of parentless siblings: with no parent, only enclosed gaps are sure."""
    union = shapely.union_all(geoms)
    issues: list[TopologyIssue] = []
    for poly in _pieces(union):
        for ring in shapely.get_rings(poly)[1:]:  # the first ring is the exterior
            issues += _issues_for(shapely.Polygon(ring), "gap", level, (), tol)
    return issues


def _sliver_children(
    geoms: np.ndarray, codes: np.ndarray, level: str, tol: _Tolerance
) -> list[TopologyIssue]:
    """Children that are themselves tiny or thin: usually a leftover from a bad split."""
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    thinness = np.divide(
        4 * np.pi * area, perimeter**2, out=np.zeros_like(area), where=perimeter > 0
    )
    nonempty = ~shapely.is_empty(geoms)
    flagged = nonempty & ((area < tol.sliver_area_m2) | (thinness < tol.sliver_thinness))
    return [
        TopologyIssue(
            "sliver",
            level,
            (str(codes[i]),),
            float(area[i]),
            _location(geoms[i]),
            f"child {codes[i]} is a sliver: {area[i]:.2f} m², Polsby-Popper {thinness[i]:.3f}",
        )
        for i in np.flatnonzero(flagged)
    ]


# --- checking one redrawn grid ----------------------------------------------------------------

GRID_EDIT_TOLERANCE_M2 = 0.5
"""Parts of a redrawn grid up to this area outside its community or over a neighbour are
trimmed, not refused: a shape drawn along the community's own boundary by hand never sits on
it exactly. Anything larger is refused with where it is."""

_EQUAL_AREA = Transformer.from_crs(4326, "+proj=cea +datum=WGS84 +units=m", always_xy=True)
"""Lambert's cylindrical equal-area projection: true areas anywhere on Earth, so a shape on
the other side of the world (or spanning it) is measured as truly as one next door."""


@dataclass(frozen=True)
class GridShapeCheck:
    """The verdict on a grid's new shape.

    ``shape`` is what to store (lon/lat): the drawn shape, clipped to its community and clear
    of its neighbours when only crumbs below the tolerance stuck out; None when ``issues``
    refuse it. ``trimmed_m2`` is the area the clipping took away.
    """

    shape: BaseGeometry | None
    issues: tuple[TopologyIssue, ...]
    trimmed_m2: float

    def describe(self) -> str:
        """The issues in one sentence each, with area and a lon/lat point of each place."""
        return "; ".join(
            f"{i.detail} around ({i.location.x:.6f}, {i.location.y:.6f})" for i in self.issues
        )


def check_grid_shape(
    shape: BaseGeometry,
    community: BaseGeometry,
    neighbours: Mapping[str, BaseGeometry],
    *,
    code: str,
    community_code: str,
    epsg: int,
    tolerance_m2: float = GRID_EDIT_TOLERANCE_M2,
) -> GridShapeCheck:
    """Check a grid's new shape (WGS-84 lon/lat, as stored) against its community and the
    other current grids near it (``neighbours``, code → shape).

    The shape must lie inside ``community`` and overlap none of ``neighbours``. Each piece
    sticking out or overlapping by more than ``tolerance_m2`` (true area, wherever it is)
    and wider than a few
    millimetres is an issue naming the grids, its area and a point of it. Smaller pieces are
    clipped away in lon/lat itself, so shared edges stay exactly the stored ones and even a
    needle-thin spike cannot reach a point. What is kept must be one polygon, valid also in
    the deployment's metric ``epsg`` (where assignment measures).
    """
    tol = _Tolerance(tolerance_m2, tolerance_m2, 0.0)  # every piece is noise or real
    issues: list[TopologyIssue] = []
    if not shapely.covers(community, shape):
        issues += _measured_issues(
            shapely.difference(shape, community),
            "outside_parent",
            (code, community_code),
            tol,
            lambda area: (
                f"grid {code} reaches {area:.2f} m² outside its community {community_code}"
            ),
        )
    crossing: list[BaseGeometry] = []
    for other, geom in sorted(neighbours.items()):
        if not shapely.relate_pattern(shape, geom, "T********"):
            continue
        crossing.append(geom)
        issues += _measured_issues(
            shapely.intersection(shape, geom),
            "overlap",
            (code, other),
            tol,
            _overlap_says(code, other),
        )
    if issues:
        return GridShapeCheck(None, tuple(issues), 0.0)
    if shapely.covers(community, shape) and not crossing:
        return _valid_in_metres(shape, code, epsg, 0.0)

    clipped = shapely.intersection(shape, community)
    if crossing:
        clipped = shapely.difference(clipped, shapely.union_all(crossing))
    parts = sorted(_pieces(shapely.make_valid(clipped)), key=lambda p: -_geodesic(p)[0])
    if not parts:
        raise InvalidInput(f"grid {code}: nothing is left inside its community", field="geometry")
    stray = _measured_issues(
        shapely.GeometryCollection(parts[1:]),
        "invalid",
        (code,),
        tol,
        lambda area: (
            f"grid {code} would fall apart: clipped to community {community_code} "
            f"and clear of its neighbours it leaves a separate part of {area:.2f} m²"
        ),
    )
    if stray:
        return GridShapeCheck(None, tuple(stray[:1]), 0.0)
    kept = parts[0]
    trimmed = max(0.0, _geodesic(shape)[0] - _geodesic(kept)[0])
    return _valid_in_metres(kept, code, epsg, trimmed)


def _geodesic(geom: BaseGeometry) -> tuple[float, float]:
    """Area (m², true) and perimeter (m, near enough for the noise rule) of a lon/lat shape."""
    projected = shapely.transform(
        geom, lambda xy: np.column_stack(_EQUAL_AREA.transform(xy[:, 0], xy[:, 1]))
    )
    return float(projected.area), float(projected.length)


def _overlap_says(code: str, other: str) -> Callable[[float], str]:
    return lambda area: f"grid {code} overlaps grid {other} by {area:.2f} m²"


def _measured_issues(
    geom: BaseGeometry,
    kind: IssueKind,
    codes: tuple[str, ...],
    tol: _Tolerance,
    says: Callable[[float], str],
) -> list[TopologyIssue]:
    out: list[TopologyIssue] = []
    for piece in _pieces(geom):
        area, perimeter = _geodesic(piece)
        finite = math.isfinite(area) and math.isfinite(perimeter)
        if finite and tol.classify(area, _polsby_popper(area, perimeter)) == "noise":
            continue
        out.append(TopologyIssue(kind, "grid", codes, area, _location(piece), says(area)))
    return out


def _valid_in_metres(
    shape: BaseGeometry, code: str, epsg: int, trimmed_m2: float
) -> GridShapeCheck:
    """Assignment measures in metres: a shape valid in lon/lat but not once projected (two
    vertices a hair apart cross) is refused here rather than breaking every later check."""
    to_metric = Transformer.from_crs(4326, epsg, always_xy=True)
    shape_m = shapely.transform(
        shape, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1]))
    )
    if shapely.is_valid(shape_m):
        return GridShapeCheck(shape, (), trimmed_m2)
    reason = str(shapely.is_valid_reason(shape_m)).split("[")[0]
    issue = TopologyIssue(
        "invalid",
        "grid",
        (code,),
        _geodesic(shape)[0],
        _location(shape),
        f"grid {code} is not a valid polygon once projected to metres ({reason}); "
        "remove vertices closer than a millimetre",
    )
    return GridShapeCheck(None, (issue,), 0.0)
