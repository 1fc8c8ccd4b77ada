"""Grids against the household band, and the workload of each grid worker.

A grid should hold ``household_min``–``household_max`` households (150–180 by default) under
one worker. The first map colours each grid by where it falls against that band; the second
colours it by the load of the worker who answers for it (all their grids' households), so
an overloaded worker shows as a dark patch whatever the size of each grid.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd

from maps._common import GRID_CLASS, add_areas, add_outline, area_map, number, title_box
from maps.base import AssetMode, Legend, LegendEntry, OfflineMap, layer_control
from maps.style import NO_DATA_COLOUR
from maps.words import Gettext, english

BELOW = "#6baed6"
WITHIN = "#74c476"
ABOVE = "#fb6a4a"
COMMUNITY_OUTLINE = "#252525"

#: A worker's load against the band, lightest to darkest: (class, colour, label).
LOAD_UNDER = "#9ecae1"
LOAD_IN_BAND = "#74c476"
LOAD_OVER = "#fdae6b"
LOAD_OVER_20 = "#e6550d"
LOAD_OVER_2X = "#7f0000"


def load_class(
    households: float | None, *, low: int, high: int, gettext: Gettext = english
) -> tuple[str, str]:
    """A worker's households against the band ``low``–``high``: (colour, plain label).

    Under the band; in it; over by up to 20 %; over by more than 20 %; over twice the top of
    the band. Classes are fixed by the band, not by the spread of this area's workers, so an
    in-band worker and a three-times-overloaded one never share a colour.
    """
    _ = gettext
    if households is None:
        return NO_DATA_COLOUR, _("no worker")
    if households < low:
        return LOAD_UNDER, _("under the band (< {low})").format(low=low)
    if households <= high:
        return LOAD_IN_BAND, _("in the band ({low}–{high})").format(low=low, high=high)
    if households <= high * 1.2:
        return LOAD_OVER, _("over by up to 20 % (≤ {limit})").format(limit=f"{high * 1.2:.0f}")
    if households <= high * 2:
        return LOAD_OVER_20, _("over by more than 20 % (≤ {limit})").format(limit=high * 2)
    return LOAD_OVER_2X, _("over twice the band (> {limit})").format(limit=high * 2)


LOAD_CLASSES = (LOAD_UNDER, LOAD_IN_BAND, LOAD_OVER, LOAD_OVER_20, LOAD_OVER_2X)


def _grid_labels(_: Gettext) -> list[tuple[str, str]]:
    return [
        ("code", _("grid")),
        ("worker_name", _("worker")),
        ("households", _("households")),
        ("community_code", _("community")),
    ]


def band_colour(households: float | None, *, low: int, high: int) -> str:
    """Blue below the band, green within it, red above; grey for a grid with nobody yet."""
    if households is None or households <= 0:
        return NO_DATA_COLOUR
    if households < low:
        return BELOW
    return WITHIN if households <= high else ABOVE


#: A grid's edge: dark enough to part two grids of the same colour over the ground (white
#: 1 px edges vanished on the light basemap: a community of five in-band grids read as one).
GRID_EDGE = {"color": "#525252", "weight": 1.5}


def _coloured(colour: str) -> dict[str, Any]:
    """Each area filled with the colour its class was given (``_colour``), dark edges."""
    return {"fillColor": colour, "fillOpacity": 0.5, **GRID_EDGE}


def grid_band_map(
    grids: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None = None,
    *,
    household_min: int,
    household_max: int,
    asset_mode: AssetMode,
    static_url: str = "/static",
    gettext: Gettext = english,
) -> OfflineMap:
    """Grids coloured by households against the band, tooltips with the worker's name.

    ``grids`` needs ``code``, ``households``; ``worker_name`` and ``community_code`` are
    shown when present.
    """
    if grids.empty:
        raise ValueError("a grid map needs at least one grid")
    if not 0 < household_min <= household_max:
        raise ValueError(f"bad band {household_min}–{household_max}")
    _ = gettext
    m = area_map(grids, asset_mode=asset_mode, static_url=static_url)
    counts = [number(v) for v in grids["households"]]
    colours = [band_colour(v, low=household_min, high=household_max) for v in counts]
    frame = grids.assign(_colour=colours)

    add_areas(
        m,
        frame,
        name=_("grids"),
        columns=["code", "worker_name", "households", "community_code", "_colour"],
        labels=_grid_labels(gettext),
        style=_coloured,
    )
    if communities is not None:
        add_outline(m, communities, name=_("communities"), colour=COMMUNITY_OUTLINE)
    tally = pd.Series(colours).value_counts()
    entries = [
        LegendEntry(f"< {household_min} ({tally.get(BELOW, 0)})", BELOW),
        LegendEntry(f"{household_min}–{household_max} ({tally.get(WITHIN, 0)})", WITHIN),
        LegendEntry(f"> {household_max} ({tally.get(ABOVE, 0)})", ABOVE),
    ]
    if tally.get(NO_DATA_COLOUR, 0):
        entries.append(
            LegendEntry(
                _("no households ({count})").format(count=tally[NO_DATA_COLOUR]), NO_DATA_COLOUR
            )
        )
    Legend(_("Households per grid"), entries).add_to(m)
    within = int(tally.get(WITHIN, 0))
    line = _("%(n)s grids, %(within)s within %(low)s–%(high)s households") % {
        "n": len(grids),
        "within": within,
        "low": household_min,
        "high": household_max,
    }
    title_box(m, _("Grids against the household band"), [line])
    layer_control(m)
    return m


def workload_map(
    grids: gpd.GeoDataFrame,
    load: pd.DataFrame,
    communities: gpd.GeoDataFrame | None = None,
    *,
    asset_mode: AssetMode,
    household_min: int = 150,
    household_max: int = 180,
    static_url: str = "/static",
    top: int = 10,
    gettext: Gettext = english,
) -> OfflineMap:
    """Each grid coloured by its worker's whole load against the band; the busiest workers
    listed with their grids.

    ``load`` is one row per worker (``worker_code``, ``worker_name``, ``grids``,
    ``households``), as :func:`data.district.maps.worker_load` makes it.
    """
    if not 0 < household_min <= household_max:
        raise ValueError(f"bad band {household_min}–{household_max}")
    if grids.empty:
        raise ValueError("a workload map needs at least one grid")
    _ = gettext
    m = area_map(grids, asset_mode=asset_mode, static_url=static_url)
    keyed = load.set_index("worker_code")
    codes = grids["worker_code"].astype(object).where(grids["worker_code"].notna(), "").astype(str)
    grids_of = {str(k): int(v) for k, v in keyed["grids"].items()}
    households_of = {str(k): int(v) for k, v in keyed["households"].items()}
    frame = grids.assign(
        worker_grids=[grids_of.get(c, 0) for c in codes],
        worker_households=[households_of.get(c, 0) for c in codes],
        worker_name=grids["worker_name"].where(grids["worker_name"].notna(), _("(none)")),
    )
    staffed = [v if c else None for v, c in zip(frame["worker_households"], codes, strict=True)]
    classes = [
        load_class(v, low=household_min, high=household_max, gettext=gettext) for v in staffed
    ]
    frame["_colour"] = [colour for colour, _ in classes]
    frame["load_class"] = [label for _colour, label in classes]
    grid_codes: dict[str, list[str]] = {}
    for code, worker in zip(grids["code"], codes, strict=True):
        if worker:
            grid_codes.setdefault(worker, []).append(str(code))
    frame["worker_grid_codes"] = [", ".join(sorted(grid_codes.get(c, []))) for c in codes]

    add_areas(
        m,
        frame,
        name=_("workload"),
        columns=[
            "code",
            "worker_name",
            "worker_grids",
            "worker_households",
            "households",
            "load_class",
            "worker_grid_codes",
            "_colour",
        ],
        labels=[
            ("code", _("grid")),
            ("worker_name", _("worker")),
            ("worker_grids", _("grids")),
            ("worker_households", _("households (all grids)")),
            ("load_class", _("load")),
            ("worker_grid_codes", _("their grids")),
            ("households", _("households of this grid")),
        ],
        style=_coloured,
    )
    if communities is not None:
        add_outline(m, communities, name=_("communities"), colour=COMMUNITY_OUTLINE)
    staffed_load = load[load["worker_code"] != ""]
    workers_in = pd.Series(
        [
            load_class(float(v), low=household_min, high=household_max)[0]
            for v in staffed_load["households"]
        ],
        dtype=object,
    ).value_counts()
    entries = []
    for colour, probe in zip(
        LOAD_CLASSES,
        (
            household_min - 1,
            household_min,
            household_max + 1,
            household_max * 1.2 + 1,
            household_max * 2 + 1,
        ),
        strict=True,
    ):
        label = load_class(probe, low=household_min, high=household_max, gettext=gettext)[1]
        entries.append(LegendEntry(f"{label} ({workers_in.get(colour, 0)})", colour))
    if any(v is None for v in staffed):
        entries.append(LegendEntry(_("no worker"), NO_DATA_COLOUR))
    Legend(_("Households per worker (workers)"), entries).add_to(m)
    lines = [
        _("Workers: %(workers)s · grids: %(grids)s")
        % {"workers": len(staffed_load), "grids": len(grids)}
    ]
    for row in staffed_load.head(top).itertuples():
        theirs = ", ".join(sorted(grid_codes.get(str(row.worker_code), [])))
        # English says "1 grid"; the pages' gettext has no plurals, so the one case is a
        # message of its own.
        template = (
            _("1 grid, %(households)s households")
            if row.grids == 1
            else _("%(grids)s grids, %(households)s households")
        )
        counts = template % {"grids": row.grids, "households": row.households}
        lines.append(
            _("%(worker)s: %(counts)s (%(grids)s)")
            % {"worker": row.worker_name, "counts": counts, "grids": theirs}
        )
    title_box(m, _("Workload per worker"), lines)
    layer_control(m)
    return m


__all__ = ["GRID_CLASS", "band_colour", "grid_band_map", "load_class", "workload_map"]
