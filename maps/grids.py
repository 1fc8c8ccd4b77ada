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
from maps.style import NO_DATA_COLOUR, quantile_scale

BELOW = "#6baed6"
WITHIN = "#74c476"
ABOVE = "#fb6a4a"
COMMUNITY_OUTLINE = "#252525"

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
    static_url: str = "/static",
    top: int = 10,
) -> OfflineMap:
    """Each grid coloured by its worker's whole load; the busiest workers listed.

    ``load`` is one row per worker (``worker_code``, ``worker_name``, ``grids``,
    ``households``), as :func:`data.district.maps.worker_load` makes it.
    """
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
    scale = quantile_scale([float(v) for v in staffed if v is not None])
    frame["_colour"] = [scale.colour(v) for v in staffed]

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
            "_colour",
        ],
        labels=[
            ("code", "网格 grid"),
            ("worker_name", "网格员 worker"),
            ("worker_grids", "负责网格 grids"),
            ("worker_households", "负责户数 households (all grids)"),
            ("households", "本网格户数 this grid"),
        ],
        style=style,
    )
    if communities is not None:
        add_outline(m, communities, name="社区 communities", colour=COMMUNITY_OUTLINE)
    entries = [LegendEntry(label, colour) for label, colour in scale.labels()]
    if any(v is None for v in staffed):
        entries.append(LegendEntry("无网格员 no worker", "#d9d9d9"))
    Legend("网格员户数 households per worker", entries).add_to(m)
    staffed_load = load[load["worker_code"] != ""]
    lines = [f"{len(staffed_load)} workers, {len(grids)} grids"]
    for row in staffed_load.head(top).itertuples():
        lines.append(f"{row.worker_name}: {row.grids} grids, {row.households} households")
    title_box(m, "工作量 Workload per worker", lines)
    layer_control(m)
    return m


__all__ = ["GRID_CLASS", "band_colour", "grid_band_map", "workload_map"]
