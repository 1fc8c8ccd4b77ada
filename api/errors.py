"""Domain errors → HTTP problems (RFC 9457), in one table.

Every 4xx names the field and the reason, so the caller can fix the request without reading
our code; 5xx never leak internals.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.pages.frame import context, error_page, login_redirect_target, wants_html
from api.pages.said import said_check, said_in_full
from api.principals import Principal
from geo.errors import (
    Conflict,
    Forbidden,
    GridworkError,
    ImportRejected,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("gridwork.api")

STATUS: dict[type[GridworkError], int] = {
    InvalidInput: 422,
    ImportRejected: 422,
    NotFound: 404,
    Conflict: 409,
    Unauthorized: 401,
    Forbidden: 403,
    Unavailable: 503,
    TooManyRequests: 429,
    PayloadTooLarge: 413,
}


def status_for(exc: GridworkError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


async def _gridwork_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GridworkError)
    status = status_for(exc)
    if wants_html(request):
        # A browser: to the sign-in page and back, or the error as a page in the frame.
        if status == 401:
            return RedirectResponse(login_redirect_target(request), status_code=303)
        # The reason in the page's language where the catalog has it (api/pages/said.py).
        principal = getattr(request.state, "principal", None)
        return error_page(request, status, said_in_full(context(request, principal), exc))
    extra: dict[str, object] = {}
    if exc.field:
        extra["field"] = exc.field
    if isinstance(exc, InvalidInput) and exc.index is not None:
        extra["index"] = exc.index
    if isinstance(exc, ImportRejected):
        extra["rejects"] = [
            {"row": r.row, "source_id": r.source_id, "reason": r.reason} for r in exc.rejects
        ]
    return problem(status, type(exc).__name__, str(exc), **extra)


def _reason(err: dict[str, Any]) -> str:
    """A check's words; a validator's own sentence without pydantic's "Value error, "."""
    raised = err.get("ctx", {}).get("error") if err.get("type") == "value_error" else None
    return str(raised) if raised is not None else str(err.get("msg", "invalid"))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query")),
            "reason": _reason(err),
        }
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    if wants_html(request):  # the same, in the page's language
        ctx = context(request, getattr(request.state, "principal", None))
        said = [
            f"{e['field']}: {said_check(ctx, err)}"
            for e, err in zip(errors, exc.errors(), strict=True)
        ]
        return error_page(request, 422, "; ".join(said))
    return problem(422, "InvalidInput", detail, errors=errors)


class _Throttled:
    """Log a recurring warning at most once per ``every_s``, with how many were held back:
    while PostGIS restarts, every one of a thousand devices' reports would log it."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self._last = -math.inf
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._held += 1
            return
        held, self._held, self._last = self._held, 0, now
        suffix = f" (and {held} more like it since the last report)" if held else ""
        log.warning(message + suffix, *args)


_database_warnings = _Throttled()


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    _database_warnings.warning("database unavailable: %s", exc)
    return problem(503, "Unavailable", "the database is not reachable; try again shortly")


Identify = Callable[[Request], Awaitable[Principal | None]]


def _http_error(identify: Identify | None) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Starlette's own errors (an unknown URL, a wrong method): a page in the frame for a
    browser, FastAPI's usual JSON for API clients.

    No route ran, so nobody checked the caller's credentials: ``identify`` does it here, so
    that a signed-in browser keeps its navigation on the page (a bad or expired credential
    only means the page is drawn as for a visitor)."""

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not (wants_html(request) and exc.status_code >= 400):
            return await http_exception_handler(request, exc)
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None and identify is not None:
            try:
                principal = await identify(request)
            except GridworkError:
                principal = None
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = context(request, principal)._("There is no page at this address.")
        return error_page(request, exc.status_code, detail)

    return handle


#: How a defence in front of the routes (:mod:`api.hardening`) answers a refusal.
Refuse = Callable[[Request, GridworkError], Awaitable[Response]]


def refusal(identify: Identify | None = None) -> Refuse:
    """Answer a refusal made before any route ran as a route's would be answered: problem
    JSON for an API client; for a browser, the error page in its frame and language (a
    12 MB photo from a phone showed the JSON in English). ``identify`` finds the caller, as
    for an unknown address, so that a signed-in browser keeps its navigation."""

    async def refuse(request: Request, exc: GridworkError) -> Response:
        if wants_html(request) and identify is not None:
            try:
                request.state.principal = await identify(request)
            except GridworkError:
                request.state.principal = None
        return await _gridwork_error(request, exc)

    return refuse


def add_exception_handlers(app: FastAPI, *, identify: Identify | None = None) -> None:
    """Install the handlers; ``identify`` (the caller from the request's credentials, or
    ``None``) gives pages for unknown addresses the signed-in caller's frame."""
    app.add_exception_handler(StarletteHTTPException, _http_error(identify))
    app.add_exception_handler(GridworkError, _gridwork_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OperationalError, _database_down)
