"""Open311 GeoReport v2 over the case flow: a posted service request becomes a case through
``data.incidents.service.report_case`` (so it is routed like any report), and the requests read
back are cases, in the standard's terms (open / closed, last update, notes, photo link:
the case's first uploaded photo, else the ``media_url`` the request was posted with).

What a request brings that a case has no column for — ``media_url``, ``address_string`` and
``address_id`` — is kept as entries of the case's history (append-only, shown on the case
page), written in the same transaction as the case. ``address_id`` names a building of the
store (its source id, e.g. ``way/123``): there is no geocoder, so an address string alone
cannot be placed and is refused. A token is the case id signed with the deployment's secret,
so it needs no table and cannot be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from data.access.queries import Db
from data.incidents import photos, service
from data.incidents import queries as q
from data.incidents.queries import CASE_FROM, CASE_SEEN_SQL, Viewer
from geo.errors import InvalidInput, NotFound

#: The case fields under the names an Open311 client sent them.
FIELDS = {"category": "service_code", "lon": "long", "lat": "lat", "description": "description"}
#: Our case states, as the standard's two.
STATUS: dict[str, str] = {
    "new": "open",
    "accepted": "open",
    "in_progress": "open",
    "resolved": "closed",
    "closed": "closed",
}
#: History entries whose note is told to the reporter as ``status_notes``.
NOTE_KINDS = ("resolve", "close", "reopen")
#: History entries holding what a request brought beyond a case's columns.
EXTRA_KINDS = ("media_url", "address", "address_id")
MAX_REQUESTS = 1000
URL_MAX = 2000
TEXT_MAX = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ATTRIBUTE = re.compile(r"^attribute\[(.+)\]$")


@dataclass(frozen=True)
class NewRequest:
    """A posted request, read and checked field by field (nothing looked up yet)."""

    service_code: str
    lon: float | None
    lat: float | None
    address_string: str | None
    address_id: str | None
    description: str | None
    media_url: str | None
    reporter_name: str | None
    reporter_contact: str | None
    attributes: dict[str, str] = field(default_factory=dict)


def _one(form: Mapping[str, str], name: str, *, limit: int = TEXT_MAX) -> str | None:
    value = (form.get(name) or "").strip()
    if len(value) > limit:
        raise InvalidInput(f"at most {limit} characters", field=name)
    if "\x00" in value:
        raise InvalidInput("NUL characters are not allowed", field=name)
    return value or None


def _number(form: Mapping[str, str], name: str, bound: float) -> float | None:
    raw = _one(form, name, limit=64)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise InvalidInput(f"'{raw}' is not a number", field=name) from exc
    if not math.isfinite(value) or abs(value) > bound:
        hint = " (are lat and long swapped?)" if name == "lat" else ""
        raise InvalidInput(f"must be between -{bound:g} and {bound:g}{hint}", field=name)
    return value


def parse_request(form: Mapping[str, str]) -> NewRequest:
    """The form of ``POST requests`` as the standard names its fields; every refusal names
    the field. Unknown fields other than ``attribute[…]`` are ignored, as clients send
    extensions of their own."""
    code = _one(form, "service_code", limit=64)
    if code is None:
        raise InvalidInput("required", field="service_code")
    lat, lon = _number(form, "lat", 90.0), _number(form, "long", 180.0)
    if (lat is None) != (lon is None):
        missing = "long" if lon is None else "lat"
        raise InvalidInput("lat and long are given together", field=missing)
    address_string = _one(form, "address_string", limit=500)
    address_id = _one(form, "address_id", limit=128)
    if lat is None and address_id is None:
        if address_string is not None:
            raise InvalidInput(
                "an address string cannot be placed here (no geocoder): send lat and long, "
                "or an address_id (a building's id)",
                field="address_string",
            )
        raise InvalidInput("required: lat and long, or address_id", field="lat")
    email = _one(form, "email")
    if email is not None and not _EMAIL.match(email):
        raise InvalidInput("not an email address", field="email")
    media_url = _one(form, "media_url", limit=URL_MAX)
    if media_url is not None and not re.match(r"^https?://[^\s/]+", media_url, re.I):
        raise InvalidInput("must be an http:// or https:// URL", field="media_url")
    name = " ".join(p for p in (_one(form, "first_name"), _one(form, "last_name")) if p)
    contact = ", ".join(p for p in (email, _one(form, "phone", limit=64)) if p)
    if len(name) > TEXT_MAX:
        raise InvalidInput(f"first and last name: at most {TEXT_MAX} characters", field="last_name")
    if len(contact) > TEXT_MAX:
        raise InvalidInput(f"email and phone: at most {TEXT_MAX} characters", field="email")
    attributes = {}
    for key, value in form.items():
        found = _ATTRIBUTE.match(key)
        if found:
            attributes[found.group(1)] = value
    return NewRequest(
        service_code=code,
        lon=lon,
        lat=lat,
        address_string=address_string,
        address_id=address_id,
        description=_one(form, "description", limit=service.DESCRIPTION_MAX),
        media_url=media_url,
        reporter_name=name or None,
        reporter_contact=contact or None,
        attributes=attributes,
    )


def building_point(db: Db, address_id: str) -> tuple[float, float]:
    """A point inside the building an ``address_id`` names (lon, lat)."""
    row = db.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM building "
            "WHERE source_id = :a) s"
        ),
        {"a": address_id},
    ).first()
    if row is None:
        raise InvalidInput(f"no building '{address_id}'", field="address_id")
    return float(row[0]), float(row[1])


def create(
    db: Db,
    new: NewRequest,
    who: Viewer,
    *,
    now: datetime,
    english: bool,
    photo: photos.CleanPhoto | None = None,
) -> int:
    """Store a posted request as a case, routed as every report is, with the photo posted
    with it; nothing is stored when any field is refused. A point outside every grid that
    would lie inside one with lat and long exchanged is refused as swapped. The client is
    the key's account (``who``), which also reports."""
    try:
        kind = q.category(db, new.service_code, field="service_code")
    except InvalidInput as exc:  # in the standard's words
        raise InvalidInput(
            f"no service '{new.service_code}' (GET services lists them)", field="service_code"
        ) from exc
    if new.attributes:  # no service defines attributes (yet): none may be sent
        code = next(iter(new.attributes))
        raise InvalidInput(
            f"service '{kind['code']}' has no attribute '{code}'", field=f"attribute[{code}]"
        )
    if new.lon is not None and new.lat is not None:
        lon, lat = new.lon, new.lat
        if q.place(db, lon, lat) is None and abs(lon) <= 90 and q.place(db, lat, lon):
            raise InvalidInput(
                "the point is outside every grid; with lat and long exchanged it is inside "
                "one: are they swapped?",
                field="lat",
            )
    else:
        assert new.address_id is not None  # parse_request requires one of the two
        lon, lat = building_point(db, new.address_id)
    description = new.description or str(kind["name_en"] if english else kind["name"])
    case_id = service.report_case(
        db,
        actor=who.name,
        category=kind["code"],
        lon=lon,
        lat=lat,
        description=description,
        now=now,
        scope=who.scope,
        reporter_name=new.reporter_name,
        reporter_contact=new.reporter_contact,
        source="open311",
        client=who.name,
        fields=FIELDS,
    )["id"]
    extras = zip(EXTRA_KINDS, (new.media_url, new.address_string, new.address_id), strict=True)
    for kind_, value in extras:
        if value is not None:
            q.add_event(db, case_id, at=now, actor=who.name, kind=kind_, note=value)
    if photo is not None:
        photos.add(db, who, case_id, photo, now)
    return case_id


