"""Device ingest: the OsmAnd protocol (Traccar Client, OsmAnd) and a JSON batch for gateways.

Each device authenticates with its own API key, sent as ``X-API-Key`` or, because Traccar
Client and OsmAnd cannot set headers, as ``?key=`` (accepted on ``/ingest/`` routes only;
mind that a key in a URL can end up in proxy and access logs). The key decides which devices
the caller may report for; the answer never tells anything about other devices.

What is answered 4xx is only what a device's retry cannot cure and that must not be
stored: no or a wrong key (401), a device the key may not report for or an elder without
consent (403), a report that cannot be read (422). Traccar Client 10 and the legacy Android
client resend their oldest report until it is answered 2xx, so every other report is
answered 200, with ``stored: 0`` and the reason in ``notes`` when it is not kept as a fix
(see ``data.care.service.ingest_many``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.deps import app_epsg
from api.direct_route import DirectRoute
from api.hardening import ingest_limit
from api.ingest_queue import IngestQueue
from api.metrics import count_notes
from api.schemas import Answer, StrictModel
from api.security import Principal, require
from api.state import app_state
from data.care import queries as care_queries
from data.care import service as care
from data.policy import Action
from geo.care.osmand import Report, read_report, reports_from_json
from geo.errors import Forbidden, GridworkError, InvalidInput

log = logging.getLogger(__name__)

router = APIRouter(prefix="/ingest", tags=["ingest"])

DevicePrincipal = Annotated[Principal, Depends(require(Action.report_positions))]

_KEY = (
    "the device's API key, for apps that cannot send X-API-Key (Traccar Client, OsmAnd); "
    "a key in a URL can end up in proxy logs"
)
# Read by api.security (on /ingest/ only); declared here so that the API docs show it.
KeyQuery = Annotated[str | None, Query(max_length=128, description=_KEY)]

MAX_PARAMETERS = 64
MAX_BATCH = 1000


class IngestAnswer(Answer):
    stored: int = Field(description="fixes stored by this request")
    duplicates: int = Field(description="repeated fixes (same device and time), dropped")
    not_stored: int = Field(
        default=0,
        description="reports answered but not stored as a fix: keep-alives (no position), "
        "fixes older than the retention period or from before consent; only when any",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="per report not stored, or stored differently (a clock ahead): "
        "'code: reason', code one of no_position, too_old, before_consent, clock_ahead; "
        "only when any",
    )

    def body(self) -> str:
        """The answer as JSON, the extra members only when there is something to say."""
        text = f'{{"stored":{self.stored},"duplicates":{self.duplicates}'
        if self.not_stored or self.notes:
            notes = json.dumps(self.notes, ensure_ascii=False)
            text += f',"not_stored":{self.not_stored},"notes":{notes}'
        return text + "}"


def _key_name(principal: Principal) -> str:
    if principal.via != "api_key" or not principal.name.startswith("key:"):
        raise Forbidden("devices report with their own API key, not a user's token")
    return principal.name.removeprefix("key:")


def warm_up(app: FastAPI) -> None:
    """Before the first device reports: the metric CRS and the safe zones in metres."""
    try:
        with Session(app_state(app).engine) as session:
            care_queries.warm_zones(session, epsg=app_epsg(app, session))
    except GridworkError:  # no district data yet: nothing to warm
        return
    except SQLAlchemyError as exc:  # only speed is lost
        log.warning("ingest caches not warmed: %s", exc)


def _queue(app: FastAPI) -> IngestQueue:
    """The app's group-commit queue on the running event loop."""
    return app_state(app).ingest_queue.get(lambda: _new_queue(app))


def _new_queue(app: FastAPI) -> IngestQueue:
    state = app_state(app)
    settings = state.settings

    def store(requests: Sequence[care.IngestRequest]) -> list[care.IngestResult | GridworkError]:
        with Session(state.engine) as session, session.begin():
            return care.ingest_many(
                session,
                requests,
                epsg=app_epsg(app, session),
                now=datetime.now(UTC),
                retention=timedelta(days=settings.position_retention_days),
                webhook_url=settings.alert_webhook_url,
            )

    return IngestQueue(
        store, max_batch=settings.ingest_batch_max, max_pending=settings.ingest_pending_max
    )


async def _store(request: Request, principal: Principal, fixes: list[Report]) -> IngestAnswer:
    key_name = _key_name(principal)
    result = await _queue(request.app).submit(care.IngestRequest(key_name, fixes))
    if result.notes:
        count_notes(result.notes)
    return IngestAnswer(
        stored=result.stored,
        duplicates=result.duplicates,
        not_stored=result.not_stored,
        notes=list(result.notes),
    )


