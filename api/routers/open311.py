"""Open311 GeoReport v2 (JSON and XML): discovery, services, service definitions, posting a
request, reading requests back (and the photo a request's ``media_url`` names), tokens. So
that residents' apps and other city systems (FixMyStreet and the like) report into the case
flow without a line written for gridwork.

The standard authenticates on its own terms: ``api_key`` is a form field of ``POST
requests`` (``?api_key=`` or ``X-API-Key`` elsewhere), and discovery, services and tokens
are open. So this router is not behind the sign-in every other router has
(``api.security.SELF_AUTHENTICATED_PREFIXES``): each route checks the key itself, names its
policy action, and answers every refusal as the standard's error list, in the asked format.
Reading requests without a key is the deployment's choice (``open311_public_listing``, off);
a reporter's contact is shown only to handlers of the request's area, each read audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from api import open311_xml
from api.case_viewer import case_viewer
from api.deps import SessionDep
from api.errors import status_for
from api.pages.i18n import from_accept_language
from api.schemas import open311 as s
from api.security import Principal, audit_read, identify
from api.state import app_state
from data.access.reasons import said
from data.incidents import open311 as o311
from data.incidents import photos
from data.incidents import queries as q
from data.policy import Action, may
from data.settings import Settings
from geo.errors import Forbidden, GridworkError, InvalidInput, NotFound, Unauthorized

router = APIRouter(prefix="/open311/v2", tags=["open311"], include_in_schema=False)

FORMATS = ("json", "xml")
MEDIA = "media"  # a photo file posted with the request (multipart), beside media_url
CHANGESET = "2026-12-06T00:00:00Z"  # when this endpoint last changed what it offers
WINDOW = timedelta(days=90)  # the standard's default and widest date range
#: Our refusals under the standard's statuses: bad input is 400, a key 403 (its example).
OPEN311_STATUS = {422: 400, 401: 403}
LEVEL_NAMES = {
    "grid": ("Grid", "网格"),
    "community": ("Community", "社区"),
    "street": ("Street", "街道"),
    "district": ("District", "区"),
}


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Caller:
    """Who the key belongs to (``None``: no key given), or why the key was refused."""

    principal: Principal | None
    refused: GridworkError | None = None

    def require(self, action: Action, doing: str) -> Principal:
        if self.refused is not None:
            raise self.refused
        if self.principal is None:
            raise Forbidden(f"required to {doing}", field="api_key")
        if not may(self.principal.role, action):
            raise Forbidden(
                f"this key ({self.principal.role.value}) may not {doing}", field="api_key"
            )
        return self.principal


def _key_of(action: Action) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency reading the caller's key where Open311 clients put it; it never raises,
    so that a refusal is answered in the standard's format by the route."""

    async def caller(request: Request) -> Caller:
        key = request.headers.get("x-api-key") or request.query_params.get("api_key")
        if request.method == "POST":
            sent = (await request.form()).get("api_key")
            key = sent if isinstance(sent, str) and sent else key
        if not key:
            return Caller(None)
        try:
            return Caller(await identify(request, None, key))
        except Unauthorized:
            return Caller(None, Forbidden("the API key is not valid", field="api_key"))

    caller.gridwork_action = action  # type: ignore[attr-defined]  # read by the policy tests
    return caller


@dataclass(frozen=True)
class Posted:
    """The posted fields (url-encoded as the standard says, or multipart with a photo file
    as ``media``), and the first thing that cannot be taken: a field given twice, a file
    under another name."""

    fields: dict[str, str]
    media: bytes | None = None
    problem: tuple[str, str] | None = None  # (field, why)


async def _posted(request: Request) -> Posted:
    form = await request.form()
    fields: dict[str, str] = {}
    media: bytes | None = None
    problem: tuple[str, str] | None = None
    limit = _settings(request).photo_max_bytes
    for name, value in form.multi_items():
        if name in fields or (name == MEDIA and media is not None):
            problem = problem or (name, "given twice")
        elif isinstance(value, UploadFile):
            if name != MEDIA:
                problem = problem or (name, f"files are taken as '{MEDIA}' only")
            else:
                media = await value.read(limit + 1)
        else:
            fields[name] = value
    return Posted(fields, media, problem)


