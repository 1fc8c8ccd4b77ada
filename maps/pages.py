"""One coordinators' map as a whole HTML page, from the store: the served page and
``gridwork map``'s standalone file are the same map, only with Leaflet linked (``url``) or
inlined (``inline``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from sqlalchemy import Connection

from data.access.queries import AreaScope
from data.coverage.service import NetworkCache, coverage
from data.district.hierarchy import count_grids
from data.district.maps import grid_layers, incident_counts, worker_load
from data.settings import Settings
from maps._common import message_page
from maps.base import AssetMode, OfflineMap
from maps.coverage import coverage_map
from maps.grids import grid_band_map, workload_map
from maps.incidents import incident_map
from maps.words import Gettext, Ngettext, english, english_plural

MapKind = Literal["grids", "workload", "incidents", "coverage"]


def N_(message: str) -> str:  # noqa: N802 - gettext's "mark for the catalog" convention
    """Mark a message for the page catalog; the served page translates it."""
    return message


NO_GRIDS = N_(
    "This area has no grids yet: a planner cuts its communities into grids first. "
    "The coverage and incident maps already work per community."
)
NO_AREA = N_("No area is assigned to you yet.")
TOO_MANY_GRIDS = N_(
    "This area has %(grids)s grids, more than one page can draw (%(most)s): open the "
    "vector-tile viewer, which draws them as tiles, or the map of a smaller area."
)


class NoMap(Exception):
    """Why a map cannot be drawn (no grids yet, no area, too many grids): a page says so
    instead. ``message`` is a catalog id; ``values`` fill its placeholders."""

    def __init__(self, title: str, message: str, **values: object) -> None:
        super().__init__(message % values if values else message)
        self.title = title
        self.message = message
        self.values = values


def build(
    conn: Connection,
    kind: MapKind,
    *,
    scope: AreaScope,
    settings: Settings,
    cache: NetworkCache,
    asset_mode: AssetMode,
    facility: str | None = None,
    minutes: float = 10.0,
    days: int = 30,
    straight_line: bool = False,
    gettext: Gettext = english,
    ngettext: Ngettext = english_plural,
) -> OfflineMap:
    """One map from the store, its words through ``gettext`` (counted ones through
    ``ngettext``); :class:`NoMap` when there is nothing to draw."""
    if kind in ("grids", "workload"):
        grids = count_grids(conn, scope)
        if grids > settings.grid_page_max_grids:
            raise NoMap(
                "Grids" if kind == "grids" else "Workload",
                TOO_MANY_GRIDS,
                grids=f"{grids:,}",
                most=f"{settings.grid_page_max_grids:,}",
            )
        layers = grid_layers(conn, scope)
        if layers.grids.empty:
            raise NoMap("Grids" if kind == "grids" else "Workload", NO_GRIDS)
        if kind == "grids":
            return grid_band_map(
                layers.grids,
                layers.communities,
                household_min=settings.household_min,
                household_max=settings.household_max,
                asset_mode=asset_mode,
                gettext=gettext,
            )
        return workload_map(
            layers.grids,
            worker_load(layers.grids),
            layers.communities,
            household_min=settings.household_min,
            household_max=settings.household_max,
            asset_mode=asset_mode,
            gettext=gettext,
        )
    if kind == "incidents":
        counts = incident_counts(conn, scope, days=days)
        if counts.areas.empty:
            raise NoMap("Incidents", NO_AREA)
        return incident_map(
            counts.areas,
            days=days,
            level=counts.level,
            asset_mode=asset_mode,
            gettext=gettext,
            ngettext=ngettext,
        )
    if facility is None:
        raise ValueError("a coverage map needs a facility kind")
    report = coverage(conn, cache, kind=facility, minutes=minutes, scope=scope)
    return coverage_map(
        report.areas,
        report.covered,
        report.crow_flies,
        report.facilities,
        kind=facility,
        minutes=minutes,
        speed_kmh=report.speed_kmh,
        level=report.level,
        asset_mode=asset_mode,
        show_straight_line=straight_line,
        gettext=gettext,
    )


def render(make: Callable[[], OfflineMap]) -> str:
    """The whole HTML page of the map ``make`` draws (usually ``lambda: build(...)``), or a
    page saying why there is none."""
    try:
        m = make()
    except NoMap as why:
        return message_page(why.title, str(why))
    page: str = m.get_root().render()
    return page
