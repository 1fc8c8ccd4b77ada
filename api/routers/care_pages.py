"""The care staff's console in the browser: elders, enrolment, locating, safe zones, alerts.

Pages in the frame (``api/pages/templates/care/``), on the same rules as the API
(``api/routers/elders.py``, ``alerts.py``): who may read or change an elder is
``data.policy.elder_sql`` (through ``data.care.queries.elder_record(..., to=...)``), every read
of an elder or of a position writes an audit row, and a position is never shown without a
reason — the locate page asks for one, once per visit, before it shows anything. The alerts
inbox is live: ``/app/alerts/stream`` sends each new alert of the caller's area as a
server-sent event, looking at the alert table when the change feed's bell rings (``NOTIFY
gridwork_alert`` at the commit that raised it), and every half second while the feed is not
listening or ``GRIDWORK_ALERT_STREAM_WAKE=poll`` (``bench/inbox.py`` compares the two); the
open streams of a process share each look (``api.alert_fanout``). An elder's page also takes
a new consent record with its scanned form.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import qrcode
import qrcode.image.svg
from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from markupsafe import Markup
from sqlalchemy import Engine

from api.alert_fanout import SETTLE_S, AlertFanout, Inbox
from api.alert_moves import move_alert
from api.deps import SessionDep, care_epsg, network_cache
from api.pages.facility_kinds import kind_name
from api.pages.forms import NOT_SENT, SentBack, Shown, refused
from api.pages.frame import N_, PageContext, context, render
from api.pages.said import said
from api.schemas.elders import HouseholdsFound
from api.security import Principal, audit_read, audit_subjects, require
from api.state import app_state
from api.uploads import ScanDep
from data.access.queries import write_audit
from data.access.reasons import AuditReason
from data.access.reasons import said as audit_reason
from data.assignment.register import grid_outline
from data.care import consent_scan
from data.care import queries as q
from data.care import service as care
from data.care.routes import routes_to
from data.changes import Bell
from data.models.care import AlertStatus, DeviceDatum
from data.policy import Action, may, sees_alert
from geo.care.datum import from_wgs84
from geo.errors import GridworkError, InvalidInput, NotFound

router = APIRouter(prefix="/app", include_in_schema=False)

Enroller = Annotated[Principal, Depends(require(Action.enrol_elders))]
Locator = Annotated[Principal, Depends(require(Action.locate_elders))]
Staff = Annotated[Principal, Depends(require(Action.handle_alerts))]


def _changeable(session: SessionDep, principal: Enroller, elder_id: int) -> int:
    """The elder of the path, if the caller may change them (``data.policy.elder_sql``: the
    home area); else the 404 of a missing elder, or 403 to one who may only read them."""
    q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    return elder_id


#: An elder a form changes: checked first, before the fields of the form.
ChangedElder = Annotated[int, Depends(_changeable)]

#: Why someone reads an elder's position: asked once per visit of the locate page.
REASONS: dict[str, str] = {
    "missing": N_("Searching for a missing person"),
    "alert": N_("Checking an alert"),
    "family": N_("Family request"),
    "welfare": N_("Welfare check"),
    "other": N_("Other (say why below)"),
}
ALERT_KINDS: dict[str, str] = {
    "left_zone": N_("Left the safe zone"),
    "returned": N_("Back in the safe zone"),
    "no_fix": N_("No position for a while"),
    "low_battery": N_("Battery low"),
    "sos": N_("SOS button pressed"),
}
STATUSES: dict[str, str] = {
    "open": N_("Open"),
    "acknowledged": N_("Someone is on it"),
    "closed": N_("Closed"),
}
NEAREST = 5
TRAIL_HOURS = 6.0
STREAM_POLL_S = 0.5
STREAM_LIFETIME_S = 300.0  # the browser's EventSource reconnects by itself (Last-Event-ID)
STREAM_KEEPALIVE_S = 15.0


def _since(ctx: PageContext, value: datetime | None) -> str:
    """How long ago, in words a worker reads at a glance."""
    if value is None:
        return "—"
    seconds = max(0.0, (datetime.now(UTC) - value).total_seconds())
    if seconds < 90:
        return ctx._("just now")
    if seconds < 90 * 60:
        return ctx._("%(n)s min ago", n=round(seconds / 60))
    if seconds < 36 * 3600:
        return ctx._("%(n)s h ago", n=round(seconds / 3600))
    return ctx.ngettext("%(num)s day ago", "%(num)s days ago", round(seconds / 86400))


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# --------------------------------------------------------------------------- elders


@router.get("/elders", response_class=HTMLResponse)
def elders_page(
    request: Request,
    session: SessionDep,
    principal: Locator,
    search: Annotated[str | None, Query(max_length=100, alias="q")] = None,
) -> HTMLResponse:
    ctx = context(request, principal)
    elders = q.elders_at_a_glance(session, principal.scope, search=search, limit=500)
    audit_subjects(session, request, principal, "elder", [e["id"] for e in elders], None)
    rows = [
        {
            **e,
            "heard": _since(ctx, e["last_heard_at"]),
            "heard_at": ctx.localtime(e["last_heard_at"]),
            "fix_age": _since(ctx, e["last_fix_time"]),
            "fix_at": ctx.localtime(e["last_fix_time"]),
            "battery_pct": None if e["battery"] is None else round(float(e["battery"])),
        }
        for e in elders
    ]
    return render(
        request,
        principal,
        "care/elders.html",
        title=ctx._("Elders"),
        values={
            "elders": rows,
            "search": search or "",
            "may_enrol": may(principal.role, Action.enrol_elders),
        },
    )


@router.get("/elders/households", response_model=HouseholdsFound)
def household_search(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    search: Annotated[str, Query(min_length=2, max_length=100, alias="q")],
) -> dict[str, Any]:
    """Households of my area by household code, building id or road name (for enrolment)."""
    found = q.search_households(session, principal.scope, search)
    audit_subjects(
        session,
        request,
        principal,
        "household",
        [h["id"] for h in found],
        audit_reason("enrol_search"),
    )
    return {"households": [{k: v for k, v in h.items() if k != "id"} for h in found]}


ENROL_FIELDS = (
    "display_name",
    "emergency_contact",
    "household_code",
    "home_buffer_m",
    "device_id",
    "datum",
    "consent_given_by",
    "consent_given_on",
    "consent_scope",
)


#: What a consent scan's box tells the browser's shrinking (the _fields.html macro photo_fit).
SCAN_LIMITS = {"scan_max_bytes": consent_scan.MAX_BYTES, "scan_max_pixels": consent_scan.MAX_PIXELS}


@router.get("/elders/new", response_class=HTMLResponse)
def enrol_form(request: Request, principal: Enroller, sent: Shown = NOT_SENT) -> HTMLResponse:
    """The enrolment form; sent back refused, with the reasons and what was typed."""
    ctx = context(request, principal)
    datums = [
        ("wgs84", ctx._("WGS-84 (GPS as is)")),
        ("gcj02", ctx._("GCJ-02 (China's map offset, 'Mars coordinates')")),
        ("bd09", ctx._("BD-09 (Baidu's offset)")),
    ]
    return render(
        request,
        principal,
        "care/enrol.html",
        title=ctx._("Enrol an elder"),
        status_code=sent.status_code,
        values={
            "datums": datums,
            "today": ctx.today().isoformat(),
            **SCAN_LIMITS,
            **sent.values(),
        },
    )


def _qr_svg(data: str) -> Markup:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg = image.to_string(encoding="unicode")
    return Markup(svg)  # noqa: S704 - made by qrcode from our own URL, no user markup


@router.post("/elders/new", response_class=HTMLResponse)
def enrol_submit(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    display_name: Annotated[str, Form(min_length=1, max_length=200)],
    device_id: Annotated[str, Form(min_length=1, max_length=100)],
    # A choice with no default: a watch's datum guessed wrong puts every position hundreds of
    # metres off, so none chosen is said beside the field (the form again).
    datum: Annotated[str, Form(max_length=10)] = "",
    # Not required here: none chosen is said beside the household search (the form again).
    household_code: Annotated[str, Form(max_length=64)] = "",
    emergency_contact: Annotated[str, Form(max_length=200)] = "",
    consent_given_by: Annotated[str, Form(max_length=200)] = "",
    consent_given_on: Annotated[str, Form(max_length=10)] = "",
    consent_scope: Annotated[str, Form(max_length=2000)] = "",
    home_buffer_m: Annotated[float, Form(ge=0, le=5000)] = 200.0,
    scan: ScanDep = None,
) -> HTMLResponse:
    ctx = context(request, principal)
    form = {
        "display_name": display_name,
        "household_code": household_code,
        "device_id": device_id,
        "datum": datum,
        "emergency_contact": emergency_contact,
        "consent_given_by": consent_given_by,
        "consent_given_on": consent_given_on,
        "consent_scope": consent_scope,
        "home_buffer_m": home_buffer_m,
    }
    try:
        if datum not in {d.value for d in DeviceDatum}:
            raise InvalidInput(
                ctx._("Choose which coordinates the watch sends: “Which one does my watch send?”"),
                field="datum",
            )
        device_datum = DeviceDatum(datum)
        if not household_code.strip():
            raise InvalidInput(
                ctx._("Find and choose the home household first."), field="household_code"
            )
        if not all(0x21 <= ord(c) <= 0x7E for c in device_id):
            raise InvalidInput(
                ctx._("The device id may hold only letters, digits and signs, no spaces."),
                field="device_id",
            )
        consent = None
        if consent_given_by.strip() or consent_scope.strip():
            if not (consent_given_by.strip() and consent_scope.strip() and consent_given_on):
                raise InvalidInput(
                    ctx._("A consent record needs who gave it, when and what they agreed to."),
                    field="consent",
                )
            consent = _consent_record(ctx, consent_given_by, consent_given_on, consent_scope)
        scanned = None if scan is None else consent_scan.clean(scan)
        if scanned is not None and consent is None:
            raise InvalidInput(
                ctx._("A scanned form belongs to a consent record: fill it in too."),
                field="scan",
            )
        enrolled = care.enrol(
            session,
            display_name=display_name.strip(),
            household_code=household_code.strip(),
            emergency_contact=emergency_contact.strip() or None,
            device_code=device_id,
            datum=device_datum,
            consent=consent,
            by=principal.name,
            scope=principal.scope,
            epsg=care_epsg(request, session),
            today=ctx.today(),
            buffer_m=home_buffer_m,
        )
        if scanned is not None:
            consent_id = q.consents_of(session, enrolled.elder_id)[0]["id"]
            consent_scan.store(
                session, enrolled.elder_id, consent_id, scanned, scope=principal.scope,
                by=principal.name,
            )  # fmt: skip
    except GridworkError as exc:
        session.rollback()
        # The reason beside its field (a consent record's, beside who gave it); else above.
        aliases = {"consent": "consent_given_by"}
        sent = refused(ctx, exc, form, ENROL_FIELDS, aliases=aliases)
        return enrol_form(request, principal, sent)
    audit_read(
        session,
        request,
        principal,
        subject_type="elder",
        subject_ids=[enrolled.elder_id],
        reason=_enrolled(device_datum.value, consent is not None, scanned, home_buffer_m),
    )
    base = str(request.base_url).rstrip("/")
    server_url = f"{base}/ingest/osmand?key={enrolled.api_key}"
    osmand_url = (
        f"{server_url}&id={enrolled.device_code}"
        "&lat={0}&lon={1}&timestamp={2}&hdop={3}&altitude={4}&speed={5}"
    )
    return render(
        request,
        principal,
        "care/enrolled.html",
        title=ctx._("Enrolled: set up the watch now"),
        values={
            "elder_id": enrolled.elder_id,
            "name": display_name.strip(),
            "device_id": enrolled.device_code,
            "api_key": enrolled.api_key,
            "server_url": server_url,
            "osmand_url": osmand_url,
            "qr": _qr_svg(server_url),
            "home_grid": enrolled.home_grid_code,
            "consent": consent is not None,
        },
    )


@router.get("/elders/{elder_id}", response_class=HTMLResponse)
def elder_page(
    request: Request, session: SessionDep, principal: Locator, elder_id: int, sent: Shown = NOT_SENT
) -> HTMLResponse:
    """The elder's page; with a refused consent form, that form again with its reasons."""
    ctx = context(request, principal)
    elder = q.elder_record(session, elder_id, principal.scope, to=Action.locate_elders)
    audit_read(
        session, request, principal, subject_type="elder", subject_ids=[elder_id], reason=None
    )
    zone = q.zone_and_home(session, elder_id)
    reports = elder["reports"]
    alerts = q.alerts_of_elder(session, elder_id)
    consents = q.consents_of(session, elder_id)
    return render(
        request,
        principal,
        "care/elder.html",
        title=elder["display_name"],
        status_code=sent.status_code,
        values={
            "elder": elder,
            "today": ctx.today().isoformat(),
            **SCAN_LIMITS,
            **sent.values(),
            # consent_submit's and zone_submit's redirects: say what was kept, or staff
            # cannot tell.
            "saved": ctx._("Consent record saved.")
            if request.query_params.get("consent") == "saved"
            else ctx._("Safe zone saved.")
            if request.query_params.get("zone") == "saved"
            else None,
            "heard": _since(ctx, _parse_time(reports["last_heard_at"])),
            "heard_at": ctx.localtime(_parse_time(reports["last_heard_at"])),
            "refused_at": ctx.localtime(_parse_time((reports["last_refused"] or {}).get("at"))),
            "consents": consents,
            # Only who may change the elder reads the signed form (the link would be refused).
            "scanned": consent_scan.scanned(session, [c["id"] for c in consents])
            if may(principal.role, Action.enrol_elders)
            else set(),
            "zone": {
                "kind": zone["kind"],
                "buffer_m": zone["buffer_m"],
                "radius_m": zone["radius_m"],
                "home_outside": zone["home_outside"],
            },
            "zone_json": {"zone": zone["zone"]},
            "alerts": [
                {
                    **a,
                    "kind_label": ctx._(ALERT_KINDS.get(a["kind"], a["kind"])),
                    "status_label": ctx._(STATUSES[a["status"]]),
                    "when": ctx.localtime(_parse_time(a["event_time"])),
                    # closed by gridwork itself (the elder came back, the watch put right)
                    "closed_by": ctx._("by itself")
                    if a["closed_by"] == q.SYSTEM_CLOSER
                    else a["closed_by"],
                }
                for a in alerts
            ],
            "may_enrol": may(principal.role, Action.enrol_elders)
            and elder_may_change(session, principal, elder_id),
            "datum_label": {"wgs84": "WGS-84", "gcj02": "GCJ-02", "bd09": "BD-09"}.get(
                elder["datum"] or "", "—"
            ),
        },
    )


