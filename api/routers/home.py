"""The start page (each role's home), the language switch and the hierarchy map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SessionDep
from api.pages.frame import PageContext, context, language_cookie, local_path, render
from api.pages.i18n import LOCALES
from api.security import Principal, optional_principal, require
from data.district.hierarchy import read_level
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


def _cards(ctx: PageContext, principal: Principal) -> list[Card]:
    """Today's work for the caller's role; each workspace adds its card here."""
    cards: list[Card] = []
    if may(principal.role, Action.view_district):
        cards.append(
            Card(
                ctx._("Maps of your area"),
                links=[
                    ("/maps/hierarchy", ctx._("District map")),
                    ("/maps/grids", ctx._("Grids and households")),
                    ("/maps/workload", ctx._("Workload")),
                    ("/maps/incidents", ctx._("Incidents map")),
                    ("/maps/coverage", ctx._("Coverage")),
                    ("/viewer", ctx._("Vector-tile viewer")),
                ],
            )
        )
    return cards


@public.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> HTMLResponse:
    """Public, but shows data only to a signed-in member of staff, and only of their area."""
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
        values={"cards": _cards(ctx, principal), "communities": rows},
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
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Action.view_district))],
) -> HTMLResponse:
    conn = session.connection()
    layers = {
        n: read_level(conn, n, principal.scope)
        for n in ("streets", "communities", "grids", "roads", "facilities")
    }
    if all(layers[n].empty for n in ("streets", "communities", "grids")):
        ctx = context(request, principal)
        return render(
            request,
            principal,
            "error.html",
            title=ctx._("District map"),
            values={"status": 200, "detail": ctx._("No area is assigned to you yet.")},
        )
    m = hierarchy_map(
        layers["streets"],
        layers["communities"],
        layers["grids"],
        roads=layers["roads"],
        facilities=layers["facilities"],
        asset_mode="url",
    )
    return HTMLResponse(m.get_root().render())