Posting = Annotated[Caller, Depends(_key_of(Action.report_incidents))]
Reading = Annotated[Caller, Depends(_key_of(Action.view_cases))]
Form = Annotated[Posted, Depends(_posted)]


# --- answers ---------------------------------------------------------------------------------


def _answer(fmt: str, root: str, body: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(open311_xml.document(root, body), status, media_type=open311_xml.MEDIA_TYPE)
    return JSONResponse(body, status)


def _refusal(session: Session, fmt: str, exc: GridworkError) -> Response:
    """An error as the standard's list of {code, description}; nothing of the request
    is kept."""
    session.rollback()
    status = status_for(exc)
    status = OPEN311_STATUS.get(status, status)
    error = s.Error(code=status, description=str(exc)).model_dump()
    return _answer(fmt if fmt in FORMATS else "json", "errors", [error], status)


def _run(session: Session, fmt: str, work: Callable[[], Response]) -> Response:
    try:
        if fmt not in FORMATS:
            raise NotFound(f"'.{fmt}' is not offered: ask for .json or .xml", field="format")
        return work()
    except GridworkError as exc:
        return _refusal(session, fmt, exc)


def _settings(request: Request) -> Settings:
    return app_state(request).settings


def _english(request: Request) -> bool:
    """Names in English when the client asks for it first, else the deployment's language."""
    found = from_accept_language(request.headers.get("accept-language", ""))
    return (found or _settings(request).locale) == "en"


def _iso(value: datetime | None, zone: str) -> str | None:
    return None if value is None else value.astimezone(ZoneInfo(zone)).isoformat("T", "seconds")


def _service(row: dict[str, Any], english: bool) -> s.Service:
    name, other = (row["name_en"], row["name"]) if english else (row["name"], row["name_en"])
    level = LEVEL_NAMES[row["first_level"]][0 if english else 1]
    hours = row[f"hours_{row['first_level']}"]
    if english:
        description = f"{name}: handled first at {level.lower()} level, within {hours} hours."
        group = row["department_name_en"] or "Community services"
    else:
        description = f"{name}：首先由{level}处理，时限 {hours} 小时。"
        group = row["department_name"] or "社区服务"
    return s.Service(
        service_code=row["code"],
        service_name=name,
        description=description,
        metadata=False,
        keywords=", ".join((row["code"], name, other)),
        group=group,
    )


def _catalogue(session: Session) -> list[dict[str, Any]]:
    departments = {d["code"]: d for d in q.departments(session)}
    rows = q.categories(session)
    for row in rows:
        dept = departments.get(row["department"]) or {}
        row["department_name"] = dept.get("name")
        row["department_name_en"] = dept.get("name_en")
    return rows


def _agency(row: dict[str, Any], english: bool) -> str:
    if row["department"]:
        return str(row["department_en"] if english else row["department"])
    code = {"grid": row["grid"], "community": row["community"], "street": row["street"]}
    name = LEVEL_NAMES[row["level"]][0 if english else 1]
    where = code.get(row["level"])
    return f"{name} {where}" if where else name


def _media_url(request: Request, row: dict[str, Any]) -> str | None:
    """Where a request's photo is: the case's first uploaded photo, served to the request's
    readers (absolute, as the standard has it), else the ``media_url`` it was posted with."""
    if row["photo_id"] is None:
        return row["media_url"]
    return str(
        request.url_for(
            "open311_media",
            service_request_id=str(row["id"]),
            photo_id=str(row["photo_id"]),
            ext=photos.EXTENSIONS[row["photo_type"]],
        )
    )


def _request(
    row: dict[str, Any], english: bool, zone: str, media_url: str | None
) -> dict[str, Any]:
    is_open = row["open311_status"] == "open"
    answer = s.ServiceRequest(
        service_request_id=str(row["id"]),
        status=row["open311_status"],
        status_notes=row["status_notes"],
        service_name=row["name_en"] if english else row["name"],
        service_code=row["service_code"],
        description=row["description"],
        agency_responsible=_agency(row, english),
        service_notice=None,
        requested_datetime=_iso(row["opened_at"], zone) or "",
        updated_datetime=_iso(row["updated_at"], zone),
        expected_datetime=_iso(row["due_at"], zone) if is_open else None,
        address=row["address"],
        address_id=row["address_id"],
        lat=row["lat"],
        long=row["lon"],
        media_url=media_url,
        reporter_name=row["reporter_name"],
        reporter_contact=row["reporter_contact"],
    ).model_dump()
    if row["reporter_name"] is None and row["reporter_contact"] is None:
        del answer["reporter_name"], answer["reporter_contact"]
    return answer


# --- discovery and services ------------------------------------------------------------------


@router.get("/discovery.{fmt}")
def discovery(request: Request, session: SessionDep, fmt: str) -> Response:
    def work() -> Response:
        production = _settings(request).environment == "production"
        url = str(request.base_url).rstrip("/") + router.prefix
        return _answer(
            fmt,
            "discovery",
            s.Discovery(
                changeset=CHANGESET,
                contact="The district's gridwork administrators",
                key_service="Ask the district's gridwork administrators for an API key",
                endpoints=[
                    s.Endpoint(
                        url=url, changeset=CHANGESET, type="production" if production else "test"
                    )
                ],
            ).model_dump(),
        )

    return _run(session, fmt, work)


@router.get("/services.{fmt}")
def services(request: Request, session: SessionDep, fmt: str) -> Response:
    def work() -> Response:
        english = _english(request)
        body = [_service(r, english).model_dump() for r in _catalogue(session)]
        return _answer(fmt, "services", body)

    return _run(session, fmt, work)


@router.get("/services/{service_code}.{fmt}")
def service_definition(session: SessionDep, service_code: str, fmt: str) -> Response:
    def work() -> Response:
        try:
            code = q.category(session, service_code, field="service_code")["code"]
        except InvalidInput as exc:
            raise NotFound(exc.reason, field="service_code") from exc
        body = s.ServiceDefinition(service_code=code, attributes=[]).model_dump()
        return _answer(fmt, "service_definition", body)

    return _run(session, fmt, work)


# --- requests --------------------------------------------------------------------------------


@router.post("/requests.{fmt}", status_code=201)
def post_request(
    request: Request, session: SessionDep, fmt: str, caller: Posting, form: Form
) -> Response:
    def work() -> Response:
        principal = caller.require(Action.report_incidents, "post requests")
        if form.problem is not None:
            raise InvalidInput(form.problem[1], field=form.problem[0])
        new = o311.parse_request(form.fields)
        photo = None
        if form.media is not None:
            try:
                photo = photos.clean(form.media, max_bytes=_settings(request).photo_max_bytes)
            except GridworkError as exc:  # named as the client sent it
                exc.field = MEDIA
                raise
        english = _english(request)
        viewer = case_viewer(session, principal)
        case_id = o311.create(session, new, viewer, now=now(), english=english, photo=photo)
        row = q.case(session, case_id, viewer)
        due = _iso(row["due_at"], _settings(request).timezone)
        level = LEVEL_NAMES[row["level"]][0 if english else 1]
        where = row.get(row["level"]) or ""
        notice = (
            f"Sent to the {level.lower()} {where}; expected by {due}."
            if english
            else f"已转交{level} {where} 处理，预计 {due} 前办结。"
        )
        token = o311.token_for(case_id, _settings(request).signing_key())
        posted = s.Posted(
            service_request_id=str(case_id), token=token, service_notice=notice.replace("  ", " ")
        )
        return _answer(fmt, "service_requests", [posted.model_dump()], 201)

    return _run(session, fmt, work)


def _csv(value: str | None, field: str, limit: int = 200) -> list[str] | None:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    if len(items) > limit:
        raise InvalidInput(f"at most {limit} values", field=field)
    return items or None


def _when(value: str | None, field: str, zone: str) -> datetime | None:
    """A w3 date-time (``2010-01-01T00:00:00Z``); without an offset, the deployment's time."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError as exc:
        raise InvalidInput("a w3 date-time like 2010-01-01T00:00:00Z", field=field) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))


def _filters(request: Request, zone: str) -> o311.Filters:
    """The standard's filters: ``service_request_id`` overrides the others; the window is
    the last 90 days unless given, and never wider."""
    args = request.query_params
    ids = _csv(args.get("service_request_id"), "service_request_id", o311.MAX_REQUESTS)
    if ids is not None:
        if not all(i.isdigit() and len(i) < 12 for i in ids):
            raise InvalidInput("comma-separated request ids", field="service_request_id")
        return o311.Filters(ids=[int(i) for i in ids])
    statuses = _csv(args.get("status"), "status")
    for status in statuses or []:
        if status not in ("open", "closed"):
            raise InvalidInput(f"'{status}' is not open or closed", field="status")
    start = _when(args.get("start_date"), "start_date", zone)
    end = _when(args.get("end_date"), "end_date", zone)
    if start is None and end is None:
        end = now()
    if start is None:
        start = (end or now()) - WINDOW
    if end is None:
        end = start + WINDOW
    if end < start:
        raise InvalidInput("before start_date", field="end_date")
    if end - start > WINDOW:
        raise InvalidInput("at most 90 days after start_date", field="end_date")
    return o311.Filters(
        codes=_csv(args.get("service_code"), "service_code"),
        start=start,
        end=end,
        statuses=statuses,
    )


def _audience(
    request: Request, session: Session, caller: Caller
) -> tuple[q.Viewer | None, Principal | None]:
    """Who reads requests: with a key, its account (the requests of its area); without one,
    the public (``None``) if the deployment opened the listing; else the key is required."""
    if (
        caller.principal is None
        and caller.refused is None
        and _settings(request).open311_public_listing
    ):
        return None, None
    principal = caller.require(Action.view_cases, "read requests")
    return case_viewer(session, principal), principal


def _read(
    request: Request, session: Session, caller: Caller, filters: o311.Filters
) -> list[dict[str, Any]]:
    """Requests as the caller may read them: with a key, those of its area (with the
    reporter for handlers, audited); without one, all of them if the listing is public."""
    viewer, principal = _audience(request, session, caller)
    handler = principal is not None and may(principal.role, Action.handle_cases)
    rows = o311.requests(session, viewer, filters, contacts=handler)
    shown = [r["id"] for r in rows if r["reporter_name"] or r["reporter_contact"]]
    if principal is not None and shown:
        audit_read(
            session,
            request,
            principal,
            subject_type="case_reporter",
            subject_ids=shown,
            reason=said("open311"),
        )
    english, zone = _english(request), _settings(request).timezone
    return [_request(r, english, zone, _media_url(request, r)) for r in rows]


@router.get("/requests.{fmt}")
def list_requests(request: Request, session: SessionDep, fmt: str, caller: Reading) -> Response:
    def work() -> Response:
        filters = _filters(request, _settings(request).timezone)
        return _answer(fmt, "service_requests", _read(request, session, caller, filters))

    return _run(session, fmt, work)


@router.get("/requests/{service_request_id}.{fmt}")
def get_request(
    request: Request, session: SessionDep, service_request_id: str, fmt: str, caller: Reading
) -> Response:
    def work() -> Response:
        found = []
        if service_request_id.isdigit() and len(service_request_id) < 12:
            filters = o311.Filters(ids=[int(service_request_id)])
            found = _read(request, session, caller, filters)
        if not found:
            raise NotFound(f"no request {service_request_id}", field="service_request_id")
        return _answer(fmt, "service_requests", found)

    return _run(session, fmt, work)


@router.get("/requests/{service_request_id}/media/{photo_id}.{ext}", name="open311_media")
def request_media(
    request: Request,
    session: SessionDep,
    service_request_id: str,
    photo_id: str,
    ext: str,
    caller: Reading,
) -> Response:
    """The photo a request's ``media_url`` names, to whoever may read the request: with the
    listing closed, the same key (``X-API-Key`` or ``?api_key=``) as for the request."""

    def work() -> Response:
        found = None
        ids = (service_request_id, photo_id)
        if all(i.isdigit() and len(i) < 12 for i in ids):
            viewer, _ = _audience(request, session, caller)
            kind, body = o311.media(session, viewer, int(ids[0]), int(ids[1]))
            found = Response(body, media_type=kind) if photos.EXTENSIONS[kind] == ext else None
        if found is None:
            raise NotFound(
                f"no photo {photo_id}.{ext} of request {service_request_id}", field="photo_id"
            )
        return found

    return _run(session, "json", work)


@router.get("/tokens/{token}.{fmt}")
def token(request: Request, session: SessionDep, token: str, fmt: str) -> Response:
    def work() -> Response:
        case_id = o311.case_of_token(session, token, _settings(request).signing_key())
        body = s.Token(service_request_id=str(case_id), token=token).model_dump()
        return _answer(fmt, "service_requests", [body])

    return _run(session, fmt, work)
