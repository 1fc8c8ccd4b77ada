"""Geometry checks every imported layer passes before it may reach the database.

``validate_geometries`` takes a layer already in WGS-84 (lon/lat) and splits it into the rows
that can be stored and a list of :class:`~geo.errors.RowReject`, one per bad row, so a clerk
can fix the source file in one go instead of one error at a time.

Rules, in the order they are applied (a row gets the reason of the first rule it fails):

1. **Missing or empty geometry** is a reject.
2. **Coordinates** must be finite with ``|lon| <= 180`` and ``|lat| <= 90``; the reason names
   the offending value. When most rows of the layer have ``|lat| > 90`` while every longitude
   is within ``±90`` and every latitude within ``±180``, the columns were almost certainly
   swapped: *every* row is rejected with "looks like lat/lon are swapped", because even the rows
   that happen to be in range would land in the wrong place.
3. **Type**: the layer's ``expected`` type, or its ``Multi*`` form when it has exactly one part
   (stored as the single part). A ``MultiPolygon`` with several parts is a reject: every street,
   community and grid must be one contiguous area. A ``MultiPoint`` with several points is a
   reject too. A ``MultiLineString`` with several parts becomes several rows, one per part;
   they keep the original index label (so the index then repeats) and their ``source_id`` gets
   the suffix ``#1``, ``#2``… in part order.
4. **Validity**: an invalid polygon is repaired with :func:`shapely.make_valid` only when the
   repair is *safe*: the result (ignoring collapsed lines and points) is one polygon whose area
   differs from the original ``|area|`` by less than 1 %. Otherwise the row is rejected with
   GEOS's ``is_valid_reason``. Invalid lines (fewer than two distinct points) are rejects.

Z and M values are dropped: the database stores 2-D geometries.

Row numbers: ``RowReject.row`` is taken from the ``_row`` column when the frame has one (the
readers put the row number *as the user sees it in the file* there: the feature's 1-based
position in a GIS file, the spreadsheet row of a CSV, where the header is row 1); without that
column it is the row's 1-based position in the frame. ``RowReject.source_id`` comes from the
``source_id`` column when present.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely

from geo.errors import CRSError, InvalidInput, RowReject

__all__ = ["MAX_AREA_CHANGE", "ROW_COLUMN", "SOURCE_ID_COLUMN", "validate_geometries"]

GeometryKind = Literal["Point", "LineString", "Polygon"]

ROW_COLUMN: Final = "_row"
"""Column holding the 1-based row number as the user sees it in the source file."""

SOURCE_ID_COLUMN: Final = "source_id"
"""Column holding the row's identifier in the source file (a string)."""

MAX_AREA_CHANGE: Final = 0.01
"""A polygon repair that changes the area by this fraction or more is not trusted."""

_TYPE_ID: Final[dict[str, tuple[int, int]]] = {
    # expected type -> (shapely type id of the single form, of the Multi* form)
    "Point": (0, 4),
    "LineString": (1, 5),
    "Polygon": (3, 6),
}
_TYPE_NAME: Final = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}

_Objects: TypeAlias = npt.NDArray[np.object_]


def validate_geometries(
    gdf: gpd.GeoDataFrame, *, expected: GeometryKind, source: str
) -> tuple[gpd.GeoDataFrame, list[RowReject]]:
    """Keep the rows whose geometry can be stored as ``expected``; name every other row and why.

    ``gdf`` must be in WGS-84 (or have no CRS, meaning lon/lat); ``source`` names the input in
    error messages. Returns the good rows (index preserved, geometry cleaned, CRS EPSG:4326)
    and the rejects sorted by row.
    """
    if expected not in _TYPE_ID:
        raise InvalidInput(
            f"expected must be one of {', '.join(_TYPE_ID)}, not {expected!r}", field="expected"
        )
    _require_lonlat(gdf, source)
    geoms: _Objects = shapely.force_2d(np.asarray(gdf.geometry.array, dtype=object))
    rows = _row_numbers(gdf)
    ids = _source_ids(gdf)

    reasons: dict[int, str] = {}
    _check_present(geoms, reasons)
    _check_coordinates(geoms, reasons)
    pos, pieces, suffixes = _single_parts(geoms, expected, reasons)
    rejects = [RowReject(int(rows[p]), why, ids[p]) for p, why in reasons.items()]

    keep = np.ones(len(pieces), dtype=bool)
    for i in np.flatnonzero(~shapely.is_valid(pieces)):
        fixed, problem = _repair(pieces[i], expected)
        if fixed is None:
            keep[i] = False
            sid = ids[pos[i]]
            rejects.append(
                RowReject(int(rows[pos[i]]), problem, None if sid is None else sid + suffixes[i])
            )
        else:
            pieces[i] = fixed

    pos, pieces = pos[keep], pieces[keep]
    suffixes = [s for s, k in zip(suffixes, keep, strict=True) if k]
    good = gdf.iloc[pos].copy()
    good = good.set_geometry(gpd.GeoSeries(pieces, index=good.index, crs="EPSG:4326"))
    if SOURCE_ID_COLUMN in good.columns and any(suffixes):
        good[SOURCE_ID_COLUMN] = [
            None if pd.isna(sid) else f"{sid}{suffix}"
            for sid, suffix in zip(good[SOURCE_ID_COLUMN], suffixes, strict=True)
        ]
    rejects.sort(key=lambda r: (r.row, r.source_id or ""))
    return good, rejects