CONSENT_FIELDS = ("consent_given_by", "consent_given_on", "consent_scope", "scan")


@router.post("/elders/{elder_id}/consent", response_model=None)
def consent_submit(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    elder_id: ChangedElder,
    # Not required here: a missing one is said beside its field (the page again).
    consent_given_by: Annotated[str, Form(max_length=200)] = "",
    consent_given_on: Annotated[str, Form(max_length=10)] = "",
    consent_scope: Annotated[str, Form(max_length=2000)] = "",
    scan: ScanDep = None,
) -> HTMLResponse | RedirectResponse:
    """A consent record (and its scanned form) for an elder already enrolled: the staff of
    the elder's home area, as ``POST /elders/{id}/consent`` and the scan's ``PUT``."""
    ctx = context(request, principal)
    form = {
        "consent_given_by": consent_given_by,
        "consent_given_on": consent_given_on,
        "consent_scope": consent_scope,
    }
    try:
        consent = _consent_record(ctx, consent_given_by, consent_given_on, consent_scope)
        scanned = None if scan is None else consent_scan.clean(scan)
        consent_id = care.record_consent(
            session, elder_id, consent, by=principal.name, today=ctx.today()
        )
        if scanned is not None:
            consent_scan.store(
                session, elder_id, consent_id, scanned, scope=principal.scope, by=principal.name
            )
    except GridworkError as exc:
        session.rollback()
        aliases = {"given_on": "consent_given_on"}
        sent = refused(ctx, exc, form, CONSENT_FIELDS, aliases=aliases)
        return elder_page(request, session, principal, elder_id, sent)
    what = audit_reason("consent_saved", consent=consent_id, day=consent.given_on.isoformat())
    if scanned is not None:
        what = what.and_("with_scan", type=scanned.content_type)
    audit_subjects(
        session, request, principal, "elder_consent", [elder_id], what.and_("from_console")
    )
    return RedirectResponse(f"/app/elders/{elder_id}?consent=saved", status_code=303)


