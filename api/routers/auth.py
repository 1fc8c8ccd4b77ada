"""Signing in (OAuth2 password flow and a browser form), who am I, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import LimitDep, OffsetDep, SessionDep
from api.hardening import limit
from api.pages.frame import context, local_path, render
from api.schemas.access import AuditLog, Me, Token
from api.security import (
    COOKIE,
    CurrentPrincipal,
    authenticate_password,
    issue_token,
    require,
    signed_in,
)
from api.state import app_state
from data.access.queries import UserRecord, read_audit, scopes_of
from data.policy import Action
from geo.errors import TooManyRequests, Unauthorized

public = APIRouter(tags=["auth"])
private = APIRouter(tags=["auth"])

# Sign-ins per minute per client address (the TCP peer, or what a configured proxy says:
# api.hardening.client_address) ...
_login_limit = limit("login", lambda r: app_state(r).settings.login_per_minute)
_ACCOUNT = "login-account"


def _sign_in(request: Request, session: SessionDep, username: str, password: str) -> UserRecord:
    """... and failed sign-ins per minute per account, whatever addresses they come from:
    guessing one account's password from many addresses is refused too (429, even for the
    right password, so the refusal says nothing about it). Unknown names count alike."""
    state = app_state(request)
    limiter = state.rate_limit
    account = username.strip().lower()[:64]
    per_minute = state.settings.login_per_minute
    limiter.check(
        _ACCOUNT, account, per_minute, what="failed sign-ins for this account", field="username"
    )
    try:
        return authenticate_password(session, username, password)
    except Unauthorized:
        limiter.record(_ACCOUNT, account)
        raise


@public.post("/token", response_model=Token, dependencies=[Depends(_login_limit)])
def token(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """Exchange a username and password for a bearer token valid for a few minutes."""
    user = _sign_in(request, session, form.username, form.password)
    value, ttl = issue_token(app_state(request).settings, user)
    return Token(access_token=value, expires_in=ttl)


def login_page(
    request: Request, error: str = "", *, next_path: str = "/", status_code: int = 200
) -> HTMLResponse:
    """The sign-in form in the frame, in the browser's language; ``next`` survives a retry."""
    ctx = context(request, None)
    return render(
        request,
        None,
        "login.html",
        title=ctx._("Sign in"),
        status_code=status_code,
        values={"error": error, "next": local_path(next_path)},
    )


@public.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(
    request: Request, next: Annotated[str, Query(max_length=2000)] = "/"
) -> HTMLResponse:
    return login_page(request, next_path=next)


@public.post("/login", include_in_schema=False, dependencies=[Depends(_login_limit)])
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Any:
    """The browser's way in: the token goes into an HttpOnly, SameSite=Strict cookie, and
    the browser goes back to the page that sent it here."""
    ctx = context(request, None)
    try:
        user = _sign_in(request, session, username, password)
    except Unauthorized:
        return login_page(
            request, ctx._("Wrong username or password."), next_path=next, status_code=401
        )
    except TooManyRequests:
        return login_page(
            request,
            ctx._("Too many attempts: wait a minute, then try again."),
            next_path=next,
            status_code=429,
        )
    target = local_path(next)
    if user.must_change_password:
        # A password an administrator chose: its holder chooses their own first.
        target = "/app/password?" + urlencode({"next": target})
    return signed_in(RedirectResponse(target, status_code=303), app_state(request).settings, user)


@public.post("/logout", include_in_schema=False)
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@private.get("/me", response_model=Me, summary="Who I am, my role and my area")
def me(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    scopes = scopes_of(session, principal.user_id) if principal.user_id else []
    return {
        "name": principal.name,
        "role": principal.role.value,
        "scope": [{"level": level.value, "code": code} for level, code in scopes],
        "everywhere": principal.scope.unrestricted,
    }


@private.get(
    "/audit",
    response_model=AuditLog,
    summary="The audit log of personal-data reads (admins only)",
    dependencies=[Depends(require(Action.read_audit))],
)
def audit(
    session: SessionDep,
    since: Annotated[datetime | None, Query()] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    limit: LimitDep = 100,
    offset: OffsetDep = 0,
) -> dict[str, Any]:
    return {"entries": read_audit(session, since=since, actor=actor, limit=limit, offset=offset)}
