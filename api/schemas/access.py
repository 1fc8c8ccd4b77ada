"""Signing in, who am I, the audit log, and managing accounts and keys (``/admin``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas import Answer, Timestamp
from data.models import Role, ScopeLevel


class Token(Answer):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="seconds")


class ScopeEntry(Answer):
    level: ScopeLevel
    code: str


class Me(Answer):
    name: str
    role: Role
    scope: list[ScopeEntry] = Field(description="the areas given to the account")
    everywhere: bool = Field(description="true for an unrestricted account (admins)")


class AuditEntry(Answer):
    id: int
    at: Timestamp
    actor: str
    role: str
    method: str
    route: str
    subject_type: str
    subject_ids: list[str]
    reason: str | None = Field(description="why, in English (as typed, where someone typed it)")
    reason_said: list[tuple[str, dict[str, Any]]] | None = Field(
        None,
        description="the reason as gridwork worded it: sentence codes with their values "
        "(data.access.reasons), for saying it in another language; null where typed",
    )


class AuditLog(Answer):
    entries: list[AuditEntry] = Field(description="newest first")


class User(Answer):
    username: str
    role: Role
    active: bool
    created_at: Timestamp


class Users(Answer):
    users: list[User]


class UserActive(Answer):
    username: str
    active: bool


class UserRemoved(Answer):
    username: str
    removed: bool
    keys_removed: int = Field(description="API keys removed with the account")


class ApiKey(Answer):
    """A key as listed: never the key itself nor its digest."""

    name: str
    prefix: str
    role: Role
    owner: str | None = Field(description="the user the key acts for, if any")
    created_at: Timestamp
    revoked_at: Timestamp | None
    live: bool = Field(description="not revoked, and its user (if any) active and allowed")


class ApiKeys(Answer):
    keys: list[ApiKey]


class KeyRevoked(Answer):
    name: str
    revoked: bool
    already_revoked: bool
