"""Use cases of the case flow: report (routed), move, escalate, hand to a department and back,
the deadline sweep. Each takes the caller's session (one transaction) and the time ``now``
(the tests' clock); every change writes its history entry in the same transaction.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from data.access.queries import Db
from data.db import transaction
from data.incidents import queries as q
from data.incidents.queries import Viewer
from geo.errors import Conflict, Forbidden, InvalidInput
from geo.incidents import rules

DESCRIPTION_MAX = 4000


def viewer(
    db: Db, scope: Any, user_id: int | None, name: str, *, department_account: bool = False
) -> Viewer:
    """Who asks; a department's account sees only the cases that are with its department."""
    return Viewer(scope, user_id, q.department_of_user(db, user_id), name, department_account)


def _text(value: str | None, field: str, *, required: bool, limit: int) -> str | None:
    text_ = (value or "").strip()
    if required and not text_:
        raise InvalidInput("required", field=field)
    if len(text_) > limit:
        raise InvalidInput.said("too_long", limit=limit, field=field)
    if "\x00" in text_:
        raise InvalidInput("NUL characters are not allowed", field=field)
    return text_ or None


def check_point(lon: Any, lat: Any, *, lon_field: str = "lon", lat_field: str = "lat") -> None:
    for value, field, bound in ((lon, lon_field, 180.0), (lat, lat_field, 90.0)):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidInput("a number is required", field=field)
        if not math.isfinite(value) or abs(value) > bound:
            raise InvalidInput.said("between", bound=f"{bound:g}", field=field)


def report_case(
    db: Db,
    *,
    actor: str,
    category: str,
    lon: float,
    lat: float,
    description: str | None,
    now: datetime,
    scope: Any = None,
    reporter_name: str | None = None,
    reporter_contact: str | None = None,
    source: str = "app",
    client: str | None = None,
    fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Store a report as an incident and its case, routed: to the worker of its grid when its
    category starts at grid level, else to the staff of the category's first level. A point
    outside every grid, or (for staff) outside the caller's area, is refused; nothing stored.

    The case is answered as :func:`data.incidents.queries.case` reads it, with its history:
    the category, the grid, the area check and every write are one statement
    (``queries.REPORT_SQL``), so a report costs one round trip before its commit. Refusals
    name the same field in the same order as before: the category, then the point, the
    description, the reporter, the grid, the area."""
    f = {"category": "category", "lon": "lon", "lat": "lat", "description": "description"}
    f |= fields or {}
    try:
        check_point(lon, lat, lon_field=f["lon"], lat_field=f["lat"])
        body = _text(description, f["description"], required=True, limit=DESCRIPTION_MAX)
        name = _text(reporter_name, "reporter_name", required=False, limit=200)
        contact = _text(reporter_contact, "reporter_contact", required=False, limit=200)
    except InvalidInput:
        q.category(db, category, field=f["category"])  # an unknown category is named first
        raise
    limited = scope is not None and not scope.unrestricted
    row = q.store_report(
        db,
        {
            "cat": category,
            "lon": lon,
            "lat": lat,
            "grid_ids": scope.sql_ids("grid") if limited else None,
            "summary": (body or "")[:500],
            "body": body,
            "name": name,
            "contact": contact,
            "source": source,
            "client": client,
            "now": now,
            "actor": actor,
            "note": f"{source}" + (f" ({client})" if client else ""),
        },
    )
    if not row.pop("known"):
        raise InvalidInput.said("unknown_category", code=category, field=f["category"])
    if row.pop("placed_grid_id") is None:
        raise InvalidInput("the point is outside every grid", field=f["lon"])
    if row["id"] is None:
        raise Forbidden("the point is outside your area", field=f["lon"])
    return row


def act(
    db: Db, who: Viewer, case_id: int, action: str, note: str | None, now: datetime
) -> dict[str, Any]:
    """Accept, start, resolve, close or reopen a case the caller sees."""
    row = q.case(db, case_id, who, lock=True)
    clean = rules.clean_note(note, required=rules.note_required(action))
    to = rules.move(row["status"], action)
    sets = ["status = CAST(:to AS case_status)"]
    params: dict[str, Any] = {"id": case_id, "to": to, "now": now}
    if action == "accept" or (action == "start" and row["assignee_id"] is None):
        sets.append("assignee_id = :me")
        params["me"] = who.user_id
    if to == "resolved":
        sets += [
            "resolved_at = :now",
            "resolved_in_time = (:now <= due_at AND NOT EXISTS ("
            "SELECT 1 FROM case_event e WHERE e.case_id = incident_case.id "
            "AND e.kind = 'escalated' AND e.actor = 'system'))",
        ]
    if to == "closed":
        sets.append("closed_at = :now")
    if action == "reopen":
        kind = q.category(db, row["category"], retired_too=True)
        sets += [
            "resolved_at = NULL",
            "resolved_in_time = NULL",
            "closed_at = NULL",
            "due_at = :due",
        ]
        params["due"] = q.deadlines(kind).due(row["level"], now)
    db.execute(
        text(f"UPDATE incident_case SET {', '.join(sets)} WHERE id = :id"),  # noqa: S608
        params,
    )
    q.set_incident_status(db, case_id, to, now)
    q.add_event(
        db,
        case_id,
        at=now,
        actor=who.name,
        kind=action,
        from_status=row["status"],
        to_status=to,
        note=clean,
    )
    if action == "reopen":
        q.add_notice(
            db, case_id, at=now, level=row["level"], kind="reopened", user_id=row["assignee_id"]
        )
    return q.case(db, case_id, who)


def escalate(
    db: Db,
    who: Viewer,
    case_id: int,
    reason: str | None,
    now: datetime,
    *,
    webhook_url: str | None = None,
) -> dict[str, Any]:
    """A handler sends the case one level up, saying why; the next level's staff are told
    (a notice, and the webhook if one is set)."""
    row = q.case(db, case_id, who, lock=True)
    clean = rules.clean_note(reason, required=True, field="reason")
    up = rules.escalation(row["status"], row["level"])
    kind = q.category(db, row["category"], retired_too=True)
    db.execute(
        text(
            "UPDATE incident_case SET level = CAST(:up AS case_level), "
            "top_level = GREATEST(top_level, CAST(:up AS case_level)), status = 'new', "
            "assignee_id = NULL, escalations = escalations + 1, due_at = :due WHERE id = :id"
        ),
        {"id": case_id, "up": up, "due": q.deadlines(kind).due(up, now)},
    )
    q.set_incident_status(db, case_id, "new", now)
    q.add_event(
        db,
        case_id,
        at=now,
        actor=who.name,
        kind="escalated",
        from_status=row["status"],
        to_status="new",
        from_level=row["level"],
        to_level=up,
        note=clean,
    )
    q.add_notice(db, case_id, at=now, level=up, kind="escalated")
    q.queue_case_hook(db, case_id, "escalated", row["level"], clean, url=webhook_url, now=now)
    return q.case(db, case_id, who)


def hand_to_department(
    db: Db,
    who: Viewer,
    case_id: int,
    department: str | None,
    note: str | None,
    now: datetime,
    *,
    webhook_url: str | None = None,
) -> dict[str, Any]:
    """Give an open case to a department (the category's, unless another is named) that serves
    the case's area (``queries.SERVES_SQL``); the department is told (a notice, and the
    webhook if one is set)."""
    row = q.case(db, case_id, who, lock=True)
    if who.department_account:
        # A department gives a case back (POST …/return) with what it did; passing it on to
        # another department is the area's handlers' decision, not the department's.
        raise Forbidden(
            "a department returns the case to its area's handlers, who may hand it on",
            field="department",
        )
    if row["status"] not in rules.OPEN:
        raise Conflict(f"a {row['status']} case is not handed over", field="department")
    if department is None:
        department = row["category_department"]
        if department is None:
            raise InvalidInput("this category has no department; name one", field="department")
    dept = q.department_id(db, department)
    if row["department_id"] == dept:
        raise Conflict(f"the case is already with {department}", field="department")
    if dept is not None and not q.serves(db, dept, row):
        raise InvalidInput(f"{department} does not serve this case's area", field="department")
    clean = rules.clean_note(note, required=False)
    db.execute(
        text("UPDATE incident_case SET department_id = :d WHERE id = :id"),
        {"id": case_id, "d": dept},
    )
    q.add_event(
        db,
        case_id,
        at=now,
        actor=who.name,
        kind="to_department",
        note=f"{department}" + (f": {clean}" if clean else ""),
    )
    q.add_notice(db, case_id, at=now, level=row["level"], kind="to_department", department_id=dept)
    q.queue_case_hook(db, case_id, "to_department", row["level"], clean, url=webhook_url, now=now)
    return q.case(db, case_id, who)


def return_from_department(
    db: Db, who: Viewer, case_id: int, note: str | None, now: datetime
) -> dict[str, Any]:
    """The department gives the case back to the level that holds it, saying what it did."""
    row = q.case(db, case_id, who, lock=True)
    if row["department_id"] is None:
        raise Conflict("the case is not with a department", field="department")
    clean = rules.clean_note(note, required=True)
    db.execute(
        text("UPDATE incident_case SET department_id = NULL WHERE id = :id"), {"id": case_id}
    )
    q.add_event(
        db,
        case_id,
        at=now,
        actor=who.name,
        kind="from_department",
        note=f"{row['department']}: {clean}",
    )
    q.add_notice(
        db, case_id, at=now, level=row["level"], kind="from_department", user_id=row["assignee_id"]
    )
    if who.department_account:  # no longer theirs to see: answer with what they gave back
        return row | {"department": None, "department_id": None}
    return q.case(db, case_id, who)


#: The open grid-level cases of some grids that are not with the grid's worker's account:
#: held by a grid worker who no longer has the grid, or by nobody while the grid has a worker
#: now. A case a community or street handler took (an account that is no grid worker's) stays.
_STRAYED_SQL = """
SELECT c.id, c.status::text AS status, w.user_id AS to_user, g.code AS grid, c.due_at,
       k.hours_grid
FROM incident_case c JOIN incident t ON t.id = c.id
JOIN incident_category k ON k.id = c.category_id
JOIN grid g ON g.id = t.grid_id AND g.valid_to IS NULL
LEFT JOIN worker w ON w.id = g.worker_id
WHERE (CAST(:grids AS int[]) IS NULL OR t.grid_id = ANY(:grids)) AND c.level = 'grid'
  AND c.status IN ('new', 'accepted', 'in_progress')
  AND c.assignee_id IS DISTINCT FROM w.user_id
  AND (c.assignee_id IS NULL
       OR EXISTS (SELECT 1 FROM worker o WHERE o.user_id = c.assignee_id))
ORDER BY c.id
FOR UPDATE OF c
"""


def follow_grid_workers(
    db: Db,
    grid_ids: list[int] | None,
    *,
    actor: str,
    now: datetime | None = None,
    webhook_url: str | None = None,
) -> int:
    """Hand each open grid-level case of these grids to the grid's worker as it is now.

    A case is routed to its grid's worker when it is reported; a re-plan (the incident moves
    to a new grid), the planner's worker step or a grid's new worker changes who that is, and
    the old worker, whose area no longer holds the grid, could no longer even see the case.
    So the case goes to the new worker as a new case (they accept it themselves), with a
    history entry naming the grid and a notice, and at least the grid level's hours left
    (:func:`geo.incidents.rules.due_after_hand_over`); without a worker it waits, new, for the
    grid's community. The case webhook (if set) hears ``handed_over``, the reason being the
    grid's code. ``grid_ids`` None: every current grid (after a grid import). Answers how
    many cases were handed over.
    """
    if grid_ids is not None and not grid_ids:
        return 0
    grids = None if grid_ids is None else sorted(set(grid_ids))
    rows = db.execute(text(_STRAYED_SQL), {"grids": grids}).mappings().all()
    if not rows:
        return 0
    at = now or db.execute(text("SELECT now()")).scalar_one()
    for r in rows:
        db.execute(
            text(
                "UPDATE incident_case SET assignee_id = :u, status = 'new', due_at = :due "
                "WHERE id = :id"
            ),
            {
                "id": r["id"],
                "u": r["to_user"],
                "due": rules.due_after_hand_over(r["due_at"], r["hours_grid"], at),
            },
        )
        q.set_incident_status(db, r["id"], "new", at)
        q.add_event(
            db,
            r["id"],
            at=at,
            actor=actor,
            kind="handed_over",
            from_status=r["status"],
            to_status="new",
            note=r["grid"],
        )
        q.add_notice(db, r["id"], at=at, level="grid", kind="handed_over", user_id=r["to_user"])
        q.queue_case_hook(db, r["id"], "handed_over", "grid", r["grid"], url=webhook_url, now=at)
    return len(rows)


SWEEP_BATCH = 20_000
SWEEP_WORKERS = 2  # this project's machine has two cores; a backlog's batches share them


def sweep(
    engine: Engine,
    *,
    now: datetime,
    webhook_url: str | None = None,
    batch: int = SWEEP_BATCH,
    workers: int = SWEEP_WORKERS,
) -> int:
    """Escalate every open case whose deadline has passed by one level (the periodic task),
    ``batch`` cases per transaction (each with its history, notices and webhooks), so that a
    backlog never holds its row locks against the handlers for long.

    A tick's share of cases fits in one batch and is escalated on this thread. Only when the
    first batch comes back full (a backlog: the server was down over many deadlines) do
    ``workers`` connections take the rest at once; ``FOR UPDATE SKIP LOCKED`` in the sweep's
    statement hands each batch's cases to exactly one of them, and each batch is one
    transaction, so what the history says is the same as one worker's."""

    def batches() -> int:
        done = 0
        while True:
            with transaction(engine) as session:
                moved = len(q.sweep(session, now, hook_url=webhook_url, limit=batch))
            done += moved
            if moved < batch:
                return done

    with transaction(engine) as session:
        first = len(q.sweep(session, now, hook_url=webhook_url, limit=batch))
    if first < batch:
        return first
    if workers <= 1:
        return first + batches()
    with ThreadPoolExecutor(workers, thread_name_prefix="sweep") as pool:
        return first + sum(pool.map(lambda _: batches(), range(workers)))
