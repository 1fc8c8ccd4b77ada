"""Managing accounts and API keys over HTTP (admins only): the same acts as ``gridwork user
disable|enable|remove`` and ``gridwork key list|revoke``.

Each change is audited (who, when, which account or key) and takes effect on the very next
request in every API process: the ``app_user`` and ``api_key`` triggers send the change feed's
NOTIFY (:mod:`data.changes`), which ends every cached credential. A key bound to a user never
acts above that user's current role and dies with the user (:mod:`data.access.queries`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from api.deps import SessionDep
from api.schemas.access import ApiKeys, KeyRevoked, UserActive, UserRemoved, Users
from api.security import Principal, audit_subjects, require
from data.access import queries
from data.policy import Action
from geo.errors import Conflict

router = APIRouter(prefix="/admin", tags=["admin"])

Admin = Annotated[Principal, Depends(require(Action.manage_accounts))]
UserName = Annotated[str, Path(min_length=1, max_length=64)]
KeyName = Annotated[str, Path(min_length=1, max_length=128)]


def _audit(
    session: SessionDep, request: Request, principal: Principal, kind: str, name: str
) -> None:
    """An admin's change, logged as every audited act is (a key's name cut to the column's
    64 characters)."""
    audit_subjects(session, request, principal, kind, [name[:64]], None)


def _not_myself(principal: Principal, username: str, what: str) -> None:
    if principal.user_id is not None and principal.name == username:
        raise Conflict(f"you cannot {what} your own account", field="username")


def _set_active(
    request: Request, session: SessionDep, principal: Principal, username: str, *, active: bool
) -> dict[str, Any]:
    """Disable or enable an account; its cached credentials end through the change feed."""
    queries.set_user_active(session, username, active)
    _audit(session, request, principal, "user", username)
    return {"username": username, "active": active}


@router.get("/users", response_model=Users, summary="Every account: name, role, active")
def users(session: SessionDep, _: Admin) -> dict[str, Any]:
    return {"users": queries.list_users(session)}


@router.post(
    "/users/{username}/disable",
    response_model=UserActive,
    summary="Disable an account and all its keys",
)
def disable_user(
    username: UserName, request: Request, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    _not_myself(principal, username, "disable")
    return _set_active(request, session, principal, username, active=False)


@router.post(
    "/users/{username}/enable", response_model=UserActive, summary="Enable a disabled account again"
)
def enable_user(
    username: UserName, request: Request, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    return _set_active(request, session, principal, username, active=True)


@router.delete(
    "/users/{username}",
    response_model=UserRemoved,
    summary="Remove an account, its areas and its keys",
)
def remove_user(
    username: UserName, request: Request, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    _not_myself(principal, username, "remove")
    keys = queries.remove_user(session, username)
    _audit(session, request, principal, "user", username)
    return {"username": username, "removed": True, "keys_removed": keys}


@router.get(
    "/keys",
    response_model=ApiKeys,
    summary="Every API key (never the key itself): role, owner, live",
)
def keys(session: SessionDep, _: Admin) -> dict[str, Any]:
    return {"keys": queries.list_api_keys(session)}


@router.delete(
    "/keys/{name}",
    response_model=KeyRevoked,
    summary="Revoke an API key; it fails from its next request",
)
def revoke_key(
    name: KeyName, request: Request, session: SessionDep, principal: Admin
) -> dict[str, Any]:
    newly = queries.revoke_api_key(session, name)
    _audit(session, request, principal, "api_key", name)
    return {"name": name, "revoked": True, "already_revoked": not newly}
