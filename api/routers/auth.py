"""Signing in (OAuth2 password flow and a browser form), who am I, and the audit log."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import LimitDep, OffsetDep, SessionDep
from api.hardening import limit
from api.security import (
    COOKIE,
    CurrentPrincipal,
    authenticate_password,
    issue_token,
    require,
)
from data.access.queries import read_audit, scopes_of
from data.policy import Action

public = APIRouter(tags=["auth"])
private = APIRouter(tags=["auth"])

_login_limit = limit("login", lambda r: r.app.state.settings.login_per_minute)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


@public.post("/token", response_model=Token, dependencies=[Depends(_login_limit)])
def token(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """Exchange a username and password for a bearer token valid for a few minutes."""
    role = authenticate_password(session, form.username, form.password)
    value, ttl = issue_token(request.app.state.settings, form.username, role)
    return Token(access_token=value, expires_in=ttl)


_LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>gridwork · sign in
</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:24rem;margin:4rem auto}}
label{{display:block;margin:.6rem 0}}input{{width:100%;padding:.3rem}}.err{{color:#b00}}</style>
</head><body><h1>gridwork</h1><p class="err">{error}</p>
<form method="post" action="/login"><label>Username <input name="username" autocomplete="username"
required maxlength="64"></label><label>Password <input name="password" type="password"
autocomplete="current-password" required maxlength="256"></label>
<button type="submit">Sign in</button></form></body></html>"""


def login_page(error: str = "") -> HTMLResponse:
    return HTMLResponse(_LOGIN.format(error=escape(error)), status_code=401 if error else 200)


@public.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form() -> HTMLResponse:
    return login_page()


@public.post("/login", include_in_schema=False, dependencies=[Depends(_login_limit)])
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Any:
    """The browser's way in: the token goes into an HttpOnly, SameSite=Strict cookie."""
    try:
        role = authenticate_password(session, username, password)
    except Exception:
        return login_page("Wrong username or password.")
    settings = request.app.state.settings
    value, ttl = issue_token(settings, username, role)
    response = RedirectResponse("/", status_code=303)
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


@public.post("/logout", include_in_schema=False)
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@private.get("/me", summary="Who I am, my role and my area")
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
