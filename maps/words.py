"""The words on a map, in the page's language.

maps/ never imports api/, where the catalogs live: a page hands its translation in as a
``gettext`` callable and the builders mark their words with ``_("…")``, so that the catalog
(api/pages/catalog.py reads maps/**.py) finds them and a test fails while one lacks Chinese.
Without one, a map speaks English, its message ids (``gridwork map``'s standalone files).
"""

from __future__ import annotations

from collections.abc import Callable

Gettext = Callable[[str], str]
Ngettext = Callable[[str, str, int], str]
"""``ngettext(singular, plural, n)``: the form for ``n`` with ``%(num)s`` filled in ("1 day",
"2 days"; Chinese has one form), as the pages' ``PageContext.ngettext``."""


def english(message: str) -> str:
    """No translation: the message id itself."""
    return message


def english_plural(singular: str, plural: str, n: int) -> str:
    """No translation: English's form for ``n``, with ``%(num)s`` filled in."""
    return (singular if n == 1 else plural) % {"num": n}
