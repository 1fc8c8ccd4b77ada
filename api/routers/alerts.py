"""Alerts about elders (left the zone, returned, no fix, low battery, SOS): list, ack, close.

Each alert names the workers it was routed to: the worker of the grid where the elder is
and the worker of the home grid. Staff see the alerts of their area (either grid). Listing
alerts shows their grids; the coordinates of each alert's fix are added only when a
``reason`` is given, since they are an elder's position (audited either way).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.alert_moves import move_alert
from api.deps import LimitDep, OffsetDep, SessionDep
from api.schemas.alerts import Alert, Alerts
from api.security import Principal, audit_subjects, require
from data.care import queries as q
from data.models.care import AlertStatus
from data.policy import Action

router = APIRouter(prefix="/alerts", tags=["alerts"])

# ``response_model_exclude_unset``: an alert's position (lon, lat, fix_time) is in the answer
# only when asked for with a reason; otherwise the keys are absent, not null.

Staff = Annotated[Principal, Depends(require(Action.handle_alerts))]


@router.get(
    "",
    response_model=Alerts,
    response_model_exclude_unset=True,
    summary="Alerts of my area, newest first",
)
def list_alerts(
    request: Request,
    session: SessionDep,
    principal: Staff,
    status: Annotated[
        AlertStatus | None, Query(description="open (default), acknowledged or closed")
    ] = AlertStatus.open,
    reason: Annotated[
        str | None,
        Query(min_length=3, max_length=500, description="give one to include fix coordinates"),
    ] = None,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> dict[str, Any]:
    alerts = q.list_alerts(
        session,
        principal.scope,
        status=status,
        limit=limit,
        offset=offset,
        with_position=reason is not None,
    )
    audit_subjects(
        session,
        request,
        principal,
        "position" if reason is not None else "elder",
        sorted({a["elder_id"] for a in alerts}),
        reason,
    )
    return {"alerts": alerts}


@router.post(
    "/{alert_id}/ack",
    response_model=Alert,
    response_model_exclude_unset=True,
    summary="Acknowledge: someone is on it",
)
def acknowledge(
    request: Request, session: SessionDep, principal: Staff, alert_id: int
) -> dict[str, Any]:
    return move_alert(request, session, principal, alert_id, AlertStatus.acknowledged)


@router.post(
    "/{alert_id}/close",
    response_model=Alert,
    response_model_exclude_unset=True,
    summary="Close: the elder is safe, or it was a false alarm",
)
def close(request: Request, session: SessionDep, principal: Staff, alert_id: int) -> dict[str, Any]:
    return move_alert(request, session, principal, alert_id, AlertStatus.closed)
