"""Who may do what: role × action × area, decided here and nowhere else.

Every route names the :class:`Action` it performs (``api.security.require(Action.…)``); the
roles allowed each action are the table :data:`RULES`; the README's role table is generated
from it (``gridwork policy table``) and a test fails when the two differ. *Where* a caller
may act is their :class:`~data.access.queries.AreaScope`, filtered in SQL by the predicates
below, one per kind of row, so that a list and a single row answer by the same rule.

Two rules are about authority rather than visibility, and are written here for that reason:

- **Households are read by the worker of their grid.** A grid worker reads the households of
  the grids they are the worker of, whatever wider area their account has for maps.
- **Plans belong to communities.** Drafting or publishing a plan for a community needs the
  community itself in the caller's area (a street or community scope), not one grid of it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from data.models import Role

if TYPE_CHECKING:
    from data.access.queries import AreaScope


class Action(enum.StrEnum):
    """What a route does, in the words of the people doing it."""

    view_district = "view_district"  # maps, layers, grids, counts, facilities, locate a point
    read_households = "read_households"
    edit_households = "edit_households"
    edit_facilities = "edit_facilities"
    report_incidents = "report_incidents"
    handle_incidents = "handle_incidents"
    upload_incidents = "upload_incidents"
    delete_incidents = "delete_incidents"
    plan_grids = "plan_grids"  # draft, compare, publish plans; redraw a grid
    run_checks = "run_checks"
    enrol_elders = "enrol_elders"  # enrolment, consent, device, safe zone, forgetting
    locate_elders = "locate_elders"  # an elder's location and trail, with a reason
    handle_alerts = "handle_alerts"
    report_positions = "report_positions"  # a device sending its fixes
    read_audit = "read_audit"
    manage_accounts = "manage_accounts"
    view_cases = "view_cases"  # the case list, map, page, dashboard (departments: their cases)
    handle_cases = "handle_cases"  # accept, work, escalate, resolve, close, hand to a department
    manage_categories = "manage_categories"  # the incident category catalogue, departments
    read_metrics = "read_metrics"  # /metrics: counts and latencies, no personal data
    change_own_password = "change_own_password"  # noqa: S105 - an action's name, not a secret


@dataclass(frozen=True)
class Rule:
    """The roles allowed one action, and how it reads in the README."""

    roles: frozenset[Role]
    says: str


def _rule(says: str, *roles: Role) -> Rule:
    return Rule(frozenset(roles), says)


STAFF = (Role.admin, Role.planner, Role.coordinator, Role.grid_worker, Role.care_staff)

RULES: dict[Action, Rule] = {
    Action.view_district: _rule(
        "see maps, layers, grids, counts, facilities and incidents; locate a point", *STAFF
    ),
    Action.read_households: _rule(
        "read households (grid workers: of the grids they work; audited)",
        Role.admin,
        Role.grid_worker,
        Role.care_staff,
    ),
    Action.edit_households: _rule("add, change, upload households", Role.admin, Role.grid_worker),
    Action.edit_facilities: _rule(
        "add, change, upload facilities", Role.admin, Role.planner, Role.coordinator
    ),
    Action.report_incidents: _rule(
        "report an incident",
        Role.admin,
        Role.coordinator,
        Role.grid_worker,
        Role.care_staff,
    ),
    Action.handle_incidents: _rule(
        "change an incident's status", Role.admin, Role.coordinator, Role.grid_worker
    ),
    Action.upload_incidents: _rule("upload incidents in bulk", Role.admin, Role.coordinator),
    Action.delete_incidents: _rule("delete an incident", Role.admin),
    Action.plan_grids: _rule(
        "draft, compare and publish plans; redraw a grid (community or street scope)",
        Role.admin,
        Role.planner,
    ),
    Action.run_checks: _rule("run the topology and assignment checks", Role.admin, Role.planner),
    Action.enrol_elders: _rule(
        "enrol elders, record consent, set devices and safe zones, forget an elder",
        Role.admin,
        Role.care_staff,
    ),
    Action.locate_elders: _rule(
        "read an elder's location and trail, with a reason (audited)",
        Role.admin,
        Role.care_staff,
        Role.grid_worker,
    ),
    Action.handle_alerts: _rule(
        "see, acknowledge and close alerts", Role.admin, Role.care_staff, Role.grid_worker
    ),
    Action.report_positions: _rule("send positions (a watch's API key)", Role.device),
    Action.read_audit: _rule("read the audit log", Role.admin),
    Action.manage_accounts: _rule("manage users, scopes and keys", Role.admin),
    Action.change_own_password: _rule("change my own password", *STAFF, Role.department),
    Action.view_cases: _rule(
        "see the cases of my area, their history and figures (departments: cases given to them)",
        *STAFF,
        Role.department,
    ),
    Action.handle_cases: _rule(
        "accept, work on, escalate, resolve, close and reopen cases; hand them to a department",
        Role.admin,
        Role.coordinator,
        Role.grid_worker,
        Role.department,
    ),
    Action.manage_categories: _rule("manage incident categories and departments", Role.admin),
    # Nobody's data, but the shape of the service (routes, load, backlog): admins, and a
    # scraper holding GRIDWORK_METRICS_KEY, which opens this one route (api.metrics).
    Action.read_metrics: _rule(
        "read the operational metrics (/metrics; also a scraper's GRIDWORK_METRICS_KEY)",
        Role.admin,
    ),
}


def roles_for(action: Action) -> frozenset[Role]:
    """The roles that may perform ``action``."""
    return RULES[action].roles


def may(role: Role, action: Action) -> bool:
    """Whether ``role`` may perform ``action`` somewhere (where is the caller's area)."""
    return role in RULES[action].roles


def role_table() -> str:
    """The README's role table, in Markdown, made from :data:`RULES`."""
    roles = list(Role)
    head = "| may … | " + " | ".join(f"`{r.value}`" for r in roles) + " |"
    rule = "|---|" + "---|" * len(roles)
    rows = [
        f"| {RULES[a].says} | "
        + " | ".join("✔" if r in RULES[a].roles else "" for r in roles)
        + " |"
        for a in Action
    ]
    return "\n".join([head, rule, *rows])


# --- where: one SQL predicate per kind of row ------------------------------------------------
# Each binds :grid_ids / :community_ids (``AreaScope.sql_ids``); an unrestricted caller binds
# NULL, which every predicate reads as "everywhere".

#: A row assigned to a grid (household, facility, incident) over alias ``t``: its grid is in
#: the caller's grids. A row with no grid (outside every grid) is visible only to admins.
ASSIGNED_ROW_SQL = "(CAST(:grid_ids AS int[]) IS NULL OR t.grid_id = ANY(:grid_ids))"

#: A non-personal layer (roads, buildings) over alias ``t``: it touches the caller's area.
LAYER_ROW_SQL = (
    "(CAST(:grid_ids AS int[]) IS NULL OR EXISTS (SELECT 1 FROM grid a "
    "WHERE a.id = ANY(:grid_ids) AND ST_Intersects(a.geom, t.geom)))"
)

#: A community-level row (a plan, a community) over alias ``t`` with ``t.community_id``: the
#: community itself is held, not merely one grid of it. Bind :held_community_ids.
HELD_COMMUNITY_SQL = (
    "(CAST(:held_community_ids AS int[]) IS NULL OR t.community_id = ANY(:held_community_ids))"
)

#: **Households are read by the worker of their grid**, as grid ids; bind :user_id and
#: :grid_ids (the caller's area, ``AreaScope.sql_ids("grid")``; NULL: everywhere). For a grid
#: worker these are the current grids whose worker record is linked to their account
#: (``grid.worker_id`` → ``worker.user_id``, migration 0010) and lie in their area, plus the
#: grids named in their own grid scope (a worker standing in for another). A community or
#: street scope is their area for maps, never a licence to read its households. Every
#: household route of a grid worker (lists, single rows, writes, uploads) goes through this
#: set (``data.assignment.points.household_scope``); other roles use their area.
WORKED_GRIDS_SQL = """
SELECT g.id FROM grid g
WHERE g.valid_to IS NULL
  AND (CAST(:grid_ids AS int[]) IS NULL OR g.id = ANY(:grid_ids))
  AND (EXISTS (SELECT 1 FROM worker w WHERE w.id = g.worker_id AND w.user_id = :user_id)
       OR EXISTS (SELECT 1 FROM user_scope s WHERE s.user_id = :user_id
                  AND s.level = 'grid' AND s.code = g.code))
"""

#: The roles whose household reads and writes are limited to :data:`WORKED_GRIDS_SQL`.
WORKED_GRIDS_ROLES: frozenset[Role] = frozenset({Role.grid_worker})

# --- elders: their home area decides; an open alert widens reading only ----------------------
# An elder belongs to the area of their home grid (``elder.home_grid_id``: the grid of their
# household, fixed at enrolment). Everything that *changes* an elder or what is kept about them
# (their device and its key, consent, safe zone, forgetting them) is for staff of that area.
# A lost elder must also be findable by the staff of the place where they are now, so an alert
# widens *reading* (the elder's record, location and trail) and nothing else, and only while
# both hold: an alert about the elder is not closed, and the elder's last fix (the one
# ``GET /elders/{id}/location`` shows: the newest the device did not mark invalid, else the
# newest) lies in one of the caller's grids (the grid stored with the fix). Once the elder
# walks home, or someone closes the alert, the widening ends with the very next request.
# Both predicates are over alias ``e`` (elder) and bind :grid_ids (NULL: everywhere).

#: The elder's home grid is in the caller's area.
ELDER_HOME_SQL = (
    "(CAST(:grid_ids AS int[]) IS NULL OR e.home_grid_id = ANY(CAST(:grid_ids AS int[])))"
)

#: An alert about the elder is open (or acknowledged) and their newest fix is in the caller's
#: grids: the only way an elder of another area becomes readable. ``position`` is partitioned
#: by day (migration 0019), so the newest fix is looked for from ``zone_state.last_fix_time``
#: on first (``near``; PostgreSQL then reads the newest days only) and among all days
#: (``far``) only when nothing lies there: the bound never changes the answer, for the reason
#: ``data.care.queries._SINCE`` gives (the time of the newest valid fix ingest evaluated, so
#: a valid fix at or after it is the newest valid fix).
ELDER_FOUND_HERE_SQL = (
    "(EXISTS (SELECT 1 FROM alert a WHERE a.elder_id = e.id AND a.status <> 'closed') "
    "AND (SELECT CASE WHEN near.time IS NULL THEN far.grid_id ELSE near.grid_id END "
    "FROM (SELECT (SELECT z.last_fix_time FROM zone_state z WHERE z.elder_id = e.id) AS since) b "
    "LEFT JOIN LATERAL (SELECT p.grid_id, p.time FROM position p WHERE p.elder_id = e.id "
    "AND p.valid AND p.time >= b.since ORDER BY p.time DESC, p.id DESC LIMIT 1) near ON true "
    "LEFT JOIN LATERAL (SELECT f.grid_id FROM ("
    "(SELECT p.grid_id, 0 AS rank FROM position p WHERE p.elder_id = e.id AND p.valid "
    "ORDER BY p.time DESC, p.id DESC LIMIT 1) UNION ALL "
    "(SELECT p.grid_id, 1 AS rank FROM position p WHERE p.elder_id = e.id "
    "ORDER BY p.time DESC, p.id DESC LIMIT 1)) f WHERE near.time IS NULL "
    "ORDER BY f.rank LIMIT 1) far ON true) "
    "= ANY(CAST(:grid_ids AS int[])))"
)

#: Who may read an elder (record, location, trail): home area, or found here during an alert.
ELDER_READ_SQL = f"({ELDER_HOME_SQL} OR {ELDER_FOUND_HERE_SQL})"


#: **Alerts are seen where they happen and at home** (over alias ``a``): the grid the elder was
#: in when it was raised, or their home grid, is one of the caller's grids. Every alert list
#: and the alert routes answer by it; :func:`sees_alert` is the same rule for alerts already
#: read, which the live inboxes share (one read per wake, ``api.alert_fanout``).
ALERT_SQL = (
    "(CAST(:grid_ids AS int[]) IS NULL OR a.grid_id = ANY(CAST(:grid_ids AS int[])) "
    "OR a.home_grid_id = ANY(CAST(:grid_ids AS int[])))"
)


def sees_alert(scope: AreaScope, *, grid_id: int | None, home_grid_id: int | None) -> bool:
    """:data:`ALERT_SQL` in Python, for an alert read for several callers at once (a test
    holds the two to the same answers)."""
    if scope.grid_ids is None:
        return True
    return grid_id in scope.grid_ids or home_grid_id in scope.grid_ids


def elder_sql(action: Action) -> str:
    """The SQL predicate (alias ``e``, binds :grid_ids) choosing the elders a caller may
    ``action``: reading (:attr:`Action.locate_elders`) is widened by an open alert while the
    elder is in the caller's area; every change (:attr:`Action.enrol_elders`: device and key,
    consent, safe zone, forgetting) needs the elder's home area."""
    if action is Action.locate_elders:
        return ELDER_READ_SQL
    if action is Action.enrol_elders:
        return ELDER_HOME_SQL
    raise ValueError(f"{action.value} is not an action on one elder")


# --- authority over plans and grids, and which grids a caller may be told about ---------------


def may_plan(scope: AreaScope, community_id: int) -> bool:
    """Whether the caller may draft, read, change or publish a plan of this community, or
    redraw one of its grids: the community itself must be held (a street or community
    scope), never merely the context of a scoped grid."""
    return scope.holds_community(community_id)


def sees_grid(scope: AreaScope, grid_id: int, community_id: int) -> bool:
    """Whether a grid (current or past) may be named to the caller, e.g. by ``/grids/on``:
    one of their current grids, or any version of a grid of a community they hold. The same
    withholding as ``/locate``: the answer for a grid elsewhere is the answer for no grid."""
    if scope.unrestricted:
        return True
    return grid_id in (scope.grid_ids or frozenset()) or (
        community_id in (scope.held_community_ids or frozenset())
    )


#: Facilities are rows assigned to a grid: the layer ``/facilities`` and ``GET
#: /facilities/{id}`` answer by the same rule, :data:`ASSIGNED_ROW_SQL`.
FACILITY_ROW_SQL = ASSIGNED_ROW_SQL

#: Roads and buildings (no grid of their own) are visible where they touch one of the caller's
#: grids, or a community the caller holds whole (which counts for a community without grids
#: yet). The community around a scoped grid is context only and lends no rows:
#: :data:`data.access.queries.WITHIN_AREA_SQL` is this rule.