def _consent_record(
    ctx: PageContext, given_by: str, given_on: str, scope: str
) -> care.ConsentRecord:
    """The consent record of a form's three fields, a missing or wrong one refused beside it."""
    if not given_by.strip():
        raise InvalidInput(ctx._("Say who gave the consent."), field="consent_given_by")
    try:
        day = date.fromisoformat(given_on)
    except ValueError:
        raise InvalidInput(
            ctx._("The consent date is not a date."), field="consent_given_on"
        ) from None
    if not scope.strip():
        raise InvalidInput(ctx._("Say what was agreed."), field="consent_scope")
    return care.ConsentRecord(given_by.strip(), day, scope.strip())


def elder_may_change(session: SessionDep, principal: Principal, elder_id: int) -> bool:
    try:
        q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    except GridworkError:
        return False
    return True


# --------------------------------------------------------------------------- locate


@router.get("/elders/{elder_id}/locate", response_class=HTMLResponse)
def locate_page(
    request: Request,
    session: SessionDep,
    principal: Locator,
    elder_id: int,
    why: Annotated[str | None, Query(max_length=20)] = None,
    note: Annotated[str, Query(max_length=400)] = "",
    alert: Annotated[int | None, Query()] = None,
    hours: Annotated[float, Query(gt=0, le=24 * 7)] = TRAIL_HOURS,
) -> HTMLResponse:
    """Asks why first (nothing of the elder's position is read before); then the last fix
    with its accuracy, grid and worker, the nearest facilities with the walking route, the
    trail of the last hours with a time slider, and the alert's own position if one led
    here."""
    ctx = context(request, principal)
    elder = q.elder_record(session, elder_id, principal.scope, to=Action.locate_elders)
    if why is not None and why not in REASONS:
        raise InvalidInput("choose one of the reasons listed", field="why")
    if why == "other" and len(note.strip()) < 3:
        raise InvalidInput("say why in a few words", field="note")
    if why is None:
        return render(
            request,
            principal,
            "care/reason.html",
            title=ctx._("Why do you need %(name)s's position?", name=elder["display_name"]),
            values={
                "reasons": [(k, ctx._(v)) for k, v in REASONS.items()],
                "chosen": "alert" if alert is not None else "missing",
                "alert": alert,
                "hours": hours,
                "elder_id": elder_id,
            },
        )
    # Kept as sentence codes (the audit page says them in its reader's language).
    reason = audit_reason(f"locate_{why}").noted(note, "why")
    shown_reason = ctx._(REASONS[why]) + (f": {note.strip()}" if note.strip() else "")
    if alert is not None:
        reason = reason.and_("for_alert", alert=alert)
        shown_reason += " " + ctx._("(alert %(id)s)", id=alert)
    audit_read(
        session, request, principal, subject_type="position", subject_ids=[elder_id], reason=reason
    )
    alert_row = None
    if alert is not None:
        alert_row = q.alert_record(session, alert, principal.scope, with_position=True)
        if alert_row["elder_id"] != elder_id:
            raise NotFound(f"no alert {alert} about elder {elder_id}", field="alert")
    fix = q.last_fix(session, elder_id)
    zone = q.zone_and_home(session, elder_id)
    epsg = care_epsg(request, session)
    since = datetime.now(UTC) - timedelta(hours=hours)
    if alert_row is not None and alert_row["fix_time"] is not None:
        alert_time = datetime.fromisoformat(alert_row["fix_time"])
        since = min(since, alert_time - timedelta(hours=1))
    trail = q.trail(session, elder_id, since=since, limit=5000)
    facilities: list[dict[str, Any]] = []
    ranked_by = "straight_line"
    if fix is not None:
        network = network_cache(request)
        facilities, ranked_by = care.nearest_facilities(
            session, lon=fix["lon"], lat=fix["lat"], epsg=epsg, count=NEAREST, network=network
        )
        routes = routes_to(
            session, network, epsg=epsg, lon=fix["lon"], lat=fix["lat"], facilities=facilities
        )
        for f, route in zip(facilities, routes, strict=True):
            f["route"] = route
    data = {
        "fix": None
        if fix is None
        else {
            "lon": fix["lon"],
            "lat": fix["lat"],
            "accuracy_m": fix["accuracy_m"],
            "when": ctx.localtime(fix["time"]),
        },
        "alert": None
        if alert_row is None or alert_row["lon"] is None
        else {
            "lon": alert_row["lon"],
            "lat": alert_row["lat"],
            "when": ctx.localtime(_parse_time(alert_row["fix_time"])),
            "t": _parse_time(alert_row["fix_time"]).timestamp() * 1000,  # type: ignore[union-attr]
            "kind": ctx._(ALERT_KINDS.get(alert_row["kind"], alert_row["kind"])),
        },
        "zone": zone["zone"],
        "home": None if zone["home_lon"] is None else [zone["home_lon"], zone["home_lat"]],
        # The grid the last position lies in, outlined: the panel names it and its worker,
        # the map shows where it ends (the ground's labels alone did not).
        "grid": None
        if fix is None or fix["grid_id"] is None
        else {
            "outline": grid_outline(session, fix["grid_id"]),
            "label": " · ".join(
                v for v in (fix["grid_code"], fix["worker_name"] or fix["worker_code"]) if v
            ),
        },
        "facilities": [
            {
                "name": f["name"] or kind_name(ctx, f["kind"]),
                "kind": f["kind"],
                "lon": f["lon"],
                "lat": f["lat"],
                "route": f.get("route"),
            }
            for f in facilities
        ],
        "trail": [
            {
                "lon": t["lon"],
                "lat": t["lat"],
                "t": t["time"].timestamp() * 1000,
                "when": ctx.localtime(t["time"]),
                "accuracy_m": t["accuracy_m"],
            }
            for t in trail
        ],
        "labels": {
            "fix": ctx._("Last position"),
            "accuracy": ctx._("may be off by up to %(m)s m"),
            "alert": ctx._("Position at the alert"),
            "home": ctx._("Home"),
            "zone": ctx._("Safe zone"),
            "route": ctx._("Walking route"),
            # with the colon of the page's language (网格：…), as the templates join a label
            "grid": ctx._("%(what)s: ", what=ctx._("Grid of the last position")),
        },
    }
    shown = None
    if fix is not None:
        lon_d, lat_d = from_wgs84(fix["lon"], fix["lat"], fix["datum"])
        shown = {"datum": fix["datum"], "lon": lon_d, "lat": lat_d}
    return render(
        request,
        principal,
        "care/locate.html",
        title=ctx._("Where is %(name)s", name=elder["display_name"]),
        values={
            "elder": elder,
            "reason": shown_reason,
            "fix": fix,
            "shown": shown,
            "fix_when": None if fix is None else ctx.localtime(fix["time"]),
            "fix_age": None if fix is None else _since(ctx, fix["time"]),
            "facilities": [
                {
                    **f,
                    "label": f["name"] or kind_name(ctx, f["kind"]),
                    "kind_label": kind_name(ctx, f["kind"]),
                }
                for f in facilities
            ],
            "ranked_by": ranked_by,
            "alert": alert_row,
            "alert_kind": None
            if alert_row is None
            else ctx._(ALERT_KINDS.get(alert_row["kind"], alert_row["kind"])),
            "alert_when": None
            if alert_row is None
            else ctx.localtime(_parse_time(alert_row["fix_time"] or alert_row["event_time"])),
            "hours": hours,
            "data": data,
        },
    )


