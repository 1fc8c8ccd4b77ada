"""Who may see what: staff accounts, their areas, API keys, the append-only audit log, and
choices fixed once per deployment."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from data.models.base import Base


class DeploymentSetting(Base):
    """Choices fixed once per deployment, such as the metric CRS picked from the first import."""

    __tablename__ = "deployment_setting"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --- who may see what ------------------------------------------------------------------------


class Role(enum.StrEnum):
    """What a user does; each role sees only what that job needs (see api.security)."""

    admin = "admin"
    planner = "planner"
    coordinator = "coordinator"
    grid_worker = "grid_worker"
    care_staff = "care_staff"
    device = "device"
    department = "department"  # a 职能部门 (migration 0012)


class ScopeLevel(enum.StrEnum):
    street = "street"
    community = "community"
    grid = "grid"


class AppUser(Base):
    """A member of staff. Only a password hash is stored, never the password."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(Enum(Role, name="user_role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: Tokens and cookies issued before this second are refused (migration 0031).
    password_changed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="tokens issued before this second are refused; NULL: never changed",
    )
    #: Set by an administrator (a new account, a reset): its holder is asked to choose their own.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=text("false"),
        comment="the password was set by an administrator; its holder is asked to change it",
    )


class UserScope(Base):
    """One area a user may see: a street, community or grid code (and everything below it)."""

    __tablename__ = "user_scope"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[ScopeLevel] = mapped_column(
        Enum(ScopeLevel, name="scope_level"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(64), primary_key=True)


class ApiKey(Base):
    """A key for a device or an integration; stored as a SHA-256 digest, shown once."""

    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, name="user_role", create_type=False))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One read (or change) of personal data. Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(255))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_ids: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    reason: Mapped[str | None] = mapped_column(Text)
    reason_said: Mapped[list[list[object]] | None] = mapped_column(
        JSONB, comment="the reason as [[sentence code, {values}], ...] (data.access.reasons)"
    )
