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

from data.models import Role


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