# --- reading requests ------------------------------------------------------------------------


def _latest(kinds: str) -> str:
    return (
        "(SELECT e.note FROM case_event e WHERE e.case_id = c.id AND e.kind IN ("  # noqa: S608
        + kinds
        + ") ORDER BY e.at DESC, e.id DESC LIMIT 1)"
    )


REQUEST_SQL = f"""
SELECT c.id, k.code AS service_code, k.name, k.name_en, c.status::text AS status,
       c.level::text AS level, g.code AS grid, m.code AS community, s.code AS street,
       d.name AS department, d.name_en AS department_en, c.description, c.opened_at,
       c.due_at, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, c.reporter_name,
       c.reporter_contact, {{seen}} AS seen,
       (SELECT max(e.at) FROM case_event e WHERE e.case_id = c.id) AS updated_at,
       {_latest(", ".join(f"'{k}'" for k in NOTE_KINDS))} AS status_notes,
       {_latest("'media_url'")} AS media_url,
       {_latest("'address'")} AS address,
       {_latest("'address_id'")} AS address_id,
       ph.id AS photo_id, ph.content_type AS photo_type
{CASE_FROM}
    LEFT JOIN LATERAL (SELECT p.id, p.content_type FROM case_photo p WHERE p.case_id = c.id
                       ORDER BY p.id LIMIT 1) ph ON true"""  # noqa: S608


