"""The facility register in the browser: the facilities of my area on a map and in a list;
coordinators and planners add one (a new elderly care station), change or remove it.

Facilities could be written only through the JSON API (``api/routers/points.py``), so the
coverage map could not learn of a new service point without curl. These pages act through
the same use cases: a facility is assigned to its grid as it is written (``place_point``),
within the caller's area; every staff role reads the facilities of their area. Facilities are
places, not people: nothing here is audited as personal data.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SessionDep
from api.grid_index import GridIndexDep, place_tapped
from api.pages.facility_kinds import KIND_NAMES, kind_label, kind_name
from api.pages.forms import NOT_SENT, SentBack, Shown, refused
from api.pages.frame import PageContext, context, render
from api.pages.told import heard, signed
from api.security import Principal, require
from data.assignment.points import (
    KINDS,
    delete_point,
    get_point,
    insert_point,
    list_points,
    missing,
    update_point,
)
from data.assignment.register import area_extent
from data.policy import Action, may
from geo.errors import GridworkError, InvalidInput

router = APIRouter(prefix="/app/facilities", include_in_schema=False)

Viewer = Annotated[Principal, Depends(require(Action.view_district))]
Keeper = Annotated[Principal, Depends(require(Action.edit_facilities))]

FACILITIES = KINDS["facilities"]
FIELDS = ("kind", "name", "capacity", "lon/lat", "confirm")
SHOWN = 2000  # a district's facilities of one kind fit; an area's of all kinds, too


def _view(ctx: PageContext, f: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": f["source_id"],
        "kind": f["kind"],
        "kind_name": kind_name(ctx, f["kind"]),
        "name": f["name"] or "",
        "capacity": f["capacity"],
        "grid": f["assignment"]["grid"],
        "lon": f["lon"],
        "lat": f["lat"],
        "href": f"/app/facilities/{quote(f['source_id'], safe='')}",
    }


@router.get("", response_class=HTMLResponse)
def register_page(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    kind: Annotated[str, Query(max_length=64)] = "",
    done: Annotated[str, Query(max_length=100)] = "",
    removed: Annotated[str, Query(max_length=240)] = "",
) -> HTMLResponse:
    """The facilities of my area (of one kind, if chosen), on a map and in a list."""
    ctx = context(request, principal)
    rows, total = list_points(session, FACILITIES, principal.scope, limit=SHOWN)
    kinds = sorted({r["kind"] for r in rows}, key=lambda k: kind_name(ctx, k))
    shown = [_view(ctx, r) for r in rows if not kind or r["kind"] == kind]
    shown.sort(key=lambda f: (f["kind_name"], f["name"], f["key"]))
    edit = may(principal.role, Action.edit_facilities)
    return render(
        request,
        principal,
        "facilities/register.html",
        title=ctx._("Facility register"),
        values={
            "facilities": shown,
            "total": total,
            "kinds": [(k, kind_label(ctx, k)) for k in kinds],
            "kind": kind,
            "may_edit": edit,
            "done": heard(request, done),
            "removed": heard(request, removed),
            "data": {
                # The whole area, not only its facilities: one facility alone would be
                # shown at street level, with nothing around to say where it is.
                "extent": area_extent(session, principal.scope),
                "points": [
                    {
                        "lon": f["lon"],
                        "lat": f["lat"],
                        "label": f"{f['kind_name']} · {f['name']}" if f["name"] else f["kind_name"],
                        "marked": False,
                        "href": f["href"] if edit else None,
                    }
                    for f in shown
                ],
            },
        },
    )


def _kinds(ctx: PageContext) -> list[tuple[str, str]]:
    """Every kind the pages name, in the page's language, for the form's choice."""
    return sorted(((k, kind_label(ctx, k)) for k in KIND_NAMES), key=lambda kv: kv[1])


def _form_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    *,
    facility: dict[str, Any] | None,
    sent: SentBack,
) -> HTMLResponse:
    """The form of one facility (``facility`` None: a new one)."""
    ctx = context(request, principal)
    form = dict(sent.form) if sent.form else ({} if facility is None else facility)
    point = [form["lon"], form["lat"]] if form.get("lon") and form.get("lat") else None
    return render(
        request,
        principal,
        "facilities/facility.html",
        title=(facility["name"] or facility["kind_name"]) if facility else ctx._("New facility"),
        status_code=sent.status_code,
        values={
            "facility": facility,
            "kinds": _kinds(ctx),
            "data": {
                "extent": area_extent(session, principal.scope) if point is None else None,
                "point": point,
                "labels": {"here": ctx._("The facility is here")},
            },
            **sent.values(),
            "form": form,
        },
    )


@router.get("/new", response_class=HTMLResponse)
def new_form(
    request: Request, session: SessionDep, principal: Keeper, sent: Shown = NOT_SENT
) -> HTMLResponse:
    return _form_page(request, session, principal, facility=None, sent=sent)


def _values(ctx: PageContext, kind: str, name: str, capacity: str) -> dict[str, Any]:
    """The form's fields as the use case takes them, refused with the field's reason."""
    if kind not in KIND_NAMES:
        raise InvalidInput(ctx._("Choose one of the kinds listed."), field="kind")
    seats = None
    if capacity.strip():
        try:
            seats = int(capacity)
        except ValueError:
            raise InvalidInput(ctx._("Places: a whole number."), field="capacity") from None
        if not 0 <= seats <= 10_000_000:
            raise InvalidInput(ctx._("Places: 0 or more."), field="capacity")
    return {"kind": kind, "name": " ".join(name.split()) or None, "capacity": seats}


def _place(ctx: PageContext, index: Any, scope: Any, lon: str, lat: str) -> Any:
    """Where the map was tapped, and its grid; refused outside the caller's area."""
    missing = ctx._("Tap the map where the facility is.")
    outside = ctx._("That place lies outside your area.")
    return place_tapped(index, scope, lon, lat, missing=missing, outside=outside)


