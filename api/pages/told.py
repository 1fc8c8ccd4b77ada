"""What a page says after a change, carried in the redirect's URL and signed.

After a form is taken, the route redirects and the next page says what was done ("Removed:
household E-1."). The name travels in the query string, and a page that printed whatever it
found there would say anything a crafted link put in it, on a trusted intranet page ("Removed:
… call 555-0100 to confirm your account"). So the value is sent with an HMAC of the
deployment's signing key (:meth:`data.settings.Settings.signing_key`) and the page says it
only when the HMAC holds; a link typed by hand says nothing.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from api.state import app_state

_SEP = "~"
_PURPOSE = b"gridwork told:"  # keys this MAC apart from the tokens' use of the same key


def signed(request: Request, value: str) -> str:
    """``value`` with its MAC, for a redirect's query string."""
    return f"{value}{_SEP}{_mac(request, value)}"


def heard(request: Request, token: str) -> str:
    """The value :func:`signed` sent, or ``""`` when the token was not made by it."""
    value, sep, mac = token.rpartition(_SEP)
    if not sep or not hmac.compare_digest(mac, _mac(request, value)):
        return ""
    return value


def _mac(request: Request, value: str) -> str:
    key = app_state(request).settings.signing_key().encode()
    return hmac.new(key, _PURPOSE + value.encode(), hashlib.sha256).hexdigest()[:20]
