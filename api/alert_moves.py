"""Acknowledging or closing an alert, for the API and the inbox page alike: the status (with
its bell and webhook, ``data.care.service.set_alert_status``) and the audit row naming the
elder, with the note the page's form may carry."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from api.security import Principal, audit_subjects
from api.state import app_state
from data.access.reasons import said
from data.care import service as care
from data.models.care import AlertStatus


def move_alert(
    request: Request,
    session: Session,
    principal: Principal,
    alert_id: int,
    to: AlertStatus,
    *,
    note: str | None = None,
) -> dict[str, Any]:
    """Set the alert's status as the caller (in their area) and audit it; the alert as
    :func:`data.care.service.set_alert_status` answers it."""
    alert = care.set_alert_status(
        session,
        alert_id,
        principal.scope,
        to=to,
        by=principal.name,
        webhook_url=app_state(request).settings.alert_webhook_url,
    )
    reason = said(f"alert_{to.value}", alert=alert_id).noted(note)
    audit_subjects(session, request, principal, "elder", [alert["elder_id"]], reason)
    return alert
