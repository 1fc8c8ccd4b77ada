"""Who is calling, what their role lets them do, and which area they may see.

Deny by default: every router is mounted behind ``authenticated``; only the routes in
``PUBLIC_ROUTES`` answer without credentials. Callers present a short-lived bearer token
(OAuth2 password flow), the same token in an HttpOnly cookie (for the HTML maps), or an API
key (devices, integrations) in ``X-API-Key``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any

import anyio.to_thread
import jwt
from fastapi import Depends, FastAPI, Request, Response
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pwdlib import PasswordHash
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.hardening import COOKIE as HARDENING_COOKIE
from api.key_checks import KeyChecks
from api.principals import Principal
from api.state import app_state
from data.access.queries import (
    ApiKeyRecord,
    AreaScope,
    UserRecord,
    find_api_keys,
    find_user,
    live_device_keys,
    resolve_scope,
    write_audit,
)
from data.access.reasons import AuditReason
from data.models import Role
from data.policy import STAFF, Action, roles_for
from data.settings import Settings
from geo.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

COOKIE = HARDENING_COOKIE  # one name, also read by the cross-site guard
ALGORITHM = "HS256"
HUMAN_ROLES = STAFF

# Routes that answer without credentials. Everything else is refused (tested route by route).
PUBLIC_ROUTES = frozenset(
    {
        "/health",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/",
        "/login",
        "/logout",
        "/token",
        "/lang",  # only sets the language cookie
    }
)

#: Routes that check credentials themselves, as their standard says: Open311 GeoReport v2
#: takes ``api_key`` as a form field and keeps discovery and services open
#: (``api/routers/open311.py``; every route there names its policy action).
SELF_AUTHENTICATED_PREFIXES = ("/open311/",)

INGEST_PREFIX = "/ingest/"  # device routes that also take the API key as ?key=

_hasher = PasswordHash.recommended()  # argon2id
# A hash of a random string, verified when the user is unknown so both paths cost the same.
_DUMMY_HASH = _hasher.hash(uuid.uuid4().hex)

# FastAPI's own scheme classes, used for the OpenAPI document only (see document_security).
_SCHEMES = (
    OAuth2PasswordBearer(tokenUrl="/token", auto_error=False),
    APIKeyHeader(name="X-API-Key", auto_error=False),
)
SECURITY_SCHEMES = {
    scheme.scheme_name: scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    for scheme in _SCHEMES
}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    return _hasher.verify(password, password_hash or _DUMMY_HASH) and password_hash is not None


def password_stamp(password_hash: str) -> str:
    """What a token says of the password it was signed in with (a digest of its hash, which
    tells nothing of the password): a token whose stamp is not the current password's is
    refused, so changing a password signs the account out everywhere, to the instant."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def issue_token(settings: Settings, user: UserRecord) -> tuple[str, int]:
    now = int(time.time())
    ttl = settings.token_minutes * 60
    claims = {
        "sub": user.username,
        "role": user.role.value,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "pwd": password_stamp(user.password_hash),
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM), ttl


def signed_in(response: Response, settings: Settings, user: UserRecord) -> Response:
    """``response`` with a new session cookie for ``user``: the token in an HttpOnly,
    SameSite=Strict cookie (Secure in production), as the browser's sign-in sets it."""
    value, ttl = issue_token(settings, user)
    response.set_cookie(
        COOKIE,
        value,
        max_age=ttl,
        httponly=True,
        samesite="strict",
        secure=settings.environment == "production",
        path="/",
    )
    return response


def authenticate_password(session: Session, username: str, password: str) -> UserRecord:
    user = find_user(session, username)
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.active:
        raise Unauthorized("wrong username or password")
    return user


def _decode(settings: Settings, token: str) -> dict[str, object]:
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            settings.signing_key(),
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "role"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired; sign in again") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("the token is not valid") from exc
    return claims


def _user_principal(session: Session, username: str, via: str, stamp: object) -> Principal:
    user = find_user(session, username)
    if user is None or not user.active:
        raise Unauthorized("the token's user no longer exists or is disabled")
    # A token signed in with another password than the current one dies with it. (One
    # without a stamp predates migration 0031: good while the password was never changed.)
    unchanged = stamp is None and user.password_changed_at is None
    if not unchanged and stamp != password_stamp(user.password_hash):
        raise Unauthorized("the password was changed since this sign-in; sign in again")
    # The stored role wins over the token's claim: a demoted user loses rights at once.
    return Principal(
        user.username,
        user.role,
        user.id,
        resolve_scope(session, user.role, user.id),
        via,
        must_change_password=user.must_change_password,
    )


def _key_principals(session: Session, keys: Sequence[str]) -> dict[str, Principal]:
    """The principals of the valid keys among ``keys``."""
    return _principals_of(session, find_api_keys(session, keys))


def _principals_of(session: Session, records: Mapping[str, ApiKeyRecord]) -> dict[str, Principal]:
    """A principal per key record (one query per key owner's area; a device has none)."""
    scopes: dict[tuple[Role, int | None], AreaScope] = {}
    out = {}
    for key, record in records.items():
        owner = (record.role, record.user_id)
        if owner not in scopes:
            scopes[owner] = resolve_scope(session, record.role, record.user_id)
        out[key] = Principal(
            f"key:{record.name}", record.role, record.user_id, scopes[owner], "api_key"
        )
    return out


