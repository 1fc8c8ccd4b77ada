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
