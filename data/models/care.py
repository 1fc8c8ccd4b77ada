"""The stored shape of elder care: elders, consent, devices, positions, safe zones and alerts.

Only what finding a lost elder needs is kept: a display name (not an identity), the home
household, an emergency contact, the device and the consent that allows gridwork to store
its fixes. Positions are purged after the retention period (``Settings.position_retention_days``);
their table is partitioned by day (migration 0019), so that the purge drops whole days.

Nothing here relates elders to each other: there is no group, watch list or shared trail.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from data.models.base import SRID, Base


class DeviceDatum(enum.StrEnum):
    """The coordinate system a device reports in (see ``geo.care.datum``)."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


class ZoneKind(enum.StrEnum):
    home_grid = "home_grid"  # the home grid grown by buffer_m (the default)
    circle = "circle"
    polygon = "polygon"


class AlertKind(enum.StrEnum):
    left_zone = "left_zone"
    returned = "returned"
    no_fix = "no_fix"
    low_battery = "low_battery"
    sos = "sos"


class AlertStatus(enum.StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    closed = "closed"


class Elder(Base):
    """An enrolled elder; their area (for staff scopes) is the home grid."""

    __tablename__ = "elder"
    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id", ondelete="SET NULL"), index=True, comment="the home household"
    )
    home_grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("grid.id", ondelete="SET NULL"), index=True
    )
    emergency_contact: Mapped[str | None] = mapped_column(String(200))
    enrolled_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Consent(Base):
    """Who agreed that gridwork stores the elder's positions; withdrawn ones are kept as history."""

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elder.id", ondelete="CASCADE"), index=True)
    given_by: Mapped[str] = mapped_column(String(200), comment="the elder, or their guardian")
    recorded_by: Mapped[str] = mapped_column(String(128))
    given_on: Mapped[date] = mapped_column(Date)
    scope: Mapped[str] = mapped_column(Text, comment="what was agreed, in the giver's words")
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by: Mapped[str | None] = mapped_column(String(128))


class Device(Base):
    """A wearable or phone; it reports as ``device_code`` and authenticates with its API key.

    One key may serve several devices (a gateway); a device answers to exactly one key.
    """

    __tablename__ = "device"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_code: Mapped[str] = mapped_column(String(128), unique=True, comment="OsmAnd id")
    elder_id: Mapped[int] = mapped_column(ForeignKey("elder.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_key.id", ondelete="CASCADE"), index=True
    )
    datum: Mapped[DeviceDatum] = mapped_column(Enum(DeviceDatum, name="device_datum"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # What staff need to tell a broken watch from a quiet one (migration 0008): reports
    # answered but not stored as a fix leave their trace here, not in ``position``.
    last_heard_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="receipt of the newest keep-alive or refused report"
    )
    last_battery: Mapped[float | None] = mapped_column(Float, comment="from the newest keep-alive")
    last_charging: Mapped[bool | None] = mapped_column(Boolean)
    not_stored: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0"), comment="reports answered, not stored"
    )
    last_refused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_refused_reason: Mapped[str | None] = mapped_column(String(300))


class Position(Base):
    """One fix, in WGS-84 (converted) and as the device sent it (raw, in its datum).

    Partitioned by fix time, one partition per UTC day (``position_YYYYMMDD``) and a default
    one; the key therefore holds ``time`` too. Partitions are made ahead and dropped by the
    functions of migration 0019, which the app's role may call but not bypass. No foreign
    keys (migration 0027): with them, the daily partition work locked ``grid``, ``device``,
    ``elder`` and ``alert``; triggers delete an elder's or device's fixes instead.
    """

    __tablename__ = "position"
    __table_args__ = (
        UniqueConstraint("device_id", "time", name="uq_position_device_time"),
        Index("ix_position_elder_time", "elder_id", "time"),
        Index("ix_position_time", "time"),
        {"postgresql_partition_by": "RANGE (time)"},
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    device_id: Mapped[int] = mapped_column(Integer)  # its deletion deletes the fix (0027)
    elder_id: Mapped[int] = mapped_column(Integer)  # likewise
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    geom: Mapped[object] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=False
    )
    raw_lon: Mapped[float] = mapped_column(Float)
    raw_lat: Mapped[float] = mapped_column(Float)
    grid_id: Mapped[int | None] = mapped_column(
        Integer,
        comment="the grid covering the fix",  # emptied if the grid is deleted (0027)
    )
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    bearing: Mapped[float | None] = mapped_column(Float)
    altitude: Mapped[float | None] = mapped_column(Float)
    battery: Mapped[float | None] = mapped_column(Float)
    charging: Mapped[bool | None] = mapped_column(Boolean)
    alarm: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    valid: Mapped[bool] = mapped_column(
        Boolean,
        default=True,
        server_default=text("true"),
        comment="false: the device marked it invalid; it does not move the zone state",
    )


