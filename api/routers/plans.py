"""Planners' routes: draft a split, move units, lock grids, compare, publish; oversize report."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field

from api import plan_clock
from api.deps import Planner, SessionDep, Viewer
from api.pages.frame import context
from api.pages.i18n import html_lang
from api.schemas import StrictModel
from api.schemas.geojson import FeatureCollection, GeoJSONResponse
from api.schemas.plans import (
    Comparison,
    GridOn,
    Lineage,
    Moved,
    Oversize,
    Plan,
    Plans,
    Published,
    Redone,
    Resplit,
    Steps,
    Undone,
    UnitGraph,
    WorkerStep,
)
from api.security import Principal
from api.state import app_state
from data.planning import exports, workspace
from data.planning import service as planning
from geo.errors import InvalidInput, NotFound
from geo.planning.split import SEED_MAX
from maps.plans import compare_page, plan_map

router = APIRouter(tags=["planning"])


class SplitRequest(StrictModel):
    community: str = Field(min_length=1, max_length=64)
    min: int = Field(default=150, description="fewest households per grid")
    max: int = Field(default=180, description="most households per grid")
    seed: int = Field(default=1, ge=0, le=SEED_MAX)


class MoveRequest(StrictModel):
    units: list[int] = Field(min_length=1, max_length=2000)
    to_grid: str = Field(min_length=1, max_length=64)
    force: bool = False
    check_only: bool = Field(default=False, description="answer the reasons, change nothing")


class ResplitRequest(StrictModel):
    seed: int = Field(default=1, ge=0, le=SEED_MAX)


class WorkersRequest(StrictModel):
    workers: dict[str, int | None] = Field(
        description="grid code → worker id (null: none yet)", max_length=500
    )


class LockRequest(StrictModel):
    grids: list[str] = Field(min_length=1, max_length=500)
    locked: bool = True


class PublishRequest(StrictModel):
    effective: date | None = None


def _plan_in_scope(session: SessionDep, principal: Principal, plan_id: int) -> planning.StoredPlan:
    """Plans belong to communities: one of a community the caller does not hold (a grid
    scope only sees its community for context) answers 404, as ``GET /plans`` leaves it out."""
    return planning.held_plan(session, plan_id, principal.scope)


@router.post(
    "/plans",
    status_code=201,
    response_model=Plan,
    summary="Split a community into grids (a draft plan)",
)
def create_plan(
    request: Request, session: SessionDep, principal: Planner, body: SplitRequest
) -> dict[str, Any]:
    if body.min <= 0:
        raise InvalidInput("must be > 0", field="min")
    if body.min > body.max:
        raise InvalidInput(f"min {body.min} is greater than max {body.max}", field="min")
    planning.planned_community(session, body.community, principal.scope)
    plan_id = planning.draft_plan(
        session,
        body.community,
        min_households=body.min,
        max_households=body.max,
        seed=body.seed,
        author=principal.name,
        settings=app_state(request).settings,
    )
    return planning.plan_summary(session, plan_id)


@router.get("/plans", response_model=Plans, summary="Plans, optionally of one community")
def list_plans(
    session: SessionDep,
    principal: Viewer,
    community: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    return {"plans": planning.list_plans(session, community, scope=principal.scope)}


@router.get("/plans/compare", response_model=Comparison, summary="Two plans' metrics side by side")
def compare(session: SessionDep, principal: Viewer, a: int, b: int) -> dict[str, Any]:
    _plan_in_scope(session, principal, a)
    _plan_in_scope(session, principal, b)
    return planning.compare(session, a, b)


@router.get(
    "/plans/{plan_id}",
    response_model=Plan,
    summary="A plan: parameters, metrics, issues, grids",
)
def get_plan(session: SessionDep, principal: Viewer, plan_id: int) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    return planning.plan_summary(session, plan_id)


_FEATURE_COLLECTION = {
    "type": "object",
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"type": "object"}},
    },
}


# The GeoJSON routes answer a Response as is (no second pass through a model): the model
# documents the shape.
@router.get(
    "/plans/{plan_id}/grids",
    summary="A plan's grids as GeoJSON",
    response_model=FeatureCollection,
    response_class=GeoJSONResponse,
)
def get_plan_grids(session: SessionDep, principal: Viewer, plan_id: int) -> JSONResponse:
    _plan_in_scope(session, principal, plan_id)
    frame = planning.plan_grids(session, plan_id)
    return JSONResponse(
        content=json.loads(frame.to_json(drop_id=True)), media_type="application/geo+json"
    )


@router.post(
    "/plans/{plan_id}/moves",
    response_model=Moved,
    responses={409: {"model": Moved, "description": "not moved: the rules it breaks"}},
    summary="Move units to a neighbouring grid",
)
def move_units(
    request: Request, session: SessionDep, principal: Planner, plan_id: int, body: MoveRequest
) -> JSONResponse:
    _plan_in_scope(session, principal, plan_id)
    outcome = workspace.move(
        session,
        plan_id,
        units_to_move=body.units,
        to_grid=body.to_grid,
        force=body.force,
        check_only=body.check_only,
        author=principal.name,
        settings=app_state(request).settings,
    )
    content = {"moved": outcome.moved, "problems": list(outcome.problems)}
    ok = outcome.moved or (body.check_only and not outcome.problems)
    return JSONResponse(content, status_code=200 if ok else 409)


@router.post(
    "/plans/{plan_id}/locks", response_model=Plan, summary="Lock or unlock grids of a draft"
)
def lock(
    session: SessionDep, principal: Planner, plan_id: int, body: LockRequest
) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    workspace.lock(session, plan_id, body.grids, locked=body.locked, author=principal.name)
    return planning.plan_summary(session, plan_id)


@router.post(
    "/plans/{plan_id}/publish",
    response_model=Published,
    summary="Make the plan's grids current; reassign all",
)
def publish(
    request: Request,
    session: SessionDep,
    principal: Planner,
    plan_id: int,
    body: PublishRequest | None = None,
) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    today = plan_clock.today(request.app)
    effective = (body.effective if body else None) or today
    return planning.publish(
        session,
        plan_id,
        effective=effective,
        settings=app_state(request).settings,
        today=today,
        author=principal.name,
    )


@router.post(
    "/plans/{plan_id}/withdraw",
    response_model=Plan,
    summary="Take back a plan whose date has not come",
)
def withdraw(session: SessionDep, principal: Planner, plan_id: int) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    planning.withdraw(session, plan_id)
    return planning.plan_summary(session, plan_id)


@router.get(
    "/plans/{plan_id}/units",
    response_model=UnitGraph,
    response_class=GeoJSONResponse,
    summary="A plan's units and unit graph as GeoJSON",
)
def get_units(session: SessionDep, principal: Planner, plan_id: int) -> JSONResponse:
    _plan_in_scope(session, principal, plan_id)
    return JSONResponse(
        workspace.units_geojson(session, plan_id), media_type="application/geo+json"
    )


@router.get(
    "/plans/{plan_id}/steps", response_model=Steps, summary="A draft's edits, for undo and redo"
)
def get_steps(session: SessionDep, principal: Planner, plan_id: int) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    return workspace.steps(session, plan_id)


@router.post("/plans/{plan_id}/undo", response_model=Undone, summary="Take back the latest edit")
def undo(request: Request, session: SessionDep, principal: Planner, plan_id: int) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    return workspace.undo(
        session, plan_id, author=principal.name, settings=app_state(request).settings
    )


@router.post(
    "/plans/{plan_id}/redo",
    response_model=Redone,
    summary="Apply again the edit taken back last",
)
def redo(request: Request, session: SessionDep, principal: Planner, plan_id: int) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    return workspace.redo(
        session, plan_id, author=principal.name, settings=app_state(request).settings
    )


@router.post(
    "/plans/{plan_id}/resplit",
    response_model=Resplit,
    summary="Re-cut the unlocked grids; locked ones stay",
)
def resplit(
    request: Request,
    session: SessionDep,
    principal: Planner,
    plan_id: int,
    body: ResplitRequest | None = None,
) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    moved = workspace.resplit(
        session,
        plan_id,
        seed=(body.seed if body else 1),
        author=principal.name,
        settings=app_state(request).settings,
    )
    return {**planning.plan_summary(session, plan_id), "moved_units": moved}


@router.get(
    "/plans/{plan_id}/lineage",
    response_model=Lineage,
    summary="Old grids → the new grids a plan opened",
)
def get_lineage(session: SessionDep, principal: Planner, plan_id: int) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    return {"lineage": workspace.lineage(session, plan_id)}


@router.get(
    "/plans/{plan_id}/workers",
    response_model=WorkerStep,
    summary="The new grids' workers, with suggestions",
)
def get_workers(session: SessionDep, principal: Planner, plan_id: int) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    return {"grids": workspace.worker_step(session, plan_id)}


@router.post(
    "/plans/{plan_id}/workers",
    response_model=WorkerStep,
    summary="Confirm the new grids' workers",
)
def put_workers(
    request: Request, session: SessionDep, principal: Planner, plan_id: int, body: WorkersRequest
) -> dict[str, Any]:
    _plan_in_scope(session, principal, plan_id)
    workspace.confirm_workers(
        session,
        plan_id,
        body.workers,
        actor=principal.name,
        webhook_url=app_state(request).settings.case_webhook_url,
    )
    return {"grids": workspace.worker_step(session, plan_id)}


@router.get(
    "/plans/{plan_id}/export.{fmt}",
    summary="A plan as GeoPackage, GeoJSON or CSV",
    response_class=Response,
    responses={
        200: {
            "description": "the file, as an attachment",
            "content": {
                "application/geopackage+sqlite3": {},
                "application/geo+json": {"schema": _FEATURE_COLLECTION},
                "text/csv": {},
            },
        }
    },
)
def export(session: SessionDep, principal: Planner, plan_id: int, fmt: str) -> Response:
    _plan_in_scope(session, principal, plan_id)
    if fmt not in exports.FORMATS:
        raise InvalidInput(f"must be one of {', '.join(exports.FORMATS)}", field="format")
    body, media = exports.export(session, plan_id, fmt)
    name = f"plan-{plan_id}.{fmt}"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/grids/on", response_model=GridOn, summary="Which grid held a point on a given day")
def grid_on(
    session: SessionDep,
    principal: Viewer,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    on: Annotated[date, Query(alias="date")],
) -> dict[str, Any]:
    found = planning.grid_on(session, lon, lat, on, scope=principal.scope)
    if found is None:
        raise NotFound(f"no grid of your area covered ({lon}, {lat}) on {on}", field="lon/lat")
    return found


@router.get(
    "/communities/oversize",
    response_model=Oversize,
    summary="Communities and grids outside the household band",
)
def oversize(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    min: Annotated[int | None, Query(gt=0)] = None,
    max: Annotated[int | None, Query(gt=0)] = None,
) -> dict[str, Any]:
    settings = app_state(request).settings
    lo, hi = min or settings.household_min, max or settings.household_max
    if lo > hi:
        raise InvalidInput(f"min {lo} is greater than max {hi}", field="min")
    rows = planning.oversize_report(
        session,
        min_households=lo,
        max_households=hi,
        community_ids=principal.scope.sql_ids("held_community"),
    )
    return {"min": lo, "max": hi, "communities": rows}


@router.get("/maps/plans/{plan_id}", response_class=HTMLResponse, include_in_schema=False)
def plan_page(
    request: Request, session: SessionDep, principal: Viewer, plan_id: int
) -> HTMLResponse:
    plan = _plan_in_scope(session, principal, plan_id)
    grids = planning.plan_grids(session, plan_id)
    grids["code"] = grids["published_code"].fillna(grids["code"])  # the code since the switch
    m = plan_map(
        grids,
        title=f"plan {plan_id}",
        min_households=plan.min_households,
        max_households=plan.max_households,
        gettext=context(request, principal)._,
    )
    return HTMLResponse(m.get_root().render())


@router.get("/maps/plans", response_class=HTMLResponse, include_in_schema=False)
def compare_maps(
    request: Request, session: SessionDep, principal: Viewer, a: int, b: int
) -> HTMLResponse:
    _plan_in_scope(session, principal, a)
    _plan_in_scope(session, principal, b)
    ctx = context(request, principal)
    comparison = planning.compare(session, a, b)
    return HTMLResponse(compare_page(comparison, gettext=ctx._, lang=html_lang(ctx.locale)))
