"""The audit log's reasons in the page's language.

gridwork keeps a reason it words itself as sentence codes with values
(:mod:`data.access.reasons`); they are marked here again for the catalog (a test keeps the two
the same). A row written before the codes were kept (migration 0033) is said from its English
text where that is one of the sentences without values; words someone typed are shown as
typed, and so is anything else.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from api.pages.case_words import LEVEL_NAMES
from api.pages.frame import N_, ROLE_NAMES, PageContext
from data.access.reasons import SENTENCES as ENGLISH

SENTENCES: dict[str, str] = {
    "note": N_("note: %(text)s"),
    "why": N_("why: %(text)s"),
    "from_console": N_("from the console"),
    "household_register": N_("household register (page)"),
    "household_registered": N_("registered (page)"),
    "household_opened": N_("household opened (page)"),
    "household_changed": N_("changed (page)"),
    "household_moved": N_("moved to where it was tapped"),
    "household_removed": N_("removed (page)"),
    "household_found": N_("found by its code (page)"),
    "enrol_search": N_("finding an elder's home household to enrol them"),
    "recoded": N_("recoded from %(old)s to %(new)s (command line)"),
    "account_created": N_("created as %(role)s"),
    "with_area": N_("area %(level)s %(code)s"),
    "with_worker": N_("worker %(worker)s"),
    "role_set": N_("role set to %(role)s"),
    "area_added": N_("area %(level)s %(code)s added"),
    "area_removed": N_("area %(level)s %(code)s removed"),
    "worker_linked": N_("worker record %(worker)s linked"),
    "worker_unlinked": N_("worker record unlinked"),
    "account_enabled": N_("enabled"),
    "account_disabled": N_("disabled"),
    "account_removed": N_("removed with %(keys)s API key(s)"),
    "password_reset": N_("password reset"),
    "own_password": N_("changed own password"),
    "category_saved": N_("category saved, first level %(level)s"),
    "level_hours": N_("%(level)s %(hours)s h"),
    "with_department": N_("department %(department)s"),
    "category_retired": N_("retired"),
    "department_saved": N_("department saved"),
    "with_account": N_("account %(account)s"),
    "no_account": N_("no account"),
    "enrolled": N_("enrolled with a device (datum %(datum)s)"),
    "consent_recorded": N_("consent recorded"),
    "no_consent": N_("no consent yet"),
    "with_scan": N_("with a scanned form (%(type)s)"),
    "zone_home": N_("safe zone home grid + %(metres)s m"),
    "consent_saved": N_("consent %(consent)s recorded, given on %(day)s"),
    "zone_editor": N_("opened the safe zone editor (shows the home)"),
    "zone_set_home": N_("safe zone set: home grid + %(metres)s m"),
    "zone_set_circle": N_("safe zone set: circle of %(metres)s m"),
    "zone_set_polygon": N_("safe zone set: Polygon"),
    "zone_has_home": N_("containing the home"),
    "alert_acknowledged": N_("alert %(alert)s acknowledged"),
    "alert_closed": N_("alert %(alert)s closed"),
    "scan_attached": N_("scanned consent form attached to consent %(consent)s (%(type)s)"),
    "scan_read": N_("scanned consent form of consent %(consent)s"),
    "locate_missing": N_("Searching for a missing person"),
    "locate_alert": N_("Checking an alert"),
    "locate_family": N_("Family request"),
    "locate_welfare": N_("Welfare check"),
    "locate_other": N_("Other (say why below)"),
    "for_alert": N_("for alert %(alert)s"),
    "demo_elder": N_("demo: enrolled a fictional elder with a watch, consent recorded"),
    "case_page": N_("case page"),
    "open311": N_("open311"),
    "plan_switched": N_(
        "grids of community %(community)s switched on %(day)s: %(closed)s closed, %(opened)s opened"
    ),
}

#: Values that are codes of a closed list (a role, an area's or a case's level), said in
#: words rather than as the code.
VALUE_WORDS: dict[str, dict[str, str]] = {
    "role": {r.value: name for r, name in ROLE_NAMES.items()},
    "level": LEVEL_NAMES,
}

#: Values that are codes of a name said alike in every language (a coordinate datum).
VALUE_NAMES: dict[str, dict[str, str]] = {
    "datum": {"wgs84": "WGS-84", "gcj02": "GCJ-02", "bd09": "BD-09"},
}

#: Sentences one after another ("；" in Chinese).
_JOINED = N_("%(before)s; %(after)s")

#: Rows from before migration 0033: their English, where it is a sentence without values.
_PLAIN = {ENGLISH[code]: code for code in SENTENCES if "%(" not in ENGLISH[code]}


def say_reason(ctx: PageContext, reason: str | None, said: Sequence[object] | None) -> str:
    """An audit row's reason in the page's language (``—`` for none)."""
    if said:
        sentences = [_sentence(ctx, part) for part in said]
        return functools.reduce(lambda a, b: ctx._(_JOINED, before=a, after=b), sentences)
    if reason is None or not reason.strip():
        return "—"
    code = _PLAIN.get(reason)
    return ctx._(SENTENCES[code]) if code is not None else reason


def _sentence(ctx: PageContext, part: object) -> str:
    code, values = part if isinstance(part, list | tuple) and len(part) == 2 else (None, None)
    if not isinstance(code, str) or code not in SENTENCES or not isinstance(values, Mapping):
        return str(part)  # written by a later version, or not by gridwork: as it is
    shown = {k: _value(ctx, k, v) for k, v in values.items()}
    try:
        return ctx._(SENTENCES[code], **shown)
    except (KeyError, TypeError, ValueError):  # values not those of the sentence
        return str(part)


def _value(ctx: PageContext, key: str, value: object) -> object:
    words = VALUE_WORDS.get(key)
    if words is not None and isinstance(value, str) and value in words:
        return ctx._(words[value])
    names = VALUE_NAMES.get(key, {})
    return names.get(value, value) if isinstance(value, str) else value


__all__ = ["SENTENCES", "VALUE_NAMES", "VALUE_WORDS", "say_reason"]
