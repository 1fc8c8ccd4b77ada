"""The planner's workspace in the browser (issue 16): oversized communities and drafts, the
Districtr-style editor of a draft, comparing plans with today's grids, publishing with a date,
the published plan's lineage and workers, and a print layout.

The editor's map talks to the JSON API of ``api/routers/plans.py`` with ``fetch()`` (same
origin, the sign-in cookie); these routes only render pages and take the page's forms. Who may
open a plan is the API's rule: the caller must hold the plan's community
(``data.policy.may_plan``); anything else answers 404.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import Field
from sqlalchemy import text

from api import plan_clock
from api.deps import SessionDep
from api.errors import status_for
from api.pages.forms import NOT_SENT, Shown, refused
from api.pages.frame import N_, PageContext, context, render
from api.schemas import StrictModel
from api.schemas.geojson import FeatureCollection, GeoJSONResponse
from api.security import Principal, require
from api.state import app_state
from data.planning import service as planning
from data.planning import workspace
from data.policy import Action, may_plan
from geo.errors import GridworkError, InvalidInput, NotFound
from geo.planning.metrics import Problem, rectangle_ratio
from geo.planning.split import SEED_MAX

router = APIRouter(prefix="/app", include_in_schema=False)

Planner = Annotated[Principal, Depends(require(Action.plan_grids))]

#: The metrics a planner reads, in plain words, with what each means on hover.
METRICS: list[tuple[str, str, str]] = [
    ("n_grids", N_("Grids"), N_("How many grids the plan makes.")),
    (
        "in_band_share",
        N_("Grids within the household range"),
        N_("Share of grids whose household count is inside the allowed range."),
    ),
    ("households_min", N_("Fewest households in a grid"), N_("The smallest grid.")),
    ("households_median", N_("Typical households per grid"), N_("The middle grid (median).")),
    ("households_max", N_("Most households in a grid"), N_("The largest grid.")),
    (
        "contiguous_share",
        N_("Grids in one piece"),
        N_("Share of grids a worker can walk around without leaving the grid."),
    ),
    (
        "polsby_popper_mean",
        N_("Compactness"),
        N_(
            "Polsby-Popper score, 0 to 1: how close to a round shape the grids are. "
            "Long or ragged grids score low and mean longer walks."
        ),
    ),
    (
        "reock_mean",
        N_("Roundness"),
        N_("Reock score, 0 to 1: how much of the smallest circle around a grid it fills."),
    ),
    (
        "road_share",
        N_("Boundaries along roads"),
        N_("Share of grid boundaries that run along a road, easy to recognise on the ground."),
    ),
    (
        "shared_buildings",
        N_("Buildings split between grids"),
        N_("Buildings whose entrances belong to two grids; fewer is better."),
    ),
    ("cut_blocks", N_("Blocks cut"), N_("Blocks between roads that a boundary crosses.")),
]

STATUS = {
    "draft": N_("Draft"),
    "published": N_("Published"),
    "superseded": N_("Replaced"),
    "scheduled": N_("Waiting for its date"),
}

#: Words the editor's script shows (translated once per page).
JS_WORDS = [
    N_("households"),
    N_("Moved %(n)s unit(s) into %(grid)s."),
    N_("Refused:"),
    N_("Choose the grid to paint into first."),
    N_("Nothing to undo."),
    N_("Nothing to redo."),
    N_("Undone:"),
    N_("Redone:"),
    N_("under the range"),
    N_("over the range"),
    N_("within the range"),
    N_("locked"),
    N_("Re-split done: %(n)s unit(s) moved."),
    N_("Working…"),
    N_("Checking…"),
    N_("Would be refused:"),
    N_("Can be moved."),
    N_("Variant number: from 0 to %(max)s."),
]


#: Why a move is refused, in the page's language: ``geo.planning.metrics.MOVE_PROBLEMS``
#: marked for translation (a test keeps the two the same).
REFUSALS: dict[str, str] = {
    "units_locked": N_("unit(s) %(units)s are locked"),
    "units_locked_more": N_("unit(s) %(units)s and %(more)s more are locked"),
    "target_locked": N_("grid %(grid)s is locked"),
    "sources_locked": N_("grid(s) %(grids)s are locked"),
    "already_there": N_("already in grid %(grid)s"),
    "not_touching": N_("grid %(grid)s would not be contiguous: the unit(s) do not touch it"),
    "over": N_("grid %(grid)s would hold %(households)s households, over %(max)s"),
    "empty": N_("grid %(grid)s would be left empty"),
    "under": N_("grid %(grid)s would hold %(households)s households, under %(min)s"),
    "parts": N_("grid %(grid)s would break into parts"),
}


def say_problems(ctx: PageContext, problems: tuple[str, ...]) -> list[str]:
    """A move's reasons in the page's language (a reason without a code stays as it is)."""
    return [
        ctx._(REFUSALS[p.code], **p.values)
        if isinstance(p, Problem) and p.code in REFUSALS
        else str(p)
        for p in problems
    ]


def _held_plan(session: SessionDep, principal: Planner, plan_id: int) -> planning.StoredPlan:
    """The plan of the path, if the caller holds its community: else 404, as the API says."""
    return planning.held_plan(session, plan_id, principal.scope)


#: A ``{plan_id}`` route's plan, held by the caller (resolved before the route runs).
HeldPlan = Annotated[planning.StoredPlan, Depends(_held_plan)]


def _to_plan(plan_id: int, part: str = "") -> RedirectResponse:
    """After a form: the plan's page (at ``part``), as a GET, so a reload sends nothing again."""
    return RedirectResponse(f"/app/plans/{plan_id}{part}", status_code=303)


