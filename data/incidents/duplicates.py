"""Possible duplicates of a report, and the link that says one case repeats another.

The same broken light is reported by three neighbours; handling it three times wastes the
grid worker's day and skews the figures. So a report is offered the cases of the same
category within :data:`WITHIN_M` metres and :data:`WITHIN_DAYS` days (before the reporter
sends it, and on the case page), and a handler may link one as a duplicate of the other. The
distance is measured in the deployment's metric CRS (``data.crs``), like every distance in
gridwork; the WGS-84 GiST index on ``incident.geom`` finds the candidates first.

A case is a duplicate of at most one other, and links do not chain: the case linked to is
never itself a duplicate, and a case others repeat is not made a duplicate in turn. Each link
is written in the history of both cases.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from data.access.queries import Db
from data.crs import metric_epsg, require_epsg
from data.incidents import queries as q
from data.incidents.queries import CASE_SEEN_SQL, Viewer
from geo.errors import Conflict, InvalidInput

WITHIN_M = 50.0
WITHIN_DAYS = 7
FIELD = "duplicate_of"

NEARBY_SQL = f"""
WITH p AS (
    SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g,
           ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), CAST(:epsg AS integer)) AS m
)
SELECT c.id, k.code AS category, k.name AS category_name, k.name_en AS category_name_en,
       c.status::text AS status, c.opened_at, left(c.description, 200) AS description,
       round(ST_Distance(ST_Transform(t.geom, CAST(:epsg AS integer)), p.m)::numeric, 1)::float
         AS distance_m,
       l.duplicate_of
FROM p, incident_case c
JOIN incident t ON t.id = c.id
JOIN incident_category k ON k.id = c.category_id
LEFT JOIN case_link l ON l.case_id = c.id
WHERE k.code = :category
  AND c.opened_at >= :since AND c.opened_at <= :until
  AND c.id <> COALESCE(CAST(:exclude AS integer), -1)
  AND t.geom && ST_Transform(ST_Expand(p.m, :box), 4326)
  AND ST_DWithin(ST_Transform(t.geom, CAST(:epsg AS integer)), p.m, :within)
  AND {CASE_SEEN_SQL}
ORDER BY distance_m, c.opened_at, c.id
LIMIT :limit
"""  # noqa: S608


def nearby(
    db: Db,
    who: Viewer,
    *,
    category: str,
    lon: float,
    lat: float,
    at: datetime,
    exclude: int | None = None,
    metric_override: int | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Cases the caller sees, of ``category``, within 50 m of the point and 7 days of ``at``
    (either side), nearest first; ``exclude`` is the case asking."""
    q.category(db, category)
    epsg = require_epsg(metric_epsg(db, metric_override))
    rows = db.execute(
        text(NEARBY_SQL),
        {
            "lon": lon,
            "lat": lat,
            "epsg": epsg,
            "category": category,
            "since": at - timedelta(days=WITHIN_DAYS),
            "until": at + timedelta(days=WITHIN_DAYS),
            "exclude": exclude,
            "box": WITHIN_M * 1.05,  # a margin for the box's edges, straight in WGS-84
            "within": WITHIN_M,
            "limit": limit,
        }
        | who.params(),
    ).mappings()
    return [dict(r) for r in rows]


def for_case(
    db: Db, who: Viewer, case_id: int, *, metric_override: int | None = None
) -> dict[str, Any]:
    """A case's link (the case it repeats, the cases repeating it) and, while it is linked
    to nothing, the cases it may repeat."""
    row = q.case(db, case_id, who)
    links = _links(db, who, case_id)
    suggestions: list[dict[str, Any]] = []
    if links["duplicate_of"] is None:
        suggestions = [
            s
            for s in nearby(
                db,
                who,
                category=row["category"],
                lon=row["lon"],
                lat=row["lat"],
                at=row["opened_at"],
                exclude=case_id,
                metric_override=metric_override,
            )
            if s["duplicate_of"] is None and s["id"] not in links["duplicates"]
        ]
    return links | {"suggestions": suggestions}


def _links(db: Db, who: Viewer, case_id: int) -> dict[str, Any]:
    of = db.execute(
        text("SELECT duplicate_of FROM case_link WHERE case_id = :id"), {"id": case_id}
    ).scalar()
    repeats = db.execute(
        text(
            "SELECT l.case_id FROM case_link l JOIN incident_case c ON c.id = l.case_id "  # noqa: S608
            f"JOIN incident t ON t.id = c.id WHERE l.duplicate_of = :id AND {CASE_SEEN_SQL} "
            "ORDER BY l.case_id"
        ),
        {"id": case_id} | who.params(),
    ).scalars()
    return {"duplicate_of": of, "duplicates": [int(r) for r in repeats]}


def link(db: Db, who: Viewer, case_id: int, duplicate_of: int, now: datetime) -> dict[str, Any]:
    """Record that ``case_id`` repeats ``duplicate_of`` (both seen by the caller), with an
    entry in the history of each."""
    if case_id == duplicate_of:
        raise InvalidInput("a case cannot be a duplicate of itself", field=FIELD)
    for either in sorted((case_id, duplicate_of)):  # one order, so two links never deadlock
        q.case(db, either, who, lock=True)
    known = db.execute(
        text(
            "SELECT case_id, duplicate_of FROM case_link "
            "WHERE case_id IN (:a, :b) OR duplicate_of = :a"
        ),
        {"a": case_id, "b": duplicate_of},
    ).all()
    for linked, of in known:
        if linked == case_id:
            raise Conflict(f"case {case_id} is already a duplicate of case {of}", field=FIELD)
        if linked == duplicate_of:
            raise Conflict(
                f"case {duplicate_of} is itself a duplicate of case {of}; link to case {of}",
                field=FIELD,
            )
        if of == case_id:
            raise Conflict(
                f"case {linked} is a duplicate of case {case_id}; link case {duplicate_of} "
                f"to case {case_id} instead",
                field=FIELD,
            )
    db.execute(
        text(
            "INSERT INTO case_link (case_id, duplicate_of, at, actor) VALUES (:a, :b, :now, :who)"
        ),
        {"a": case_id, "b": duplicate_of, "now": now, "who": who.name},
    )
    q.add_event(db, case_id, at=now, actor=who.name, kind="duplicate_of", note=f"#{duplicate_of}")
    q.add_event(
        db, duplicate_of, at=now, actor=who.name, kind="duplicate_linked", note=f"#{case_id}"
    )
    return _links(db, who, case_id)
