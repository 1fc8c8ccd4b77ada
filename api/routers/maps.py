"""The coordinators' maps (HTML) and the coverage numbers (JSON), scoped to the caller's area.

Each map is assembled from ``data`` and drawn by :func:`maps.pages.render`, which
``gridwork map`` shares.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep, network_cache
from api.ogc import district_wide
from api.security import Principal, require
from data.coverage.service import coverage, facility_kinds
from data.district.maps import (
    MAX_DAYS,
    district_bounds,
)
from data.policy import Action
from data.settings import Settings
from geo.coverage.walk import DEFAULT_SPEED_KMH, MAX_MINUTES
from maps._common import message_page
from maps.pages import MapKind, render
from maps.viewer import viewer_page

router = APIRouter(tags=["maps"])

HumanDep = Annotated[Principal, Depends(require(Action.view_district))]
KindQuery = Annotated[
    str, Query(min_length=1, max_length=64, description="facility kind, e.g. clinic")
]
MinutesQuery = Annotated[
    float, Query(gt=0, le=MAX_MINUTES, description="walking time in minutes (0 < m ≤ 120)")
]
DaysQuery = Annotated[int, Query(ge=1, le=MAX_DAYS, description="look back this many days")]


def _page(
    request: Request, session: SessionDep, principal: Principal, kind: MapKind, **kw: Any
) -> HTMLResponse:
    html = render(
        session.connection(),
        kind,
        scope=principal.scope,
        settings=request.app.state.settings,
        cache=network_cache(request),
        asset_mode="url",
        **kw,
    )
    return HTMLResponse(html)


@router.get("/maps/grids", response_class=HTMLResponse, summary="Grids against the band")
def grids_map(request: Request, session: SessionDep, principal: HumanDep) -> HTMLResponse:
    """Grids coloured by households against household_min–household_max, with the worker."""
    return _page(request, session, principal, "grids")


@router.get("/maps/workload", response_class=HTMLResponse, summary="Households per worker")
def workload(request: Request, session: SessionDep, principal: HumanDep) -> HTMLResponse:
    """Each grid coloured by its worker's load (households and grids of all their grids)."""
    return _page(request, session, principal, "workload")


@router.get("/maps/incidents", response_class=HTMLResponse, summary="Incidents per grid")
def incidents(
    request: Request, session: SessionDep, principal: HumanDep, days: DaysQuery = 30
) -> HTMLResponse:
    """Incidents reported in the last ``days`` per grid, open and closed (counts only)."""
    return _page(request, session, principal, "incidents", days=days)


@router.get("/maps/coverage", response_class=HTMLResponse, summary="Facility coverage map")
def coverage_page(
    request: Request,
    session: SessionDep,
    principal: HumanDep,
    kind: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    minutes: MinutesQuery = 10.0,
) -> HTMLResponse:
    """Walking coverage of a facility kind; without ``kind``, a page to choose one."""
    if kind is None:
        kinds = facility_kinds(session.connection())
        links = "".join(
            f'<li><a href="/maps/coverage?kind={quote(k)}&amp;minutes={minutes:g}">'
            f"{escape(k)}</a></li>"
            for k in kinds
        )
        body = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>Facility coverage</title></head><body><h1>Facility coverage</h1>"
            f"<p>Choose a kind of facility ({minutes:g} minutes' walk):</p><ul>{links}</ul>"
            "<p><a href='/'>Back</a></p></body></html>"
        )
        return HTMLResponse(body)
    return _page(request, session, principal, "coverage", facility=kind, minutes=minutes)


@router.get("/coverage", summary="Facility coverage per grid (JSON)")
def coverage_numbers(
    request: Request,
    session: SessionDep,
    principal: HumanDep,
    kind: KindQuery,
    minutes: MinutesQuery = 10.0,
) -> dict[str, Any]:
    """Per grid (per community before there are grids): households, how many can walk to a
    facility of ``kind`` within ``minutes`` at 4.5 km/h, the share of land in the walking
    area, ``uncovered``, and a 2SFCA ``score`` when every facility of the kind has a
    capacity."""
    report = coverage(
        session.connection(),
        network_cache(request),
        kind=kind,
        minutes=minutes,
        scope=principal.scope,
        speed_kmh=DEFAULT_SPEED_KMH,
        drawing=False,
    )
    return report.as_json()


@router.get("/viewer", response_class=HTMLResponse, summary="Vector-tile viewer (MapLibre)")
def viewer(request: Request, session: SessionDep, principal: HumanDep) -> HTMLResponse:
    """Grids, roads and facilities from the /ogc vector tiles, drawn by the vendored MapLibre.

    District-wide like the tiles it reads: an admin or a district-wide key.
    """
    district_wide(principal)
    conn = session.connection()
    bounds = district_bounds(conn)
    if bounds is None:
        return HTMLResponse(message_page("Vector tiles", "Nothing is stored yet."))
    settings: Settings = request.app.state.settings
    return HTMLResponse(
        viewer_page(
            bounds,
            kinds=facility_kinds(conn),
            household_min=settings.household_min,
            household_max=settings.household_max,
        )
    )
