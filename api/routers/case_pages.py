"""The case pages: the list and map, one case with its history and actions, the report form
(phone-friendly), the grid worker's "my cases", and the figures of a grid, community or street.

Thin: the same use cases as ``api.routers.cases`` (``data.incidents``); forms post and
redirect (303); errors become pages in the frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.case_viewer import case_viewer
from api.deps import SessionDep
from api.errors import status_for
from api.pages.case_words import LEVEL_NAMES, notice_said
from api.pages.forms import NOT_SENT, Shown, refused
from api.pages.frame import N_, PageContext, context, render
from api.security import Principal, audit_read, require
from api.state import app_state
from api.uploads import PhotoDep
from data.access.reasons import said
from data.assignment.register import area_extent
from data.incidents import duplicates, photos, service
from data.incidents import queries as q
from data.models import Role
from data.policy import Action, may
from data.settings import date_in
from geo.errors import Conflict, GridworkError, InvalidInput
from geo.incidents.rules import MOVES, OPEN, STATUSES

router = APIRouter(prefix="/app/incidents", include_in_schema=False)

Viewing = Annotated[Principal, Depends(require(Action.view_cases))]
Handling = Annotated[Principal, Depends(require(Action.handle_cases))]
Reporting = Annotated[Principal, Depends(require(Action.report_incidents))]

STATUS_NAMES = {
    "new": N_("New"),
    "accepted": N_("Accepted"),
    "in_progress": N_("In progress"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}
ACTION_NAMES = {
    "accept": N_("Accept"),
    "start": N_("Start work"),
    "resolve": N_("Mark resolved"),
    "close": N_("Close"),
    "reopen": N_("Reopen"),
    "escalate": N_("Send up a level"),
    "handoff": N_("Hand to a department"),
    "return": N_("Give back from the department"),
}
EVENT_NAMES = {
    "reported": N_("Reported"),
    "accept": N_("Accepted"),
    "start": N_("Work started"),
    "resolve": N_("Resolved"),
    "close": N_("Closed"),
    "reopen": N_("Reopened"),
    "escalated": N_("Sent up a level"),
    "to_department": N_("Handed to a department"),
    "from_department": N_("Given back by the department"),
    # data.incidents.service.follow_grid_workers; the note is the grid's code
    "handed_over": N_("Handed to the grid's worker"),
    "photo": N_("Photo added"),
    "duplicate_of": N_("Linked as a duplicate of"),
    "duplicate_linked": N_("Linked as its duplicate"),
    # what an Open311 request brought beyond a case's columns (data.incidents.open311)
    "media_url": N_("Photo link sent with the report"),
    "address": N_("Address given by the reporter"),
    "address_id": N_("Building given by the reporter"),
}
#: Where a report came from (the note of its ``reported`` entry: source, then the client).
SOURCE_NAMES = {"app": N_("in gridwork"), "open311": N_("through Open311")}
#: Notes the system writes itself (the deadline sweep), said in the page's language.
SYSTEM_NOTES = {"deadline passed": N_("the deadline passed")}
DUE_SOON = timedelta(hours=24)
QUEUE = "/app/incidents/queue"
#: What a department does from its queue (closing and reopening are the area's handlers').
QUEUE_MOVES = ("accept", "start", "resolve")


def _names(ctx: Any) -> dict[str, Any]:
    return {
        "status_names": {k: ctx._(v) for k, v in STATUS_NAMES.items()},
        "level_names": {k: ctx._(v) for k, v in LEVEL_NAMES.items()},
        "action_names": {k: ctx._(v) for k, v in ACTION_NAMES.items()},
        "event_names": {k: ctx._(v) for k, v in EVENT_NAMES.items()},
    }


def _history(ctx: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history in the page's words: the notes gridwork itself wrote (a report's source,
    the sweep's reason, a photo's number) translated; people's notes as they wrote them."""
    for h in rows:
        note = h["note"]
        if h["kind"] == "reported" and note:
            source, _, client = note.partition(" (")
            if source in SOURCE_NAMES:
                h["note"] = ctx._(SOURCE_NAMES[source]) + (f" ({client}" if client else "")
        elif h["kind"] == "photo" and note and note.startswith("photo "):
            h["note"] = "#" + note.removeprefix("photo ")
        elif h["actor"] == "system" and note in SYSTEM_NOTES:
            h["note"] = ctx._(SYSTEM_NOTES[note])
    return rows


