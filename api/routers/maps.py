"""The coordinators' maps (HTML) and the coverage numbers (JSON), scoped to the caller's area.

Each map is assembled from ``data`` and drawn by :func:`maps.pages.render`, which
``gridwork map`` shares.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.deps import Planner, ReadSessionDep, SessionDep, Viewer, network_cache
from api.pages.facility_kinds import KIND_NAMES, kind_label
from api.pages.forms import NOT_SENT, SUGGESTIONS, SentBack, refused
from api.pages.frame import N_, context, render
from api.pages.map_page import framed_map
from api.pages.told import heard, signed
from api.road_warmup import still_building
from api.schemas.coverage import Coverage
from api.security import Principal
from api.state import app_state
from data.coverage.service import coverage, facility_kinds
from data.district.grids import area_grid_codes, find_grid
from data.district.maps import (
    MAX_DAYS,
    district_bounds,
    grid_layers,
    tiled_counts,
    worker_load,
)
from data.district.workers import area_workers, idle_workers, worker_typed
from data.planning.grids import change_grid
from data.policy import Action, may
from data.settings import Settings
from geo.coverage.walk import DEFAULT_SPEED_KMH, MAX_MINUTES
from geo.errors import GridworkError, InvalidInput
from maps.grids import (
    LOAD_IN_BAND,
    LOAD_OVER,
    LOAD_OVER_2X,
    LOAD_OVER_20,
    LOAD_UNDER,
    load_class,
)
from maps.pages import MapKind, NoMap, build
from maps.viewer import feature_minzoom, viewer_page

router = APIRouter(tags=["maps"])

KindQuery = Annotated[
    str, Query(min_length=1, max_length=64, description="facility kind, e.g. clinic")
]
MinutesQuery = Annotated[
    float, Query(gt=0, le=MAX_MINUTES, description="walking time in minutes (0 < m ≤ 120)")
]
DaysQuery = Annotated[int, Query(ge=1, le=MAX_DAYS, description="look back this many days")]


LOAD_NAMES = {
    LOAD_UNDER: N_("Under the band"),
    LOAD_IN_BAND: N_("In the band"),
    LOAD_OVER: N_("Over by up to 20 %"),
    LOAD_OVER_20: N_("Over by more than 20 %"),
    LOAD_OVER_2X: N_("Over twice the band"),
}

TITLES: dict[MapKind, str] = {
    "grids": N_("Grids and households"),
    "workload": N_("Workload"),
    "incidents": N_("Incidents map"),
    "coverage": N_("Coverage"),
}
INTROS: dict[MapKind, str] = {
    "grids": N_(
        "Each grid coloured by its households against the band a grid should hold "
        "(%(low)s–%(high)s). Tap or hover over a grid for its worker."
    ),
    "workload": N_(
        "Each grid coloured by the load of the worker who answers for it: all their grids' "
        "households against the band (%(low)s–%(high)s). Tap or hover over a grid for the "
        "worker's grids."
    ),
    "coverage": N_(
        "Who can walk to a facility of one kind in so many minutes, at an unhurried 4.5 km/h "
        "along the roads."
    ),
}


def _page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    kind: MapKind,
    *,
    values: dict[str, Any] | None = None,
    template: str = "maps/map.html",
    **kw: Any,
) -> HTMLResponse:
    """One map inside the frame, or the reason there is none."""
    ctx = context(request, principal)
    settings: Settings = app_state(request).settings
    title = ctx._(TITLES[kind])
    days = kw.get("days", 30)
    intro = (
        ctx.ngettext(
            "Incidents reported in the last %(num)s day, per grid: open and closed.",
            "Incidents reported in the last %(num)s days, per grid: open and closed.",
            days,
        )
        if kind == "incidents"
        else ctx._(INTROS[kind], low=settings.household_min, high=settings.household_max)
    )
    page_values = {"intro": intro, **(values or {})}
    try:
        m = build(
            session.connection(),
            kind,
            scope=principal.scope,
            settings=settings,
            cache=network_cache(request),
            asset_mode="url",
            gettext=ctx._,
            ngettext=ctx.ngettext,
            **kw,
        )
    except NoMap as why:
        message = ctx._(why.message, **why.values)
        return render(
            request, principal, template, title=title, values={**page_values, "message": message}
        )
    return framed_map(
        request,
        principal,
        m.get_root().render(),
        title=title,
        template=template,
        values=page_values,
    )


@router.get(
    "/maps/grids",
    response_class=HTMLResponse,
    summary="Grids against the band",
)
def grids_map(request: Request, session: ReadSessionDep, principal: Viewer) -> HTMLResponse:
    """Grids coloured by households against household_min–household_max, with the worker."""
    return _page(request, session, principal, "grids")


@router.get(
    "/maps/workload",
    response_class=HTMLResponse,
    summary="Households per worker",
)
def workload(
    request: Request,
    session: ReadSessionDep,
    principal: Viewer,
    given: Annotated[str, Query(max_length=400)] = "",
) -> HTMLResponse:
    """Each grid coloured by its worker's load against the band; every worker's grids listed.
    A planner of the area also gives a grid to another worker here (``given``: what the last
    such change did, signed)."""
    return _workload_page(request, session, principal, given, NOT_SENT)


def _workload_page(
    request: Request, session: Session, principal: Principal, given: str, sent: SentBack
) -> HTMLResponse:
    """The workload page; ``sent``: the give-a-grid form as refused (its reasons beside its
    fields, answered with its status)."""
    settings: Settings = app_state(request).settings
    ctx = context(request, principal)
    held = principal.scope.sql_ids("held_community")
    grids = grid_layers(session.connection(), principal.scope).grids
    workers = []
    if not grids.empty:
        load = worker_load(grids)
        codes_of: dict[str, list[str]] = {}
        for code, worker in zip(grids["code"], grids["worker_code"], strict=True):
            if isinstance(worker, str) and worker:
                codes_of.setdefault(worker, []).append(str(code))
        for row in load.to_dict("records"):
            if not row["worker_code"]:
                continue
            households = int(row["households"])
            colour, _label = load_class(
                households, low=settings.household_min, high=settings.household_max
            )
            label = ctx._(LOAD_NAMES[colour])
            workers.append(
                {
                    "name": row["worker_name"] or row["worker_code"],
                    "code": row["worker_code"],
                    "households": households,
                    "grids": sorted(codes_of.get(str(row["worker_code"]), [])),
                    "colour": colour,
                    "band": label,
                }
            )
        unstaffed = sorted(
            str(c)
            for c, w in zip(grids["code"], grids["worker_code"], strict=True)
            if not (isinstance(w, str) and w)
        )
    else:
        unstaffed = []
    page = _page(
        request,
        session,
        principal,
        "workload",
        template="maps/workload.html",
        values={
            "workers": workers,
            "unstaffed": unstaffed,
            "idle": idle_workers(session, held),
            **_giving(request, session, principal, held, given),
            **sent.values(),
        },
    )
    page.status_code = sent.status_code
    return page


#: The give-a-grid form's fields, and the use cases' names for them.
GIVE_FIELDS = ("grid", "worker")
GIVE_ALIASES = {"code": "grid", "worker_code": "worker"}


def _giving(
    request: Request,
    session: Session,
    principal: Principal,
    held: list[int] | None,
    given: str,
) -> dict[str, Any]:
    """The workload page's form to give a grid to a worker, for who may plan the area (the
    communities ``held``): the grids and workers to choose from (typed, with suggestions),
    and what was just done."""
    if not may(principal.role, Action.plan_grids) or held == []:
        return {"may_give": False}
    grid, sep, name = heard(request, given).partition("|") if given else ("", "", "")
    return {
        "may_give": True,
        "give_grids": area_grid_codes(session, held, limit=SUGGESTIONS),
        "give_workers": area_workers(session, held, limit=SUGGESTIONS),
        "given": (grid, name) if sep else None,
    }


@router.post("/maps/workload/worker", include_in_schema=False)
def give_grid(
    request: Request,
    session: SessionDep,
    principal: Planner,
    grid: Annotated[str, Form(max_length=64)],
    worker: Annotated[str, Form(max_length=64)],
) -> Response:
    """Give a grid to another worker (a planning act: the caller must hold its community); its
    open cases go with it (``data.planning.grids.change_grid``). A refusal comes back on the
    workload page, beside the field it is about."""
    try:
        if not worker.strip():
            raise InvalidInput("required", field="worker")  # said in the page's language
        ref = find_grid(session, grid.strip(), principal.scope)
        taker = worker_typed(session, worker.strip())
        if taker is None:
            raise InvalidInput.said("no_worker", field="worker", code=worker.strip())
        change_grid(
            session,
            ref,
            scope=principal.scope,
            geometry=None,
            worker_code=taker[0],
            settings=app_state(request).settings,
            actor=principal.name,
        )
    except GridworkError as exc:
        session.rollback()
        form = {"grid": grid, "worker": worker}
        sent = refused(context(request, principal), exc, form, GIVE_FIELDS, aliases=GIVE_ALIASES)
        return _workload_page(request, session, principal, "", sent)
    said = signed(request, f"{ref.code}|{taker[1]}")
    return RedirectResponse(f"/maps/workload?{urlencode({'given': said})}#give", status_code=303)


@router.get(
    "/maps/incidents",
    response_class=HTMLResponse,
    summary="Incidents per grid",
)
def incidents(
    request: Request, session: ReadSessionDep, principal: Viewer, days: DaysQuery = 30
) -> HTMLResponse:
    """Incidents reported in the last ``days`` per grid, open and closed (counts only)."""
    return _page(request, session, principal, "incidents", days=days)


@router.get(
    "/maps/coverage",
    response_class=HTMLResponse,
    summary="Facility coverage map",
)
def coverage_page(
    request: Request,
    session: ReadSessionDep,
    principal: Viewer,
    kind: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    minutes: MinutesQuery = 10.0,
    straight: Annotated[
        bool, Query(description="also draw straight-line circles of the same radius")
    ] = False,
) -> HTMLResponse:
    """Walking coverage of a facility kind, with the controls to change it; without ``kind``,
    only the controls (the first walk on a new road graph takes a few seconds)."""
    ctx = context(request, principal)
    conn = session.connection()
    counts: dict[str, int] = dict(
        conn.execute(text("SELECT kind, count(*) FROM facility GROUP BY kind")).tuples().all()
    )
    kinds = [
        {"value": k, "label": f"{kind_label(ctx, k)} · {counts.get(k, 0)}"}
        for k in sorted(counts, key=lambda k: (k not in KIND_NAMES, kind_label(ctx, k)))
    ]
    values = {
        "kinds": kinds,
        "kind": kind,
        "minutes": f"{minutes:g}",
        "straight": straight,
        "max_minutes": f"{MAX_MINUTES:g}",
        # The progress sign only while the walking graph is still being built.
        "building": still_building(app_state(request).road_warmup, network_cache(request)),
    }
    if kind is None:
        return render(
            request,
            principal,
            "maps/coverage.html",
            title=ctx._("Coverage"),
            values={**values, "intro": ctx._(INTROS["coverage"]), "choose": True},
        )
    return _page(
        request,
        session,
        principal,
        "coverage",
        template="maps/coverage.html",
        values=values,
        facility=kind,
        minutes=minutes,
        straight_line=straight,
    )


@router.get(
    "/coverage",
    response_model=Coverage,
    response_model_exclude_unset=True,
    summary="Facility coverage per grid (JSON)",
)
def coverage_numbers(
    request: Request,
    session: ReadSessionDep,
    principal: Viewer,
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
def viewer(request: Request, session: ReadSessionDep, principal: Viewer) -> Response:
    """Grids, roads and facilities from the /ogc vector tiles, drawn by the vendored MapLibre.

    The tiles cover the whole district, so they are for an admin or a district-wide key; a
    member of staff with an area is sent to the grids map of their area (Leaflet over the
    basemap), which shows the same grids, roads and facilities and nothing outside it.
    """
    if not principal.scope.unrestricted:
        return RedirectResponse("/maps/grids", status_code=303)
    ctx = context(request, principal)
    conn = session.connection()
    bounds = district_bounds(conn)
    title = ctx._("Vector-tile viewer")
    if bounds is None:
        return render(
            request,
            principal,
            "maps/map.html",
            title=title,
            values={"message": ctx._("Nothing is stored yet.")},
        )
    settings: Settings = app_state(request).settings
    grids, roads, buildings = tiled_counts(conn)
    document = viewer_page(
        bounds,
        grid_minzoom=feature_minzoom(grids, bounds),
        road_minzoom=feature_minzoom(roads, bounds),
        building_minzoom=feature_minzoom(buildings, bounds),
        kinds=facility_kinds(conn),
        household_min=settings.household_min,
        household_max=settings.household_max,
        kind_names={k: kind_label(ctx, k) for k in facility_kinds(conn)},
        gettext=ctx._,
    )
    return framed_map(request, principal, document, title=title)
