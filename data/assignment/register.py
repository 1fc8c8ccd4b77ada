"""The registers staff keep on their pages: the household register of a grid worker's grids
(住户台账: which grids they keep, each grid's outline) and the facilities of an area (its
extent, for the map).

Households are read and written through :mod:`data.assignment.points`, by the same rules as
the API (``household_scope``: a grid worker keeps the households of the grids they work);
this module adds what a page needs around them and nothing about people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from data.access.queries import AreaScope
from data.assignment.service import Db


@dataclass(frozen=True)
class KeptGrid:
    """A grid whose households the caller keeps: its code, worker and household count."""

    code: str
    worker: str | None
    households: int


def kept_grids(db: Db, scope: AreaScope, *, limit: int = 200) -> list[KeptGrid]:
    """The current grids of ``scope`` (a household scope) in code order, with counts; the
    first ``limit`` for an area without bounds (an administrator picks by code)."""
    rows = db.execute(
        text(
            "SELECT g.code, w.display_name, "
            "(SELECT count(*) FROM household h WHERE h.grid_id = g.id) "
            "FROM grid g LEFT JOIN worker w ON w.id = g.worker_id "
            "WHERE g.valid_to IS NULL AND (CAST(:ids AS int[]) IS NULL OR g.id = ANY(:ids)) "
            'ORDER BY g.code COLLATE "C" LIMIT :limit'
        ),
        {"ids": scope.sql_ids("grid"), "limit": limit},
    ).all()
    return [KeptGrid(r[0], r[1], int(r[2])) for r in rows]


def grid_outline(db: Db, grid_id: int) -> dict[str, Any]:
    """The grid's polygon as GeoJSON (WGS-84), for the page's map."""
    found = db.execute(
        text("SELECT ST_AsGeoJSON(geom, 6) FROM grid WHERE id = :id"), {"id": grid_id}
    ).scalar_one()
    outline: dict[str, Any] = json.loads(found)
    return outline


def area_extent(db: Db, scope: AreaScope) -> list[float] | None:
    """West, south, east, north of the current grids of ``scope`` (WGS-84), or None."""
    row = db.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) "
            "AS e FROM grid WHERE valid_to IS NULL "
            "AND (CAST(:ids AS int[]) IS NULL OR id = ANY(:ids))) s"
        ),
        {"ids": scope.sql_ids("grid")},
    ).one()
    return None if row[0] is None else [float(v) for v in row]
