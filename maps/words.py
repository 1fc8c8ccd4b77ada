"""The words on a map, in the page's language.

maps/ never imports api/, where the catalogs live: a page hands its translation in as a
``gettext`` callable and the builders mark their words with ``_("…")``, so that the catalog
(api/pages/catalog.py reads maps/**.py) finds them and a test fails while one lacks Chinese.
Without one, a map speaks English, its message ids (``gridwork map``'s standalone files).
"""

from __future__ import annotations

from collections.abc import Callable

Gettext = Callable[[str], str]


def english(message: str) -> str:
    """No translation: the message id itself."""
    return message
