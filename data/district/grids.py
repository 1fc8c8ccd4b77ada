"""Per-grid numbers (households, residents, facilities, open incidents), grids out of the
household band, and changing a grid's shape with every affected point reassigned.

Only counts leave this module for households: planners and coordinators see households as
numbers per grid, never as rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import shapely
import shapely.errors
import shapely.geometry
from sqlalchemy import text

from data.access.queries import AreaScope
from data.assignment.service import Db, TableResult, load_grid_index, reassign_near
from data.crs import metric_epsg, require_epsg
from data.policy import may_plan
from data.settings import Settings
from geo.district.topology import check_grid_shape
from geo.district.validate import validate_geometries
from geo.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge


@dataclass(frozen=True)
class GridRef:
    id: int
    code: str
    community_id: int


def find_grid(db: Db, code: str, scope: AreaScope) -> GridRef:
    """The current grid with this code, if the caller may see it (else NotFound, same text)."""
    params: dict[str, Any] = {"code": code}
    where = "TRUE"
    if not scope.unrestricted:
        where = "g.id = ANY(:ids)"
        params["ids"] = scope.sql_ids("grid")
    row = db.execute(
        text(
            "SELECT g.id, g.code, g.community_id FROM grid g "  # noqa: S608
            f"WHERE g.code = :code AND g.valid_to IS NULL AND {where}"
        ),
        params,
    ).first()
    if row is None:
        raise NotFound.said("no_grid", field="code", code=code)
    return GridRef(int(row[0]), str(row[1]), int(row[2]))


def grid_summary(db: Db, grid: GridRef) -> dict[str, Any]:
    """Households, residents, facilities by kind and open incidents of one grid."""
    head = (
        db.execute(
            text(
                "SELECT g.code, c.code AS community, c.name AS community_name, s.code AS street, "
                "w.code AS worker, w.display_name AS worker_name, "
                "count(h.id) AS households, coalesce(sum(h.size), 0) AS residents, "
                "count(h.id) FILTER (WHERE h.lives_alone) AS living_alone, "
                "count(h.id) FILTER (WHERE h.age_band IN ('60-79', '80+')) AS with_seniors, "
                "count(h.id) FILTER (WHERE h.snapped) AS snapped "
                "FROM grid g JOIN community c ON c.id = g.community_id "
                "LEFT JOIN street s ON s.id = c.street_id LEFT JOIN worker w ON w.id = g.worker_id "
                "LEFT JOIN household h ON h.grid_id = g.id WHERE g.id = :id "
                "GROUP BY g.code, c.code, c.name, s.code, w.code, w.display_name"
            ),
            {"id": grid.id},
        )
        .mappings()
        .one()
    )
    facilities = db.execute(
        text("SELECT kind, count(*) FROM facility WHERE grid_id = :id GROUP BY kind ORDER BY kind"),
        {"id": grid.id},
    ).all()
    incidents: dict[str, int] = dict(
        db.execute(
            text("SELECT status::text, count(*) FROM incident WHERE grid_id = :id GROUP BY status"),
            {"id": grid.id},
        ).all()
    )
    return {
        "grid": head["code"],
        "community": {"code": head["community"], "name": head["community_name"]},
        "street": head["street"],
        "worker": head["worker"],
        "worker_name": head["worker_name"],
        "households": int(head["households"]),
        "residents": int(head["residents"]),
        "living_alone": int(head["living_alone"]),
        "households_with_seniors": int(head["with_seniors"]),
        "households_snapped": int(head["snapped"]),
        "facilities": {str(k): int(n) for k, n in facilities},
        "incidents": {
            "open": int(incidents.get("open", 0)),
            "in_progress": int(incidents.get("in_progress", 0)),
            "closed": int(incidents.get("closed", 0)),
        },
    }


def parse_band(value: str | None, settings: Settings) -> tuple[int, int]:
    """``"150,180"`` → (150, 180); the deployment's band when not given."""
    if value is None:
        return settings.household_min, settings.household_max
    parts = value.split(",")
    try:
        low, high = (int(p) for p in parts)
    except ValueError as exc:
        raise InvalidInput("expected two whole numbers: min,max", field="band") from exc
    if not 0 <= low <= high <= 1_000_000:
        raise InvalidInput("expected 0 ≤ min ≤ max", field="band")
    return low, high