@dataclass(frozen=True)
class Filters:
    """The standard's filters, checked: ids override every other one."""

    ids: list[int] | None = None
    codes: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: list[str] | None = None


def requests(
    db: Db, viewer: Viewer | None, filters: Filters, *, contacts: bool, limit: int = MAX_REQUESTS
) -> list[dict[str, Any]]:
    """The requests a viewer may see (``None``: the public listing, everywhere, no contact),
    newest first. ``contacts``: keep the reporter's name and contact on the rows the viewer
    sees as a case (the caller decides whether their role handles cases)."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if viewer is None:
        seen = "false"
    else:
        seen = f"({CASE_SEEN_SQL})"
        where.append(CASE_SEEN_SQL)
        params |= viewer.params()
    if filters.ids is not None:
        where.append("c.id = ANY(:ids)")
        params["ids"] = filters.ids
    else:
        if filters.codes:
            where.append("k.code = ANY(:codes)")
            params["codes"] = filters.codes
        if filters.start is not None:
            where.append("c.opened_at >= :start")
            params["start"] = filters.start
        if filters.end is not None:
            where.append("c.opened_at <= :end")
            params["end"] = filters.end
        if filters.statuses:
            where.append("c.status::text = ANY(:statuses)")
            params["statuses"] = [s for s, o in STATUS.items() if o in filters.statuses]
    sql = REQUEST_SQL.replace("{seen}", seen) + (f" WHERE {' AND '.join(where)}" if where else "")
    rows = [
        dict(r)
        for r in db.execute(
            text(sql + " ORDER BY c.opened_at DESC, c.id DESC LIMIT :limit"), params
        ).mappings()
    ]
    for r in rows:
        r["open311_status"] = STATUS[r["status"]]
        if not (contacts and r["seen"]):
            r["reporter_name"] = r["reporter_contact"] = None
    return rows


def media(db: Db, viewer: Viewer | None, case_id: int, photo_id: int) -> tuple[str, bytes]:
    """The photo a request's ``media_url`` names (its case's first, as stored: no metadata),
    to whoever may read the request (``None``: the public listing). The case's other photos
    are the handlers' (the case page), not the request's readers'."""
    rows = requests(db, viewer, Filters(ids=[case_id]), contacts=False, limit=1)
    if not rows or rows[0]["photo_id"] != photo_id:
        raise NotFound(f"no photo {photo_id} of request {case_id}", field="photo_id")
    return photos.stored(db, case_id, photo_id)


# --- tokens ----------------------------------------------------------------------------------


def token_for(case_id: int, secret: str) -> str:
    """The token of a request: its id and a signature only this deployment can make."""
    mac = hmac.new(secret.encode(), f"open311:{case_id}".encode(), hashlib.sha256)
    return f"{case_id}-{mac.hexdigest()[:24]}"


def case_of_token(db: Db, token: str, secret: str) -> int:
    """The request a token was given for, or NotFound (a forged token is not found either)."""
    head, _, _ = token.partition("-")
    if head.isdigit() and len(head) < 12:
        case_id = int(head)
        if (
            hmac.compare_digest(token, token_for(case_id, secret))
            and db.execute(
                text("SELECT 1 FROM incident_case WHERE id = :id"), {"id": case_id}
            ).scalar()
        ):
            return case_id
    raise NotFound("no request was given this token", field="token")
