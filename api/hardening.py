"""Defences every request passes through: body size, hostile input, rate limits, headers."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from fastapi import Request
from starlette.formparsers import MultiPartException
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import Refuse, problem, refusal
from api.state import app_state
from geo.errors import InvalidInput, PayloadTooLarge

_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'self'; "
    "base-uri 'self'; form-action 'self'"
)


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413, whether or not Content-Length is honest;
    answered through ``refuse`` (:func:`api.errors.refusal`: a page for a browser)."""

    def __init__(self, app: ASGIApp, max_bytes: int, refuse: Refuse | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refuse = refuse or refusal()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        mb = f"{self.max_bytes / 1024 / 1024:.3g}"
        exc = PayloadTooLarge.said("body_too_big", field="body", bytes=self.max_bytes, mb=mb)
        response = await self.refuse(Request(scope), exc)
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


# Deeper than any GeoJSON (a MultiPolygon's positions are 4 arrays down, in a Feature in a
# FeatureCollection) and far below the depth at which Python's JSON parser and pydantic recurse.
MAX_JSON_DEPTH = 64

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# "\u0000" not preceded by an escaped backslash: a NUL character once parsed.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body``, counted on the bytes (no parsing)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return max(int(np.cumsum(steps, dtype=np.int32).max()), 0)


FORM = b"application/x-www-form-urlencoded"
MULTIPART = b"multipart/form-data"


def _media(scope: Scope) -> bytes:
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
    return content_type.split(b";", 1)[0].strip().lower()


def _is_json(media: bytes) -> bool:
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class InputGuard:
    """Refuse, before anything parses it, input that would crash or poison the layers below.

    * JSON nested deeper than ``max_depth`` (100,000 nested arrays make Python's parser and
      pydantic recurse until they fail): 422, counted on the raw bytes.
    * A NUL character in the path, a query parameter, a JSON string or a text field of a form,
      URL-encoded (the sign-in) or multipart (the pages' forms that may carry a photo or a
      consent scan): PostgreSQL text cannot hold one, so it would surface as a database error
      (500) instead of a 422. A multipart body is parsed here only when it holds a zero byte,
      which most files do; the files themselves may hold any byte.

    A refusal is answered through ``refuse`` (:func:`api.errors.refusal`: a page for a
    browser, problem JSON for an API client).
    """

    def __init__(
        self, app: ASGIApp, max_depth: int = MAX_JSON_DEPTH, refuse: Refuse | None = None
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.refuse = refuse or refusal()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        named = _nul_in_url(scope)
        if named is not None:
            await (await self.refuse(Request(scope), _nul(named)))(scope, receive, send)
            return
        media = _media(scope)
        if not (_is_json(media) or media in (FORM, MULTIPART)):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay(message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        refused: InvalidInput | None = None
        if media in (FORM, MULTIPART):
            named = (
                _nul_in_pairs(body.decode("latin-1"))
                if media == FORM
                else await _nul_in_multipart(scope, body)
            )
            refused = None if named is None else _nul(named)
        elif json_depth(body) > self.max_depth:
            refused = InvalidInput(f"JSON nested deeper than {self.max_depth} levels", field="body")
        elif b"\\u0000" in body and _JSON_NUL.search(body):
            refused = InvalidInput(
                "a string contains a NUL character (\\u0000), which cannot be stored", field="body"
            )
        if refused is not None:
            await (await self.refuse(Request(scope), refused))(scope, receive, send)
            return
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay(whole, receive), send)


def _nul(field: str) -> InvalidInput:
    """The refusal of a NUL character in ``field``, said in the page's language on a page."""
    return InvalidInput.said("nul", field=field)


def _nul_in_url(scope: Scope) -> str | None:
    """``path``, or the query parameter, that holds a NUL."""
    if "\x00" in scope.get("path", ""):
        return "path"
    return _nul_in_pairs(scope.get("query_string", b"").decode("latin-1"))


def _nul_in_pairs(encoded: str) -> str | None:
    """The name of the first pair of a query string or form body holding a NUL."""
    if "%00" not in encoded and "\x00" not in encoded:
        return None
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "\\x00")
    return None


async def _nul_in_multipart(scope: Scope, body: bytes) -> str | None:
    """The first text field of a multipart body holding a NUL, named (files may hold any)."""
    if b"\x00" not in body:
        return None
    whole: Message = {"type": "http.request", "body": body, "more_body": False}
    try:
        form = await Request(dict(scope), _replay(whole, _nothing_more)).form()
    except MultiPartException:  # malformed: the route's own parse refuses it, in its words
        return None
    try:
        for name, value in form.multi_items():
            if isinstance(value, str) and "\x00" in value:
                return name
    finally:
        await form.close()
    return None


async def _nothing_more() -> Message:
    return {"type": "http.disconnect"}


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that answers ``first`` once (the body already read), then the real one."""
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


class SecurityHeaders:
    """Headers on every answer; the CSP also keeps pages from loading anything off-site."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"SAMEORIGIN"),
                    (b"content-security-policy", _CSP.encode()),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[Network, ...]:
    """``GRIDWORK_TRUSTED_PROXIES`` parsed: comma-separated addresses or CIDR networks."""
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()
    )


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(request: Request) -> str:
    """The client's address: the TCP peer, unless the peer is one of the configured proxies
    (``GRIDWORK_TRUSTED_PROXIES``, none by default). Then ``X-Forwarded-For`` is read from the
    right, past every trusted proxy: the first address no trusted proxy vouches for is the
    client (anything to its left was written by the client itself)."""
    peer = request.client.host if request.client else "unknown"
    networks = trusted_networks(app_state(request).settings.trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [
        hop.strip()
        for value in request.headers.getlist("x-forwarded-for")
        for hop in value.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop[:64]
    return hops[0][:64] if hops else peer


def caller_or_address(request: Request) -> str:
    """The authenticated caller when known (devices behind one NAT share an address)."""
    principal = getattr(request.state, "principal", None)
    return f"caller:{principal.name}" if principal is not None else client_address(request)


def limit(
    bucket: str,
    per_minute: Callable[[Request], int],
    *,
    key: Callable[[Request], str] = client_address,
) -> Callable[[Request], Awaitable[None]]:
    """A dependency counting calls to ``bucket`` per ``key`` (by default the client address).

    ``async`` so that counting a call costs no hop to the thread pool."""

    async def check(request: Request) -> None:
        app_state(request).rate_limit.hit(bucket, key(request), per_minute(request))

    return check


# For device ingest routes: ``dependencies=[Depends(ingest_limit)]`` after authentication,
# per device key: wearables behind one carrier NAT share an address, not a key.
ingest_limit = limit(
    "ingest", lambda r: app_state(r).settings.ingest_per_minute, key=caller_or_address
)


# --- cross-site request forgery ---------------------------------------------------------

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SAME_ORIGIN = frozenset({"same-origin", "none"})  # "none": typed or bookmarked by the user
COOKIE = "gridwork_token"  # the session cookie's name (api.security.COOKIE is this one)


def _cookie_signed_in(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """Would :func:`api.security.identify` take this request's credential from the cookie?
    (A bearer token or an API key wins over the cookie; a browser never adds those itself.)"""
    if headers.get(b"authorization", b"").strip().lower().startswith(b"bearer "):
        return False
    if headers.get(b"x-api-key"):
        return False
    query = scope.get("query_string", b"")
    if scope.get("path", "").startswith("/ingest/") and b"key=" in query:
        return False
    cookie = headers.get(b"cookie")
    return cookie is not None and bool(cookie_parser(cookie.decode("latin-1")).get(COOKIE))


def cross_site_refusal(
    headers: dict[bytes, bytes], allowed_origins: Sequence[str]
) -> tuple[str, str] | None:
    """Why a cookie-signed-in unsafe request must be refused as cross-site, or None.

    The browser's ``Sec-Fetch-Site`` decides when it is sent (every current browser does; a
    page cannot forge it): only ``same-origin`` passes, so another port of the same host or a
    sibling subdomain (``same-site``) is refused too. Older browsers send ``Origin`` on every
    cross-origin POST: it must be this server's own (its ``Host``) or one of
    ``GRIDWORK_CORS_ORIGINS``. A request with neither header did not come from a browser page.
    """
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    if origin and origin in allowed_origins:
        return None
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
    if site:
        if site in _SAME_ORIGIN:
            return None
        return "Sec-Fetch-Site", f"Sec-Fetch-Site is '{site[:32]}'"
    if not origin:
        return None
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
    if netloc and netloc == host:
        return None
    return "Origin", f"Origin '{origin[:100]}' is not this site ('{host[:100]}')"


class CrossSiteGuard:
    """Refuse (403) every unsafe request (POST, PUT, PATCH, DELETE) signed in by the cookie
    that a browser sent from another site: the defence against cross-site request forgery
    beyond ``SameSite=Strict``, which lets another port of the same host or a sibling
    subdomain through. Bearer tokens and API keys are never added by a browser on its own, so
    requests carrying them are not checked."""

    def __init__(self, app: ASGIApp, allowed_origins: Sequence[str] = ()) -> None:
        self.app = app
        self.allowed_origins = tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _UNSAFE:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = None
        if _cookie_signed_in(scope, headers):
            refusal = cross_site_refusal(headers, self.allowed_origins)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        field, why = refusal
        response = problem(
            403,
            "Forbidden",
            f"cross-site request refused: {why}, and the request is signed in by the "
            "session cookie; send it from this site's own pages, or with a bearer token",
            field=field,
        )
        await response(scope, receive, send)