def _status(p: dict[str, Any]) -> str:
    if p["status"] == "published" and not p.get("switched_at"):
        return "scheduled"
    return str(p["status"])


def _other_plans(
    session: SessionDep, ctx: PageContext, principal: Principal, community: str, plan_id: int
) -> list[dict[str, Any]]:
    """The community's other plans the caller may see, to compare with: each with its state
    in the page's language (已发布, not "published")."""
    return [
        p | {"state_label": ctx._(STATUS[_status(p)])}
        for p in planning.list_plans(session, community, scope=principal.scope)
        if p["id"] != plan_id
    ]


def _metric_value(ctx: Any, key: str, metrics: dict[str, Any]) -> str:
    """A metric as shown: compactness also as the rectangle that scores the same, roads also
    against the most that could lie on roads."""
    value = metrics.get(key)
    if not isinstance(value, int | float):
        return "—"
    if key in ("polsby_popper_mean", "reock_mean"):
        score = {"polsby_popper" if key.startswith("polsby") else "reock": float(value)}
        ratio = rectangle_ratio(**score)
        shape = (
            ctx._("rounder than a square")
            if ratio == 0
            else ctx._("like a rectangle %(r)s times as long as it is wide", r=format(ratio, ".1f"))
        )
        return f"{value:.2f} · {shape}"
    if key == "road_share":
        shown = f"{value * 100:.0f} %"
        unavoidable = metrics.get("unavoidable_offroad_share")
        if isinstance(unavoidable, int | float) and unavoidable > 0:
            best = f"{(1 - unavoidable) * 100:.0f} %"
            shown += " · " + ctx._("the most possible is about %(best)s", best=best)
        return shown
    if isinstance(value, float) and key.endswith(("share", "mean")):
        return f"{value * 100:.0f} %" if key.endswith("share") else f"{value:.2f}"
    return f"{value:g}"


def _metric_rows(ctx: Any, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "label": ctx._(label),
            "hint": ctx._(hint),
            "value": _metric_value(ctx, key, metrics),
        }
        for key, label, hint in METRICS
    ]


