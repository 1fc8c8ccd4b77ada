"""The start page (each role's home), the language switch and the hierarchy map."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.case_viewer import case_viewer
from api.deps import ReadSessionDep, SessionDep
from api.pages.frame import PageContext, context, language_cookie, local_path, render
from api.pages.i18n import LOCALES
from api.pages.map_page import framed_map
from api.security import Principal, optional_principal, require
from data.access.accounts import account_counts
from data.care import queries as care_queries
from data.district.hierarchy import read_level
from data.incidents import queries as incident_queries
from data.models import Role
from data.policy import Action, may
from maps.hierarchy import hierarchy_map

public = APIRouter(include_in_schema=False)
private = APIRouter(include_in_schema=False)


@dataclass
class Card:
    """One box on a role's home: a title, perhaps a number, and where to go from it."""

    title: str
    number: int | None = None
    text: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)


def _work_cards(ctx: PageContext, principal: Principal, session: SessionDep) -> list[Card]:
    """Today's work for the caller's role; each workspace adds its card here."""
    cards: list[Card] = []
    mine = may(principal.role, Action.handle_cases) and principal.role is not Role.admin
    area_cases = may(principal.role, Action.view_cases) and principal.role in (
        Role.coordinator,
        Role.admin,
    )
    viewer = case_viewer(session, principal) if mine or area_cases else None  # one query
    now = datetime.now(UTC)
    if mine and viewer is not None:
        counts = incident_queries.my_case_counts(session, viewer, now)
        cards.append(  # issue 18: the cases routed to me (grid workers, departments)
            Card(
                ctx._("My incidents"),
                number=counts["waiting"],
                text=(
                    ctx._("Cases waiting for you, deadlines first.")
                    if not counts["overdue"]
                    else ctx._("Cases waiting for you, deadlines first. Overdue: %(n)s.")
                    % {"n": counts["overdue"]}
                ),
                links=[
                    ("/app/incidents/mine", ctx._("My cases")),
                    ("/app/incidents/new", ctx._("Report an incident")),
                ],
            )
        )
    if area_cases and viewer is not None:
        area = incident_queries.open_case_counts(session, viewer, now)
        cards.append(  # issue 18: the open cases of my area
            Card(
                ctx._("Open incidents"),
                number=area["open"],
                text=(
                    ctx._("Cases not yet resolved in your area; overdue ones in red.")
                    if not area["overdue"]
                    else ctx._(
                        "Cases not yet resolved in your area; overdue ones in red. Overdue: %(n)s."
                    )
                    % {"n": area["overdue"]}
                ),
                links=[
                    ("/app/incidents?status=open", ctx._("Open cases")),
                    ("/app/incidents?due=overdue", ctx._("Overdue")),
                    ("/app/incidents/figures", ctx._("Case figures")),
                ],
            )
        )
    if may(principal.role, Action.plan_grids):
        cards.append(  # issue 16: oversized communities and drafts
            Card(
                ctx._("Grid plans"),
                text=ctx._("Communities whose grids are outside the household range, and drafts."),
                links=[("/app/plans", ctx._("Oversized communities and drafts"))],
            )
        )
    return cards


def _map_card(ctx: PageContext, principal: Principal) -> list[Card]:
    """The maps, after the work: a worker on a phone sees what waits for them first. The
    vector-tile viewer is for district-wide accounts; staff with an area are sent from it
    to the grid map, which the card already links."""
    if not may(principal.role, Action.view_district):
        return []
    links = [
        ("/maps/hierarchy", ctx._("District map")),
        ("/maps/grids", ctx._("Grids and households")),
        ("/maps/workload", ctx._("Workload")),
        ("/maps/incidents", ctx._("Incidents map")),
        ("/maps/coverage", ctx._("Coverage")),
    ]
    if principal.scope.unrestricted:
        links.append(("/viewer", ctx._("Vector-tile viewer")))
    return [Card(ctx._("Maps of your area"), links=links)]