def preload_device_keys(app: FastAPI, *, limit: int = 50_000) -> int:
    """Remember every live device key's principal when the API starts (by the digest
    stored for it), so that the wearables' first reports after a restart or a deploy do
    not all queue for a key check at once. Call once the change feed is live."""
    state = app_state(app)
    cache = state.principals
    generation = cache.generation()
    try:
        with Session(state.engine) as session:
            principals = _principals_of(session, live_device_keys(session, limit=limit))
    except SQLAlchemyError as exc:  # only a warm start lost: keys are checked as they come
        log.warning("device keys not preloaded: %s", exc)
        return 0
    return cache.put_digests("api_key", principals, generation)


def _key_checks(app: FastAPI) -> KeyChecks:
    """The app's batched key checks on the running event loop."""
    state = app_state(app)

    def read(keys: Sequence[str]) -> dict[str, Principal]:
        with Session(state.engine) as session:
            return _key_principals(session, keys)

    return state.key_checks.get(lambda: KeyChecks(read))


def _credential(
    request: Request, bearer: str | None, api_key: str | None
) -> tuple[str, str] | None:
    """Which credential speaks for this request: a bearer token, an API key, or the cookie."""
    if not api_key and request.scope["path"].startswith(INGEST_PREFIX):
        # Traccar Client and OsmAnd cannot set headers: on ingest only, ?key= is accepted.
        api_key = request.query_params.get("key")
    if bearer:
        return "token", bearer
    if api_key:
        return "api_key", api_key
    if cookie := request.cookies.get(COOKIE):
        return "cookie", cookie
    return None


CREDENTIAL_READS = 8
"""Tokens checked against the database at once: letting each take a thread and a pooled
connection when many arrive together overflows the pool, and new connections then cost more
than the reads. (API keys, a thousand wearables reporting at once, share batched reads.)"""


def _credential_reads(app: FastAPI) -> asyncio.Semaphore:
    """The app's limit on concurrent credential reads, for the running event loop."""
    return app_state(app).credential_reads.get(lambda: asyncio.Semaphore(CREDENTIAL_READS))


async def identify(request: Request, bearer: str | None, api_key: str | None) -> Principal | None:
    """The caller behind the request's credentials, or ``None`` when it brought none.

    Answered from :class:`~api.principals.Principals` when the same credential was checked
    since the last change to users, keys, scopes or grids; otherwise read in a worker thread
    with its own short session, so the event loop never waits on the database (API keys
    arriving together are read together, :class:`~api.key_checks.KeyChecks`).
    """
    credential = _credential(request, bearer, api_key)
    if credential is None:
        return None
    via, secret = credential
    app = request.app
    state = app_state(app)
    cache = state.principals
    principal = cache.get(via, secret)
    if principal is None:
        generation = cache.generation()
        expires: float | None = None
        if via == "api_key":
            principal = await _key_checks(app).check(secret)
            if principal is None:
                raise Unauthorized("the API key is not valid")
        else:
            claims = _decode(state.settings, secret)
            expires = float(claims["exp"])  # type: ignore[arg-type]

            def read() -> Principal:
                with Session(state.engine) as session:
                    return _user_principal(session, str(claims["sub"]), via, claims.get("pwd"))

            async with _credential_reads(app):
                principal = await anyio.to_thread.run_sync(read)
        cache.put(via, secret, principal, generation, expires)
    request.state.principal = principal
    return principal


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def optional_principal(request: Request) -> Principal | None:
    """The caller, if any. Reads the headers itself rather than through FastAPI's security
    classes: every sub-dependency is solved again for each route-level ``require()``, and on
    ``/locate`` that bookkeeping cost more than the lookup. The docs still show both schemes
    (:func:`document_security`)."""
    return await identify(request, _bearer(request), request.headers.get("x-api-key") or None)


async def authenticated(request: Request) -> Principal:
    """The caller, or 401. Identified once per request: the router-level check files the
    principal in ``request.state`` and every later ``require()`` reuses it."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = await optional_principal(request)
    if principal is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <token>' or an API key")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]


def require(action: Action) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting only the roles :mod:`data.policy` allows ``action``; the
    refusal names the roles that may.

    It takes the request rather than depending on :func:`authenticated`: FastAPI solves a
    sub-dependency's whole tree again for each use, even when its value is cached."""
    allowed = roles_for(action)

    async def check(request: Request) -> Principal:
        principal = await authenticated(request)
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"role '{principal.role.value}' may not do this; needs one of: {names}")
        return principal

    check.gridwork_action = action  # type: ignore[attr-defined]  # read by the matrix test
    return check


def audit_read(
    session: Session,
    request: Request,
    principal: Principal,
    *,
    subject_type: str,
    subject_ids: list[object],
    reason: str | AuditReason | None,
) -> None:
    """Record a read of personal data in the caller's own transaction, before it is answered.

    ``reason``: an :class:`AuditReason` where gridwork words it (the audit page says it in its
    language), the caller's own words as a string."""
    write_audit(
        session,
        actor=principal.name,
        role=principal.role.value,
        method=request.method,
        route=request.url.path,
        subject_type=subject_type,
        subject_ids=subject_ids,
        reason=reason,
    )


def audit_subjects(
    session: Session,
    request: Request,
    principal: Principal,
    kind: str,
    ids: list[object],
    reason: str | AuditReason | None,
) -> None:
    """:func:`audit_read` of ``ids`` of one ``kind`` (elder, position, household), for the
    routes that read several in one place."""
    audit_read(session, request, principal, subject_type=kind, subject_ids=ids, reason=reason)


def document_security(app: FastAPI) -> None:
    """Show the bearer token and the API key in the OpenAPI document (and Swagger's
    Authorize button) for every route outside ``PUBLIC_ROUTES``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        requirement: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
        for path, operations in schema.get("paths", {}).items():
            if path in PUBLIC_ROUTES or path.startswith(SELF_AUTHENTICATED_PREFIXES):
                continue
            for operation in operations.values():
                operation["security"] = requirement
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