class SafeZone(Base):
    """The one safe zone of an elder: the home grid grown by ``buffer_m``, a circle or a polygon."""

    __tablename__ = "safe_zone"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'circle') = (radius_m IS NOT NULL AND centre IS NOT NULL)", name="circle"
        ),
    )
    elder_id: Mapped[int] = mapped_column(
        ForeignKey("elder.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[ZoneKind] = mapped_column(Enum(ZoneKind, name="zone_kind"))
    buffer_m: Mapped[float | None] = mapped_column(Float)
    centre: Mapped[object | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=False), nullable=True
    )
    radius_m: Mapped[float | None] = mapped_column(Float)
    geom: Mapped[object] = mapped_column(
        Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ZoneState(Base):
    """``geo.care.safezone.ZoneState`` of one elder, kept between fixes (metric CRS)."""

    __tablename__ = "zone_state"
    elder_id: Mapped[int] = mapped_column(
        ForeignKey("elder.id", ondelete="CASCADE"), primary_key=True
    )
    outside: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    last_fix_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    last_x: Mapped[float | None] = mapped_column(Float)
    last_y: Mapped[float | None] = mapped_column(Float)
    low_battery: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    no_fix: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    alarm: Mapped[str | None] = mapped_column(String(64))
    battery: Mapped[float | None] = mapped_column(
        Float, comment="per cent, from the elder's newest fix or keep-alive that gave one"
    )  # migration 0030
    # Set by ingest with the fixes it stores; kept when they are purged (migration 0023).
    last_received_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="when a fix of the elder was last received (stored), whatever its own "
        "time; kept when positions are purged",
    )


class Alert(Base):
    """Something staff must hear about, routed to the workers of the current and home grids."""

    __tablename__ = "alert"
    __table_args__ = (
        Index("ix_alert_status_raised", "status", "raised_at"),
        # The live inboxes' look for alerts acknowledged or closed lately (migration 0034).
        Index("ix_alert_acknowledged_at", "acknowledged_at"),
        Index("ix_alert_closed_at", "closed_at"),
        # The fix it was raised at is named by its whole key (migration 0019): an alert
        # outlives its fix, and the purge or a withdrawal of consent empties both columns
        # (a trigger on position since 0027, not a foreign key).
        CheckConstraint("(position_id IS NULL) = (position_time IS NULL)", name="position_ref"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elder.id", ondelete="CASCADE"), index=True)
    kind: Mapped[AlertKind] = mapped_column(Enum(AlertKind, name="alert_kind"))
    status: Mapped[AlertStatus] = mapped_column(
        Enum(AlertStatus, name="alert_status"), default=AlertStatus.open
    )
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    raised_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    # Indexed (migrations 0015, 0019): the retention purge clears these for every fix it
    # deletes, and for every day of fixes it drops.
    position_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    position_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("grid.id", ondelete="SET NULL"), comment="where the elder is now"
    )
    home_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id", ondelete="SET NULL"))
    detail: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(128))


class AlertRecipient(Base):
    """A worker an alert was routed to, and why (``current_grid`` or ``home_grid``)."""

    __tablename__ = "alert_recipient"
    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[int] = mapped_column(
        ForeignKey("worker.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(String(16), primary_key=True)


class WebhookOutbox(Base):
    """An alert or a case (``topic``, migration 0017) waiting to be POSTed to its webhook;
    retried with back-off (``data.webhooks``)."""

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(16), server_default="alert")
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("incident_case.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