def out_of_band(db: Db, scope: AreaScope, band: tuple[int, int]) -> dict[str, Any]:
    """Grids whose households fall outside the band, and communities whose households per
    grid do (or that hold such grids) — what a planner has to split or merge."""
    low, high = band
    params: dict[str, Any] = {"low": low, "high": high}
    where = "TRUE"
    if not scope.unrestricted:
        where = "g.id = ANY(:ids)"
        params["ids"] = scope.sql_ids("grid")
    rows = (
        db.execute(
            text(
                "WITH counts AS (SELECT g.id, g.code, g.community_id, count(h.id) AS n "  # noqa: S608
                "FROM grid g LEFT JOIN household h ON h.grid_id = g.id "
                f"WHERE g.valid_to IS NULL AND {where} GROUP BY g.id, g.code, g.community_id) "
                "SELECT k.code, c.code AS community, k.n FROM counts k "
                "JOIN community c ON c.id = k.community_id "
                'ORDER BY c.code COLLATE "C", k.code COLLATE "C"'
            ),
            params,
        )
        .mappings()
        .all()
    )
    grids = [
        {
            "code": r["code"],
            "community": r["community"],
            "households": int(r["n"]),
            "status": "under" if r["n"] < low else "over",
        }
        for r in rows
        if not low <= r["n"] <= high
    ]
    per_community: dict[str, list[int]] = {}
    for r in rows:
        per_community.setdefault(r["community"], []).append(int(r["n"]))
    communities = []
    for code, counts in per_community.items():
        mean = sum(counts) / len(counts)
        outside = sum(1 for n in counts if not low <= n <= high)
        if outside or not low <= mean <= high:
            communities.append(
                {
                    "code": code,
                    "grids": len(counts),
                    "households": sum(counts),
                    "mean_per_grid": round(mean, 1),
                    "grids_out_of_band": outside,
                }
            )
    return {"band": [low, high], "grids": grids, "communities": communities}


_MAX_VERTICES = 100_000


def update_grid(
    db: Db,
    grid: GridRef,
    *,
    scope: AreaScope,
    geometry: shapely.Polygon | None,
    worker_code: str | None,
    settings: Settings | None,
) -> list[TableResult]:
    """Change a grid's shape and/or worker; with a new shape, reassign every point that the
    old or the new shape can affect, in the caller's transaction.

    Either change is a planning act (``data.policy.may_plan``): the caller must hold the
    grid's community, not just the grid. The new shape must lie inside the community (and so
    inside the caller's area) and overlap no other current grid; crumbs under half a square
    metre are trimmed (``geo.district.topology.check_grid_shape``), anything more is refused
    with 422 naming the place, its area and a point of it."""
    if not may_plan(scope, grid.community_id):
        raise Forbidden(
            f"changing grid {grid.code} is planning its community, and your area does not "
            "hold that community (a street or community scope is needed, not a grid scope)",
            field="code",
        )
    # One grid edit (or plan publication) of a community at a time: the neighbours read
    # below stay as they are until this transaction ends.
    community = db.execute(
        text("SELECT code, ST_AsBinary(geom) FROM community WHERE id = :c FOR UPDATE"),
        {"c": grid.community_id},
    ).one()
    if worker_code is not None:
        worker = db.execute(
            text("SELECT id FROM worker WHERE code = :c"), {"c": worker_code}
        ).scalar_one_or_none()
        if worker is None:
            raise InvalidInput(f"no worker '{worker_code}'", field="worker_code")
        db.execute(
            text("UPDATE grid SET worker_id = :w WHERE id = :id"), {"w": worker, "id": grid.id}
        )
    if geometry is None:
        return []
    geometry = _fitted_shape(db, grid, str(community[0]), bytes(community[1]), geometry, settings)
    old = db.execute(
        text(
            "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
            "FROM grid WHERE id = :id"
        ),
        {"id": grid.id},
    ).one()
    db.execute(
        text("UPDATE grid SET geom = ST_SetSRID(ST_GeomFromWKB(:wkb), 4326) WHERE id = :id"),
        {"wkb": shapely.to_wkb(geometry), "id": grid.id},
    )
    minx, miny, maxx, maxy = geometry.bounds
    bounds = (min(old[0], minx), min(old[1], miny), max(old[2], maxx), max(old[3], maxy))
    index = load_grid_index(db, settings=settings)
    return reassign_near(db, bounds, index=index)


