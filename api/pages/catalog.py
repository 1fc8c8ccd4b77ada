"""The message catalog: every user-facing string of the pages, extracted with Babel.

``gridwork i18n update`` extracts the strings of the templates (``{{ _("…") }}``) and of the
Python code that builds pages (``ctx._("…")``, ``N_("…")``), merges them into each
``locale/<lang>/LC_MESSAGES/messages.po`` (new ones untranslated, gone ones dropped), and
reports what still lacks a translation. A test fails while any zh_CN entry is empty, so an
English string cannot reach a Chinese page unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from api.pages.i18n import LOCALE_DIR, LOCALES

ROOT = Path(__file__).resolve().parents[2]
#: Where page strings live: the templates, and the Python that builds pages.
METHOD_MAP = [
    ("api/pages/templates/**.html", "jinja2"),
    ("api/**.py", "python"),
    ("maps/**.py", "python"),
]
OPTIONS = {"api/pages/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true"}}
#: ``ngettext(singular, plural, n)``: English says "1 case" and "2 cases"; Chinese has one form.
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


def extract() -> Catalog:
    """Every message id used by the pages, with where it is used."""
    catalog = Catalog(project="gridwork", charset="utf-8")
    for filename, lineno, message, comments, _context in extract_from_dir(
        ROOT, METHOD_MAP, OPTIONS, keywords=KEYWORDS
    ):
        # A string, or a plural's (singular, plural); an empty one is not a message.
        if message and all(message if isinstance(message, tuple) else (message,)):
            catalog.add(message, locations=[(filename, lineno)], auto_comments=comments)
    return catalog


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def read(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.is_file():
        return Catalog(locale=locale, project="gridwork")
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def update() -> dict[str, list[str]]:
    """Merge the extracted ids into every catalog; the ids each still lacks, per locale."""
    template = extract()
    missing: dict[str, list[str]] = {}
    for locale in LOCALES:
        if locale == "en":
            continue
        catalog = read(locale)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write(f, catalog)
        missing[locale] = untranslated(catalog)
    return missing


def key(message: Message) -> str:
    """How a translator names a message: its id, or a plural's singular."""
    return str(message.id[0] if isinstance(message.id, tuple) else message.id)


def is_translated(message: Message) -> bool:
    """Translated, not fuzzy (gettext ignores fuzzy entries), and every plural form filled."""
    forms = message.string if isinstance(message.string, tuple) else (message.string,)
    return bool(message.id) and all(forms) and not message.fuzzy


def untranslated(catalog: Catalog) -> list[str]:
    """Message ids with no translation (or a fuzzy one, which gettext does not use)."""
    return [key(m) for m in catalog if m.id and not is_translated(m)]


def write(f: BinaryIO, catalog: Catalog) -> None:
    """Sorted, without source locations: a string moving between lines is no change."""
    write_po(f, catalog, width=100, sort_output=True, no_location=True, include_previous=False)


def fill(locale: str, translated: dict[str, str]) -> list[str]:
    """Update the catalog, set the given translations, and say what is still missing."""
    update()
    catalog = read(locale)
    for message in catalog:
        if message.id and key(message) in translated:
            zh = translated[key(message)]
            # A plural takes one string per form of the language (Chinese: one).
            plural = isinstance(message.id, tuple)
            message.string = (zh,) * catalog.num_plurals if plural else zh
            message.flags.discard("fuzzy")
    with po_path(locale).open("wb") as f:
        write(f, catalog)
    return untranslated(catalog)
