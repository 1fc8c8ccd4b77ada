"""Why an audit row was written, kept so that the audit page can say it in its own language.

A reason gridwork writes itself (a household opened on the register, an account's role
changed, a plan switching at its date) is a list of sentences, each a code of
:data:`SENTENCES` with its values: ``said("role_set", role="planner")``. The row keeps the
English text (``reason``, what the JSON API answers and what older rows hold) and the codes
with their values (``reason_said``, migration 0033), from which ``api/pages/audit_words.py``
says it in Chinese or English. Words typed by people (a note, the reason given to the API) are
a value of the ``note`` sentence and are shown as they were typed, never translated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Value = str | int | float

#: Sentence code → English with ``%(name)s`` values. ``api/pages/audit_words.py`` marks the
#: same sentences for the catalog (a test keeps the two the same).
SENTENCES: dict[str, str] = {
    "note": "note: %(text)s",
    "why": "why: %(text)s",
    "from_console": "from the console",
    # households
    "household_register": "household register (page)",
    "household_registered": "registered (page)",
    "household_opened": "household opened (page)",
    "household_changed": "changed (page)",
    "household_moved": "moved to where it was tapped",
    "household_removed": "removed (page)",
    "household_found": "found by its code (page)",
    "enrol_search": "finding an elder's home household to enrol them",
    "recoded": "recoded from %(old)s to %(new)s (command line)",
    # accounts
    "account_created": "created as %(role)s",
    "with_area": "area %(level)s %(code)s",
    "with_worker": "worker %(worker)s",
    "role_set": "role set to %(role)s",
    "area_added": "area %(level)s %(code)s added",
    "area_removed": "area %(level)s %(code)s removed",
    "worker_linked": "worker record %(worker)s linked",
    "worker_unlinked": "worker record unlinked",
    "account_enabled": "enabled",
    "account_disabled": "disabled",
    "account_removed": "removed with %(keys)s API key(s)",
    "password_reset": "password reset",
    "own_password": "changed own password",
    # the incident catalogue
    "category_saved": "category saved, first level %(level)s",
    "level_hours": "%(level)s %(hours)s h",
    "with_department": "department %(department)s",
    "category_retired": "retired",
    "department_saved": "department saved",
    "with_account": "account %(account)s",
    "no_account": "no account",
    # elders, consent, zones, alerts
    "enrolled": "enrolled with a device (datum %(datum)s)",
    "consent_recorded": "consent recorded",
    "no_consent": "no consent yet",
    "with_scan": "with a scanned form (%(type)s)",
    "zone_home": "safe zone home grid + %(metres)s m",
    "consent_saved": "consent %(consent)s recorded, given on %(day)s",
    "zone_editor": "opened the safe zone editor (shows the home)",
    "zone_set_home": "safe zone set: home grid + %(metres)s m",
    "zone_set_circle": "safe zone set: circle of %(metres)s m",
    "zone_set_polygon": "safe zone set: Polygon",
    "zone_has_home": "containing the home",
    "alert_acknowledged": "alert %(alert)s acknowledged",
    "alert_closed": "alert %(alert)s closed",
    "scan_attached": "scanned consent form attached to consent %(consent)s (%(type)s)",
    "scan_read": "scanned consent form of consent %(consent)s",
    "locate_missing": "Searching for a missing person",
    "locate_alert": "Checking an alert",
    "locate_family": "Family request",
    "locate_welfare": "Welfare check",
    "locate_other": "Other (say why below)",
    "for_alert": "for alert %(alert)s",
    "demo_elder": "demo: enrolled a fictional elder with a watch, consent recorded",
    # cases and plans
    "case_page": "case page",
    "open311": "open311",
    "plan_switched": (
        "grids of community %(community)s switched on %(day)s: %(closed)s closed, %(opened)s opened"
    ),
}


@dataclass(frozen=True)
class AuditReason:
    """A reason as sentences: ``((code, values), ...)``, said one after another."""

    parts: tuple[tuple[str, Mapping[str, Value]], ...]

    def and_(self, code: str, /, **values: Value) -> AuditReason:
        """This reason followed by sentence ``code``."""
        return AuditReason((*self.parts, _part(code, values)))

    def noted(self, note: str | None, code: str = "note") -> AuditReason:
        """This reason followed by the words someone typed, if they typed any (``code``:
        ``note`` for what was done, ``why`` for a reason given to read)."""
        return self.and_(code, text=note.strip()) if note and note.strip() else self

    @property
    def text(self) -> str:
        """In English, as the row's ``reason`` keeps it."""
        return "; ".join(SENTENCES[code] % dict(values) for code, values in self.parts)

    def stored(self) -> list[list[object]]:
        """As ``reason_said`` keeps it (JSON)."""
        return [[code, dict(values)] for code, values in self.parts]


def said(code: str, /, **values: Value) -> AuditReason:
    """The reason of one sentence; :meth:`AuditReason.and_` adds more."""
    return AuditReason((_part(code, values),))


def _part(code: str, values: Mapping[str, Value]) -> tuple[str, Mapping[str, Value]]:
    _ = SENTENCES[code] % dict(values)  # an unknown code or a missing value fails where written
    return code, dict(values)


def split(reason: str | AuditReason | None) -> tuple[str | None, list[list[object]] | None]:
    """A reason as the two columns keep it: English text, and the sentences if gridwork wrote
    it (``None`` for words someone typed, which are kept only as typed)."""
    if isinstance(reason, AuditReason):
        return reason.text, reason.stored()
    return reason, None