def _require_lonlat(gdf: gpd.GeoDataFrame, source: str) -> None:
    crs = gdf.crs
    if crs is None:
        return
    if not pyproj.CRS.from_user_input(crs).equals("EPSG:4326", ignore_axis_order=True):
        raise CRSError(
            f"{source} is in {crs.to_string()}; reproject it to EPSG:4326 before validating",
            field="crs",
        )


def _row_numbers(gdf: gpd.GeoDataFrame) -> npt.NDArray[np.int64]:
    if ROW_COLUMN in gdf.columns:
        return np.asarray(gdf[ROW_COLUMN], dtype=np.int64)
    return np.arange(1, len(gdf) + 1, dtype=np.int64)


def _source_ids(gdf: gpd.GeoDataFrame) -> list[str | None]:
    if SOURCE_ID_COLUMN not in gdf.columns:
        return [None] * len(gdf)
    return [None if pd.isna(v) else str(v) for v in gdf[SOURCE_ID_COLUMN]]


def _check_present(geoms: _Objects, reasons: dict[int, str]) -> None:
    for pos in np.flatnonzero(shapely.is_missing(geoms)):
        reasons[int(pos)] = "no geometry"
    for pos in np.flatnonzero(shapely.is_empty(geoms)):
        reasons[int(pos)] = "empty geometry"


