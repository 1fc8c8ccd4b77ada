"""The pages' language: zh-CN and English through gettext catalogs, chosen per request.

The choice, in order: the user's own (the language switcher keeps it in a cookie), then the
browser's ``Accept-Language``, then the deployment's ``GRIDWORK_LOCALE``. Catalogs are the
``.po`` files under ``api/pages/locale``, read with Babel and compiled in memory at first use,
so a translator edits one text file and nothing binary is committed. English is the source
language: its catalog is the identity.
"""

from __future__ import annotations

import functools
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from fastapi import Request

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LOCALES = ("zh_CN", "en")
COOKIE = "gridwork_lang"
#: How each language names itself on the switcher.
SELF_NAMES = {"zh_CN": "中文", "en": "English"}


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of ``locale`` (identity for English and unknown locales)."""
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == "en" or not path.is_file():
        return NullTranslations()
    with path.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def _supported(tag: str) -> str | None:
    """``zh``, ``zh-CN``, ``zh-Hans-CN`` → ``zh_CN``; ``en-GB`` → ``en``; else None."""
    try:
        loc = Locale.parse(tag.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None
    if loc.language == "zh":
        return "zh_CN"
    if loc.language == "en":
        return "en"
    return None


def from_accept_language(header: str) -> str | None:
    """The first supported language of an ``Accept-Language`` header, by its q-values."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*":
            ranked.append((-q, i, tag))
    for neg_q, _, tag in sorted(ranked):
        if neg_q < 0:
            found = _supported(tag)
            if found:
                return found
    return None


def negotiate(request: Request, default: str) -> str:
    """The language of this request's page."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LOCALES:
        return chosen
    found = from_accept_language(request.headers.get("accept-language", ""))
    return found or (default if default in LOCALES else "zh_CN")


def html_lang(locale: str) -> str:
    """The value of ``<html lang>``: a BCP 47 tag."""
    return locale.replace("_", "-")