def _history(ctx: PageContext, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan's changes as the page says them: in its language, at local time."""
    out = []
    for step in steps:
        n, grids = step["units"], ", ".join(step["grids"] or ())
        if step["kind"] == "move":
            said = ctx._("%(n)s unit(s) moved into %(grid)s", n=n, grid=step["target"] or "—")
            if step["forced"]:
                said = ctx._(
                    "%(n)s unit(s) moved into %(grid)s despite the checks",
                    n=n,
                    grid=step["target"] or "—",
                )
        elif step["kind"] == "lock":
            said = ctx._("Locked %(grids)s", grids=grids)
        elif step["kind"] == "unlock":
            said = ctx._("Unlocked %(grids)s", grids=grids)
        elif step["kind"] == "resplit":
            said = ctx._("Re-split the unlocked grids: %(n)s unit(s) moved", n=n)
        else:  # pragma: no cover - every kind the workspace records is said above
            said = step["summary"]
        state = {
            "undone": ctx._("taken back"),
            "dropped": ctx._("replaced by a later change"),
        }.get(step["state"], "")
        when = ctx.localtime(datetime.fromisoformat(step["at"]), format="short")
        out.append(
            {
                "seq": step["seq"],
                "state": step["state"],
                "text": said,
                "by": f"{step['author']} · {when}",
                "note": state,
            }
        )
    return out


@router.get("/plans/{plan_id}/history")
def history_rows(
    request: Request, session: SessionDep, principal: Planner, plan: HeldPlan
) -> list[dict[str, Any]]:
    """The changes list as the page shows it, for the editor to refresh after an edit."""
    return _history(context(request, principal), workspace.steps(session, plan.id)["steps"])


@router.get("/plans", response_class=HTMLResponse)
def plans_home(
    request: Request, session: SessionDep, principal: Planner, sent: Shown = NOT_SENT
) -> HTMLResponse:
    """The oversize report, a form to split any community and the plans; after a refused
    split, with the reason beside the community or the variant number."""
    ctx = context(request, principal)
    settings = app_state(request).settings
    held = principal.scope.sql_ids("held_community")
    oversize = planning.oversize_report(
        session,
        min_households=settings.household_min,
        max_households=settings.household_max,
        community_ids=held,
    )
    communities = session.execute(
        text(
            "SELECT code, name FROM community WHERE CAST(:ids AS int[]) IS NULL "
            "OR id = ANY(:ids) ORDER BY code"
        ),
        {"ids": held},
    ).all()
    plans = planning.list_plans(session, None, scope=principal.scope)
    for p in plans:
        p["state"] = _status(p)
        p["state_label"] = ctx._(STATUS[p["state"]])
        p["drawn_at"] = ctx.localtime(datetime.fromisoformat(p["created_at"]), format="short")
    return render(
        request,
        principal,
        "planning/list.html",
        title=ctx._("Grid plans"),
        status_code=sent.status_code,
        values={
            "oversize": oversize,
            "communities": communities,
            "plans": list(reversed(plans)),
            "band": (settings.household_min, settings.household_max),
            "seed_max": SEED_MAX,
            **sent.values(),
        },
    )


#: Where a refused split is explained: beside the community or the variant number.
SPLIT_FIELDS = ("community", "seed")


def _variant(ctx: PageContext, seed: str) -> int:
    """The variant number as typed, refused in the page's language unless 0…:data:`SEED_MAX`
    (a browser's number box lets a huge number through)."""
    try:
        number = int(seed.strip() or "1")
    except ValueError:
        raise InvalidInput(ctx._("Variant number: a whole number."), field="seed") from None
    if not 0 <= number <= SEED_MAX:
        raise InvalidInput(ctx._("Variant number: from 0 to %(max)s.", max=SEED_MAX), field="seed")
    return number


@router.post("/plans", response_class=HTMLResponse, response_model=None)
def start_split(
    request: Request,
    session: SessionDep,
    principal: Planner,
    community: Annotated[str, Form(max_length=64)] = "",
    seed: Annotated[str, Form(max_length=32)] = "1",
) -> Response:
    """Draft a plan for a community; refused, the plans page with the reason at its field."""
    ctx = context(request, principal)
    settings = app_state(request).settings
    try:
        number = _variant(ctx, seed)
        planning.planned_community(session, community, principal.scope)
        plan_id = planning.draft_plan(
            session,
            community,
            min_households=settings.household_min,
            max_households=settings.household_max,
            seed=number,
            author=principal.name,
            settings=settings,
        )
    except GridworkError as exc:
        sent = refused(ctx, exc, {"community": community, "seed": seed}, SPLIT_FIELDS)
        if not sent.errors:
            raise
        session.rollback()
        return plans_home(request, session, principal, sent)
    return _to_plan(plan_id)


@router.get("/plans/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    session: SessionDep,
    principal: Planner,
    a: int,
    b: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    ctx = context(request, principal)
    left = _held_plan(session, principal, a)
    right = _held_plan(session, principal, b) if b is not None else None
    if right is not None and right.community_id != left.community_id:
        raise InvalidInput("both plans must be of the same community", field="b")
    sa = planning.plan_summary(session, a)
    sb = planning.plan_summary(session, b) if b is not None else None
    rows = []
    for (_key, label, hint), ra, rb in zip(
        METRICS,
        _metric_rows(ctx, sa["metrics"]),
        _metric_rows(ctx, sb["metrics"] if sb else {}),
        strict=True,
    ):
        rows.append(
            {"label": ctx._(label), "hint": ctx._(hint), "a": ra["value"], "b": rb["value"]}
        )
    others = _other_plans(session, ctx, principal, left.community_code, a)
    return render(
        request,
        principal,
        "planning/compare.html",
        title=ctx._("Compare plans · %(c)s", c=left.community_label),
        values={"a": sa, "b": sb, "rows": rows, "others": others},
    )


@router.get(
    "/plans/current.geojson",
    response_model=FeatureCollection,
    response_class=GeoJSONResponse,
)
def current_grids(
    session: SessionDep, principal: Planner, community: Annotated[str, Query(max_length=64)]
) -> dict[str, Any]:
    """Today's grids of a community the caller holds, with households, for the compare map."""
    community_id = planning.community_id_of(session, community)
    if community_id is None or not may_plan(principal.scope, community_id):
        raise NotFound.said("no_community", field="community", code=community)
    rows = session.execute(
        text(
            "SELECT g.code, ST_AsGeoJSON(g.geom, 7), (SELECT count(*) FROM household h "
            "WHERE h.grid_id = g.id) FROM grid g WHERE g.community_id = :c "
            "AND g.valid_to IS NULL ORDER BY g.code"
        ),
        {"c": community_id},
    ).all()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": json.loads(geom),
                "properties": {"code": code, "households": int(n)},
            }
            for code, geom, n in rows
        ],
    }


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(
    request: Request,
    session: SessionDep,
    principal: Planner,
    plan: HeldPlan,
    sent: Shown = NOT_SENT,
) -> HTMLResponse:
    """The plan's page; after a refused publish, with the reason beside the date."""
    ctx = context(request, principal)
    plan_id = plan.id
    summary = planning.plan_summary(session, plan_id)
    summary["state"] = _status(summary)
    if summary["switched_at"]:
        switched = datetime.fromisoformat(summary["switched_at"])
        summary["switched_local"] = ctx.localtime(switched, format="short")
    today = plan_clock.today(request.app)
    values: dict[str, Any] = {
        "plan": summary,
        "state_label": ctx._(STATUS[summary["state"]]),
        "metrics": _metric_rows(ctx, summary["metrics"]),
        "history": _history(ctx, workspace.steps(session, plan_id)["steps"]),
        "others": _other_plans(session, ctx, principal, plan.community_code, plan_id),
        "words": json.dumps({w: ctx._(w) for w in JS_WORDS}, ensure_ascii=False),
        "seed_max": SEED_MAX,
        "default_effective": (today + timedelta(days=30)).isoformat(),
        "today": today.isoformat(),
        "lineage": workspace.lineage(session, plan_id) if summary["switched_at"] else [],
        "workers": workspace.worker_step(session, plan_id) if summary["switched_at"] else [],
        "all_workers": session.execute(
            text("SELECT id, display_name FROM worker ORDER BY display_name, id")
        ).all()
        if summary["switched_at"]
        else [],
    }
    values |= sent.values()
    template = "planning/editor.html" if plan.status == "draft" else "planning/published.html"
    title = ctx._("Plan %(id)s · community %(c)s", id=plan_id, c=plan.community_label)
    return render(
        request, principal, template, title=title, values=values, status_code=sent.status_code
    )


