"""Incidents per grid over the last N days: one layer for open ones, one for closed ones.

Counts only: an incident's point and its reporter never reach the page.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd

from maps._common import add_areas, area_map, number, title_box
from maps.base import AssetMode, Legend, LegendEntry, OfflineMap, layer_control
from maps.style import quantile_scale
from maps.words import Gettext, Ngettext, english, english_plural

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
    gettext: Gettext = english,
    ngettext: Ngettext = english_plural,
) -> OfflineMap:
    """Areas (``code``, ``open``, ``closed``) coloured by incidents in the last ``days``.

    The open layer shows first; the closed one is a second layer in the layer control.
    """
    if areas.empty:
        raise ValueError("an incident map needs at least one area")
    _ = gettext
    m = area_map(areas, asset_mode=asset_mode, static_url=static_url)
    what = _("grid") if level == "grids" else _("community")
    labels = [
        ("code", what),
        ("name", _("name")),
        ("open", _("open")),
        ("closed", _("closed")),
        ("total", _("total")),
    ]
    columns = ["code", "name", "open", "closed", "total"]
    for status, palette, show in (("open", REDS_5, True), ("closed", GREENS_5, False)):
        values = [number(v) for v in areas[status]]
        scale = quantile_scale([v for v in values if v], palette=palette)
        colour_column = f"_{status}_colour"
        frame = areas.assign(
            **{colour_column: [scale.colour(v) if v else NONE_COLOUR for v in values]}
        )

        def style(colour: str) -> dict[str, Any]:
            return {
                "fillColor": colour,
                "fillOpacity": 0.5,
                "color": "#737373",
                "weight": 1,
            }

        layer = add_areas(
            m,
            frame,
            name=_("open incidents") if status == "open" else _("closed incidents"),
            columns=[*columns, colour_column],
            labels=labels,
            style=style,
            style_key=colour_column,
            show=show,
            class_name="gw-grid" if show else "gw-grid-closed",
        )
        # From none up: "0" first, then the scale's classes (it read 2, 3, 0).
        entries = [LegendEntry("0", NONE_COLOUR)]
        entries += [LegendEntry(label, colour) for label, colour in scale.labels()]
        Legend(
            ngettext("open (%(num)s day)", "open (%(num)s days)", days)
            if status == "open"
            else ngettext("closed (%(num)s day)", "closed (%(num)s days)", days),
            entries,
            position="bottomright" if show else "bottomleft",
            layer=layer,
        ).add_to(m)
    tally = (
        _("Grids: %(n)s · open: %(open)s, closed: %(closed)s")
        if level == "grids"
        else _("Communities (no grids yet): %(n)s · open: %(open)s, closed: %(closed)s")
    )
    counts = {"open": int(areas["open"].sum()), "closed": int(areas["closed"].sum())}
    title_box(
        m,
        ngettext("Incidents, last %(num)s day", "Incidents, last %(num)s days", days),
        [tally % {**counts, "n": len(areas)}],
    )
    layer_control(m)
    return m