async def osmand_parameters(request: Request) -> list[dict[str, str]]:
    """The parameters of each report, ``key`` left out: one from the query string and an
    url-encoded body, or one per location of a JSON body (Traccar Client 9.x, or the flat
    objects of Traccar's client SDK), the query string's parameters added to each."""
    items = list(request.query_params.multi_items())
    bodies: list[dict[str, str]] | None = None
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = await request.form(max_fields=MAX_PARAMETERS + 1, max_files=0)
            for name, value in form.multi_items():
                if not isinstance(value, str):  # pragma: no cover - max_files=0 refuses files
                    raise InvalidInput("files are not accepted", field=name)
                items.append((name, value))
        elif content_type.split(";")[0].strip().lower() == "application/json":
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"not JSON: {str(exc)[:120]}", field="body") from exc
            bodies = reports_from_json(body)
        elif await request.body():
            raise InvalidInput(
                "send the report as a query string, an url-encoded form or JSON "
                f"(got {content_type[:60] or 'no content type'})",
                field="body",
            )
    params: dict[str, str] = {}
    for name, value in items:
        if name == "key":
            continue
        if name in params and params[name] != value:
            raise InvalidInput("given twice with different values", field=name[:64])
        params[name] = value
    if bodies is None:
        bodies = [params]
    else:
        for i, report in enumerate(bodies):
            for name, value in params.items():
                if report.setdefault(name, value) != value:
                    where = f"[{i}]" if len(bodies) > 1 else ""
                    raise InvalidInput(
                        f"the query string and the body{where} disagree", field=name[:64]
                    )
    for report in bodies:
        if len(report) > MAX_PARAMETERS:
            raise InvalidInput(f"at most {MAX_PARAMETERS} parameters", field="query")
    return bodies


@dataclass(frozen=True)
class OsmAndReport:
    principal: Principal
    reports: list[dict[str, str]]


_device = require(Action.report_positions)


async def osmand_report(request: Request) -> OsmAndReport:
    """Who sends the report (a device key), the rate limit, and the report's parameters.

    The order is that of the other routes: 401 without a key, 403 for a user's credentials,
    then 429, then the fields."""
    principal = await _device(request)
    await ingest_limit(request)
    return OsmAndReport(principal, await osmand_parameters(request))


