"""The household register in the browser (户数台账): a grid worker keeps the households of
their grids up to date from a phone.

Households could be written only through the JSON API (``api/routers/points.py``), so a grid
worker whose household moved away, grew, or now lives alone had no way to say so. These pages
act through the same use cases and rules: a grid worker reads and writes the households of
the grids they work (``household_scope``), care staff read those of their area, an
administrator any; a point is assigned to its grid as it is written (``place_point``); every
page that shows households writes an audit row first, naming them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, care_epsg
from api.grid_index import GridIndexDep, place_tapped
from api.pages.forms import NOT_SENT, Shown, refused
from api.pages.frame import N_, PageContext, context, render
from api.pages.told import heard, signed
from api.security import Principal, audit_read, require
from data.access.reasons import AuditReason, said
from data.assignment.points import (
    KINDS,
    delete_point,
    get_point,
    household_scope,
    insert_point,
    list_points,
    missing,
    update_point,
)
from data.assignment.register import grid_outline, kept_grids
from data.care.service import follow_households
from data.district.grids import GridRef, find_grid
from data.models import AgeBand
from data.policy import Action, may
from geo.errors import GridworkError, InvalidInput

router = APIRouter(prefix="/app/households", include_in_schema=False)

Reader = Annotated[Principal, Depends(require(Action.read_households))]
Keeper = Annotated[Principal, Depends(require(Action.edit_households))]

HOUSEHOLDS = KINDS["households"]
#: Grids offered in the chooser: a whole district's (783 in the reference one) for an
#: administrator; a grid worker keeps a handful.
GRID_CHOICES = 1000
FEW_GRIDS = 20
"""Up to this many grids are chosen from a list; more are typed, the browser suggesting
codes as one types (an administrator's 783 grids in a list are a long scroll)."""
FIELDS = ("code", "size", "age_band", "lon/lat", "confirm")
#: A code's length, as the API's key allows; what else it may not be ('/', 'new', control
#: characters) insert_point says (geo.assignment.keys).
KEY = re.compile(r".{1,64}", re.S)

AGE_BANDS = {
    AgeBand.minor: N_("0–17"),
    AgeBand.adult: N_("18–59"),
    AgeBand.senior: N_("60–79"),
    AgeBand.elder: N_("80 and over"),
}


def _scope(session: SessionDep, principal: Principal) -> Any:
    return household_scope(session, principal.scope, principal.role, principal.user_id)


def _audit(
    session: SessionDep,
    request: Request,
    principal: Principal,
    codes: list[Any],
    why: AuditReason,
) -> None:
    if codes:
        audit_read(
            session, request, principal, subject_type="household", subject_ids=codes, reason=why
        )


def _view(ctx: PageContext, h: dict[str, Any]) -> dict[str, Any]:
    band = h["age_band"]
    return {
        "code": h["code"],
        "size": h["size"],
        "lives_alone": h["lives_alone"],
        "age_band": band,
        "age_label": ctx._(AGE_BANDS[AgeBand(band)]) if band else "—",
        "estimated": h["estimated"],
        "building": h["building"],
        "lon": h["lon"],
        "lat": h["lat"],
        "grid": h["assignment"]["grid"],
    }


def _on_the_map(ctx: PageContext, h: dict[str, Any], *, edit: bool) -> dict[str, Any]:
    """A household as the register's map draws it (points.js): those living alone in red."""
    if h["lives_alone"]:
        words = ctx._("%(code)s · 1 person, lives alone", code=h["code"])
    else:
        words = ctx.ngettext(
            "%(code)s · %(num)s person", "%(code)s · %(num)s people", h["size"], code=h["code"]
        )
    return {
        "lon": h["lon"],
        "lat": h["lat"],
        "label": words,
        "marked": h["lives_alone"],
        "href": f"/app/households/{quote(h['code'], safe='')}" if edit else None,
    }


@router.get("", response_class=HTMLResponse, response_model=None)
def register_page(
    request: Request,
    session: SessionDep,
    principal: Reader,
    grid: Annotated[str, Query(max_length=64)] = "",
    done: Annotated[str, Query(max_length=100)] = "",
    removed: Annotated[str, Query(max_length=100)] = "",
    find: Annotated[str, Query(max_length=64)] = "",
    found: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """My grids, and the households of one of them on a map and in a list (after a change,
    saying which household was saved or removed). ``find`` looks a household up by its code
    in my area and opens its grid with it marked (``found``); a code not there is said so."""
    ctx = context(request, principal)
    scope = _scope(session, principal)
    done, removed, found = (heard(request, v) for v in (done, removed, found))
    missing = ""
    if find.strip():
        row = get_point(session, HOUSEHOLDS, find.strip(), scope)
        if row is not None and row["assignment"]["grid"]:
            code = row["code"]
            _audit(session, request, principal, [code], said("household_found"))
            target = _told(request, grid=row["assignment"]["grid"], found=code)
            return RedirectResponse(f"{target}#hh-{quote(code)}", 303)
        missing = find.strip()
    grids = kept_grids(session, scope, limit=GRID_CHOICES)
    chosen: GridRef | None = None
    if grid:
        chosen = find_grid(session, grid, scope)
    elif len(grids) == 1:
        chosen = find_grid(session, grids[0].code, scope)
    households: list[dict[str, Any]] = []
    total = 0
    outline = None
    if chosen is not None:
        rows, total = list_points(session, HOUSEHOLDS, scope, grid_id=chosen.id, limit=500)
        households = [_view(ctx, h) for h in rows]
        outline = grid_outline(session, chosen.id)
        _audit(session, request, principal, [h["code"] for h in rows], said("household_register"))
    return render(
        request,
        principal,
        "households/register.html",
        title=ctx._("Household register"),
        values={
            "grids": grids,
            "chosen": chosen.code if chosen else None,
            "households": households,
            "total": total,
            "may_edit": may(principal.role, Action.edit_households),
            "done": done,
            "removed": removed,
            "found": found,
            "missing": missing,
            "few": len(grids) <= FEW_GRIDS,
            "data": {
                "outline": outline,
                "points": [
                    _on_the_map(ctx, h, edit=may(principal.role, Action.edit_households))
                    for h in households
                ],
            },
        },
    )


def _told(request: Request, *, grid: str, **done: str) -> str:
    """The register of ``grid`` saying what was just done to which household (signed)."""
    return "/app/households?" + urlencode(
        {"grid": grid, **{k: signed(request, v) for k, v in done.items()}}
    )


def _point(form: dict[str, Any]) -> list[Any] | None:
    """Where the form's marker stands: the household's place, or where the map was tapped."""
    return [form["lon"], form["lat"]] if form.get("lon") and form.get("lat") else None


def _form_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    household: dict[str, Any] | None,
    grid: str,
    sent: Any,
) -> HTMLResponse:
    """The form of one household (``household`` None: a new one in ``grid``)."""
    ctx = context(request, principal)
    scope = _scope(session, principal)
    ref = find_grid(session, grid, scope)
    form = dict(sent.form) if sent.form else ({} if household is None else household)
    return render(
        request,
        principal,
        "households/household.html",
        title=ctx._("Household %(code)s", code=household["code"])
        if household
        else ctx._("New household"),
        status_code=sent.status_code,
        values={
            "household": household,
            "grid": ref.code,
            "bands": [(b.value, ctx._(label)) for b, label in AGE_BANDS.items()],
            "data": {
                "outline": grid_outline(session, ref.id),
                "point": [form["lon"], form["lat"]]
                if form.get("lon") and form.get("lat")
                else None,
                "labels": {"here": ctx._("The household lives here")},
            },
            **sent.values(),
            "form": form,
        },
    )


@router.get("/new", response_class=HTMLResponse)
def new_form(
    request: Request,
    session: SessionDep,
    principal: Keeper,
    grid: Annotated[str, Query(min_length=1, max_length=64)],
    sent: Shown = NOT_SENT,
) -> HTMLResponse:
    return _form_page(request, session, principal, household=None, grid=grid, sent=sent)


def _values(ctx: PageContext, size: str, age_band: str) -> dict[str, Any]:
    """The form's fields as the use case takes them, refused with the field's reason. Living
    alone is a household of one: the register never held it otherwise, and a tick box beside
    the number let the two disagree."""
    try:
        people = int(size)
    except ValueError:
        raise InvalidInput(
            ctx._("How many people live there: a whole number."), field="size"
        ) from None
    if not 1 <= people <= 30:
        raise InvalidInput(ctx._("Between 1 and 30 people."), field="size")
    if age_band and age_band not in {b.value for b in AgeBand}:
        raise InvalidInput(ctx._("Choose one of the age bands listed."), field="age_band")
    return {
        "size": people,
        "lives_alone": people == 1,
        "age_band": age_band or None,
    }


def _place(
    ctx: PageContext, index: Any, scope: Any, lon: str, lat: str
) -> tuple[tuple[float, float], Any]:
    """Where the map was tapped, and its grid; refused outside the caller's grids."""
    missing = ctx._("Tap the map where the household lives.")
    outside = ctx._("That place lies outside your grids.")
    return place_tapped(index, scope, lon, lat, missing=missing, outside=outside)


@router.post("/new", response_class=HTMLResponse, response_model=None)
def new_submit(
    request: Request,
    session: SessionDep,
    principal: Keeper,
    index: GridIndexDep,
    grid: Annotated[str, Form(max_length=64)],
    code: Annotated[str, Form(max_length=200)] = "",
    size: Annotated[str, Form(max_length=10)] = "1",
    age_band: Annotated[str, Form(max_length=10)] = "",
    lon: Annotated[str, Form(max_length=40)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse | RedirectResponse:
    """Register a household where the map was tapped; it is assigned to its grid at once."""
    ctx = context(request, principal)
    sent_form = {
        "code": code, "size": size, "age_band": age_band, "lon": lon, "lat": lat,
    }  # fmt: skip
    scope = _scope(session, principal)
    try:
        key = code.strip()
        if not KEY.fullmatch(key):
            raise InvalidInput(ctx._("A code of 1 to 64 characters."), field="code")
        values = _values(ctx, size, age_band)
        where, placement = _place(ctx, index, scope, lon, lat)
        insert_point(
            session, HOUSEHOLDS, key, values, lon=where[0], lat=where[1],
            placement=placement, scope=scope,
        )  # fmt: skip
    except GridworkError as exc:
        session.rollback()
        sent = refused(ctx, exc, sent_form, FIELDS)
        return _form_page(request, session, principal, household=None, grid=grid, sent=sent)
    _audit(session, request, principal, [key], said("household_registered"))
    stored = get_point(session, HOUSEHOLDS, key, scope)
    home = stored["assignment"]["grid"] if stored else grid
    return RedirectResponse(_told(request, grid=home, done=key), status_code=303)


def _household(session: SessionDep, principal: Principal, code: str) -> dict[str, Any]:
    row = get_point(session, HOUSEHOLDS, code, _scope(session, principal))
    if row is None:
        raise missing(HOUSEHOLDS, code)
    return row


@router.get("/{code}", response_class=HTMLResponse)
def household_form(
    request: Request,
    session: SessionDep,
    principal: Keeper,
    code: str,
    sent: Shown = NOT_SENT,
) -> HTMLResponse:
    """One household: people, lives alone, age band, where it is; or remove it."""
    ctx = context(request, principal)
    row = _household(session, principal, code)
    _audit(session, request, principal, [code], said("household_opened"))
    view = _view(ctx, row)
    return _form_page(request, session, principal, household=view, grid=view["grid"], sent=sent)


@router.post("/{code}", response_class=HTMLResponse, response_model=None)
def household_submit(
    request: Request,
    session: SessionDep,
    principal: Keeper,
    index: GridIndexDep,
    code: str,
    size: Annotated[str, Form(max_length=10)] = "1",
    age_band: Annotated[str, Form(max_length=10)] = "",
    lon: Annotated[str, Form(max_length=40)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
    moved: Annotated[str, Form(max_length=1)] = "",
) -> HTMLResponse | RedirectResponse:
    """Save the household; moved on the map, it is assigned to the grid it now lies in."""
    ctx = context(request, principal)
    row = _household(session, principal, code)
    sent_form = {
        "size": size, "age_band": age_band, "lon": lon, "lat": lat,
    }  # fmt: skip
    scope = _scope(session, principal)
    try:
        values = _values(ctx, size, age_band)
        where, placement = _place(ctx, index, scope, lon, lat) if moved else (None, None)
        update_point(session, HOUSEHOLDS, code, values, location=where, placement=placement)
        if where is not None:  # an elder's "home grid" zone follows the household
            follow_households(session, [code], epsg=care_epsg(request, session))
    except GridworkError as exc:
        session.rollback()
        sent = refused(ctx, exc, sent_form, FIELDS)
        view = _view(ctx, row)
        return _form_page(request, session, principal, household=view, grid=view["grid"], sent=sent)
    changed = said("household_changed")
    _audit(
        session, request, principal, [code], changed.and_("household_moved") if where else changed
    )
    stored = _household(session, principal, code)
    grid = stored["assignment"]["grid"]
    return RedirectResponse(_told(request, grid=grid, done=code), status_code=303)


@router.post("/{code}/remove", response_class=HTMLResponse, response_model=None)
def household_remove(
    request: Request,
    session: SessionDep,
    principal: Keeper,
    code: str,
    confirm: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse | RedirectResponse:
    """Remove a household that moved away (typing its code to confirm); audited."""
    ctx = context(request, principal)
    row = _household(session, principal, code)
    if confirm.strip() != code:
        exc = InvalidInput(ctx._("Type the household's code to confirm."), field="confirm")
        sent = refused(ctx, exc, {}, FIELDS, status_code=422)
        view = _view(ctx, row)
        return _form_page(request, session, principal, household=view, grid=view["grid"], sent=sent)
    delete_point(session, HOUSEHOLDS, code)
    _audit(session, request, principal, [code], said("household_removed"))
    grid = row["assignment"]["grid"]
    return RedirectResponse(_told(request, grid=grid, removed=code), status_code=303)