@router.post("/new", response_class=HTMLResponse, response_model=None)
def new_submit(
    request: Request,
    session: SessionDep,
    principal: Keeper,
    index: GridIndexDep,
    kind: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    capacity: Annotated[str, Form(max_length=12)] = "",
    lon: Annotated[str, Form(max_length=40)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse | RedirectResponse:
    """Add a facility where the map was tapped; its key is made here (``gw-…``), as staff
    have no source id to give."""
    ctx = context(request, principal)
    sent_form = {"kind": kind, "name": name, "capacity": capacity, "lon": lon, "lat": lat}
    key = f"gw-{uuid.uuid4().hex[:12]}"
    try:
        values = _values(ctx, kind, name, capacity)
        where, placement = _place(ctx, index, principal.scope, lon, lat)
        insert_point(
            session, FACILITIES, key, values, lon=where[0], lat=where[1],
            placement=placement, scope=principal.scope,
        )  # fmt: skip
    except GridworkError as exc:
        session.rollback()
        sent = refused(ctx, exc, sent_form, FIELDS)
        return _form_page(request, session, principal, facility=None, sent=sent)
    return RedirectResponse(f"/app/facilities?{urlencode({'done': signed(request, key)})}", 303)


def _facility(session: SessionDep, principal: Principal, key: str) -> dict[str, Any]:
    row = get_point(session, FACILITIES, key, principal.scope)
    if row is None:
        raise missing(FACILITIES, key)
    return row


@router.get("/{key}", response_class=HTMLResponse)
def facility_form(
    request: Request, session: SessionDep, principal: Keeper, key: str, sent: Shown = NOT_SENT
) -> HTMLResponse:
    """One facility: its kind, name, places and where it is; or remove it."""
    view = _view(context(request, principal), _facility(session, principal, key))
    return _form_page(request, session, principal, facility=view, sent=sent)


@router.post("/{key}", response_class=HTMLResponse, response_model=None)
def facility_submit(
    request: Request,
    session: SessionDep,
    principal: Keeper,
    index: GridIndexDep,
    key: str,
    kind: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    capacity: Annotated[str, Form(max_length=12)] = "",
    lon: Annotated[str, Form(max_length=40)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
    moved: Annotated[str, Form(max_length=1)] = "",
) -> HTMLResponse | RedirectResponse:
    """Save the facility; moved on the map, it is assigned to the grid it now lies in."""
    ctx = context(request, principal)
    row = _facility(session, principal, key)
    sent_form = {"kind": kind, "name": name, "capacity": capacity, "lon": lon, "lat": lat}
    try:
        values = _values(ctx, kind, name, capacity)
        where, placement = _place(ctx, index, principal.scope, lon, lat) if moved else (None, None)
        update_point(session, FACILITIES, key, values, location=where, placement=placement)
    except GridworkError as exc:
        session.rollback()
        sent = refused(ctx, exc, sent_form, FIELDS)
        return _form_page(request, session, principal, facility=_view(ctx, row), sent=sent)
    return RedirectResponse(f"/app/facilities?{urlencode({'done': signed(request, key)})}", 303)


@router.post("/{key}/remove", response_class=HTMLResponse, response_model=None)
def facility_remove(
    request: Request,
    session: SessionDep,
    principal: Keeper,
    key: str,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse | RedirectResponse:
    """Remove a facility that closed (ticking that it closed, to confirm)."""
    ctx = context(request, principal)
    row = _facility(session, principal, key)
    if confirm != "yes":
        exc = InvalidInput(ctx._("Tick that it has closed, to confirm."), field="confirm")
        sent = refused(ctx, exc, {}, FIELDS, status_code=422)
        return _form_page(request, session, principal, facility=_view(ctx, row), sent=sent)
    delete_point(session, FACILITIES, key)
    gone = row["name"] or kind_name(ctx, row["kind"])
    return RedirectResponse(f"/app/facilities?{urlencode({'removed': signed(request, gone)})}", 303)
