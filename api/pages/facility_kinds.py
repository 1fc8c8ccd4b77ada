"""Facility kinds (OSM ``amenity`` values) in the words people use, for every page that
names one: the coverage map's choice of kind, the locate page's nearest places."""

from __future__ import annotations

from api.pages.frame import N_, PageContext

#: Others are shown as stored.
KIND_NAMES = {
    "pharmacy": N_("Pharmacy"),
    "clinic": N_("Clinic"),
    "doctors": N_("Doctor's practice"),
    "dentist": N_("Dentist"),
    "hospital": N_("Hospital"),
    "school": N_("School"),
    "kindergarten": N_("Kindergarten"),
    "childcare": N_("Childcare"),
    "college": N_("College"),
    "university": N_("University"),
    "library": N_("Library"),
    "community_centre": N_("Community centre"),
    "social_facility": N_("Social care facility"),
    "nursing_home": N_("Nursing home"),
    "elderly_care": N_("Elderly care centre"),
    "police": N_("Police"),
    "fire_station": N_("Fire station"),
    "post_office": N_("Post office"),
    "townhall": N_("Town hall"),
    "marketplace": N_("Market"),
    "bank": N_("Bank"),
    "bus_station": N_("Bus station"),
    "toilets": N_("Public toilets"),
    "cafe": N_("Café"),
    "restaurant": N_("Restaurant"),
    "fast_food": N_("Fast food"),
    "bar": N_("Bar"),
    "pub": N_("Pub"),
    "parking": N_("Parking"),
    "fuel": N_("Fuel station"),
    "atm": N_("Cash machine"),
    "bench": N_("Bench"),
    "drinking_water": N_("Drinking water"),
    "recycling": N_("Recycling"),
    "waste_basket": N_("Waste basket"),
    "bicycle_parking": N_("Bicycle parking"),
    "theatre": N_("Theatre"),
    "cinema": N_("Cinema"),
    "arts_centre": N_("Arts centre"),
}


def kind_name(ctx: PageContext, kind: str) -> str:
    """A facility kind in the page's language ("药店"), or as stored."""
    name = KIND_NAMES.get(kind)
    return ctx._(name) if name else kind


def kind_label(ctx: PageContext, kind: str) -> str:
    """A facility kind in the page's language with its code ("药店 (pharmacy)"), or as
    stored: where people pick a kind and may know it by its code. Where the name already
    says the code ("Pharmacy"), once is enough."""
    name = KIND_NAMES.get(kind)
    if not name:
        return kind
    said = ctx._(name)
    if said.lower().replace(" ", "_") == kind:  # "Pharmacy", not "Pharmacy (pharmacy)"
        return said
    return ctx._("%(name)s (%(kind)s)", name=said, kind=kind)