def _fitted_shape(
    db: Db,
    grid: GridRef,
    community_code: str,
    community_wkb: bytes,
    geometry: shapely.Polygon,
    settings: Settings | None,
) -> shapely.Polygon:
    """The shape to store, or InvalidInput (422) saying where it leaves its community or
    overlaps another grid. Every other current grid near it counts, whatever its community."""
    neighbours = {
        str(code): shapely.from_wkb(bytes(wkb))
        for code, wkb in db.execute(
            text(
                "SELECT code, ST_AsBinary(geom) FROM grid WHERE valid_to IS NULL AND id <> :id "
                "AND geom && ST_SetSRID(ST_GeomFromWKB(:wkb), 4326)"
            ),
            {"id": grid.id, "wkb": shapely.to_wkb(geometry)},
        ).all()
    }
    epsg = require_epsg(metric_epsg(db, settings.metric_epsg if settings else None))
    verdict = check_grid_shape(
        geometry,
        shapely.from_wkb(community_wkb),
        neighbours,
        code=grid.code,
        community_code=community_code,
        epsg=epsg,
    )
    if verdict.shape is None:
        raise InvalidInput(verdict.describe(), field="geometry")
    if not isinstance(verdict.shape, shapely.Polygon):
        raise InvalidInput(f"grid {grid.code} would not be one polygon", field="geometry")
    return verdict.shape


def polygon_from_geojson(value: dict[str, Any]) -> shapely.Polygon:
    """A GeoJSON Polygon (or one-part MultiPolygon) in lon/lat, valid, of sane size."""
    try:
        geom = shapely.geometry.shape(value)
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise InvalidInput(f"not a GeoJSON geometry: {exc}", field="geometry") from exc
    if shapely.get_num_coordinates(geom) > _MAX_VERTICES:
        raise PayloadTooLarge(f"more than {_MAX_VERTICES:,} vertices", field="geometry")
    frame = gpd.GeoDataFrame({"_row": [1]}, geometry=[geom], crs=4326)
    good, rejects = validate_geometries(frame, expected="Polygon", source="geometry")
    if rejects:
        raise InvalidInput(rejects[0].reason, field="geometry")
    polygon = good.geometry.iloc[0]
    assert isinstance(polygon, shapely.Polygon)
    return polygon


def area_grid_codes(db: Db, held_community_ids: list[int] | None, *, limit: int) -> list[str]:
    """The codes of the current grids of these communities (None: everywhere), in order, at
    most ``limit`` (suggestions for a typed field: a city's 60,000 would be a page of them)."""
    rows = db.execute(
        text(
            "SELECT code FROM grid WHERE valid_to IS NULL "
            "AND (CAST(:c AS int[]) IS NULL OR community_id = ANY(:c)) ORDER BY code LIMIT :n"
        ),
        {"c": held_community_ids, "n": limit},
    ).scalars()
    return [str(r) for r in rows]