def _check_coordinates(geoms: _Objects, reasons: dict[int, str]) -> None:
    """Reject non-finite and out-of-range coordinates, or every row when lat/lon look swapped."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    if not len(coords):
        return
    x, y = coords[:, 0], coords[:, 1]
    finite = np.isfinite(x) & np.isfinite(y)
    with np.errstate(invalid="ignore"):
        bad_x = ~np.isfinite(x) | (np.abs(x) > 180)
        bad_y = ~np.isfinite(y) | (np.abs(y) > 90)
        swap_like = finite & (np.abs(x) <= 90) & (np.abs(y) > 90) & (np.abs(y) <= 180)

    first_bad: dict[int, int] = {}
    for k in np.flatnonzero(bad_x | bad_y):
        first_bad.setdefault(int(owner[k]), int(k))
    with_coords = {int(p) for p in np.unique(owner)} - set(reasons)

    if _layer_looks_swapped(x, y, finite, owner, swap_like, len(with_coords)):
        top = float(np.max(np.abs(y[finite])))
        for p in with_coords:
            bad = first_bad.get(p)
            if bad is not None and not finite[bad]:
                axis = "longitude" if bad_x[bad] else "latitude"
                reasons[p] = _range_reason(axis, x[bad], y[bad])
            else:
                reasons[p] = (
                    "looks like lat/lon are swapped: most rows have a latitude beyond ±90 "
                    f"(up to {_fmt(top)}) and every longitude is within ±90; swap the columns"
                )
        return
    for p, i in first_bad.items():
        if p not in reasons:
            reason = _range_reason("longitude" if bad_x[i] else "latitude", x[i], y[i])
            if swap_like[i]:
                reason += "; looks like lat/lon are swapped"
            reasons[p] = reason


def _layer_looks_swapped(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    finite: npt.NDArray[np.bool_],
    owner: npt.NDArray[np.intp],
    swap_like: npt.NDArray[np.bool_],
    rows_with_coords: int,
) -> bool:
    if not rows_with_coords or not finite.any():
        return False
    if np.abs(x[finite]).max() > 90 or np.abs(y[finite]).max() > 180:
        return False
    return len(np.unique(owner[swap_like])) * 2 > rows_with_coords


def _range_reason(axis: str, x: float, y: float) -> str:
    value, limit = (float(x), 180) if axis == "longitude" else (float(y), 90)
    if np.isnan(value):
        return f"{axis} is not a number (NaN)"
    if np.isinf(value):
        return f"{axis} is infinite ({_fmt(value)})"
    return f"{axis} {_fmt(value)} is out of range [-{limit}, {limit}]"


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def _single_parts(
    geoms: _Objects, expected: GeometryKind, reasons: dict[int, str]
) -> tuple[npt.NDArray[np.intp], _Objects, list[str]]:
    """The single-part geometries to store, with the row position and id suffix of each."""
    single, multi = _TYPE_ID[expected]
    type_ids = shapely.get_type_id(geoms)
    n_parts = shapely.get_num_geometries(geoms)
    alive = np.ones(len(geoms), dtype=bool)
    alive[list(reasons)] = False

    pos: list[npt.NDArray[np.intp]] = [np.flatnonzero(alive & (type_ids == single))]
    pieces: list[_Objects] = [geoms[pos[0]]]
    suffixes = [""] * len(pos[0])
    one = np.flatnonzero(alive & (type_ids == multi) & (n_parts == 1))
    pos.append(one)
    pieces.append(shapely.get_geometry(geoms[one], 0))
    suffixes += [""] * len(one)

    for p in np.flatnonzero(alive & (type_ids != single) & ~((type_ids == multi) & (n_parts == 1))):
        type_id, count = int(type_ids[p]), int(n_parts[p])
        if type_id == multi and expected == "LineString":
            pos.append(np.full(count, p, dtype=np.intp))
            pieces.append(shapely.get_parts(geoms[p]))
            suffixes += [f"#{k}" for k in range(1, count + 1)]
        elif type_id == multi and expected == "Polygon":
            reasons[int(p)] = (
                f"MultiPolygon with {count} separate parts; each area must be one contiguous "
                "polygon: split it into separate rows or close the gaps"
            )
        elif type_id == multi:
            reasons[int(p)] = f"MultiPoint with {count} points; one point per row expected"
        else:
            reasons[int(p)] = f"expected {expected}, got {_TYPE_NAME.get(type_id, 'unknown')}"

    all_pos = np.concatenate(pos)
    order = np.argsort(all_pos, kind="stable")
    all_pieces = np.concatenate(pieces)[order]
    return all_pos[order], all_pieces, [suffixes[i] for i in order]


def _repair(geom: shapely.Geometry, expected: GeometryKind) -> tuple[shapely.Geometry | None, str]:
    """The safely repaired geometry, or None and the reason it cannot be stored."""
    why = shapely.is_valid_reason(geom)
    if expected != "Polygon":
        return None, f"invalid {expected}: {why}"
    original = abs(float(shapely.area(geom)))
    polygons = _polygons(shapely.make_valid(geom))
    if len(polygons) != 1:
        return None, (
            f"invalid polygon ({why}); not repaired: the repair gives {len(polygons)} polygons"
        )
    fixed = polygons[0]
    change = abs(float(shapely.area(fixed)) - original) / original if original > 0 else np.inf
    if change >= MAX_AREA_CHANGE or not shapely.is_valid(fixed):
        amount = f"{change:.1%}" if original > 0 else "an undefined amount (zero area)"
        return (
            None,
            f"invalid polygon ({why}); not repaired: the repair changes the area by {amount}",
        )
    return fixed, ""


def _polygons(geom: shapely.Geometry) -> list[shapely.Geometry]:
    """The non-empty polygons inside ``geom``, ignoring lines and points a repair collapsed to."""
    out: list[shapely.Geometry] = []
    for part in shapely.get_parts(geom):
        type_id = int(shapely.get_type_id(part))
        if type_id == 3 and not part.is_empty:
            out.append(part)
        elif type_id in (6, 7):
            out += _polygons(part)
    return out