def _documented(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_TEXT: dict[str, Any] = {"type": "string", "maxLength": 128}
_NUMBER: dict[str, Any] = {"type": "number"}
# Read by osmand_parameters from the query string (or an url-encoded body), not declared one
# by one: unknown parameters are kept as attributes, which FastAPI parameters cannot express.
_OSMAND_PARAMETERS = [
    _documented("key", _KEY, _TEXT),
    _documented("id", "the device identifier it was enrolled with (or `deviceid`)", _TEXT),
    _documented("deviceid", "same as `id`", _TEXT),
    _documented("lat", "latitude in the device's datum, -90..90", _NUMBER),
    _documented("lon", "longitude in the device's datum, -180..180", _NUMBER),
    _documented("location", "`lat,lon`, instead of `lat` and `lon`", _TEXT),
    _documented("timestamp", "epoch seconds, epoch milliseconds or ISO 8601", _TEXT),
    _documented("speed", "knots (Traccar clients), or the unit of `speed_unit`", _NUMBER),
    _documented(
        "speed_unit",
        "`kn` (default), `mps` (OsmAnd's live tracking: add `&speed_unit=mps` to its URL "
        "template) or `kmh`",
        {"type": "string", "enum": ["kn", "mps", "kmh"]},
    ),
    _documented("valid", "`false`: the device marks the position invalid", {"type": "boolean"}),
    _documented("bearing", "degrees (or `heading`)", _NUMBER),
    _documented("altitude", "metres", _NUMBER),
    _documented("accuracy", "metres (negative: unknown)", _NUMBER),
    _documented("hdop", "horizontal dilution of precision", _NUMBER),
    _documented("batt", "battery, percent (negative: unknown)", _NUMBER),
    _documented("charge", "charging, true or false", {"type": "boolean"}),
    _documented("alarm", "an alarm the device raised (SOS)", _TEXT),
]
_OSMAND = "One fix in the OsmAnd protocol (Traccar Client, OsmAnd)"
_OSMAND_ROUTE: dict[str, Any] = {
    "summary": _OSMAND,
    "response_model": IngestAnswer,
    "openapi_extra": {"parameters": _OSMAND_PARAMETERS},
}


async def osmand(request: Request) -> Response:
    """``id``/``deviceid``, ``lat`` + ``lon`` or ``location=lat,lon``, ``timestamp`` (epoch s,
    epoch ms or ISO 8601), ``speed`` (knots; ``speed_unit=mps`` or ``kmh`` for others),
    ``bearing``/``heading``, ``altitude``, ``accuracy``, ``hdop``, ``batt``, ``charge``,
    ``valid``, ``alarm``; other parameters are kept as attributes. Coordinates are in the
    device's datum (set at enrollment). A JSON body (``Content-Type: application/json``)
    may carry Traccar Client 9.x's ``{"location": {...} or [...], "device_id": ...}`` or
    flat objects with these names.

    Traccar Client: server URL ``https://HOST/ingest/osmand?key=YOUR_DEVICE_KEY`` and the
    device identifier it was enrolled with. 403 without consent (nothing stored). A report
    that cannot be kept as a fix (no position, older than the retention period, from
    before consent) is answered 200 with ``stored: 0`` and the reason in ``notes``.
    """
    # A DirectRoute: the checks FastAPI would run as dependencies are made here, in order.
    report = await osmand_report(request)
    now = datetime.now(UTC)
    many = len(report.reports) > 1
    reports: list[Report] = []
    for i, params in enumerate(report.reports):
        try:
            fix = read_report(params, now=now)
            care.check_extras(fix)
        except InvalidInput as exc:
            if many:
                exc.index = i
            raise
        reports.append(fix)
    answer = await _store(request, report.principal, reports)
    return Response(answer.body(), media_type="application/json")


# One route per method: a GET+POST route gets one operationId twice (invalid OpenAPI).
for _method in ("GET", "POST"):
    router.add_api_route(
        "/osmand",
        osmand,
        methods=[_method],
        route_class_override=DirectRoute,
        **_OSMAND_ROUTE,
    )


class BatchFix(StrictModel):
    """One fix of a batch: the OsmAnd parameters as JSON values."""

    id: str | None = Field(default=None, max_length=128)
    deviceid: str | None = Field(default=None, max_length=128)
    lat: float | None = None
    lon: float | None = None
    location: str | None = Field(default=None, max_length=64)
    timestamp: int | float | str | None = Field(default=None, description="epoch s/ms or ISO")
    speed: float | None = Field(default=None, description="knots, or the unit of speed_unit")
    speed_unit: Literal["kn", "mps", "kmh"] | None = None
    valid: bool | None = Field(default=None, description="false: marked invalid by the device")
    bearing: float | None = None
    heading: float | None = None
    altitude: float | None = None
    accuracy: float | None = None
    hdop: float | None = None
    batt: float | None = None
    charge: bool | None = None
    alarm: str | None = Field(default=None, max_length=64)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=32)

    def parameters(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.model_dump(exclude={"attributes"}, exclude_none=True).items():
            if isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif isinstance(value, str):
                out[name] = value
            else:
                out[name] = repr(value)
        for name, value in self.attributes.items():
            if name in self.__class__.model_fields or name == "key":
                raise InvalidInput(
                    f"'{name[:40]}' is a reserved parameter name", field="attributes"
                )
            out[name] = value
        return out


class Batch(StrictModel):
    fixes: list[BatchFix] = Field(min_length=1, max_length=MAX_BATCH)


@router.post(
    "/batch",
    summary="Many fixes at once (gateways, a device's offline buffer)",
    dependencies=[Depends(ingest_limit)],
    response_model=IngestAnswer,
)
async def batch(
    request: Request,
    principal: DevicePrincipal,
    body: Batch,
    key: KeyQuery = None,
) -> Response:
    """All or nothing for what cannot be read: every such fix is listed by index and none
    is stored. A fix that can be read but not kept (older than the retention period, from
    before consent; a keep-alive without lat/lon) is counted in ``not_stored`` and named in
    ``notes``, as on ``/ingest/osmand``. The key may report for every device linked to it
    (one for a wearable, several for a gateway)."""
    now = datetime.now(UTC)
    problems: list[str] = []
    fixes: list[Report] = []
    for i, item in enumerate(body.fixes):
        try:
            fix = read_report(item.parameters(), now=now)
            care.check_extras(fix)
        except InvalidInput as exc:
            problems.append(f"fixes[{i}].{exc.field or 'fix'}: {exc.reason}")
            continue
        fixes.append(fix)
    if problems:
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise InvalidInput("; ".join(problems[:20]) + more + "; nothing was stored", field="fixes")
    answer = await _store(request, principal, fixes)
    return Response(answer.body(), media_type="application/json")
