"""Per-grid numbers, grids out of the household band, and changing a grid's shape.

``GET /grids`` stays the GeoJSON layer (``api.routers.layers``); the band report lives at
``GET /grids/out-of-band?band=150,180`` so that a layer client never gets a different shape
of answer because of a query parameter.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import Planner, ReadSessionDep, SessionDep, Viewer
from api.schemas.grids import GridChange, GridChanged, GridSummary, OutOfBand
from api.state import app_state
from data.district.grids import (
    find_grid,
    grid_summary,
    out_of_band,
    parse_band,
    polygon_from_geojson,
)
from data.planning.grids import change_grid as change_one_grid

router = APIRouter(tags=["grids"])


@router.get(
    "/grids/out-of-band",
    response_model=OutOfBand,
    summary="Grids and communities whose households fall outside the band",
)
def grids_out_of_band(
    request: Request,
    session: ReadSessionDep,
    principal: Viewer,
    band: Annotated[
        str | None,
        Query(
            max_length=40,
            description="min,max households per grid; the deployment's band when omitted",
            examples=["150,180"],
        ),
    ] = None,
) -> dict[str, Any]:
    bounds = parse_band(band, app_state(request).settings)
    return out_of_band(session, principal.scope, bounds)


@router.get(
    "/grids/{code}/summary",
    response_model=GridSummary,
    summary="Households, residents, facilities by kind and open incidents of one grid",
)
def summary(session: ReadSessionDep, principal: Viewer, code: str) -> dict[str, Any]:
    """Counts only: planners and coordinators see households this way and no other."""
    return grid_summary(session, find_grid(session, code, principal.scope))


@router.patch(
    "/grids/{code}",
    response_model=GridChanged,
    summary="Change a grid's shape or worker; affected points are reassigned at once",
    description="A planning act: the caller must hold the grid's community (street or "
    "community scope). The new shape must lie inside the community and overlap no other grid "
    "(crumbs under 0.5 m² are trimmed); otherwise 422 names each place, its area in m² and a "
    "lon/lat point of it.",
)
def change_grid(
    request: Request, session: SessionDep, principal: Planner, code: str, body: GridChange
) -> dict[str, Any]:
    grid = find_grid(session, code, principal.scope)
    polygon = polygon_from_geojson(body.geometry) if body.geometry is not None else None
    results = change_one_grid(
        session,
        grid,
        scope=principal.scope,
        geometry=polygon,
        worker_code=body.worker_code,
        settings=app_state(request).settings,
        actor=principal.name,
    )
    return {
        "grid": grid.code,
        "reassigned": {r.table: r.changed for r in results},
        "examined": {r.table: r.rows for r in results},
    }