def _care_cards(ctx: PageContext, principal: Principal, session: SessionDep) -> list[Card]:
    """Issue 17: care staff see their elders and open alerts; grid workers their alerts."""
    if not may(principal.role, Action.handle_alerts):
        return []
    counts = care_queries.console_counts(session, principal.scope)
    alerts = Card(
        ctx._("Open alerts") if principal.role is not Role.grid_worker else ctx._("My alerts"),
        number=counts["open_alerts"],
        text=ctx._("Elders who left their safe zone, pressed SOS or went quiet."),
        links=[("/app/alerts", ctx._("Alerts inbox"))],
    )
    if principal.role is Role.grid_worker:
        return [alerts]
    links = [("/app/elders", ctx._("Elders"))]
    if may(principal.role, Action.enrol_elders):
        links.append(("/app/elders/new", ctx._("Enrol an elder")))
    return [alerts, Card(ctx._("Elders in your care"), number=counts["elders"], links=links)]


def _keeping_cards(ctx: PageContext, principal: Principal, session: SessionDep) -> list[Card]:
    """The registers the caller keeps or reads, and for an administrator the accounts (with
    those still on a password an administrator chose), the audit log and the catalogue."""
    cards = []
    links = []
    if may(principal.role, Action.read_households):
        links.append(("/app/households", ctx._("Household register")))
    if may(principal.role, Action.edit_facilities):
        links.append(("/app/facilities", ctx._("Facility register")))
    if links:
        cards.append(Card(ctx._("Registers"), links=links))
    if may(principal.role, Action.manage_accounts):
        active, waiting = account_counts(session)
        text = ""
        if waiting:
            text = ctx.ngettext(
                "%(num)s of them has not chosen their own password yet.",
                "%(num)s of them have not chosen their own password yet.",
                waiting,
            )
        admin_links = [("/app/accounts", ctx._("Accounts")), ("/app/audit", ctx._("Audit log"))]
        if may(principal.role, Action.manage_categories):
            admin_links.append(("/app/categories", ctx._("Incident categories")))
        cards.append(Card(ctx._("Active accounts"), number=active, text=text, links=admin_links))
    return cards


@public.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Response:
    """Public, but shows data only to a signed-in member of staff, and only of their area."""
    if principal is not None and principal.role is Role.department:  # no maps: its queue
        return RedirectResponse("/app/incidents/queue", status_code=303)
    if principal is None or not may(principal.role, Action.view_district):
        ctx = context(request, None)
        return render(request, None, "signed_out.html", title=ctx._("Welcome to gridwork"))
    ctx = context(request, principal)
    communities = read_level(session.connection(), "communities", principal.scope)
    rows = [
        {
            "code": r.code,
            "name": r.name,
            "households": int(r.households),
            "population": None if pd.isna(r.population) else int(r.population),
        }
        for r in communities.itertuples()
    ]
    return render(
        request,
        principal,
        "home.html",
        title=ctx._("Today"),
        values={
            "cards": _care_cards(ctx, principal, session)
            + _work_cards(ctx, principal, session)
            + _keeping_cards(ctx, principal, session)
            + _map_card(ctx, principal),
            "communities": rows,
        },
    )


@public.get("/lang")
def switch_language(
    l: Annotated[str, Query(description="zh_CN or en")],  # noqa: E741 - the URL's own name
    next: Annotated[str, Query(max_length=2000)] = "/",
) -> RedirectResponse:
    """Keep the user's choice of language and go back to the page they were on."""
    response = RedirectResponse(local_path(next), status_code=303)
    if l in LOCALES:
        response.set_cookie(**language_cookie(l))
    return response


@private.get("/maps/hierarchy", response_class=HTMLResponse)
def hierarchy(
    request: Request,
    session: ReadSessionDep,
    principal: Annotated[Principal, Depends(require(Action.view_district))],
) -> HTMLResponse:
    ctx = context(request, principal)
    title = ctx._("District map")
    conn = session.connection()
    layers = {
        n: read_level(conn, n, principal.scope)
        for n in ("streets", "communities", "grids", "roads", "facilities")
    }
    if all(layers[n].empty for n in ("streets", "communities", "grids")):
        detail = ctx._("No area is assigned to you yet.")
        values = {"status": 200, "detail": detail}
        return render(request, principal, "error.html", title=title, values=values)
    m = hierarchy_map(
        layers["streets"],
        layers["communities"],
        layers["grids"],
        roads=layers["roads"],
        facilities=layers["facilities"],
        asset_mode="url",
        gettext=ctx._,
    )
    return framed_map(request, principal, m.get_root().render(), title=title)
