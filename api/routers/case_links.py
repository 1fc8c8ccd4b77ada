"""Possible duplicates and the duplicate link over JSON: the report form asks which cases
near a chosen point may be the same matter; a case shows what it may repeat; a handler links
it. Thin: the rule (same category, 50 m, 7 days) and the link are ``data.incidents.duplicates``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.case_viewer import case_viewer
from api.deps import SessionDep
from api.schemas import StrictModel
from api.security import Principal, require
from api.state import app_state
from data.incidents import duplicates
from data.incidents.service import check_point
from data.policy import Action

router = APIRouter(prefix="/cases", tags=["cases"])

Viewing = Annotated[Principal, Depends(require(Action.view_cases))]
Handling = Annotated[Principal, Depends(require(Action.handle_cases))]


class LinkIn(StrictModel):
    duplicate_of: int


def _metric(request: Request) -> int | None:
    return app_state(request).settings.metric_epsg


@router.get(
    "/duplicates",
    summary="Cases that may be the same matter: same category, within 50 m and 7 days",
)
def nearby(
    request: Request,
    session: SessionDep,
    principal: Viewing,
    category: Annotated[str, Query(max_length=64)],
    lon: float,
    lat: float,
) -> dict[str, Any]:
    check_point(lon, lat)
    rows = duplicates.nearby(
        session,
        case_viewer(session, principal),
        category=category,
        lon=lon,
        lat=lat,
        at=datetime.now(UTC),
        metric_override=_metric(request),
    )
    return {"cases": rows}


@router.get("/{case_id}/duplicates", summary="A case's duplicate link and possible duplicates")
def of_case(
    request: Request, session: SessionDep, principal: Viewing, case_id: int
) -> dict[str, Any]:
    return duplicates.for_case(
        session, case_viewer(session, principal), case_id, metric_override=_metric(request)
    )


@router.post("/{case_id}/duplicate_of", summary="Link the case as a duplicate of another")
def link(session: SessionDep, principal: Handling, case_id: int, body: LinkIn) -> dict[str, Any]:
    return duplicates.link(
        session, case_viewer(session, principal), case_id, body.duplicate_of, datetime.now(UTC)
    )
