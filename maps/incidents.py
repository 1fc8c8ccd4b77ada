"""Incidents per grid over the last N days: one layer for open ones, one for closed ones.

Counts only: an incident's point and its reporter never reach the page.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd

from maps._common import add_areas, area_map, number, title_box
from maps.base import AssetMode, Legend, LegendEntry, OfflineMap, layer_control
from maps.style import quantile_scale

REDS_5 = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
GREENS_5 = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")
NONE_COLOUR = "#f7f7f7"


def incident_map(
    areas: gpd.GeoDataFrame,
    *,
    days: int,
    level: str = "grids",
    asset_mode: AssetMode,
    static_url: str = "/static",
) -> OfflineMap:
    """Areas (``code``, ``open``, ``closed``) coloured by incidents in the last ``days``.

    The open layer shows first; the closed one is a second layer in the layer control.
    """
    if areas.empty:
        raise ValueError("an incident map needs at least one area")
    m = area_map(areas, asset_mode=asset_mode, static_url=static_url)
    what = "网格 grid" if level == "grids" else "社区 community"
    labels = [
        ("code", what),
        ("name", "名称 name"),
        ("open", "未结 open"),
        ("closed", "已结 closed"),
        ("total", "合计 total"),
    ]
    columns = ["code", "name", "open", "closed", "total"]
    for status, palette, show in (("open", REDS_5, True), ("closed", GREENS_5, False)):
        values = [number(v) for v in areas[status]]
        scale = quantile_scale([v for v in values if v], palette=palette)
        colour_column = f"_{status}_colour"
        frame = areas.assign(
            **{colour_column: [scale.colour(v) if v else NONE_COLOUR for v in values]}
        )

        def style(feature: dict[str, Any], column: str = colour_column) -> dict[str, Any]:
            return {
                "fillColor": feature["properties"][column],
                "fillOpacity": 0.5,
                "color": "#737373",
                "weight": 1,
            }

        add_areas(
            m,
            frame,
            name=f"{'未结 open' if status == 'open' else '已结 closed'} incidents",
            columns=[*columns, colour_column],
            labels=labels,
            style=style,
            show=show,
            class_name="gw-grid" if show else "gw-grid-closed",
        )
        entries = [LegendEntry(label, colour) for label, colour in scale.labels()]
        entries.append(LegendEntry("0", NONE_COLOUR))
        Legend(
            f"{'未结 open' if status == 'open' else '已结 closed'} ({days} 天 days)",
            entries,
            position="bottomright" if show else "bottomleft",
        ).add_to(m)
    title_box(
        m,
        f"事件 Incidents, last {days} days",
        [
            f"{int(areas['open'].sum())} open, {int(areas['closed'].sum())} closed "
            f"in {len(areas)} {'grids' if level == 'grids' else 'communities (no grids yet)'}"
        ],
    )
    layer_control(m)
    return m
