"""One coordinators' map as a whole HTML page, from the store: the served page and
``gridwork map``'s standalone file are the same map, only with Leaflet linked (``url``) or
inlined (``inline``)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Connection

from data.access.queries import AreaScope
from data.coverage.service import NetworkCache, coverage
from data.district.maps import grid_layers, incident_counts, worker_load
from data.settings import Settings
from maps._common import message_page
from maps.base import AssetMode
from maps.coverage import coverage_map
from maps.grids import grid_band_map, workload_map
from maps.incidents import incident_map

MapKind = Literal["grids", "workload", "incidents", "coverage"]

NO_GRIDS = (
    "This area has no grids yet: a planner cuts its communities into grids first. "
    "The coverage and incident maps already work per community."
)


def render(
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
) -> str:
    """The whole HTML page of one map, or a page saying why there is none."""
    if kind in ("grids", "workload"):
        layers = grid_layers(conn, scope)
        if layers.grids.empty:
            title = "Grids" if kind == "grids" else "Workload"
            return message_page(title, NO_GRIDS)
        if kind == "grids":
            m = grid_band_map(
                layers.grids,
                layers.communities,
                household_min=settings.household_min,
                household_max=settings.household_max,
                asset_mode=asset_mode,
            )
        else:
            m = workload_map(
                layers.grids,
                worker_load(layers.grids),
                layers.communities,
                asset_mode=asset_mode,
            )
    elif kind == "incidents":
        counts = incident_counts(conn, scope, days=days)
        if counts.areas.empty:
            return message_page("Incidents", "No area is assigned to you yet.")
        m = incident_map(counts.areas, days=days, level=counts.level, asset_mode=asset_mode)
    else:
        if facility is None:
            raise ValueError("a coverage map needs a facility kind")
        report = coverage(conn, cache, kind=facility, minutes=minutes, scope=scope)
        m = coverage_map(
            report.areas,
            report.covered,
            report.crow_flies,
            report.facilities,
            kind=facility,
            minutes=minutes,
            speed_kmh=report.speed_kmh,
            level=report.level,
            asset_mode=asset_mode,
        )
    page: str = m.get_root().render()
    return page
