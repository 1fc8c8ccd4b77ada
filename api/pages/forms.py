"""A refused form comes back as the same form: the message beside its field, the values kept.

A use case refuses bad input with a domain error naming the field (:mod:`geo.errors`). An
error page would lose what was typed; instead the route renders its form again with
:func:`field_errors` as ``errors`` and what was sent as its values. The templates place each
message under its field with the macros of ``templates/_fields.html``, which also mark the
field ``aria-invalid`` and point its ``aria-describedby`` at the message, so a screen reader
reads it with the field. An error that names no field of the form is shown above it. Given
the page's context, the reason is said in the page's language (:mod:`api.pages.said`).

One function draws a page both ways: its route takes a last parameter :data:`Shown` (FastAPI
gives :data:`NOT_SENT`), and the route that takes the form calls it with :func:`refused`'s
:class:`SentBack`, so the page and its refusal never drift apart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends

from api.pages.frame import PageContext
from api.pages.said import said, said_in_full
from geo.errors import Conflict, GridworkError


def field_errors(
    exc: GridworkError,
    fields: Collection[str],
    *,
    aliases: Mapping[str, str] | None = None,
    ctx: PageContext | None = None,
) -> dict[str, str]:
    """``{field: reason}`` when ``exc`` names a field of the form (``aliases`` maps a name
    the use case gives to the field that shows it), else ``{}``; the reason in the language
    of ``ctx``'s page when it is given."""
    if exc.field is None:
        return {}
    name = (aliases or {}).get(exc.field, exc.field)
    reason = exc.reason if ctx is None else said(ctx, exc)
    return {name: reason} if name in fields else {}


@dataclass(frozen=True)
class SentBack:
    """A page's form as it shows it: empty when the browser opens the page; after a refusal,
    what was typed, each reason beside its field (else one above the form) and the status."""

    form: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    status_code: int = 200

    def values(self) -> dict[str, Any]:
        """What the templates read: ``form``, ``errors`` and ``error``."""
        return {"form": self.form, "errors": self.errors, "error": self.error}


NOT_SENT = SentBack()

#: At most this many suggestions in a typed field's datalist (any value may still be typed):
#: a megacity's 60,000 worker records would make a page of several megabytes.
SUGGESTIONS = 2_000


def _not_sent() -> SentBack:
    return NOT_SENT


#: A page route's last parameter: nothing sent when a browser opens the page.
Shown = Annotated[SentBack, Depends(_not_sent)]


def refusal_status(exc: GridworkError) -> int:
    """A refused form answers 409 for a conflict (a code or device taken already), else 422:
    even a row not found (404 in the API) is a field to correct on a form."""
    return 409 if isinstance(exc, Conflict) else 422


def refused(
    ctx: PageContext,
    exc: GridworkError,
    form: Mapping[str, Any],
    fields: Collection[str],
    *,
    status_code: int | None = None,
    aliases: Mapping[str, str] | None = None,
) -> SentBack:
    """``form`` sent back with the reason of ``exc`` beside its field, or else above the form
    in full (a route that shows only field reasons raises when ``errors`` is empty); answered
    with ``status_code``, by default :func:`refusal_status`."""
    errors = field_errors(exc, fields, aliases=aliases, ctx=ctx)
    error = None if errors else said_in_full(ctx, exc)
    status = refusal_status(exc) if status_code is None else status_code
    return SentBack(form=form, errors=errors, error=error, status_code=status)
