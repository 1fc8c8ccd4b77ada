"""Alerts about elders: listed, acknowledged and closed by the staff of their area."""

from __future__ import annotations

from pydantic import Field

from api.schemas import Answer, Timestamp
from data.models.care import AlertKind, AlertStatus


class Recipient(Answer):
    worker_code: str
    name: str
    phone: str | None
    reason: str = Field(description="why this worker: the elder's current grid or home grid")


class Alert(Answer):
    """``lon``, ``lat`` and ``fix_time`` (the elder's position) are present only in a list
    asked for with a ``reason``."""

    id: int
    kind: AlertKind
    status: AlertStatus
    event_time: Timestamp
    raised_at: Timestamp
    detail: str | None
    elder_id: int
    elder_name: str
    grid_code: str | None
    home_grid_code: str | None
    acknowledged_at: Timestamp | None
    acknowledged_by: str | None
    closed_at: Timestamp | None
    closed_by: str | None
    lon: float | None = None
    lat: float | None = None
    fix_time: Timestamp | None = None
    recipients: list[Recipient]


class Alerts(Answer):
    alerts: list[Alert] = Field(description="newest first")