def _category_name(ctx: Any, row: dict[str, Any]) -> str:
    return str(row["category_name"] if ctx.locale.startswith("zh") else row["category_name_en"])


def _decorate(ctx: Any, rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    zh = ctx.locale.startswith("zh")
    for r in rows:
        r["category_label"] = _category_name(ctx, r)
        # a grid worker by the name their colleagues know, not their account's username
        r["assignee_label"] = r.get("assignee_name") or r["assignee"]
        if r.get("department"):  # its name in the page's language, as the hand-off list says it
            named = r["department_name"] if zh else r["department_name_en"]
            r["department_label"] = named or r["department"]
        r["overdue"] = r["status"] in OPEN and r["due_at"] <= now
        r["due_soon"] = r["status"] in OPEN and now < r["due_at"] <= now + DUE_SOON
    return rows


def _day(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput("a date like 2026-12-31", field=field) from exc


def _start_of(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(zone)).astimezone(UTC)


@dataclass(frozen=True)
class Days:
    """The pages' date filter: whole days ``since`` … ``until`` (both included) in the
    deployment's zone, either end open; as instants, ``[start, end)``."""

    since: date | None
    until: date | None
    zone: str

    def start(self) -> datetime | None:
        return None if self.since is None else _start_of(self.since, self.zone)

    def end(self) -> datetime | None:
        return None if self.until is None else _start_of(self.until + timedelta(1), self.zone)

    def or_last(self, days: int) -> Days:
        """Open ends closed: until today, since ``days`` days before today."""
        today = date_in(self.zone)
        return Days(self.since or today - timedelta(days), self.until or today, self.zone)


def _days(
    request: Request,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
) -> Days:
    zone = app_state(request).settings.timezone
    return Days(_day(since, "since"), _day(until, "until"), zone)


DaysDep = Annotated[Days, Depends(_days)]


@router.get("", response_class=HTMLResponse)
def case_list(
    request: Request,
    session: SessionDep,
    principal: Viewing,
    days: DaysDep,
    category: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    due: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    ctx = context(request, principal)
    now = datetime.now(UTC)
    if status and status not in (*STATUSES, "open"):
        raise InvalidInput(f"unknown status '{status}'", field="status")
    rows = q.list_cases(
        session,
        case_viewer(session, principal),
        category=category or None,
        status=list(OPEN) if status == "open" else ([status] if status else None),
        grid=grid or None,
        since=days.start(),
        until=days.end(),
        overdue_at=now if due == "overdue" else None,
        due_before=now + DUE_SOON if due == "soon" else None,
        limit=500,
    )
    rows = _decorate(ctx, rows, now)
    points = [
        {
            "id": r["id"],
            "lon": r["lon"],
            "lat": r["lat"],
            "label": f"#{r['id']} {r['category_label']}",
            "overdue": r["overdue"],
            "open": r["status"] in OPEN,
        }
        for r in rows
    ]
    return render(
        request,
        principal,
        "incidents/list.html",
        title=ctx._("Cases"),
        values={
            "rows": rows,
            "points_json": json.dumps(points),
            "centre": q.area_centre(session, principal.scope),
            "categories": q.categories(session),
            "filters": {
                "category": category or "",
                "status": status or "",
                "grid": grid or "",
                "since": str(days.since or ""),
                "until": str(days.until or ""),
                "due": due or "",
            },
            "statuses": STATUSES,
            "may_report": may(principal.role, Action.report_incidents),
            **_names(ctx),
        },
    )


@router.get("/mine", response_class=HTMLResponse)
def my_cases(request: Request, session: SessionDep, principal: Handling) -> Response:
    if principal.role is Role.department:  # its cases are its queue
        return RedirectResponse(QUEUE, status_code=303)
    ctx = context(request, principal)
    viewer = case_viewer(session, principal)
    now = datetime.now(UTC)
    rows = q.list_cases(session, viewer, status=list(OPEN), assignee_id=principal.user_id)
    waiting = q.list_cases(session, viewer, status=["new"])
    seen = {r["id"] for r in rows}
    rows += [r for r in waiting if r["id"] not in seen and r["assignee"] is None]
    # One list, deadlines first, as the home card promises: a new case nobody has taken yet
    # and due tomorrow comes before one of the caller's own due next week.
    rows.sort(key=lambda r: (r["due_at"], r["id"]))
    return render(
        request,
        principal,
        "incidents/mine.html",
        title=ctx._("My cases"),
        values={
            "rows": _decorate(ctx, rows, now),
            "notices": _notices(session, ctx, principal, viewer),
            **_names(ctx),
        },
    )


def _notices(
    session: SessionDep, ctx: Any, principal: Principal, viewer: q.Viewer
) -> list[dict[str, Any]]:
    """Unread notices for the caller (a department's: the cases handed to it), one line per
    case: its newest (a case routed, then handed over, is one thing to look at)."""
    once: dict[int, dict[str, Any]] = {}
    for n in q.notices(session, viewer, _levels(session, principal)):
        if n["case_id"] not in once:
            once[n["case_id"]] = n | {
                "category_label": _category_name(ctx, n),
                "why": ctx._(notice_said(n["kind"], n["level"])),
            }
    return list(once.values())


def _levels(session: SessionDep, principal: Principal) -> set[str]:
    return q.notice_levels(session, principal.user_id, whole_district=principal.scope.unrestricted)


@router.get("/queue", response_class=HTMLResponse)
def department_queue(request: Request, session: SessionDep, principal: Handling) -> Response:
    """A department's (职能部门) queue: the cases handed to it, deadlines first, overdue in
    red, each with its moves and "give back" at hand, on a phone as on a desk."""
    if principal.role is not Role.department:
        return RedirectResponse("/app/incidents/mine", status_code=303)
    ctx = context(request, principal)
    viewer = case_viewer(session, principal)
    now = datetime.now(UTC)
    rows = _decorate(
        ctx,
        q.list_cases(
            session,
            viewer,
            status=[*OPEN, "resolved"],  # resolved here: still to be given back
            department_id=viewer.dept_id,
            limit=500,
        ),
        now,
    )
    for r in rows:
        r["moves"] = [a for a in QUEUE_MOVES if r["status"] in MOVES[a][0]]
    return render(
        request,
        principal,
        "incidents/queue.html",
        title=ctx._("Department queue"),
        values={
            "rows": rows,
            "overdue": sum(1 for r in rows if r["overdue"]),
            "notices": _notices(session, ctx, principal, viewer),
            "note_needed": [a for a, (_, _, need) in MOVES.items() if need] + ["return"],
            **_names(ctx),
        },
    )


#: The report form's fields, and where a use case's name for one shows (the place: by lon).
REPORT_FIELDS = ("category", "lon", "description", "reporter_name", "reporter_contact", "photo")
REPORT_ALIASES = {"lat": "lon", "duplicate_of": "lon"}


@router.get("/new", response_class=HTMLResponse)
def report_form(
    request: Request, session: SessionDep, principal: Reporting, sent: Shown = NOT_SENT
) -> HTMLResponse:
    """The report form; sent back refused, with the message beside its field and the values."""
    ctx = context(request, principal)
    cats = q.categories(session)
    for c in cats:
        c["label"] = c["name"] if ctx.locale.startswith("zh") else c["name_en"]
    return render(
        request,
        principal,
        "incidents/new.html",
        title=ctx._("Report an incident"),
        status_code=sent.status_code,
        values={
            "categories": cats,
            "centre": q.area_centre(session, principal.scope),
            # the picker opens on the caller's grids, not at a fixed zoom around a point
            "extent": area_extent(session, principal.scope),
            "form": sent.form,
            "errors": sent.errors,
            **_photo_limits(request),
        },
    )


@router.post("/new")
def report(
    request: Request,
    session: SessionDep,
    principal: Reporting,
    photo: PhotoDep,
    category: Annotated[str, Form(max_length=64)] = "",
    description: Annotated[str, Form(max_length=4000)] = "",
    lon: Annotated[str, Form(max_length=32)] = "",
    lat: Annotated[str, Form(max_length=32)] = "",
    reporter_name: Annotated[str, Form(max_length=200)] = "",
    reporter_contact: Annotated[str, Form(max_length=200)] = "",
    duplicate_of: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Store the report and open its case; refused, the form again with the reason beside
    the field and what was typed kept (nothing stored)."""
    form = {"category": category, "description": description, "lon": lon, "lat": lat}
    form |= {"reporter_name": reporter_name, "reporter_contact": reporter_contact}
    ctx = context(request, principal)
    try:
        if not category:
            raise InvalidInput(ctx._("Choose a category."), field="category")
        try:
            x, y = float(lon), float(lat)
        except ValueError as exc:
            raise InvalidInput(
                ctx._("Pick the place on the map or use your location."), field="lon"
            ) from exc
        if duplicate_of and not duplicate_of.isdigit():
            raise InvalidInput("a case number", field="duplicate_of")
        limit = app_state(request).settings.photo_max_bytes
        clean = None if photo is None else photos.clean(photo, max_bytes=limit)  # before storing
        case_id = service.report_case(
            session,
            actor=principal.name,
            category=category,
            lon=x,
            lat=y,
            description=description,
            reporter_name=reporter_name or None,
            reporter_contact=reporter_contact or None,
            now=datetime.now(UTC),
            scope=principal.scope,
        )["id"]
        now = datetime.now(UTC)
        if clean is not None or duplicate_of:
            viewer = case_viewer(session, principal)
            if clean is not None:
                photos.add(session, viewer, case_id, clean, now)
            if duplicate_of:  # the reporter says it repeats a case offered nearby
                duplicates.link(session, viewer, case_id, int(duplicate_of), now)
    except GridworkError as exc:
        status_code = status_for(exc)
        sent = refused(
            ctx, exc, form, REPORT_FIELDS, aliases=REPORT_ALIASES, status_code=status_code
        )
        if not sent.errors:
            raise
        session.rollback()  # nothing of the refused report is kept
        return report_form(request, session, principal, sent)
    return RedirectResponse(f"/app/incidents/{case_id}", status_code=303)


@router.get("/figures", response_class=HTMLResponse)
def figures_page(
    request: Request,
    session: SessionDep,
    principal: Viewing,
    days: DaysDep,
    level: Annotated[str, Query(pattern="^(grid|community|street|department)$")] = "community",
    code: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    ctx = context(request, principal)
    days = days.or_last(30)
    viewer = case_viewer(session, principal)
    shown = [code] if code else q.case_areas(session, viewer, level)
    start, end = days.start(), days.end()
    assert start is not None  # or_last closed both ends
    assert end is not None
    rows = q.figures_by_area(session, viewer, level, shown, start, end)
    names = q.area_names(session, level, shown, zh=ctx.locale.startswith("zh"))
    for row in rows:
        row["name"] = names.get(row["code"])
    return render(
        request,
        principal,
        "incidents/figures.html",
        title=ctx._("Case figures"),
        values={
            "rows": rows,
            "level": level,
            "code": code or "",
            "since": str(days.since),
            "until": str(days.until),
            **_names(ctx),
        },
    )


@router.get("/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request, session: SessionDep, principal: Viewing, case_id: int
) -> HTMLResponse:
    ctx = context(request, principal)
    viewer = case_viewer(session, principal)
    row = q.case(session, case_id, viewer)
    _decorate(ctx, [row], datetime.now(UTC))
    # Opened: its notices leave "New for you" (the API marks them one by one).
    q.read_case_notices(session, case_id, viewer, _levels(session, principal), datetime.now(UTC))
    handler = may(principal.role, Action.handle_cases)
    reporter = None
    if handler and (row["reporter_name"] or row["reporter_contact"]):
        reporter = {"name": row["reporter_name"], "contact": row["reporter_contact"]}
        audit_read(
            session,
            request,
            principal,
            subject_type="case_reporter",
            subject_ids=[case_id],
            reason=said("case_page"),
        )
    moves = [a for a, (start, _, _) in MOVES.items() if row["status"] in start]
    departments = q.departments(session, serving=row)  # only those serving its area
    return render(
        request,
        principal,
        "incidents/case.html",
        title=ctx._("Case %(id)s", id=case_id),
        values={
            "case": row,
            "history": _history(ctx, q.history(session, case_id)),
            "reporter": reporter,
            "handler": handler,
            "moves": moves,
            "note_needed": [a for a, (_, _, need) in MOVES.items() if need],
            "can_escalate": row["status"] in OPEN and row["level"] != "district",
            "can_hand_off": row["status"] in OPEN and principal.role is not Role.department,
            "can_return": row["department"] is not None,
            "departments": departments,
            "usual_department": _usual_department(row, departments),
            "photos": photos.listing(session, viewer, case_id),
            **_photo_limits(request),
            "links": duplicates.for_case(
                session, viewer, case_id, metric_override=app_state(request).settings.metric_epsg
            ),
            **_names(ctx),
        },
    )


def _photo_limits(request: Request) -> dict[str, int]:
    """What a photo box tells the browser's shrinking (the _fields.html macro photo_fit)."""
    return {
        "photo_max_bytes": app_state(request).settings.photo_max_bytes,
        "photo_max_pixels": photos.MAX_PIXELS,
    }


#: The refusals of a move the case's state no longer allows (geo.incidents.rules).
OVERTAKEN = frozenset({"move_not_allowed", "not_escalated"})


def _usual_department(row: dict[str, Any], departments: list[dict[str, Any]]) -> str | None:
    """The department to offer first for handing the case on: its category's own, if it
    serves the case's area and does not hold the case already; else none (choose one)."""
    usual = row["category_department"]  # read with the case
    offered = {d["code"] for d in departments}
    return usual if usual in offered and usual != row["department"] else None


def _overtaken(ctx: PageContext, exc: Conflict, action: str) -> Conflict:
    """A move the case's state no longer allows, said for a page: usually someone acted on
    the case between the page being drawn and the button pressed."""
    status = ctx._(STATUS_NAMES.get(str(exc.values["status"]), str(exc.values["status"])))
    action = ctx._(ACTION_NAMES.get(action, action))
    return Conflict(
        ctx._(
            "This case is now “%(status)s”, so “%(action)s” no longer applies: someone may "
            "have acted on it meanwhile. Open the case again to see its history.",
            status=status,
            action=action,
        )
    )


@router.post("/{case_id}/act")
def act(
    request: Request,
    session: SessionDep,
    principal: Handling,
    case_id: int,
    action: Annotated[str, Form(max_length=32)],
    note: Annotated[str, Form(max_length=2000)] = "",
    department: Annotated[str, Form(max_length=64)] = "",
    back: Annotated[str, Form(max_length=16)] = "",
) -> RedirectResponse:
    viewer = case_viewer(session, principal)
    now = datetime.now(UTC)
    hook = app_state(request).settings.case_webhook_url
    try:
        if action == "escalate":
            service.escalate(session, viewer, case_id, note, now, webhook_url=hook)
        elif action == "handoff":
            to = department or None
            service.hand_to_department(session, viewer, case_id, to, note, now, webhook_url=hook)
        elif action == "return":
            service.return_from_department(session, viewer, case_id, note, now)
            if principal.role is Role.department:
                return RedirectResponse(QUEUE, status_code=303)
        else:
            service.act(session, viewer, case_id, action, note, now)
    except Conflict as exc:
        if exc.code not in OVERTAKEN:
            raise
        raise _overtaken(context(request, principal), exc, action) from exc
    if back == "queue":  # a department acting from its queue stays there
        return RedirectResponse(QUEUE, status_code=303)
    return RedirectResponse(f"/app/incidents/{case_id}", status_code=303)


@router.post("/{case_id}/photos")
def add_photo(
    request: Request, principal: Handling, photo: PhotoDep, session: SessionDep, case_id: int
) -> RedirectResponse:
    if photo is None:
        raise InvalidInput("choose a photo", field="photo")
    clean = photos.clean(photo, max_bytes=app_state(request).settings.photo_max_bytes)
    photos.add(session, case_viewer(session, principal), case_id, clean, datetime.now(UTC))
    return RedirectResponse(f"/app/incidents/{case_id}", status_code=303)


@router.post("/{case_id}/link")
def link_duplicate(
    session: SessionDep,
    principal: Handling,
    case_id: int,
    duplicate_of: Annotated[int, Form()],
) -> RedirectResponse:
    viewer = case_viewer(session, principal)
    duplicates.link(session, viewer, case_id, duplicate_of, datetime.now(UTC))
    return RedirectResponse(f"/app/incidents/{case_id}", status_code=303)
