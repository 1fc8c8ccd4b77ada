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


def load_class(households: float | None, *, low: int, high: int) -> tuple[str, str]:
    """A worker's households against the band ``low``–``high``: (colour, plain label).

    Under the band; in it; over by up to 20 %; over by more than 20 %; over twice the top of
    the band. Classes are fixed by the band, not by the spread of this area's workers, so an
    in-band worker and a three-times-overloaded one never share a colour.
    """
    if households is None:
        return NO_DATA_COLOUR, "无网格员 no worker"
    if households < low:
        return LOAD_UNDER, f"低于标准 under the band (< {low})"
    if households <= high:
        return LOAD_IN_BAND, f"标准内 in the band ({low}–{high})"
    if households <= high * 1.2:
        return LOAD_OVER, f"超出 20 % 以内 over by up to 20 % (≤ {high * 1.2:.0f})"
    if households <= high * 2:
        return LOAD_OVER_20, f"超出 20 % 以上 over by more than 20 % (≤ {high * 2})"
    return LOAD_OVER_2X, f"超出两倍 over twice the band (> {high * 2})"


LOAD_CLASSES = (LOAD_UNDER, LOAD_IN_BAND, LOAD_OVER, LOAD_OVER_20, LOAD_OVER_2X)

_GRID_LABELS = [
    ("code", "网格 grid"),
    ("worker_name", "网格员 worker"),
    ("households", "户数 households"),
    ("community_code", "社区 community"),
]


def band_colour(households: float | None, *, low: int, high: int) -> str:
    """Blue below the band, green within it, red above; grey for a grid with nobody yet."""
    if households is None or households <= 0:
        return NO_DATA_COLOUR
    if households < low:
        return BELOW
    return WITHIN if households <= high else ABOVE


def grid_band_map(
    grids: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None = None,
    *,
    household_min: int,
    household_max: int,
    asset_mode: AssetMode,
    static_url: str = "/static",
) -> OfflineMap:
    """Grids coloured by households against the band, tooltips with the worker's name.

    ``grids`` needs ``code``, ``households``; ``worker_name`` and ``community_code`` are
    shown when present.
    """
    if grids.empty:
        raise ValueError("a grid map needs at least one grid")
    if not 0 < household_min <= household_max:
        raise ValueError(f"bad band {household_min}–{household_max}")
    m = area_map(grids, asset_mode=asset_mode, static_url=static_url)
    counts = [number(v) for v in grids["households"]]
    colours = [band_colour(v, low=household_min, high=household_max) for v in counts]
    frame = grids.assign(_colour=colours)

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        return {
            "fillColor": feature["properties"]["_colour"],
            "fillOpacity": 0.5,
            "color": "#ffffff",
            "weight": 1,
        }

    add_areas(
        m,
        frame,
        name="网格 grids",
        columns=["code", "worker_name", "households", "community_code", "_colour"],
        labels=_GRID_LABELS,
        style=style,
    )
    if communities is not None:
        add_outline(m, communities, name="社区 communities", colour=COMMUNITY_OUTLINE)
    tally = pd.Series(colours).value_counts()
    entries = [
        LegendEntry(f"< {household_min} ({tally.get(BELOW, 0)})", BELOW),
        LegendEntry(f"{household_min}–{household_max} ({tally.get(WITHIN, 0)})", WITHIN),
        LegendEntry(f"> {household_max} ({tally.get(ABOVE, 0)})", ABOVE),
    ]
    if tally.get(NO_DATA_COLOUR, 0):
        entries.append(LegendEntry(f"无住户 none ({tally[NO_DATA_COLOUR]})", NO_DATA_COLOUR))
    Legend("网格户数 households per grid", entries).add_to(m)
    within = int(tally.get(WITHIN, 0))
    title_box(
        m,
        "网格 Grids against the household band",
        [f"{len(grids)} grids, {within} within {household_min}–{household_max} households"],
    )
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
    m = area_map(grids, asset_mode=asset_mode, static_url=static_url)
    keyed = load.set_index("worker_code")
    codes = grids["worker_code"].astype(object).where(grids["worker_code"].notna(), "").astype(str)
    grids_of = {str(k): int(v) for k, v in keyed["grids"].items()}
    households_of = {str(k): int(v) for k, v in keyed["households"].items()}
    frame = grids.assign(
        worker_grids=[grids_of.get(c, 0) for c in codes],
        worker_households=[households_of.get(c, 0) for c in codes],
        worker_name=grids["worker_name"].where(grids["worker_name"].notna(), "（无 none）"),
    )
    staffed = [v if c else None for v, c in zip(frame["worker_households"], codes, strict=True)]
    classes = [load_class(v, low=household_min, high=household_max) for v in staffed]
    frame["_colour"] = [colour for colour, _ in classes]
    frame["load_class"] = [label for _, label in classes]
    grid_codes: dict[str, list[str]] = {}
    for code, worker in zip(grids["code"], codes, strict=True):
        if worker:
            grid_codes.setdefault(worker, []).append(str(code))
    frame["worker_grid_codes"] = [", ".join(sorted(grid_codes.get(c, []))) for c in codes]

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        return {
            "fillColor": feature["properties"]["_colour"],
            "fillOpacity": 0.5,
            "color": "#ffffff",
            "weight": 1,
        }

    add_areas(
        m,
        frame,
        name="工作量 workload",
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
            ("code", "网格 grid"),
            ("worker_name", "网格员 worker"),
            ("worker_grids", "负责网格 grids"),
            ("worker_households", "负责户数 households (all grids)"),
            ("load_class", "工作量 load"),
            ("worker_grid_codes", "该网格员的网格 their grids"),
            ("households", "本网格户数 this grid"),
        ],
        style=style,
    )
    if communities is not None:
        add_outline(m, communities, name="社区 communities", colour=COMMUNITY_OUTLINE)
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
        label = load_class(probe, low=household_min, high=household_max)[1]
        entries.append(LegendEntry(f"{label} ({workers_in.get(colour, 0)})", colour))
    if any(v is None for v in staffed):
        entries.append(LegendEntry("无网格员 no worker", NO_DATA_COLOUR))
    Legend("网格员负责户数 households per worker (workers)", entries).add_to(m)
    lines = [f"{len(staffed_load)} workers, {len(grids)} grids"]
    for row in staffed_load.head(top).itertuples():
        theirs = ", ".join(sorted(grid_codes.get(str(row.worker_code), [])))
        lines.append(
            f"{row.worker_name}: {row.grids} grids, {row.households} households ({theirs})"
        )
    title_box(m, "工作量 Workload per worker", lines)
    layer_control(m)
    return m


__all__ = ["GRID_CLASS", "band_colour", "grid_band_map", "load_class", "workload_map"]
