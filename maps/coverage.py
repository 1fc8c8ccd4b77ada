"""Facility coverage: who can walk to a facility of one kind in so many minutes.

Layers, bottom to top: the areas (grids, or communities before there are grids) coloured by
the share of their households who can walk there in time, uncovered ones in red; the
walking service area clipped to each area; the straight-line circles of the same radius
(off by default: the comparison that over-promises across rivers and railways); the
facilities as filled circles in their kind's colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from maps._common import (
    DEFAULT_TOLERANCE_M,
    add_areas,
    add_facilities,
    area_map,
    feature_collection,
    number,
    title_box,
)
from maps.base import (
    AssetMode,
    Legend,
    LegendEntry,
    OfflineMap,
    display_geometry,
    layer_control,
)
from maps.words import Gettext, english

UNCOVERED = "#de2d26"
SHARE_CLASSES: Sequence[tuple[float, str, str]] = (
    (0.25, "#edf8e9", "< 25 %"),
    (0.50, "#bae4b3", "25–50 %"),
    (0.75, "#74c476", "50–75 %"),
    (1.01, "#238b45", "≥ 75 %"),
)
WALK_COLOUR = "#2171b5"
CROW_COLOUR = "#6a51a3"


def share_colour(share: float | None, uncovered: bool) -> str:
    if uncovered:
        return UNCOVERED
    if share is None:
        return "#d9d9d9"
    for upper, colour, _ in SHARE_CLASSES:
        if share < upper:
            return colour
    return SHARE_CLASSES[-1][1]


def coverage_map(
    areas: gpd.GeoDataFrame,
    covered: gpd.GeoSeries,
    crow_flies: shapely.Geometry,
    facilities: gpd.GeoDataFrame,
    *,
    kind: str,
    minutes: float,
    speed_kmh: float,
    level: str = "grids",
    asset_mode: AssetMode,
    static_url: str = "/static",
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    show_straight_line: bool = False,
    gettext: Gettext = english,
) -> OfflineMap:
    """The coverage of one facility kind over ``areas``, its words through ``gettext``.

    ``areas`` needs ``code``, ``households``, ``covered_households``, ``household_share``
    (NaN without households), ``area_share`` and ``uncovered``; ``score`` (2SFCA) and
    ``worker_name`` are shown when present. ``covered`` is the walking service area
    clipped to each area (same index); ``crow_flies`` the straight-line circles.
    """
    if areas.empty:
        raise ValueError("a coverage map needs at least one area")
    _ = gettext
    m = area_map(areas, asset_mode=asset_mode, static_url=static_url)
    shares = [number(v) for v in areas["household_share"]]
    land = [number(v) for v in areas["area_share"]]
    judged = [s if s is not None else a for s, a in zip(shares, land, strict=True)]
    colours = [share_colour(j, bool(u)) for j, u in zip(judged, areas["uncovered"], strict=True)]
    frame = areas.assign(
        _colour=colours,
        share_pct=[None if s is None else f"{100 * s:.0f} %" for s in shares],
        land_pct=[None if a is None else f"{100 * a:.0f} %" for a in land],
        status=[_("uncovered") if u else _("covered") for u in areas["uncovered"]],
    )
    if "score" in frame.columns:
        frame["score"] = [None if pd.isna(v) else round(float(v), 4) for v in frame["score"]]
    what = _("grid") if level == "grids" else _("community")

    def style(colour: str) -> dict[str, Any]:
        uncovered = colour == UNCOVERED
        return {
            "fillColor": colour,
            "fillOpacity": 0.6 if uncovered else 0.45,
            "color": "#b30000" if uncovered else "#ffffff",
            "weight": 2 if uncovered else 1,
        }

    add_areas(
        m,
        frame,
        name=_("Share of households covered"),
        columns=[
            "code",
            "name",
            "name_local",
            "worker_name",
            "households",
            "covered_households",
            "share_pct",
            "land_pct",
            "score",
            "status",
            "_colour",
        ],
        labels=[
            ("code", what),
            ("name", _("name")),
            ("name_local", _("local name")),
            ("worker_name", _("worker")),
            ("households", _("households")),
            ("covered_households", _("can walk there")),
            ("share_pct", _("share of households")),
            ("land_pct", _("share of the land")),
            ("score", _("capacity per household (2SFCA)")),
            ("status", _("status")),
        ],
        style=style,
        tolerance_m=tolerance_m,
    )

    walk = gpd.GeoDataFrame(geometry=covered.to_numpy(), crs=covered.crs)
    walk = walk[~(walk.geometry.isna() | walk.geometry.is_empty)]
    if not walk.empty:
        folium.GeoJson(
            feature_collection(walk, [], tolerance_m=tolerance_m),
            name=_("Walking area ({minutes} min)").format(minutes=f"{minutes:g}"),
            style_function=lambda _f: {
                "color": WALK_COLOUR,
                "weight": 1,
                "fillColor": WALK_COLOUR,
                "fillOpacity": 0.25,
                "interactive": False,
            },
        ).add_to(m)
    crow = gpd.GeoSeries([crow_flies], crs=covered.crs)
    if not crow.is_empty.all():
        simplified = display_geometry(gpd.GeoDataFrame(geometry=crow), tolerance_m=tolerance_m)
        folium.GeoJson(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": g.__geo_interface__}
                    for g in simplified.values
                    if g is not None and not g.is_empty
                ],
            },
            name=_("Straight-line distance"),
            style_function=lambda _f: {
                "color": CROW_COLOUR,
                "weight": 2,
                "dashArray": "6 4",
                "fill": False,
                "interactive": False,
            },
            show=show_straight_line,
        ).add_to(m)

    if not facilities.empty:
        add_facilities(
            m,
            feature_collection(facilities, ["name", "kind"], tolerance_m=0),
            facilities,
            gettext,
        )

    tally = pd.Series(colours).value_counts()
    entries = [LegendEntry(_("uncovered ({count})").format(count=tally.get(UNCOVERED, 0)),
                           UNCOVERED)]  # fmt: skip
    entries += [
        LegendEntry(f"{label} ({tally.get(colour, 0)})", colour)
        for _upper, colour, label in SHARE_CLASSES
    ]
    entries += [
        LegendEntry(_("walking area ({minutes} min)").format(minutes=f"{minutes:g}"), WALK_COLOUR),
        LegendEntry(_("straight line (same radius)"), CROW_COLOUR, "dashed"),
    ]
    Legend(_("Households within reach"), entries).add_to(m)
    households = int(np.nansum(areas["households"].to_numpy(dtype=float)))
    reached = int(np.nansum(areas["covered_households"].to_numpy(dtype=float)))
    share = f"{100 * reached / households:.0f} %" if households else _("no households")
    radius = minutes * speed_kmh * 1000 / 60
    how_far = _("Facilities: %(n)s · %(minutes)s min at %(speed)s km/h (%(radius)s m)") % {
        "n": len(facilities),
        "minutes": f"{minutes:g}",
        "speed": f"{speed_kmh:g}",
        "radius": f"{radius:.0f}",
    }
    reach = _("%(reached)s of %(households)s households can walk there (%(share)s)")
    uncovered = (
        _("%(n)s of %(all)s grids uncovered")
        if level == "grids"
        else _("%(n)s of %(all)s communities (no grids yet) uncovered")
    )
    lines = [
        f"{kind}: {how_far}",
        reach % {"reached": f"{reached:,}", "households": f"{households:,}", "share": share},
        uncovered % {"n": int(tally.get(UNCOVERED, 0)), "all": len(areas)},
    ]
    title_box(m, _("Facility coverage"), lines)
    layer_control(m)
    return m
