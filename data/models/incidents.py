"""Incidents as cases (migration 0012): the category catalogue, departments (职能部门), the case
of an incident, its append-only history and the notices sent to the level it is routed to.

Categories are about places and services (a broken street light, a leaking pipe, an elder
needing a visit); there is no category or column about who a person is (ethnicity, religion,
beliefs, political views), and ``tests/data/test_schema_privacy.py`` fails if one appears.
The reporter's contact is personal data: handlers of the case's area read it, audited.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from data.models.base import Base, Coded


class CaseLevel(enum.StrEnum):
    """Who handles a case: the grid first, then community, street (街道) and district."""

    grid = "grid"
    community = "community"
    street = "street"
    district = "district"


class CaseStatus(enum.StrEnum):
    new = "new"
    accepted = "accepted"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"


_level = Enum(CaseLevel, name="case_level", create_type=False)
_status = Enum(CaseStatus, name="case_status", create_type=False)


class Department(Coded, Base):
    """A 职能部门 (water, sanitation, fire safety…): categories point at it; it signs in as an
    account with the ``department`` role, whose scope is the area it serves."""

    __tablename__ = "department"
    name_en: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), unique=True
    )


class IncidentCategory(Coded, Base):
    """One kind of matter, the level that handles it first and the deadline at each level."""

    __tablename__ = "incident_category"
    name_en: Mapped[str] = mapped_column(String(200))
    first_level: Mapped[CaseLevel] = mapped_column(_level, server_default="grid")
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="SET NULL")
    )
    hours_grid: Mapped[int] = mapped_column(Integer)
    hours_community: Mapped[int] = mapped_column(Integer)
    hours_street: Mapped[int] = mapped_column(Integer)
    hours_district: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class IncidentCase(Base):
    """The case of one incident (same id): level, status, deadline, who holds it."""

    __tablename__ = "incident_case"
    id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("incident_category.id"), index=True)
    status: Mapped[CaseStatus] = mapped_column(_status, server_default="new")
    level: Mapped[CaseLevel] = mapped_column(_level)
    top_level: Mapped[CaseLevel] = mapped_column(_level)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), index=True
    )
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), index=True
    )
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="SET NULL"), index=True
    )
    description: Mapped[str] = mapped_column(Text)
    reporter_name: Mapped[str | None] = mapped_column(String(200))
    reporter_contact: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32), server_default="app")
    client: Mapped[str | None] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_in_time: Mapped[bool | None] = mapped_column(Boolean)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalations: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class CaseEvent(Base):
    """One change of a case (who, when, from → to, note). Append-only: a trigger refuses
    UPDATE and DELETE (except when the case itself is deleted)."""

    __tablename__ = "case_event"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("incident_case.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[CaseStatus | None] = mapped_column(_status)
    to_status: Mapped[CaseStatus | None] = mapped_column(_status)
    from_level: Mapped[CaseLevel | None] = mapped_column(_level)
    to_level: Mapped[CaseLevel | None] = mapped_column(_level)
    note: Mapped[str | None] = mapped_column(Text)


class CaseNotice(Base):
    """A notice to the staff of one level and area (or one account, or a department) that a
    case has reached them; shown in the app until read."""

    __tablename__ = "case_notice"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("incident_case.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    level: Mapped[CaseLevel] = mapped_column(_level)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    community_id: Mapped[int | None] = mapped_column(Integer)
    street_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
