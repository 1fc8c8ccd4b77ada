"""A refused form comes back as the same form: the message beside its field, the values kept.

A use case refuses bad input with a domain error naming the field (:mod:`geo.errors`). An
error page would lose what was typed; instead the route renders its form again with
:func:`field_errors` as ``errors`` and what was sent as its values. The templates place each
message under its field with the macros of ``templates/_fields.html``, which also mark the
field ``aria-invalid`` and point its ``aria-describedby`` at the message, so a screen reader
reads it with the field. An error that names no field of the form is shown above it. Given
the page's context, the reason is said in the page's language (:mod:`api.pages.said`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from api.pages.frame import PageContext
from api.pages.said import said
from geo.errors import GridworkError


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