@router.get("/plans/{plan_id}/metrics")
def metrics_rows(
    request: Request, session: SessionDep, principal: Planner, plan: HeldPlan
) -> list[dict[str, Any]]:
    """The metrics panel's rows as the page shows them, for the editor to refresh after an
    edit."""
    summary = planning.plan_summary(session, plan.id)
    return _metric_rows(context(request, principal), summary["metrics"])


class PageMove(StrictModel):
    units: list[int] = Field(min_length=1, max_length=2000)
    to_grid: str = Field(min_length=1, max_length=64)
    check_only: bool = False


@router.post("/plans/{plan_id}/moves")
def move_from_page(
    request: Request, session: SessionDep, principal: Planner, plan: HeldPlan, body: PageMove
) -> JSONResponse:
    """The editor's moves and its checks while brushing: ``POST /plans/{id}/moves`` (never
    forced), with the grids' new households and the reasons in the page's language."""
    outcome = workspace.move(
        session,
        plan.id,
        units_to_move=body.units,
        to_grid=body.to_grid,
        force=False,
        check_only=body.check_only,
        author=principal.name,
        settings=app_state(request).settings,
    )
    ok = outcome.moved or (body.check_only and not outcome.problems)
    content = {
        "moved": outcome.moved,
        "households": outcome.households,
        "problems": say_problems(context(request, principal), outcome.problems),
    }
    return JSONResponse(content, status_code=200 if ok else 409)