# --------------------------------------------------------------------------- safe zone


@router.get("/elders/{elder_id}/zone", response_class=HTMLResponse)
def zone_page(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    elder_id: int,
    sent: Shown = NOT_SENT,
) -> HTMLResponse:
    """The safe zone editor; sent back refused, with the reason and the zone as drawn."""
    ctx = context(request, principal)
    elder = q.elder_record(session, elder_id, principal.scope, to=Action.enrol_elders)
    audit_subjects(
        session,
        request,
        principal,
        "elder_zone",
        [elder_id],
        audit_reason("zone_editor"),
    )
    zone = q.zone_and_home(session, elder_id)
    return render(
        request,
        principal,
        "care/zone.html",
        title=ctx._("Safe zone of %(name)s", name=elder["display_name"]),
        status_code=sent.status_code,
        values={
            "elder": elder,
            "zone": zone,
            "error": sent.error,
            "errors": sent.errors,
            "form": sent.form
            or {
                "kind": zone["kind"] or "home_grid",
                "buffer_m": zone["buffer_m"] or 200,
                "radius_m": zone["radius_m"] or 300,
            },
            "data": {
                "zone": zone["zone"],
                "home": None if zone["home_lon"] is None else [zone["home_lon"], zone["home_lat"]],
                "labels": {"home": ctx._("Home"), "zone": ctx._("Safe zone now")},
            },
        },
    )


