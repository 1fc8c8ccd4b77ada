"""Words of the case workflow that more than one page says: the levels a case climbs
(grid → community → street → district)."""

from __future__ import annotations

from api.pages.frame import N_

LEVEL_NAMES = {
    "grid": N_("Grid"),
    "community": N_("Community"),
    "street": N_("Street"),
    "district": N_("District"),
}

#: Why a case is new for the reader ("New for you"), by the notice's kind (and for an
#: escalation, the level it reached); a notice of another kind says its level.
NOTICE_NAMES = {
    "new": N_("newly reported"),
    "to_department": N_("passed to your department"),
    "handed_over": N_("handed over to you"),
}
ESCALATED_TO = {
    "community": N_("escalated to the community"),
    "street": N_("escalated to the street"),
    "district": N_("escalated to the district"),
}


def notice_said(kind: str, level: str) -> str:
    """The untranslated words for a notice of ``kind`` at ``level`` (mark them with ``_``)."""
    if kind == "escalated":
        return ESCALATED_TO.get(level, LEVEL_NAMES.get(level, level))
    return NOTICE_NAMES.get(kind, LEVEL_NAMES.get(level, level))