@router.post("/plans/{plan_id}/publish")
def publish_form(
    request: Request,
    session: SessionDep,
    principal: Planner,
    plan: HeldPlan,
    effective: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Publish from the editor; refused, the editor again with the reason beside the date."""
    ctx = context(request, principal)
    try:
        try:
            day = date.fromisoformat(effective)
        except ValueError:
            message = ctx._("Choose the day it takes effect.")
            raise InvalidInput(message, field="effective") from None
        planning.publish(
            session,
            plan.id,
            effective=day,
            settings=app_state(request).settings,
            today=plan_clock.today(request.app),
            author=principal.name,
        )
    except GridworkError as exc:
        form = {"effective": effective}
        sent = refused(ctx, exc, form, PUBLISH_FIELDS, status_code=status_for(exc))
        if not sent.errors:
            raise
        session.rollback()
        return plan_page(request, session, principal, plan, sent)
    return _to_plan(plan.id)


#: Where a refused publish is explained: beside the date, or (the plan itself) the button.
PUBLISH_FIELDS = ("effective", "plan")


@router.post("/plans/{plan_id}/withdraw")
def withdraw_form(session: SessionDep, plan: HeldPlan) -> RedirectResponse:
    planning.withdraw(session, plan.id)
    return _to_plan(plan.id)


@router.post("/plans/{plan_id}/workers")
async def workers_form(
    request: Request, session: SessionDep, principal: Planner, plan: HeldPlan
) -> RedirectResponse:
    form = await request.form()
    choice: dict[str, int | None] = {}
    for key, value in form.multi_items():
        if key.startswith("worker:") and isinstance(value, str):
            if value and not value.isdigit():
                raise InvalidInput("must be a worker", field=key)
            choice[key[len("worker:") :]] = int(value) if value else None
    workspace.confirm_workers(
        session,
        plan.id,
        choice,
        actor=principal.name,
        webhook_url=app_state(request).settings.case_webhook_url,
    )
    return _to_plan(plan.id, "#workers")


@router.get("/plans/{plan_id}/print", response_class=HTMLResponse)
def print_page(
    request: Request,
    session: SessionDep,
    principal: Planner,
    plan: HeldPlan,
    paper: Annotated[str, Query(pattern="^(A4|A3)$")] = "A4",
) -> HTMLResponse:
    ctx = context(request, principal)
    summary = planning.plan_summary(session, plan.id)
    workers: dict[str, str] = dict(
        session.execute(
            text(
                "SELECT n.code, w.display_name FROM grid n JOIN worker w ON w.id = n.worker_id "
                "WHERE n.plan_id = :p AND n.valid_to IS NULL"
            ),
            {"p": plan.id},
        ).all()
    )
    return render(
        request,
        principal,
        "planning/print.html",
        title=ctx._("Grid plan %(id)s · community %(c)s", id=plan.id, c=plan.community_label),
        values={
            "plan": summary,
            "workers": workers,
            "paper": paper,
            "printed": plan_clock.today(request.app).isoformat(),
        },
    )