#: The zone form's boxes that show their refusal beside them.
ZONE_BOXES = ("buffer_m", "radius_m")


@router.post("/elders/{elder_id}/zone", response_model=None)
def zone_submit(
    request: Request,
    session: SessionDep,
    principal: Enroller,
    elder_id: ChangedElder,
    kind: Annotated[str, Form(max_length=20)],
    buffer_m: Annotated[float, Form(ge=0, le=5000)] = 200.0,
    radius_m: Annotated[float, Form(ge=0, le=50_000)] = 300.0,
    lon: Annotated[str, Form(max_length=40)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
    geometry: Annotated[str, Form(max_length=100_000)] = "",
) -> HTMLResponse | RedirectResponse:
    ctx = context(request, principal)
    form = {
        "kind": kind,
        "buffer_m": buffer_m,
        "radius_m": radius_m,
        "lon": lon,
        "lat": lat,
        "geometry": geometry,
    }
    epsg = care_epsg(request, session)
    try:
        if kind == "home_grid":
            care.home_zone(session, elder_id, epsg=epsg, buffer_m=buffer_m)
            what = audit_reason("zone_set_home", metres=f"{buffer_m:g}")
        elif kind == "circle":
            if not lon or not lat:
                raise InvalidInput(
                    ctx._("Click on the map where the circle's centre is."), field="lon/lat"
                )
            if radius_m <= 20:
                raise InvalidInput(ctx._("The circle must be wider than 20 m."), field="radius_m")
            care.circle_zone(
                session, elder_id, lon=float(lon), lat=float(lat), radius_m=radius_m, epsg=epsg
            )
            what = audit_reason("zone_set_circle", metres=f"{radius_m:g}")
        elif kind == "polygon":
            try:
                shape = json.loads(geometry)
            except ValueError:
                shape = None
            if not isinstance(shape, dict) or shape.get("type") != "Polygon":
                raise InvalidInput(
                    ctx._("Click at least three corners on the map."), field="geometry"
                )
            care.polygon_zone(session, elder_id, shape, epsg=epsg)
            what = audit_reason("zone_set_polygon")
        else:
            raise InvalidInput("kind must be home_grid, circle or polygon", field="kind")
    except InvalidInput as exc:
        session.rollback()
        message = said(ctx, exc)
        if exc.code == "zone_without_home":
            message = (
                ctx._("This zone does not contain the elder's home: draw it around the home.")
                + f" ({message})"
            )
        # A number's reason beside its box; the map's (centre, corners, home) above the form.
        beside = {exc.field: message} if exc.field in ZONE_BOXES else {}
        sent = SentBack(
            form=form, errors=beside, error=None if beside else message, status_code=422
        )
        return zone_page(request, session, principal, elder_id, sent)
    audit_subjects(
        session,
        request,
        principal,
        "elder_zone",
        [elder_id],
        what.and_("zone_has_home").and_("from_console"),
    )
    return RedirectResponse(f"/app/elders/{elder_id}?zone=saved", status_code=303)


# --------------------------------------------------------------------------- alerts


def _once_each(recipients: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Who an alert was sent to, each worker once: in or back at home, the current grid's
    worker is the home grid's too, and the card listed (and offered to call) them twice."""
    seen: dict[str, dict[str, Any]] = {}
    for r in recipients:
        seen.setdefault(r["worker_code"], {"name": r["name"], "phone": r["phone"]})
    return [{**who, "code": code} for code, who in seen.items()]


def _alert_view(ctx: PageContext, a: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": a["id"],
        "kind": a["kind"],
        "kind_label": ctx._(ALERT_KINDS.get(a["kind"], a["kind"])),
        "status": a["status"],
        "status_label": ctx._(STATUSES[a["status"]]),
        "when": ctx.localtime(_parse_time(a["event_time"])),
        "elder_id": a["elder_id"],
        "elder_name": a["elder_name"],
        "grid_code": a["grid_code"],
        "home_grid_code": a["home_grid_code"],
        "detail": a["detail"],
        "acknowledged_by": a["acknowledged_by"],
        # Closed by itself: a newer zone alert, or the watch put right (``q.close_by_itself``).
        "by_itself": a["closed_by"] == q.SYSTEM_CLOSER,
        "recipients": _once_each(a["recipients"]),
    }


#: Closed alerts the inbox keeps below the open ones (folded away): enough to see what was
#: done today; with zone alerts closing each other, 20 made a wandering elder's page
#: 5,000 px long on a phone.
CLOSED_SHOWN = 10


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    session: SessionDep,
    principal: Staff,
    done: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """Open and acknowledged alerts, newest first, then the last closed ones folded away
    (unfolded, with the card marked, when ``done`` names the alert just closed here)."""
    ctx = context(request, principal)
    open_ = q.list_alerts(
        session, principal.scope, status=AlertStatus.open, limit=200, offset=0, with_position=False
    )
    acked = q.list_alerts(
        session,
        principal.scope,
        status=AlertStatus.acknowledged,
        limit=200,
        offset=0,
        with_position=False,
    )
    closed = q.list_alerts(
        session,
        principal.scope,
        status=AlertStatus.closed,
        limit=CLOSED_SHOWN,
        offset=0,
        with_position=False,
    )
    shown = open_ + acked + closed
    audit_subjects(
        session, request, principal, "elder", sorted({a["elder_id"] for a in shown}), None
    )
    return render(
        request,
        principal,
        "care/alerts.html",
        title=ctx._("Alerts"),
        values={
            "data": {
                "alerts": [_alert_view(ctx, a) for a in open_ + acked],
                "closed": [_alert_view(ctx, a) for a in closed],
                "done": done,
                "after": q.newest_alert_id(session),
                "loud": ["left_zone", "sos"],
                "labels": {
                    "locate": ctx._("Where is the elder now"),
                    "ack": ctx._("I'm on it"),
                    "close": ctx._("Close"),
                    "note": ctx._("Note (what was done)"),
                    "grid": ctx._("Grid"),
                    "home_grid": ctx._("Home grid"),
                    "routed": ctx._("%(what)s: ", what=ctx._("Sent to")),
                    "call": ctx._("Call"),
                    "new": ctx._("New"),
                    "none": ctx._("No alerts. New ones appear here by themselves."),
                    # The script counts the fold (a card closed elsewhere moves into it).
                    "closed_lately": ctx._("Closed lately: %(n)s", n="__N__"),
                    "live": ctx._("Live: new alerts appear without reloading."),
                    "offline": ctx._("Connection lost; reconnecting…"),
                    "by": ctx._("by"),
                    "by_itself": {
                        "left_zone": ctx._("Back in the safe zone: closed by itself."),
                        "returned": ctx._("Out of the safe zone again: see the newer alert."),
                        "no_fix": ctx._("The watch has a position again: closed by itself."),
                        "low_battery": ctx._("Charged again: closed by itself."),
                    },
                    "zone_kinds": list(q.ZONE_KINDS),
                },
            }
        },
    )


def _enrolled(datum: str, consent: bool, scanned: Any, buffer_m: float) -> AuditReason:
    """What an enrolment from the console recorded, for the audit log."""
    reason = audit_reason("enrolled", datum=datum)
    reason = reason.and_("consent_recorded" if consent else "no_consent")
    if scanned is not None:
        reason = reason.and_("with_scan", type=scanned.content_type)
    return reason.and_("zone_home", metres=f"{buffer_m:g}").and_("from_console")


def _note(value: str) -> str:
    return " ".join(value.split())[:300]


@router.post("/alerts/{alert_id}/{action}")
def alert_action(
    request: Request,
    session: SessionDep,
    principal: Staff,
    alert_id: int,
    action: str,
    note: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    """Acknowledge or close, with a note kept in the audit log beside who and when."""
    to = {"ack": AlertStatus.acknowledged, "close": AlertStatus.closed}.get(action)
    if to is None:
        raise NotFound(f"no action {action!r}: ack or close", field="action")
    move_alert(request, session, principal, alert_id, to, note=_note(note))
    return RedirectResponse(f"/app/alerts?done={alert_id}", status_code=303)


def _catch_up(
    engine: Engine, principal: Principal, after: int | None, route: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the stream sends as it opens: the alerts after ``after`` (none: from now on) and
    those raised lately below it (committed late), and the alerts of my area acknowledged or
    closed lately (the page may have been drawn before); audited like every look."""
    with engine.begin() as conn:
        start = q.newest_alert_id(conn) if after is None else after
        alerts = q.alerts_after(conn, principal.scope, after_id=start, recent_s=SETTLE_S)
        new = {a["id"] for a in alerts}
        moved = [
            i
            for i, _, grid, home in q.alert_changes_since(conn, recent_s=SETTLE_S)
            if i not in new and sees_alert(principal.scope, grid_id=grid, home_grid_id=home)
        ]
        changed = q.alerts_by_id(conn, moved) if moved else []
        if alerts or changed:
            write_audit(
                conn,
                actor=principal.name,
                role=principal.role.value,
                method="GET",
                route=route,
                subject_type="elder",
                subject_ids=sorted({a["elder_id"] for a in [*alerts, *changed]}),
                reason=None,
            )
        return alerts, changed


@router.get("/alerts/stream")
async def alert_stream(
    request: Request,
    principal: Staff,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """New alerts of my area as server-sent events (``event: alert``, JSON data as the
    inbox shows them), from ``after`` (or the browser's Last-Event-ID) on. Every open stream
    of the process shares one look per wake (``api.alert_fanout``)."""
    state = app_state(request)
    engine: Engine = state.engine
    notified = state.settings.alert_stream_wake == "notify"
    ctx = context(request, principal)
    start = after
    if last_event_id is not None and last_event_id.isdigit():
        start = int(last_event_id)
    route = request.url.path

    def event(a: dict[str, Any]) -> str:
        body = json.dumps(_alert_view(ctx, a), ensure_ascii=False)
        return f"id: {a['id']}\nevent: alert\ndata: {body}\n\n"

    def status(a: dict[str, Any]) -> str:  # no id: the stream's place is the newest alert's
        return f"event: status\ndata: {json.dumps(_alert_view(ctx, a), ensure_ascii=False)}\n\n"

    def bell() -> Bell | None:
        feed = state.changes if notified else None
        return None if feed is None or not feed.live else feed.alerts

    async def events() -> AsyncIterator[str]:
        fanout = state.alert_fanout.get(AlertFanout)
        inbox = Inbox(principal.name, principal.role.value, principal.scope, route)
        await fanout.open(engine, inbox)
        try:
            ringing = bell()
            rung = None if ringing is None else ringing.rings  # before looking
            caught, changed = await anyio.to_thread.run_sync(
                _catch_up, engine, principal, start, route
            )
            yield "retry: 2000\n\n"
            for a in fanout.claim(inbox, caught):
                yield event(a)
            for a in changed:
                yield status(a)
            ends = time.monotonic() + STREAM_LIFETIME_S
            quiet_since = time.monotonic()
            while time.monotonic() < ends and not await request.is_disconnected():
                for a in fanout.take(inbox):
                    yield event(a)
                    quiet_since = time.monotonic()
                for a in fanout.take_changes(inbox):
                    yield status(a)
                    quiet_since = time.monotonic()
                if time.monotonic() - quiet_since > STREAM_KEEPALIVE_S:
                    yield ": still here\n\n"
                    quiet_since = time.monotonic()
                ringing = bell()
                now = time.monotonic()
                if ringing is None:
                    # Every inbox looks at the same ticks, so that they share the looks;
                    # never past the stream's end: it closes on time, the browser reconnects.
                    tick = (math.floor(now / STREAM_POLL_S) + 1) * STREAM_POLL_S
                    await anyio.sleep(max(0.0, min(tick, ends) - now))
                    if tick <= ends:
                        await fanout.look(engine, None, since=tick)
                    rung = None
                elif rung is None:  # the feed is live (again): look once, then listen
                    rung = ringing.rings
                    await fanout.look(engine, ringing, since=now)
                else:  # until an alert is raised, or it is time to say "still here"
                    until = min(quiet_since + STREAM_KEEPALIVE_S + 0.05, ends)
                    if await ringing.wait(rung, until - now):
                        looked = await fanout.look(engine, ringing, rung=rung)
                        rung = ringing.rings if looked is None else looked
        finally:
            fanout.close(inbox)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )
