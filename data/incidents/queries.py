"""SQL for cases: the catalogue, departments, rows seen by a caller, history, notices, figures.

Who sees a case: staff, when the incident's grid is in their area
(``data.policy.ASSIGNED_ROW_SQL`` over alias ``t``); a department's account, while the case is
with that department (``:dept_id``), and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from data.access.queries import AreaScope, Db, find_user
from data.models import Role
from data.policy import ASSIGNED_ROW_SQL
from data.sql import Filters
from geo.errors import Conflict, InvalidInput, NotFound
from geo.incidents.rules import MOVES, Deadlines

#: A case the caller may see (aliases: ``t`` incident, ``c`` case); binds :grid_ids, :dept_id.
CASE_SEEN_SQL = (
    f"((NOT CAST(:dept_account AS boolean) AND {ASSIGNED_ROW_SQL}) "
    "OR (c.department_id IS NOT NULL AND c.department_id = :dept_id))"
)


#: A case still to be dealt with (``geo.incidents.rules.OPEN``), in ``CASE_FROM``'s names.
OPEN_CASE_SQL = "c.status IN ('new', 'accepted', 'in_progress')"


@dataclass(frozen=True)
class Viewer:
    """Who is asking: area, account and department (if the account is one)."""

    scope: AreaScope
    user_id: int | None
    dept_id: int | None
    name: str
    department_account: bool = False

    def params(self) -> dict[str, Any]:
        return {
            "grid_ids": self.scope.sql_ids("grid"),
            "dept_id": self.dept_id,
            "dept_account": self.department_account,
        }


# --- catalogue and departments ---------------------------------------------------------------

CATEGORY_COLUMNS = (
    "k.id, k.code, k.name, k.name_en, k.first_level::text AS first_level, "
    "d.code AS department, d.name AS department_name, d.name_en AS department_name_en, "
    "k.hours_grid, k.hours_community, k.hours_street, "
    "k.hours_district, k.active"
)


def categories(db: Db, *, active_only: bool = True) -> list[dict[str, Any]]:
    rows = db.execute(
        text(
            f"SELECT {CATEGORY_COLUMNS} FROM incident_category k "  # noqa: S608
            "LEFT JOIN department d ON d.id = k.department_id "
            + ("WHERE k.active " if active_only else "")
            + "ORDER BY k.code"
        )
    ).mappings()
    return [dict(r) for r in rows]


def category(
    db: Db, code: str, *, field: str = "category", retired_too: bool = False
) -> dict[str, Any]:
    """A category by code, refused when unknown or, for a new report, retired. A case
    already open under a category that is retired since (``retired_too``) is still
    escalated, reopened and handed over by its hours and department."""
    row = (
        db.execute(
            text(
                f"SELECT {CATEGORY_COLUMNS} FROM incident_category k "  # noqa: S608
                "LEFT JOIN department d ON d.id = k.department_id WHERE k.code = :c"
            ),
            {"c": code},
        )
        .mappings()
        .first()
    )
    if row is None or not (row["active"] or retired_too):
        raise InvalidInput.said("unknown_category", code=code, field=field)
    return dict(row)


def deadlines(row: dict[str, Any]) -> Deadlines:
    return Deadlines(
        row["hours_grid"], row["hours_community"], row["hours_street"], row["hours_district"]
    )


def department_id(db: Db, code: str | None, *, field: str = "department") -> int | None:
    if code is None:
        return None
    found = db.execute(text("SELECT id FROM department WHERE code = :c"), {"c": code}).scalar()
    if found is None:
        raise InvalidInput(f"unknown department '{code}'", field=field)
    return int(found)


def save_category(db: Db, values: dict[str, Any]) -> dict[str, Any]:
    """Insert or change a category by code (admins)."""
    dept = department_id(db, values.get("department"))
    db.execute(
        text(
            "INSERT INTO incident_category (code, name, name_en, first_level, department_id, "
            "hours_grid, hours_community, hours_street, hours_district, active) VALUES "
            "(:code, :name, :name_en, CAST(:first_level AS case_level), :dept, :hours_grid, "
            ":hours_community, :hours_street, :hours_district, :active) "
            "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en, "
            "first_level = EXCLUDED.first_level, department_id = EXCLUDED.department_id, "
            "hours_grid = EXCLUDED.hours_grid, hours_community = EXCLUDED.hours_community, "
            "hours_street = EXCLUDED.hours_street, hours_district = EXCLUDED.hours_district, "
            "active = EXCLUDED.active"
        ),
        values | {"dept": dept},
    )
    return category(db, values["code"]) if values["active"] else values


#: The department ``d`` serves the place of a case (binds :grid_id, :community_id,
#: :street_id: the case's grid, community and street): the areas it serves are its account's
#: scope (a street, community or grid, by code, as ``resolve_scope`` expands them); a
#: department with no account, or whose account has no scope, has declared no areas and
#: serves the whole district. What it *sees* stays the cases handed to it (``CASE_SEEN_SQL``).
SERVES_SQL = """
(d.user_id IS NULL
 OR NOT EXISTS (SELECT 1 FROM user_scope a WHERE a.user_id = d.user_id)
 OR EXISTS (SELECT 1 FROM user_scope a WHERE a.user_id = d.user_id AND (
     (a.level = 'grid' AND a.code = (SELECT code FROM grid WHERE id = :grid_id))
     OR (a.level = 'community' AND a.code = (SELECT code FROM community WHERE id = :community_id))
     OR (a.level = 'street' AND a.code = (SELECT code FROM street WHERE id = :street_id)))))
"""


def _place_of(case_row: dict[str, Any]) -> dict[str, Any]:
    return {k: case_row[k] for k in ("grid_id", "community_id", "street_id")}


def departments(db: Db, *, serving: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every department, or (``serving``: a row of :func:`case`) those serving its place."""
    where = f"WHERE {SERVES_SQL} " if serving is not None else ""
    rows = db.execute(
        text(
            "SELECT d.id, d.code, d.name, d.name_en, u.username AS account FROM department d "  # noqa: S608
            f"LEFT JOIN app_user u ON u.id = d.user_id {where}ORDER BY d.code"
        ),
        {} if serving is None else _place_of(serving),
    ).mappings()
    return [dict(r) for r in rows]


def serves(db: Db, department_id: int, case_row: dict[str, Any]) -> bool:
    """Whether the department serves the place of the case (a row of :func:`case`)."""
    return bool(
        db.execute(
            text(f"SELECT {SERVES_SQL} FROM department d WHERE d.id = :d"),  # noqa: S608
            {"d": department_id} | _place_of(case_row),
        ).scalar()
    )


def save_department(
    db: Db, code: str, name: str, name_en: str, account: str | None
) -> dict[str, Any]:
    user_id = None
    if account is not None:
        user = find_user(db, account)
        if user is None:
            raise InvalidInput(f"no account '{account}'", field="account")
        if user.role != Role.department:
            raise InvalidInput(f"'{account}' is not a department account", field="account")
        user_id = user.id
    taken = db.execute(
        text("SELECT code FROM department WHERE user_id = :u AND code <> :c"),
        {"u": user_id, "c": code},
    ).scalar()
    if user_id is not None and taken is not None:
        raise Conflict(f"'{account}' already signs in for department {taken}", field="account")
    db.execute(
        text(
            "INSERT INTO department (code, name, name_en, user_id) VALUES (:c, :n, :e, :u) "
            "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en, "
            "user_id = EXCLUDED.user_id"
        ),
        {"c": code, "n": name, "e": name_en, "u": user_id},
    )
    return {"code": code, "name": name, "name_en": name_en, "account": account}


def department_of_user(db: Db, user_id: int | None) -> int | None:
    if user_id is None:
        return None
    found = db.execute(
        text("SELECT id FROM department WHERE user_id = :u"), {"u": user_id}
    ).scalar()
    return None if found is None else int(found)


def scope_levels(db: Db, user_id: int | None) -> set[str]:
    """The levels an account holds (its scopes'), for notices meant for a level's staff."""
    if user_id is None:
        return set()
    rows = db.execute(
        text("SELECT DISTINCT level::text FROM user_scope WHERE user_id = :u"), {"u": user_id}
    ).scalars()
    return set(rows)


def notice_levels(db: Db, user_id: int | None, *, whole_district: bool) -> set[str]:
    """The levels whose notices an account reads: its scopes' levels, and the district's for
    an account of the whole district. Not every level's: a notice says a case came to the
    reader's level ("small matters stay in the grid"), and the district's staff would
    otherwise be told of every grid's new case. The page and the API read the same."""
    return scope_levels(db, user_id) | ({"district"} if whole_district else set())


# --- placing a report ------------------------------------------------------------------------


def place(db: Db, lon: float, lat: float) -> dict[str, Any] | None:
    """The grid covering a point, with its community, street and the worker's account."""
    row = (
        db.execute(
            text(
                "SELECT g.id AS grid_id, g.code AS grid, g.community_id, m.street_id, "
                "w.user_id AS worker_user_id FROM grid g "
                "JOIN community m ON m.id = g.community_id "
                "LEFT JOIN worker w ON w.id = g.worker_id "
                "WHERE g.id = grid_covering(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            {"lon": lon, "lat": lat},
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


# --- storing a report ------------------------------------------------------------------------

#: A report stored and answered in one statement: the category (active, by code), the grid
#: covering the point (``grid_covering``, in the statement that stores it), the caller's area
#: (:grid_ids, NULL: everywhere), then the incident, its case (due after the first level's
#: hours), the history entry and the notice to the routed worker or level, each written only
#: when all three hold. It answers one row: whether the category is known, the covering grid,
#: and (when stored) the case as :func:`case` reads it with its history entry (``e_*``).
REPORT_SQL = """
WITH k AS (
    SELECT k.id, k.code, k.name, k.name_en, k.first_level,
           CASE k.first_level WHEN 'grid' THEN k.hours_grid
                WHEN 'community' THEN k.hours_community WHEN 'street' THEN k.hours_street
                ELSE k.hours_district END AS hours
    FROM incident_category k WHERE k.code = :cat AND k.active
), p AS (
    SELECT g.id AS grid_id, g.code AS grid, g.community_id, m.code AS community, m.street_id,
           s.code AS street, w.user_id AS worker_user_id
    FROM grid g JOIN community m ON m.id = g.community_id
    LEFT JOIN street s ON s.id = m.street_id
    LEFT JOIN worker w ON w.id = g.worker_id
    WHERE g.id = grid_covering(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
), ok AS (
    SELECT k.id AS category_id, k.code AS category, k.name AS category_name,
           k.name_en AS category_name_en, k.first_level, k.hours, p.*,
           CASE WHEN k.first_level = 'grid' THEN p.worker_user_id END AS assignee_id
    FROM k, p WHERE CAST(:grid_ids AS int[]) IS NULL OR p.grid_id = ANY(:grid_ids)
), i AS (
    INSERT INTO incident (category, status, summary, reported_at, geom, grid_id, snapped,
                          assign_distance_m)
    SELECT ok.category, 'open', :summary, :now, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
           ok.grid_id, false, 0 FROM ok
    RETURNING id, ST_X(geom) AS lon, ST_Y(geom) AS lat
), c AS (
    INSERT INTO incident_case (id, category_id, status, level, top_level, community_id,
                               street_id, assignee_id, description, reporter_name,
                               reporter_contact, source, client, opened_at, due_at)
    SELECT i.id, ok.category_id, 'new', ok.first_level, ok.first_level, ok.community_id,
           ok.street_id, ok.assignee_id, :body, :name, :contact, :source, :client, :now,
           :now + make_interval(hours => ok.hours)
    FROM i, ok
    RETURNING *
), e AS (
    INSERT INTO case_event (case_id, at, actor, kind, to_status, to_level, note)
    SELECT c.id, :now, :actor, 'reported', 'new', c.level, :note FROM c
    RETURNING at, actor, kind, from_status, to_status, from_level, to_level, note
), n AS (
    INSERT INTO case_notice (case_id, at, level, grid_id, community_id, street_id, user_id,
                             kind)
    SELECT c.id, :now, c.level, ok.grid_id, c.community_id, c.street_id, c.assignee_id, 'new'
    FROM c, ok
)
SELECT EXISTS (SELECT 1 FROM k) AS known, (SELECT grid_id FROM p) AS placed_grid_id,
    c.id, ok.category, ok.category_name, ok.category_name_en,
    c.status::text AS status, c.level::text AS level, c.top_level::text AS top_level,
    ok.grid, ok.community, ok.street, u.username AS assignee,
    (SELECT wk.display_name FROM worker wk WHERE wk.user_id = c.assignee_id) AS assignee_name,
    CAST(NULL AS varchar) AS department, CAST(NULL AS varchar) AS department_name,
    CAST(NULL AS varchar) AS department_name_en, c.description, c.source, c.opened_at, c.due_at,
    c.resolved_at, c.resolved_in_time, c.closed_at, c.escalations, i.lon, i.lat,
    c.reporter_name, c.reporter_contact, c.category_id, c.community_id, c.street_id,
    ok.grid_id, c.assignee_id, c.department_id,
    e.at AS e_at, e.actor AS e_actor, e.kind AS e_kind, e.from_status::text AS e_from_status,
    e.to_status::text AS e_to_status, e.from_level::text AS e_from_level,
    e.to_level::text AS e_to_level, e.note AS e_note
FROM (SELECT 1) one
LEFT JOIN (c JOIN i ON i.id = c.id CROSS JOIN ok CROSS JOIN e
           LEFT JOIN app_user u ON u.id = c.assignee_id) ON true
"""

HISTORY_KEYS = ("at", "actor", "kind", "from_status", "to_status", "from_level", "to_level", "note")
#: Every kind of history entry, by its writer: the report and the sweep (SQL here), the moves
#: and hand-offs (``service``), photos, duplicate links, and what an Open311 request brought
#: beyond a case's columns (``open311.EXTRA_KINDS``). The case page says each in words
#: (``api.routers.case_pages.EVENT_NAMES``); :func:`add_event` writes no other.
HISTORY_KINDS = (
    "reported",
    *MOVES,
    "escalated",
    "to_department",
    "from_department",
    "handed_over",
    "photo",
    "duplicate_of",
    "duplicate_linked",
    "media_url",
    "address",
    "address_id",
)


def store_report(db: Db, values: dict[str, Any]) -> dict[str, Any]:
    """Run :data:`REPORT_SQL` (one round trip); its one row, the history entry as a list."""
    row = dict(db.execute(text(REPORT_SQL), values).mappings().one())
    event = {key: row.pop(f"e_{key}") for key in HISTORY_KEYS}
    return row | {"history": [event] if row["id"] is not None else []}


# --- reading cases ---------------------------------------------------------------------------

CASE_COLUMNS = """
    c.id, k.code AS category, k.name AS category_name, k.name_en AS category_name_en,
    c.status::text AS status, c.level::text AS level, c.top_level::text AS top_level,
    g.code AS grid, m.code AS community, s.code AS street, u.username AS assignee,
    (SELECT wk.display_name FROM worker wk WHERE wk.user_id = c.assignee_id) AS assignee_name,
    d.code AS department, d.name AS department_name, d.name_en AS department_name_en,
    c.description, c.source, c.opened_at, c.due_at, c.resolved_at,
    c.resolved_in_time, c.closed_at, c.escalations,
    ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat
"""

CASE_FROM = """
    FROM incident_case c
    JOIN incident t ON t.id = c.id
    JOIN incident_category k ON k.id = c.category_id
    LEFT JOIN grid g ON g.id = t.grid_id
    LEFT JOIN community m ON m.id = c.community_id
    LEFT JOIN street s ON s.id = c.street_id
    LEFT JOIN app_user u ON u.id = c.assignee_id
    LEFT JOIN department d ON d.id = c.department_id
"""


def case(db: Db, case_id: int, viewer: Viewer, *, lock: bool = False) -> dict[str, Any]:
    """One case the viewer may see, or NotFound (the same answer as a case elsewhere)."""
    row = (
        db.execute(
            text(
                f"SELECT {CASE_COLUMNS}, c.reporter_name, c.reporter_contact, "  # noqa: S608
                "m.name AS community_name, s.name AS street_name, "
                "(SELECT kd.code FROM department kd WHERE kd.id = k.department_id) "
                "AS category_department, "
                f"c.category_id, c.community_id, c.street_id, t.grid_id, c.assignee_id, "
                f"c.department_id AS department_id {CASE_FROM} "
                f"WHERE c.id = :id AND {CASE_SEEN_SQL}" + (" FOR UPDATE OF c" if lock else "")
            ),
            {"id": case_id} | viewer.params(),
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound.said("no_case", field="case_id", case=case_id)
    return dict(row)


def list_cases(
    db: Db,
    viewer: Viewer,
    *,
    category: str | None = None,
    status: list[str] | None = None,
    grid: str | None = None,
    community: str | None = None,
    street: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    overdue_at: datetime | None = None,
    due_before: datetime | None = None,
    assignee_id: int | None = None,
    department_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    # An empty text or list filters nothing, as None does.
    where = Filters(CASE_SEEN_SQL, params=viewer.params() | {"limit": limit, "offset": offset})
    where.add("k.code = :category", category=category or None)
    where.add("c.status::text = ANY(:status)", status=status or None)
    where.add("g.code = :grid", grid=grid or None)
    where.add("m.code = :community", community=community or None)
    where.add("s.code = :street", street=street or None)
    where.add("c.opened_at >= :since", since=since)
    where.add("c.opened_at < :until", until=until)
    where.add(f"{OPEN_CASE_SQL} AND c.due_at <= :over", over=overdue_at)
    where.add(f"{OPEN_CASE_SQL} AND c.due_at <= :due", due=due_before)
    where.add("c.assignee_id = :assignee", assignee=assignee_id)
    where.add("c.department_id = :dept_only", dept_only=department_id)
    rows = db.execute(
        text(
            f"SELECT {CASE_COLUMNS} {CASE_FROM} WHERE {where.sql} "
            "ORDER BY (c.status IN ('resolved', 'closed')), c.due_at, c.id "
            "LIMIT :limit OFFSET :offset"
        ),
        where.params,
    ).mappings()
    return [dict(r) for r in rows]


def open_case_counts(db: Db, viewer: Viewer, at: datetime) -> dict[str, int]:
    """For a home page: the open cases the viewer may see (``?status=open`` of the list)
    and how many of them are overdue at ``at`` (``?due=overdue``). Counts only."""
    row = db.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE c.due_at <= :at) "
            f"{CASE_FROM} WHERE {CASE_SEEN_SQL} AND {OPEN_CASE_SQL}"
        ),
        viewer.params() | {"at": at},
    ).one()
    return {"open": int(row[0]), "overdue": int(row[1])}


def my_case_counts(db: Db, viewer: Viewer, at: datetime) -> dict[str, int]:
    """For a home page: the cases ``/app/incidents/mine`` lists (open ones assigned to the
    viewer, and new ones of their area nobody took yet), and how many of those are overdue
    at ``at``. Counts only: no case is read, so nothing is audited."""
    row = db.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE c.due_at <= :at) "
            f"{CASE_FROM} WHERE {CASE_SEEN_SQL} AND ("
            f"({OPEN_CASE_SQL} AND c.assignee_id = :me) "
            "OR (c.status = 'new' AND c.assignee_id IS NULL))"
        ),
        viewer.params() | {"me": viewer.user_id, "at": at},
    ).one()
    return {"waiting": int(row[0]), "overdue": int(row[1])}


def history(db: Db, case_id: int) -> list[dict[str, Any]]:
    rows = db.execute(
        text(
            "SELECT at, actor, kind, from_status::text AS from_status, to_status::text AS "
            "to_status, from_level::text AS from_level, to_level::text AS to_level, note "
            "FROM case_event WHERE case_id = :id ORDER BY at, id"
        ),
        {"id": case_id},
    ).mappings()
    return [dict(r) for r in rows]


# --- writing ---------------------------------------------------------------------------------


def add_event(
    db: Db,
    case_id: int,
    *,
    at: datetime,
    actor: str,
    kind: str,
    from_status: str | None = None,
    to_status: str | None = None,
    from_level: str | None = None,
    to_level: str | None = None,
    note: str | None = None,
) -> None:
    if kind not in HISTORY_KINDS:  # a kind the case page could not say in words
        raise ValueError(f"unknown history kind {kind!r}: add it to HISTORY_KINDS")
    db.execute(
        text(
            "INSERT INTO case_event (case_id, at, actor, kind, from_status, to_status, "
            "from_level, to_level, note) VALUES (:id, :at, :actor, :kind, "
            "CAST(:fs AS case_status), CAST(:ts AS case_status), CAST(:fl AS case_level), "
            "CAST(:tl AS case_level), :note)"
        ),
        {
            "id": case_id,
            "at": at,
            "actor": actor,
            "kind": kind,
            "fs": from_status,
            "ts": to_status,
            "fl": from_level,
            "tl": to_level,
            "note": note,
        },
    )


def add_notice(
    db: Db,
    case_id: int,
    *,
    at: datetime,
    level: str,
    kind: str,
    user_id: int | None = None,
    department_id: int | None = None,
) -> None:
    """A notice to the case's staff at ``level`` (its grid, community or street), to one
    account, or to a department."""
    db.execute(
        text(
            "INSERT INTO case_notice (case_id, at, level, grid_id, community_id, street_id, "
            "user_id, department_id, kind) SELECT c.id, :at, CAST(:level AS case_level), "
            "t.grid_id, c.community_id, c.street_id, :user_id, :dept, :kind "
            "FROM incident_case c JOIN incident t ON t.id = c.id WHERE c.id = :id"
        ),
        {
            "id": case_id,
            "at": at,
            "level": level,
            "kind": kind,
            "user_id": user_id,
            "dept": department_id,
        },
    )


INCIDENT_STATUS_SQL = (
    "CASE WHEN CAST(:status AS text) IN ('new', 'accepted') THEN 'open' "
    "WHEN CAST(:status AS text) = 'in_progress' THEN 'in_progress' ELSE 'closed' END"
)


def set_incident_status(db: Db, case_id: int, status: str, at: datetime) -> None:
    """Keep the incident's own status (open / in progress / closed) in step with its case."""
    db.execute(
        text(
            f"UPDATE incident SET status = CAST({INCIDENT_STATUS_SQL} AS incident_status), "  # noqa: S608
            f"closed_at = CASE WHEN {INCIDENT_STATUS_SQL} = 'closed' THEN :at END WHERE id = :id"
        ),
        {"id": case_id, "status": status, "at": at},
    )


# --- notices ---------------------------------------------------------------------------------


def notices(db: Db, viewer: Viewer, levels: set[str], *, limit: int = 50) -> list[dict[str, Any]]:
    """Unread notices for the viewer: to their account, their department, or the staff of
    a level they hold, about a case they see."""
    rows = db.execute(
        text(
            "SELECT n.id, n.case_id, n.at, n.level::text AS level, n.kind, k.code AS category, "  # noqa: S608
            "k.name AS category_name, k.name_en AS category_name_en, c.status::text AS status "
            f"FROM case_notice n JOIN incident_case c ON c.id = n.case_id "
            "JOIN incident t ON t.id = c.id JOIN incident_category k ON k.id = c.category_id "
            f"WHERE n.read_at IS NULL AND {CASE_SEEN_SQL} AND {FOR_VIEWER_SQL} "
            "ORDER BY n.at DESC, n.id DESC LIMIT :limit"
        ),
        viewer.params() | {"me": viewer.user_id, "levels": sorted(levels), "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


#: A notice meant for the viewer (aliases: ``n`` notice): to their account, their department,
#: or the staff of a level they hold (:levels).
FOR_VIEWER_SQL = (
    "(n.user_id = :me OR (n.department_id IS NOT NULL AND n.department_id = :dept_id) "
    "OR (n.user_id IS NULL AND n.department_id IS NULL AND n.level::text = ANY(:levels)))"
)


def read_case_notices(db: Db, case_id: int, viewer: Viewer, levels: set[str], at: datetime) -> int:
    """The viewer opened the case: its unread notices meant for them are read (a level's
    notice is read for the level: one of its staff has the case in front of them)."""
    result = db.execute(
        text(
            "UPDATE case_notice n SET read_at = :at WHERE n.case_id = :id "  # noqa: S608
            f"AND n.read_at IS NULL AND {FOR_VIEWER_SQL}"
        ),
        viewer.params() | {"id": case_id, "at": at, "me": viewer.user_id, "levels": sorted(levels)},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def mark_read(db: Db, notice_id: int, viewer: Viewer, levels: set[str], at: datetime) -> None:
    mine = {n["id"] for n in notices(db, viewer, levels, limit=10_000)}
    if notice_id not in mine:
        raise NotFound(f"no unread notice {notice_id} for you", field="notice_id")
    db.execute(
        text("UPDATE case_notice SET read_at = :at WHERE id = :id"), {"id": notice_id, "at": at}
    )


# --- webhooks -------------------------------------------------------------------------------


def case_hook_sql(source: str) -> str:
    """Queue a webhook (``data.webhooks``) for each row of ``source``: the case as it is now
    (id, event, from_level, to_level, reason, due_at, category_id, grid_id, community_id,
    street_id, department_id), named by codes. No reporter, no description: nothing about a person.
    Binds :hook_url (NULL: nothing queued) and :now."""
    return f"""
    INSERT INTO webhook_outbox (topic, case_id, url, payload)
    SELECT 'case', h.id, CAST(:hook_url AS text), jsonb_build_object(
        'id', h.id, 'event', h.event, 'category', k.code,
        'from_level', CAST(h.from_level AS text), 'to_level', CAST(h.to_level AS text),
        'reason', h.reason, 'department', d.code, 'due_at', h.due_at, 'at', :now,
        'grid', g.code, 'community', m.code, 'street', s.code)
    FROM {source} h
    JOIN incident_category k ON k.id = h.category_id
    LEFT JOIN grid g ON g.id = h.grid_id
    LEFT JOIN community m ON m.id = h.community_id
    LEFT JOIN street s ON s.id = h.street_id
    LEFT JOIN department d ON d.id = h.department_id
    WHERE CAST(:hook_url AS text) IS NOT NULL
    """  # noqa: S608 - ``source`` is one of this module's own relations


CASE_HOOK_SQL = case_hook_sql(
    "(SELECT c.id, CAST(:event AS text) AS event, CAST(:from_level AS text) AS from_level, "
    "c.level AS to_level, CAST(:reason AS text) AS reason, c.due_at, c.category_id, t.grid_id, "
    "c.community_id, c.street_id, c.department_id FROM incident_case c "
    "JOIN incident t ON t.id = c.id WHERE c.id = :id)"
)


def queue_case_hook(
    db: Db,
    case_id: int,
    event: str,
    from_level: str,
    reason: str | None,
    *,
    url: str | None,
    now: datetime,
) -> None:
    """Tell the case webhook (if one is set) that a case moved, in the caller's transaction."""
    if url:
        db.execute(
            text(CASE_HOOK_SQL),
            {
                "id": case_id,
                "hook_url": url,
                "event": event,
                "from_level": from_level,
                "reason": reason,
                "now": now,
            },
        )


# --- the deadline sweep ----------------------------------------------------------------------

NEXT_LEVEL_SQL = (
    "CASE c.level WHEN 'grid' THEN 'community' WHEN 'community' THEN 'street' "
    "ELSE 'district' END::case_level"
)
HOURS_SQL = (
    "CASE u.to_level WHEN 'community' THEN k.hours_community WHEN 'street' THEN k.hours_street "
    "ELSE k.hours_district END"
)

SWEEP_SQL = f"""
WITH due AS (
    SELECT c.id, c.level AS from_level, c.status AS from_status, {NEXT_LEVEL_SQL} AS to_level,
           t.grid_id
    FROM incident_case c JOIN incident t ON t.id = c.id
    WHERE {OPEN_CASE_SQL} AND c.due_at <= :now
      AND c.level <> 'district'
    ORDER BY c.due_at
    LIMIT :limit
    FOR UPDATE OF c SKIP LOCKED
), moved AS (
    UPDATE incident_case c
    SET level = u.to_level, top_level = GREATEST(c.top_level, u.to_level), status = 'new',
        assignee_id = NULL, escalations = c.escalations + 1,
        due_at = :now + make_interval(hours => {HOURS_SQL})
    FROM due u, incident_category k
    WHERE c.id = u.id AND k.id = c.category_id
    RETURNING c.id, c.community_id, c.street_id, u.from_level, u.to_level, u.from_status,
              u.grid_id,
              c.category_id, c.department_id, c.due_at, 'escalated' AS event,
              'deadline passed' AS reason
), events AS (
    INSERT INTO case_event (case_id, at, actor, kind, from_status, to_status, from_level,
                            to_level, note)
    SELECT id, :now, 'system', 'escalated', from_status, 'new', from_level, to_level,
           'deadline passed'
    FROM moved
), opened AS (
    -- only the incidents that were in progress change: rewriting the others (and their GiST
    -- entries) was half of the sweep's time at 100,000 cases
    UPDATE incident i SET status = 'open', closed_at = NULL FROM moved
    WHERE i.id = moved.id AND moved.from_status = 'in_progress'
), told AS (
    INSERT INTO case_notice (case_id, at, level, grid_id, community_id, street_id, kind)
    SELECT m.id, :now, m.to_level, m.grid_id, m.community_id, m.street_id, 'escalated'
    FROM moved m
), hooked AS ({case_hook_sql("moved")})
SELECT id, to_level::text FROM moved
"""  # noqa: S608


def sweep(
    db: Db, now: datetime, *, hook_url: str | None = None, limit: int = 200_000
) -> list[tuple[int, str]]:
    """Escalate every open case whose deadline passed by one level, in one statement (with
    its history, notices and webhooks)."""
    params = {"now": now, "limit": limit, "hook_url": hook_url}
    return [(int(r[0]), str(r[1])) for r in db.execute(text(SWEEP_SQL), params)]


# --- figures ---------------------------------------------------------------------------------

#: The code of a case's area at each level, in ``CASE_FROM``'s names.
AREA_CODE_SQL = {
    "grid": "g.code",
    "community": "m.code",
    "street": "s.code",
    "department": "d.code",
}


#: Where an area of the figures is named: its table and its name column in Chinese and in
#: English (a grid has a code only).
AREA_NAME_SQL = {
    "community": ("community", "name", "name"),
    "street": ("street", "name", "name"),
    "department": ("department", "name", "name_en"),
}


def area_names(db: Db, level: str, codes: list[str], *, zh: bool) -> dict[str, str]:
    """The names of the areas of ``codes`` at ``level``, so that figures read
    "Miragaia 131208", not the code alone. The hierarchy's and the departments' own names,
    no case or resident: a code typed into the figures' filter is named whoever types it."""
    if level not in AREA_NAME_SQL or not codes:
        return {}
    table, name_zh, name_en = AREA_NAME_SQL[level]
    rows = db.execute(
        text(
            f"SELECT code, {name_zh if zh else name_en} FROM {table} "  # noqa: S608
            "WHERE code = ANY(:codes)"
        ),
        {"codes": codes},
    ).all()
    return {str(code): str(name) for code, name in rows if name}


def case_areas(db: Db, viewer: Viewer, level: str, *, limit: int = 200) -> list[str]:
    """The areas at ``level`` holding a case the viewer may see, by code: the rows of the
    figures page. Codes only; no case is read."""
    if level not in AREA_CODE_SQL:
        raise InvalidInput(f"unknown area level '{level}'", field="level")
    column = AREA_CODE_SQL[level]
    return list(
        db.execute(
            text(
                f"SELECT DISTINCT {column} {CASE_FROM} WHERE {CASE_SEEN_SQL} "
                f"AND {column} IS NOT NULL ORDER BY 1 LIMIT :limit"
            ),
            viewer.params() | {"limit": limit},
        ).scalars()
    )


def figures(
    db: Db, viewer: Viewer, level: str, code: str, since: datetime, until: datetime
) -> dict[str, Any]:
    """Opened and closed in [since, until); of the cases resolved then: median hours to
    resolve, share within the deadline, share settled at grid level (never escalated)."""
    return figures_by_area(db, viewer, level, [code], since, until)[0]


def figures_by_area(
    db: Db, viewer: Viewer, level: str, codes: list[str], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """:func:`figures` of each area of ``codes`` at ``level``, in their order, in one
    statement (the figures page showed up to 200 areas with a query each). An area with
    no case the viewer may see has zero counts and no shares."""
    if level not in AREA_CODE_SQL:
        raise InvalidInput(f"unknown area level '{level}'", field="level")
    column = AREA_CODE_SQL[level]
    rows = (
        db.execute(
            text(
                f"""
                SELECT
                  {column} AS code,
                  count(*) FILTER (WHERE c.opened_at >= :since AND c.opened_at < :until)
                    AS opened,
                  count(*) FILTER (WHERE c.closed_at >= :since AND c.closed_at < :until)
                    AS closed,
                  count(*) FILTER (WHERE r.ok) AS resolved,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY
                    extract(epoch FROM c.resolved_at - c.opened_at) / 3600.0)
                    FILTER (WHERE r.ok) AS median_hours,
                  avg(CASE WHEN c.resolved_in_time THEN 1.0 ELSE 0.0 END) FILTER (WHERE r.ok)
                    AS in_time,
                  avg(CASE WHEN c.top_level = 'grid' THEN 1.0 ELSE 0.0 END) FILTER (WHERE r.ok)
                    AS at_grid
                {CASE_FROM},
                LATERAL (SELECT c.resolved_at >= :since AND c.resolved_at < :until AS ok) r
                WHERE {column} = ANY(:codes) AND {CASE_SEEN_SQL}
                GROUP BY 1
                """  # noqa: S608
            ),
            viewer.params() | {"codes": codes, "since": since, "until": until},
        )
        .mappings()
        .all()
    )
    found = {r["code"]: dict(r) for r in rows}
    out = []
    for code in codes:
        row = found.get(code) or {"opened": 0, "closed": 0, "resolved": 0}
        for key in ("median_hours", "in_time", "at_grid"):
            row[key] = None if row.get(key) is None else float(row[key])
        row["escalated"] = None if row["at_grid"] is None else 1.0 - row["at_grid"]
        out.append(row | {"level": level, "code": code, "since": since, "until": until})
    return out


def area_centre(db: Db, scope: AreaScope) -> tuple[float, float] | None:
    """The middle of the caller's current grids (lon, lat), where a report map opens."""
    row = db.execute(
        text(
            # a point inside the caller's grids; district-wide, the middle of their extent
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT CASE WHEN CAST(:grid_ids AS int[]) IS NULL "
            "THEN ST_Centroid(ST_Extent(geom)::geometry) "
            "ELSE ST_PointOnSurface(ST_Union(geom)) END AS c FROM grid WHERE valid_to IS NULL "
            "AND (CAST(:grid_ids AS int[]) IS NULL OR id = ANY(:grid_ids))) s"
        ),
        {"grid_ids": scope.sql_ids("grid")},
    ).first()
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1])
